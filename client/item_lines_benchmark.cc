// What `hotpath import` pays to read a JSON line: protobuf's JsonStringToMessage per line (what it
// did before ItemLinesReader), against ItemLinesReader's batches, on demo items.
#include <benchmark/benchmark.h>
#include <google/protobuf/util/json_util.h>

#include <sstream>
#include <string>

#include "client/demo_items.h"
#include "client/item_lines.h"

namespace hotpath::client {
namespace {

std::string DemoLines(int n) {
  std::string text;
  for (int i = 1; i <= n; ++i) {
    std::string line;
    (void)google::protobuf::util::MessageToJsonString(DemoItem(i), &line);
    text += line;
    text += '\n';
  }
  return text;
}

constexpr int kLines = 4096;

void BM_JsonStringToMessagePerLine(benchmark::State& state) {
  const std::string text = DemoLines(kLines);
  catalog::v1::Item item;
  for (auto _ : state) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      item.Clear();
      benchmark::DoNotOptimize(google::protobuf::util::JsonStringToMessage(line, &item).ok());
    }
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}
BENCHMARK(BM_JsonStringToMessagePerLine);

void BM_ItemLinesReader(benchmark::State& state) {
  const std::string text = DemoLines(kLines);
  catalog::v1::Item item;
  for (auto _ : state) {
    std::istringstream in(text);
    ItemLinesReader reader(in, "bench");
    while (reader.Next(&item)) benchmark::DoNotOptimize(item.id());
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}
BENCHMARK(BM_ItemLinesReader);

}  // namespace
}  // namespace hotpath::client

BENCHMARK_MAIN();
