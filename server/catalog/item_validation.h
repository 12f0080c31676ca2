// Request validation for the catalog: every field's rules in one place, each violation reported
// with its request path in a google.rpc.BadRequest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/rpc/status.h"

namespace hotpath::catalog {

inline constexpr int kMaxSkuChars = 64;
inline constexpr int kMaxNameChars = 200;
inline constexpr int kMaxDescriptionChars = 4000;
// CreateItemRequest.request_id, the idempotency key.
inline constexpr std::size_t kMaxRequestIdChars = 128;
inline constexpr int kMaxCategoryChars = 64;
inline constexpr int kMaxTags = 32;
inline constexpr int kMaxTagChars = 64;
inline constexpr std::int64_t kMaxPriceCents = 1'000'000'000'000;  // ten billion in currency units
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kMaxBatchGetIds = 1000;
inline constexpr int kMaxSearchQueryChars = 256;

// The writable fields of an Item, as named by an update mask.
struct ItemFields {
  bool sku = false;
  bool name = false;
  bool description = false;
  bool category = false;
  bool price_cents = false;
  bool stock = false;
  bool tags = false;

  static ItemFields All() { return {true, true, true, true, true, true, true}; }
  bool Any() const {
    return sku || name || description || category || price_cents || stock || tags;
  }
};

// Checks the fields of item selected by fields; violation paths start with prefix ("item").
void ValidateItemFields(const v1::Item& item, const ItemFields& fields, absl::string_view prefix,
                        rpc::FieldViolations& violations);

absl::Status ValidateCreate(const v1::CreateItemRequest& request);

// The fields the update touches: the mask's paths, "*" for all, or (no mask) every field set to a
// non-default value. INVALID_ARGUMENT for unknown paths, an empty update or bad values.
absl::StatusOr<ItemFields> ValidateUpdate(const v1::UpdateItemRequest& request);

absl::Status ValidateGet(const v1::GetItemRequest& request);
absl::Status ValidateDelete(const v1::DeleteItemRequest& request);
absl::Status ValidateBatchGet(const v1::BatchGetItemsRequest& request);
absl::Status ValidateList(const v1::ListItemsRequest& request);
absl::Status ValidateSearch(const v1::SearchItemsRequest& request);
absl::Status ValidateCategoryStats(const v1::GetCategoryStatsRequest& request);
absl::Status ValidateExport(const v1::ExportItemsRequest& request);

// 0 -> kDefaultPageSize, above kMaxPageSize -> kMaxPageSize (negative sizes fail validation).
int EffectivePageSize(std::int32_t page_size);

// Parses an etag as sent by a client (with or without quotes or a W/ prefix): the item version, or
// INVALID_ARGUMENT naming field.
absl::StatusOr<std::int64_t> ParseEtag(absl::string_view etag, absl::string_view field);

}  // namespace hotpath::catalog
