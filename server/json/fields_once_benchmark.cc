// What the strict check adds to a request body's reading: protobuf's parse of a create's body (a
// demo item, as `hotpath create` and the REST create bench send it) against CheckFieldsOnce on the
// same bytes, which the gateway runs after it.
#include <google/protobuf/util/json_util.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "client/demo_items.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/json/fields_once.h"

namespace hotpath::json {
namespace {

namespace v1 = ::hotpath::catalog::v1;

std::string CreateBody() {
  std::string body;
  (void)google::protobuf::util::MessageToJsonString(client::DemoItem(42), &body);
  return body;
}

void BM_ProtobufParse(benchmark::State& state) {
  const std::string body = CreateBody();
  for (auto _ : state) {
    v1::Item item;
    benchmark::DoNotOptimize(google::protobuf::util::JsonStringToMessage(body, &item).ok());
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_ProtobufParse);

void BM_CheckFieldsOnce(benchmark::State& state) {
  const std::string body = CreateBody();
  for (auto _ : state) {
    benchmark::DoNotOptimize(CheckFieldsOnce(body, v1::Item::descriptor()).ok());
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_CheckFieldsOnce);

// The worst a body can hold: one object of about 100,000 names in 1 MB (an unknown field under
// --ignore_unknown_fields, or a google.protobuf.Struct), each name checked against the others.
void BM_CheckFieldsOnceManyNames(benchmark::State& state) {
  std::string body = R"({"sku":"a","x":{)";
  for (int i = 0; body.size() < 1'000'000; ++i)
    absl::StrAppend(&body, i ? "," : "", "\"k", i, "\":0");
  body += "}}";
  for (auto _ : state) {
    benchmark::DoNotOptimize(CheckFieldsOnce(body, v1::Item::descriptor()).ok());
  }
  state.SetBytesProcessed(state.iterations() * body.size());
}
BENCHMARK(BM_CheckFieldsOnceManyNames)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace hotpath::json

BENCHMARK_MAIN();
