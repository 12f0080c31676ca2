#include "client/item_lines.h"

#include <google/protobuf/util/json_util.h>
#include <simdjson.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace hotpath::client {
namespace {

bool IsBlank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

}  // namespace

ItemLinesReader::ItemLinesReader(std::istream& in, std::string name)
    : in_(in), name_(std::move(name)), validator_(std::make_unique<simdjson::dom::parser>()) {
  lines_.reserve(kBatchLines);
  numbers_.reserve(kBatchLines);
}

ItemLinesReader::~ItemLinesReader() = default;

bool ItemLinesReader::IsOneJsonObject(std::string& line) {
  const std::size_t first = line.find_first_not_of(" \t\r");
  if (first == std::string::npos || line[first] != '{') return false;
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: the line's own allocation holds
  // them, so it is not copied.
  line.reserve(line.size() + simdjson::SIMDJSON_PADDING);
  const auto parsed = validator_->parse(line.data(), line.size(), /*realloc_if_needed=*/false);
  return !parsed.error() && parsed.value_unsafe().is_object();
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
  bool joinable = true;
  while (static_cast<int>(lines_.size()) < kBatchLines && std::getline(in_, line)) {
    ++line_number_;
    if (IsBlank(line)) continue;
    joinable = joinable && IsOneJsonObject(line);
    lines_.push_back(std::move(line));
    numbers_.push_back(line_number_);
  }
  if (lines_.empty()) return false;
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
