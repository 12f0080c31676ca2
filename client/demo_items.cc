#include "client/demo_items.h"

#include "absl/strings/str_cat.h"

namespace hotpath::client {

hotpath::catalog::v1::Item DemoItem(std::int64_t n) {
  hotpath::catalog::v1::Item item;
  item.set_sku(absl::StrCat("SKU-", n));
  item.set_name(absl::StrCat("Item ", n));
  const std::string sentence = absl::StrCat("Description of item ", n, ". ");
  item.set_description(absl::StrCat(sentence, sentence, sentence, sentence));
  item.set_category(absl::StrCat("cat-", n % 20));
  item.set_price_cents((n * 37) % 100000);
  item.set_stock(static_cast<std::int32_t>(n % 500));
  item.add_tags(absl::StrCat("t", n % 7));
  if (n % 7 != n % 11) item.add_tags(absl::StrCat("t", n % 11));
  return item;
}

}  // namespace hotpath::client
