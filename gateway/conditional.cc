#include "gateway/conditional.h"

#include <google/protobuf/descriptor.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

const FieldDescriptor* EtagField(const google::protobuf::Descriptor* type) {
  const FieldDescriptor* field = type->FindFieldByName("etag");
  if (field == nullptr || field->is_repeated() || field->type() != FieldDescriptor::TYPE_STRING) {
    return nullptr;
  }
  return field;
}

// The tag's value without quotes; false when it is not a quoted tag.
bool Unquote(absl::string_view tag, absl::string_view* value) {
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return false;
  *value = tag.substr(1, tag.size() - 2);
  return value->find('"') == absl::string_view::npos;
}

}  // namespace

std::string EtagOf(const Message& message) {
  const FieldDescriptor* field = EtagField(message.GetDescriptor());
  return field == nullptr ? std::string() : message.GetReflection()->GetString(message, field);
}

std::string EntityTag(absl::string_view etag) { return absl::StrCat("\"", etag, "\""); }

bool NoneMatch(absl::string_view if_none_match, absl::string_view etag) {
  for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
    tag = absl::StripAsciiWhitespace(tag);
    if (tag == "*") return true;
    absl::ConsumePrefix(&tag, "W/");
    absl::string_view value;
    if (Unquote(tag, &value) && value == etag) return true;
  }
  return false;
}

absl::Status ApplyIfMatch(absl::string_view if_match, const HttpBinding& binding,
                          Message* request) {
  const absl::string_view tag = absl::StripAsciiWhitespace(if_match);
  if (binding.http_method != "PATCH" && binding.http_method != "PUT" &&
      binding.http_method != "DELETE") {
    return absl::FailedPreconditionError(absl::StrCat(
        "If-Match is supported on PATCH, PUT and DELETE, which change a resource, not on ",
        binding.http_method));
  }
  if (tag == "*") return absl::OkStatus();
  if (tag.find(',') != absl::string_view::npos) {
    return absl::InvalidArgumentError("If-Match with more than one entity tag is not supported");
  }
  if (absl::StartsWith(tag, "W/")) {
    return absl::FailedPreconditionError(
        "If-Match compares strongly: a weak entity tag never matches (RFC 9110 13.1.1)");
  }
  absl::string_view value;
  if (!Unquote(tag, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("If-Match must be an entity tag in double quotes, got ", tag));
  }
  // The request's own etag (DeleteItem), else the body resource's (UpdateItem's item.etag).
  Message* holder = request;
  const FieldDescriptor* field = EtagField(request->GetDescriptor());
  if (field == nullptr && !binding.body.empty() && binding.body != "*") {
    const FieldDescriptor* body = request->GetDescriptor()->FindFieldByName(binding.body);
    if (body != nullptr && body->type() == FieldDescriptor::TYPE_MESSAGE && !body->is_repeated()) {
      holder = request->GetReflection()->MutableMessage(request, body);
      field = EtagField(holder->GetDescriptor());
    }
  }
  if (field == nullptr) {
    return absl::FailedPreconditionError(
        "If-Match is not supported on this method: its request carries no etag");
  }
  const std::string current = holder->GetReflection()->GetString(*holder, field);
  if (!current.empty() && current != value) {
    return absl::InvalidArgumentError("If-Match and the etag in the body differ");
  }
  holder->GetReflection()->SetString(holder, field, std::string(value));
  return absl::OkStatus();
}

}  // namespace hotpath::gateway
