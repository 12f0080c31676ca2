#include "gateway/openapi.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// Adds from's entries to into[key] (an object), keeping entries already there.
void MergeObject(const Struct& from, Struct& into, const std::string& key) {
  auto found = from.fields().find(key);
  if (found == from.fields().end() || !found->second.has_struct_value()) return;
  auto& target = *(*into.mutable_fields())[key].mutable_struct_value()->mutable_fields();
  for (const auto& [name, value] : found->second.struct_value().fields()) {
    target.insert({name, value});
  }
}

void AppendList(const Struct& from, Struct& into, const std::string& key) {
  auto found = from.fields().find(key);
  if (found == from.fields().end() || !found->second.has_list_value()) return;
  auto* target = (*into.mutable_fields())[key].mutable_list_value();
  for (const Value& value : found->second.list_value().values()) *target->add_values() = value;
}

}  // namespace

absl::StatusOr<std::string> MergeOpenApi(const std::vector<std::string_view>& documents) {
  std::vector<std::string_view> present;
  for (std::string_view document : documents) {
    if (!document.empty()) present.push_back(document);
  }
  if (present.empty()) return std::string();
  if (present.size() == 1) return std::string(present.front());
  Struct merged;
  for (std::size_t i = 0; i < present.size(); ++i) {
    Struct document;
    if (auto parsed = google::protobuf::util::JsonStringToMessage(present[i], &document);
        !parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("OpenAPI document ", i + 1, " is not JSON: ", parsed.ToString()));
    }
    if (i == 0) {
      merged = std::move(document);
      continue;
    }
    MergeObject(document, merged, "paths");
    MergeObject(document, merged, "definitions");
    AppendList(document, merged, "tags");
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (auto printed = google::protobuf::util::MessageToJsonString(merged, &json, options);
      !printed.ok()) {
    return absl::InternalError(printed.ToString());
  }
  return json;
}

}  // namespace hotpath::gateway
