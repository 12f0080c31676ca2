#include "server/catalog/item_validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "server/text/utf8.h"

namespace hotpath::catalog {
namespace {

// Where a field is, for its violations: prefix.name, or name alone, with [index] after it for an
// element of a list. Spelled out only for a violation: most requests have none.
class Where {
 public:
  Where(const char* name) : name_(name) {}  // NOLINT(runtime/explicit): a request's own field
  Where(absl::string_view prefix, absl::string_view name, int index = -1)
      : prefix_(prefix), name_(name), index_(index) {}

  std::string Path() const {
    std::string path = prefix_.empty() ? std::string(name_) : absl::StrCat(prefix_, ".", name_);
    if (index_ >= 0) absl::StrAppend(&path, "[", index_, "]");
    return path;
  }

 private:
  absl::string_view prefix_;
  absl::string_view name_;
  int index_ = -1;
};

// Text rules shared by every string field: valid UTF-8, no control characters (C0, DEL, C1)
// except (when multiline) newline, carriage return and tab, not only spaces when required, and a
// length in code points.
void CheckText(absl::string_view value, const Where& field, int min_chars, int max_chars,
               bool multiline, rpc::FieldViolations& violations) {
  // Most text is printable ASCII, which is valid UTF-8 without control characters, a character a
  // byte: one pass over it decides all three.
  const bool printable_ascii = std::all_of(value.begin(), value.end(), [multiline](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u < 0x7F) || (multiline && (u == '\n' || u == '\t' || u == '\r'));
  });
  const int length = printable_ascii ? static_cast<int>(value.size()) : text::Utf8CodePoints(value);
  if (length < 0) {
    violations.Add(field.Path(), "must be valid UTF-8");
    return;
  }
  for (std::size_t i = 0; !printable_ascii && i < value.size(); ++i) {
    const auto u = static_cast<unsigned char>(value[i]);
    const bool c0 = u < 0x20 && !(multiline && (u == '\n' || u == '\t' || u == '\r'));
    // U+0080..U+009F are C2 80..C2 9F in valid UTF-8.
    const bool c1 =
        u == 0xC2 && i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) <= 0x9F;
    if (c0 || u == 0x7F || c1) {
      violations.Add(field.Path(), "must not contain control characters");
      return;
    }
  }
  if (min_chars >= 1 && length >= min_chars && absl::StripAsciiWhitespace(value).empty()) {
    violations.Add(field.Path(), "must not be only spaces");
    return;
  }
  if (length < min_chars) {
    violations.Add(field.Path(),
                   min_chars == 1 ? "is required"
                                  : absl::StrCat("must have at least ", min_chars, " characters"));
  } else if (length > max_chars) {
    violations.Add(field.Path(), absl::StrCat("must have at most ", max_chars, " characters"));
  }
}

// Identifiers (sku, category): 1..max characters of [A-Za-z0-9._-].
void CheckIdentifier(absl::string_view value, const Where& field, int max_chars,
                     rpc::FieldViolations& violations) {
  if (value.empty()) {
    violations.Add(field.Path(), "is required");
    return;
  }
  if (value.size() > static_cast<std::size_t>(max_chars)) {
    violations.Add(field.Path(), absl::StrCat("must have at most ", max_chars, " characters"));
    return;
  }
  for (const char c : value) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      violations.Add(field.Path(), "may contain only letters, digits, '.', '_' and '-'");
      return;
    }
  }
}

void CheckId(std::int64_t id, absl::string_view field, rpc::FieldViolations& violations) {
  if (id <= 0) violations.Add(std::string(field), "must be a positive item id");
}

void CheckPageSize(std::int32_t page_size, rpc::FieldViolations& violations) {
  if (page_size < 0) violations.Add("page_size", "must not be negative");
}

void CheckPriceRange(bool has_min, std::int64_t min, bool has_max, std::int64_t max,
                     rpc::FieldViolations& violations) {
  if (has_min && min < 0) violations.Add("min_price_cents", "must not be negative");
  if (has_max && max < 0) violations.Add("max_price_cents", "must not be negative");
  if (has_min && has_max && min > max) {
    violations.Add("max_price_cents", "must not be below min_price_cents");
  }
}

}  // namespace

void ValidateItemFields(const v1::Item& item, const ItemFields& fields, absl::string_view prefix,
                        rpc::FieldViolations& violations) {
  if (fields.sku) CheckIdentifier(item.sku(), Where(prefix, "sku"), kMaxSkuChars, violations);
  if (fields.name)
    CheckText(item.name(), Where(prefix, "name"), 1, kMaxNameChars, false, violations);
  if (fields.description) {
    CheckText(item.description(), Where(prefix, "description"), 0, kMaxDescriptionChars, true,
              violations);
  }
  if (fields.category) {
    CheckIdentifier(item.category(), Where(prefix, "category"), kMaxCategoryChars, violations);
  }
  if (fields.price_cents && (item.price_cents() < 0 || item.price_cents() > kMaxPriceCents)) {
    violations.Add(Where(prefix, "price_cents").Path(),
                   absl::StrCat("must be between 0 and ", kMaxPriceCents));
  }
  if (fields.stock && item.stock() < 0)
    violations.Add(Where(prefix, "stock").Path(), "must not be negative");
  if (fields.tags) {
    if (item.tags_size() > kMaxTags) {
      violations.Add(Where(prefix, "tags").Path(),
                     absl::StrCat("must have at most ", kMaxTags, " tags"));
    } else {
      const auto& tags = item.tags();
      for (int i = 0; i < tags.size(); ++i) {
        const Where tag(prefix, "tags", i);
        CheckText(tags[i], tag, 1, kMaxTagChars, false, violations);
        // At most kMaxTags: looking through the earlier ones costs less than a set would.
        if (std::find(tags.begin(), tags.begin() + i, tags[i]) != tags.begin() + i) {
          violations.Add(tag.Path(), "repeats an earlier tag");
        }
      }
    }
  }
}

absl::Status ValidateCreate(const v1::CreateItemRequest& request) {
  rpc::FieldViolations violations;
  if (!request.has_item()) {
    violations.Add("item", "is required");
  } else {
    ValidateItemFields(request.item(), ItemFields::All(), "item", violations);
  }
  const std::string& key = request.request_id();
  if (key.size() > kMaxRequestIdChars) {
    violations.Add("request_id",
                   absl::StrCat("is longer than ", kMaxRequestIdChars, " characters"));
  } else if (!std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) {
    violations.Add("request_id", "must be printable ASCII without spaces");
  }
  return violations.ToStatus();
}

absl::StatusOr<ItemFields> ValidateUpdate(const v1::UpdateItemRequest& request) {
  rpc::FieldViolations violations;
  const v1::Item& item = request.item();
  CheckId(item.id(), "item.id", violations);
  ItemFields fields;
  if (request.has_update_mask() && request.update_mask().paths_size() > 0) {
    for (int i = 0; i < request.update_mask().paths_size(); ++i) {
      const std::string& path = request.update_mask().paths(i);
      if (path == "*")
        fields = ItemFields::All();
      else if (path == "sku")
        fields.sku = true;
      else if (path == "name")
        fields.name = true;
      else if (path == "description")
        fields.description = true;
      else if (path == "category")
        fields.category = true;
      else if (path == "price_cents" || path == "priceCents")
        fields.price_cents = true;
      else if (path == "stock")
        fields.stock = true;
      else if (path == "tags")
        fields.tags = true;
      else {
        violations.Add(absl::StrCat("update_mask.paths[", i, "]"),
                       absl::StrCat("\"", absl::CHexEscape(path),
                                    "\" is not an updatable field (sku, name, description, "
                                    "category, price_cents, stock, tags, or *)"));
      }
    }
  } else {
    fields.sku = !item.sku().empty();
    fields.name = !item.name().empty();
    fields.description = !item.description().empty();
    fields.category = !item.category().empty();
    fields.price_cents = item.price_cents() != 0;
    fields.stock = item.stock() != 0;
    fields.tags = item.tags_size() > 0;
    if (!fields.Any() && item.id() > 0) {
      violations.Add("update_mask", "names no field, and the item sets none to update");
    }
  }
  ValidateItemFields(item, fields, "item", violations);
  if (!item.etag().empty() && !ParseEtag(item.etag(), "item.etag").ok()) {
    violations.Add("item.etag", "is not an etag this server issued");
  }
  if (!violations.empty()) return violations.ToStatus();
  return fields;
}

absl::Status ValidateGet(const v1::GetItemRequest& request) {
  rpc::FieldViolations violations;
  CheckId(request.id(), "id", violations);
  return violations.ToStatus();
}

absl::Status ValidateDelete(const v1::DeleteItemRequest& request) {
  rpc::FieldViolations violations;
  CheckId(request.id(), "id", violations);
  if (!request.etag().empty() && !ParseEtag(request.etag(), "etag").ok()) {
    violations.Add("etag", "is not an etag this server issued");
  }
  return violations.ToStatus();
}

absl::Status ValidateBatchGet(const v1::BatchGetItemsRequest& request) {
  rpc::FieldViolations violations;
  if (request.ids_size() == 0) {
    violations.Add("ids", "is required");
  } else if (request.ids_size() > kMaxBatchGetIds) {
    violations.Add("ids", absl::StrCat("must have at most ", kMaxBatchGetIds, " ids"));
  } else {
    for (int i = 0; i < request.ids_size(); ++i) {
      CheckId(request.ids(i), absl::StrCat("ids[", i, "]"), violations);
    }
  }
  return violations.ToStatus();
}

absl::Status ValidateList(const v1::ListItemsRequest& request) {
  rpc::FieldViolations violations;
  CheckPageSize(request.page_size(), violations);
  if (!request.category().empty()) {
    CheckIdentifier(request.category(), "category", kMaxCategoryChars, violations);
  }
  CheckPriceRange(request.has_min_price_cents(), request.min_price_cents().value(),
                  request.has_max_price_cents(), request.max_price_cents().value(), violations);
  if (!request.order_by().empty() && request.order_by() != "id" &&
      request.order_by() != "category,id") {
    violations.Add("order_by", "must be \"id\" or \"category,id\"");
  }
  return violations.ToStatus();
}

absl::Status ValidateSearch(const v1::SearchItemsRequest& request) {
  rpc::FieldViolations violations;
  CheckText(request.query(), "query", 1, kMaxSearchQueryChars, false, violations);
  CheckPageSize(request.page_size(), violations);
  return violations.ToStatus();
}

absl::Status ValidateCategoryStats(const v1::GetCategoryStatsRequest& request) {
  rpc::FieldViolations violations;
  CheckIdentifier(request.category(), "category", kMaxCategoryChars, violations);
  return violations.ToStatus();
}

absl::Status ValidateExport(const v1::ExportItemsRequest& request) {
  rpc::FieldViolations violations;
  if (!request.category().empty()) {
    CheckIdentifier(request.category(), "category", kMaxCategoryChars, violations);
  }
  CheckPriceRange(request.has_min_price_cents(), request.min_price_cents().value(),
                  request.has_max_price_cents(), request.max_price_cents().value(), violations);
  return violations.ToStatus();
}

int EffectivePageSize(std::int32_t page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

absl::StatusOr<std::int64_t> ParseEtag(absl::string_view etag, absl::string_view field) {
  absl::string_view text = etag;
  absl::ConsumePrefix(&text, "W/");
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  std::int64_t version;
  if (!absl::SimpleAtoi(text, &version) || version <= 0) {
    rpc::FieldViolations violations;
    violations.Add(std::string(field), "is not an etag this server issued");
    return violations.ToStatus();
  }
  return version;
}

}  // namespace hotpath::catalog
