// What checking an item costs on every create, update and imported row: ValidateCreate over demo
// items (ASCII text, as `hotpath demo-items`, the import bench and the REST create bench send), and
// over the same items with accented text and tags (text past ASCII, checked character by
// character).
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "client/demo_items.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/catalog/item_validation.h"

namespace hotpath::catalog {
namespace {

std::vector<v1::CreateItemRequest> Requests(bool accented) {
  std::vector<v1::CreateItemRequest> requests(256);
  for (int n = 0; n < 256; ++n) {
    v1::Item& item = *requests[n].mutable_item();
    item = client::DemoItem(n + 1);
    if (accented) {
      item.set_name(item.name() + " \u00e9t\u00e9");
      item.set_description(item.description() +
                           "\nCr\u00e8me br\u00fbl\u00e9e, na\u00efve caf\u00e9.");
      for (std::string& tag : *item.mutable_tags()) tag += "\u00e9";
    }
  }
  return requests;
}

void BM_ValidateCreate(benchmark::State& state) {
  const std::vector<v1::CreateItemRequest> requests = Requests(state.range(0) != 0);
  std::size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ValidateCreate(requests[n++ % requests.size()]).ok());
  }
}
BENCHMARK(BM_ValidateCreate)->ArgName("accented")->Arg(0)->Arg(1);

}  // namespace
}  // namespace hotpath::catalog

BENCHMARK_MAIN();
