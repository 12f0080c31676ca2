// The gateway's JSON printer against protobuf's (what it replaces, and must print byte for byte
// the same as: json_printer_test.cc): one item, and a page of 50, as the gateway answers them.
#include <google/protobuf/util/json_util.h>

#include <string>

#include "benchmark/benchmark.h"
#include "client/demo_items.h"
#include "gateway/json_printer.h"
#include "hotpath/catalog/v1/catalog.pb.h"

namespace hotpath::gateway {
namespace {

namespace v1 = ::hotpath::catalog::v1;

v1::ListItemsResponse Page(int items) {
  v1::ListItemsResponse page;
  for (int i = 1; i <= items; ++i) {
    v1::Item* item = page.add_items();
    *item = client::DemoItem(i);
    item->set_id(i);
    item->set_etag("W/\"3\"");
  }
  page.set_next_page_token("eyJrIjoiNTAifQ.c2lnbmF0dXJl");
  return page;
}

template <class Message>
void BM_Hotpath(benchmark::State& state, const Message& message) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(AppendCanonicalJson(message, &out));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

template <class Message>
void BM_Protobuf(benchmark::State& state, const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(google::protobuf::util::MessageToJsonString(message, &out, options));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

const v1::Item& OneItem() {
  static const v1::Item item = Page(1).items(0);
  return item;
}
const v1::ListItemsResponse& FiftyItems() {
  static const v1::ListItemsResponse page = Page(50);
  return page;
}

BENCHMARK_CAPTURE(BM_Hotpath, item, OneItem());
BENCHMARK_CAPTURE(BM_Protobuf, item, OneItem());
BENCHMARK_CAPTURE(BM_Hotpath, page_of_50, FiftyItems());
BENCHMARK_CAPTURE(BM_Protobuf, page_of_50, FiftyItems());

}  // namespace
}  // namespace hotpath::gateway

BENCHMARK_MAIN();
