// Import and create row validation on arbitrary protobuf bytes: whatever parses as a
// CreateItemRequest is validated (as CreateItem, with and without its request_id, and as row 7 of
// an import) without crashing, and an accepted row has what the table's constraints require.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/catalog/item_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  hotpath::catalog::v1::CreateItemRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  // The item's rules are ImportItems' rules; CreateItem adds its request_id (ImportItems ignores
  // it), which can make a create unacceptable but never a bad item acceptable.
  const bool accepted_with_key = hotpath::catalog::ValidateCreate(request).ok();
  request.clear_request_id();
  const bool accepted = hotpath::catalog::ValidateCreate(request).ok();
  if (accepted_with_key && !accepted) std::abort();
  hotpath::rpc::FieldViolations violations;
  hotpath::catalog::ValidateItemFields(request.item(), hotpath::catalog::ItemFields::All(),
                                       "items[7].", violations);
  if (accepted != violations.empty()) std::abort();  // one rule for CreateItem and ImportItems
  if (accepted) {
    const auto& item = request.item();
    if (item.sku().empty() || item.name().empty() || item.price_cents() < 0 || item.stock() < 0) {
      std::abort();
    }
  }
  hotpath::catalog::v1::UpdateItemRequest update;
  if (update.ParseFromArray(data, static_cast<int>(size))) {
    (void)hotpath::catalog::ValidateUpdate(update);
  }
  return 0;
}
