#include "client/item_lines.h"

#include <google/protobuf/util/json_util.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hotpath::client {
namespace {

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// An int64 field's value as protobuf's parser reads it, when it is one of the two forms export and
// demo-items write: a JSON integer, or a string of decimal digits (no sign but '-', no leading
// zero, no spaces) in range. Anything else is left to protobuf.
bool ReadInt64(simdjson::dom::element value, std::int64_t* out) {
  if (value.type() == simdjson::dom::element_type::INT64) {
    *out = value.get_int64().value_unsafe();
    return true;
  }
  if (value.type() != simdjson::dom::element_type::STRING) return false;
  const std::string_view text = value.get_string().value_unsafe();
  std::string_view digits = text;
  if (!digits.empty() && digits[0] == '-') digits.remove_prefix(1);
  if (digits.empty() || digits.size() > 19 || (digits[0] == '0' && text != "0")) return false;
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) return false;
  return absl::SimpleAtoi(absl::string_view(text.data(), text.size()), out);
}

// An int32 field's value, when it is a JSON integer in range.
bool ReadInt32(simdjson::dom::element value, std::int32_t* out) {
  if (value.type() != simdjson::dom::element_type::INT64) return false;
  const std::int64_t wide = value.get_int64().value_unsafe();
  if (wide < std::numeric_limits<std::int32_t>::min() ||
      wide > std::numeric_limits<std::int32_t>::max()) {
    return false;
  }
  *out = static_cast<std::int32_t>(wide);
  return true;
}

// A string field's value, when it is a JSON string (null, which protobuf reads as the default, is
// left to it).
bool ReadString(simdjson::dom::element value, std::string* out) {
  if (value.type() != simdjson::dom::element_type::STRING) return false;
  const std::string_view text = value.get_string().value_unsafe();
  out->assign(text.data(), text.size());
  return true;
}

// object into *item, when every member is a field of Item that appears once, named as protobuf's
// parser names it (its JSON name or its proto name) and holding a value of a form read above (tags:
// an array of strings). False leaves the object to protobuf (the timestamps, nulls, numbers in
// other forms, unknown or repeated fields: everything whose reading, or error, is protobuf's).
bool ReadItem(simdjson::dom::object object, catalog::v1::Item* item) {
  std::uint32_t seen = 0;  // bit n: field number n was read
  for (const simdjson::dom::key_value_pair member : object) {
    const std::string_view key = member.key;
    const simdjson::dom::element value = member.value;
    int number = 0;
    bool read = false;
    if (key == "id") {
      number = 1;
      std::int64_t id = 0;
      read = ReadInt64(value, &id);
      item->set_id(id);
    } else if (key == "sku") {
      number = 2;
      read = ReadString(value, item->mutable_sku());
    } else if (key == "name") {
      number = 3;
      read = ReadString(value, item->mutable_name());
    } else if (key == "description") {
      number = 4;
      read = ReadString(value, item->mutable_description());
    } else if (key == "category") {
      number = 5;
      read = ReadString(value, item->mutable_category());
    } else if (key == "priceCents" || key == "price_cents") {
      number = 6;
      std::int64_t price = 0;
      read = ReadInt64(value, &price);
      item->set_price_cents(price);
    } else if (key == "stock") {
      number = 7;
      std::int32_t stock = 0;
      read = ReadInt32(value, &stock);
      item->set_stock(stock);
    } else if (key == "tags") {
      number = 8;
      read = value.type() == simdjson::dom::element_type::ARRAY;
      if (read) {
        const simdjson::dom::array tags = value.get_array().value_unsafe();
        for (const simdjson::dom::element tag : tags) {
          if (!(read = ReadString(tag, item->add_tags()))) break;
        }
      }
    } else if (key == "etag") {
      number = 11;
      read = ReadString(value, item->mutable_etag());
    }
    if (!read || (seen & (1u << number)) != 0) return false;
    seen |= 1u << number;
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
        batch_.items_size() == static_cast<int>(lines_.size())) {
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
  }
}

}  // namespace hotpath::client
