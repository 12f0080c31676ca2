#include "client/item_lines.h"

#include <google/protobuf/util/json_util.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/json/fields_once.h"

namespace hotpath::client {
namespace {

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// An int64 field's value as protobuf's parser reads it, when it is one of the two forms export and
// demo-items write: a JSON integer, or a string of decimal digits (no sign but '-', no leading
// zero, no spaces) in range. Anything else is left to protobuf.
std::optional<std::int64_t> Int64Of(simdjson::dom::element value) {
  if (value.type() == simdjson::dom::element_type::INT64) return value.get_int64().value_unsafe();
  if (value.type() != simdjson::dom::element_type::STRING) return std::nullopt;
  const std::string_view text = value.get_string().value_unsafe();
  std::string_view digits = text;
  if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19 || (digits[0] == '0' && text != "0"))
    return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) return std::nullopt;
  std::int64_t parsed = 0;
  if (!absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &parsed)) return std::nullopt;
  return parsed;
}

// An int32 field's value, when it is a JSON integer in range.
std::optional<std::int32_t> Int32Of(simdjson::dom::element value) {
  if (value.type() != simdjson::dom::element_type::INT64) return std::nullopt;
  const std::int64_t wide = value.get_int64().value_unsafe();
  if (wide < std::numeric_limits<std::int32_t>::min() ||
      wide > std::numeric_limits<std::int32_t>::max()) {
    return std::nullopt;
  }
  return static_cast<std::int32_t>(wide);
}

// A string field's value into *out, when it is a JSON string (null, which protobuf reads as the
// default, is left to it).
bool ReadString(simdjson::dom::element value, std::string* out) {
  if (value.type() != simdjson::dom::element_type::STRING) return false;
  const std::string_view text = value.get_string().value_unsafe();
  out->assign(text.data(), text.size());
  return true;
}

// The number of the Item field a member names, by the names protobuf's parser accepts (JSON name
// or proto name); 0 for a member that is not read directly (the timestamps, unknown names).
int FieldNumber(std::string_view key) {
  using catalog::v1::Item;
  static constexpr std::pair<std::string_view, int> kFields[] = {
      {"id", Item::kIdFieldNumber},
      {"sku", Item::kSkuFieldNumber},
      {"name", Item::kNameFieldNumber},
      {"description", Item::kDescriptionFieldNumber},
      {"category", Item::kCategoryFieldNumber},
      {"priceCents", Item::kPriceCentsFieldNumber},
      {"price_cents", Item::kPriceCentsFieldNumber},
      {"stock", Item::kStockFieldNumber},
      {"tags", Item::kTagsFieldNumber},
      {"etag", Item::kEtagFieldNumber},
  };
  for (const auto& [name, number] : kFields) {
    if (key == name) return number;
  }
  return 0;
}

// One member's value into its field of *item; false when the value is not in a form read directly.
bool ReadField(int number, simdjson::dom::element value, catalog::v1::Item* item) {
  using catalog::v1::Item;
  switch (number) {
    case Item::kIdFieldNumber: {
      const auto id = Int64Of(value);
      if (id) item->set_id(*id);
      return id.has_value();
    }
    case Item::kPriceCentsFieldNumber: {
      const auto price = Int64Of(value);
      if (price) item->set_price_cents(*price);
      return price.has_value();
    }
    case Item::kStockFieldNumber: {
      const auto stock = Int32Of(value);
      if (stock) item->set_stock(*stock);
      return stock.has_value();
    }
    case Item::kSkuFieldNumber:
      return ReadString(value, item->mutable_sku());
    case Item::kNameFieldNumber:
      return ReadString(value, item->mutable_name());
    case Item::kDescriptionFieldNumber:
      return ReadString(value, item->mutable_description());
    case Item::kCategoryFieldNumber:
      return ReadString(value, item->mutable_category());
    case Item::kEtagFieldNumber:
      return ReadString(value, item->mutable_etag());
    case Item::kTagsFieldNumber: {
      if (value.type() != simdjson::dom::element_type::ARRAY) return false;
      const simdjson::dom::array tags = value.get_array().value_unsafe();
      for (const simdjson::dom::element tag : tags) {
        if (!ReadString(tag, item->add_tags())) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// object into *item, when every member is a field of Item that appears once, named as protobuf's
// parser names it and holding a value of a form read above (tags: an array of strings). False
// leaves the object to protobuf (the timestamps, nulls, numbers in other forms, unknown or
// repeated fields: everything whose reading, or error, is protobuf's).
bool ReadItem(simdjson::dom::object object, catalog::v1::Item* item) {
  std::uint32_t seen = 0;  // bit n: field number n was read
  for (const simdjson::dom::key_value_pair member : object) {
    const int number = FieldNumber(member.key);
    if (number == 0 || (seen & (1u << number)) != 0) return false;
    seen |= 1u << number;
    if (!ReadField(number, member.value, item)) return false;
  }
  return true;
}

}  // namespace

ItemLinesReader::ItemLinesReader(std::istream& in, std::string name)
    : in_(in), name_(std::move(name)), parser_(std::make_unique<simdjson::dom::parser>()) {
  lines_.reserve(kBatchLines);
  numbers_.reserve(kBatchLines);
}

ItemLinesReader::~ItemLinesReader() = default;

ItemLinesReader::Shape ItemLinesReader::ReadLine(std::string& line, catalog::v1::Item* item) {
  const std::size_t first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos || line[first] != '{') return Shape::kOther;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: the line's own allocation holds
  // them, so it is not copied.
  line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  const auto parsed = parser_->parse(line.data(), line.size(), /*realloc_if_needed=*/false);
  if (parsed.error() || !parsed.value_unsafe().is_object()) return Shape::kOther;
  if (item == nullptr) return Shape::kObject;
  return ReadItem(parsed.value_unsafe().get_object().value_unsafe(), item) ? Shape::kItem
                                                                           : Shape::kObject;
}

bool ItemLinesReader::Next(catalog::v1::Item* item) {
  while (next_ == batch_.items_size()) {
    if (!error_.empty() || !Refill()) return false;
  }
  item->Swap(batch_.mutable_items(next_++));
  return true;
}

bool ItemLinesReader::Refill() {
  lines_.clear();
  numbers_.clear();
  batch_.Clear();
  next_ = 0;
  std::string line;
  bool joinable = true;  // every line is one strict JSON object
  bool read = true;      // and each was read into batch_ directly
  while (static_cast<int>(lines_.size()) < kBatchLines && std::getline(in_, line)) {
    ++line_number_;
    if (IsBlank(line)) continue;
    if (joinable) {
      const Shape shape = ReadLine(line, read ? batch_.add_items() : nullptr);
      joinable = shape != Shape::kOther;
      read = read && shape == Shape::kItem;
    }
    lines_.push_back(std::move(line));
    numbers_.push_back(line_number_);
  }
  if (lines_.empty()) return false;
  if (joinable && read) return true;
  batch_.Clear();
  if (joinable) {
    std::size_t bytes = 16;
    for (const std::string& each : lines_) bytes += each.size() + 1;
    std::string joined;
    joined.reserve(bytes);
    joined += R"({"items":[)";
    for (std::size_t i = 0; i < lines_.size(); ++i) {
      if (i > 0) joined += ',';
      joined += lines_[i];
    }
    joined += "]}";
    if (google::protobuf::util::JsonStringToMessage(joined, &batch_).ok() &&
        batch_.items_size() == static_cast<int>(lines_.size()) &&
        json::CheckFieldsOnce(joined, batch_.GetDescriptor()).ok()) {
      return true;
    }
    batch_.Clear();
  }
  ParseEachLine();  // stops at the first bad line, so no items means the first one was bad
  return batch_.items_size() > 0;
}

void ItemLinesReader::ParseEachLine() {
  for (std::size_t i = 0; i < lines_.size(); ++i) {
    catalog::v1::Item* item = batch_.add_items();
    const auto status = google::protobuf::util::JsonStringToMessage(lines_[i], item);
    if (!status.ok()) {
      batch_.mutable_items()->RemoveLast();
      error_ = absl::StrCat(name_, ":", numbers_[i], ": ", std::string(status.message()));
      return;
    }
    // What protobuf 3.21 reads but a strict reader would read otherwise (a field twice, single
    // quotes) is refused, as the gateway refuses it in a request body.
    if (const absl::Status once = json::CheckFieldsOnce(lines_[i], item->GetDescriptor());
        !once.ok()) {
      batch_.mutable_items()->RemoveLast();
      error_ = absl::StrCat(name_, ":", numbers_[i], ": ", once.message());
      return;
    }
  }
}

}  // namespace hotpath::client
