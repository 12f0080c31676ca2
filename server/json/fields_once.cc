#include "server/json/fields_once.h"

#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/json/field_names.h"

namespace hotpath::json {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using simdjson::dom::element;
using simdjson::dom::element_type;

absl::Status Twice(std::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", absl::CHexEscape(absl::string_view(key.data(), key.size())), "\" ", what));
}

// Messages whose JSON is not an object of their fields (Struct, Any, wrappers, ...): only their
// names are compared, as text.
bool IsWellKnown(const Descriptor* descriptor) {
  return descriptor->file()->package() == "google.protobuf";
}

absl::Status Check(element value, const Descriptor* descriptor);

// Every element of an array, or the value itself, against `descriptor`.
absl::Status CheckEach(element value, const Descriptor* descriptor) {
  if (value.type() != element_type::ARRAY) return Check(value, descriptor);
  const simdjson::dom::array array = value.get_array().value_unsafe();
  for (const element each : array) {
    if (absl::Status s = Check(each, descriptor); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// An object's names as text; its values against `values` (nullptr: names as text all the way).
// A hash set: such an object has as many names as the body holds (a 1 MB one about 100,000,
// which a search of a vector for each took 8 s of CPU over).
absl::Status CheckNames(simdjson::dom::object object, const Descriptor* values,
                        absl::string_view where) {
  absl::flat_hash_set<std::string_view> seen;
  for (const simdjson::dom::key_value_pair member : object) {
    if (!seen.insert(member.key).second) return Twice(member.key, where);
    if (absl::Status s = CheckEach(member.value, values); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Check(element value, const Descriptor* descriptor) {
  if (value.type() == element_type::ARRAY) return CheckEach(value, nullptr);
  if (value.type() != element_type::OBJECT) return absl::OkStatus();
  const simdjson::dom::object object = value.get_object().value_unsafe();
  if (descriptor == nullptr || IsWellKnown(descriptor)) {
    return CheckNames(object, nullptr, "appears twice in one object");
  }
  std::vector<const FieldDescriptor*> seen;
  for (const simdjson::dom::key_value_pair member : object) {
    const FieldDescriptor* f =
        FindFieldByAnyName(descriptor, absl::string_view(member.key.data(), member.key.size()));
    if (f == nullptr) {  // an unknown field, which the caller's parse let through
      if (absl::Status s = Check(member.value, nullptr); !s.ok()) return s;
      continue;
    }
    if (absl::c_linear_search(seen, f)) {
      return Twice(member.key, absl::StrCat("sets field ", f->name(), " of ",
                                            descriptor->full_name(), " a second time"));
    }
    seen.push_back(f);
    if (f->is_map()) {
      if (member.value.type() != element_type::OBJECT) continue;
      const FieldDescriptor* map_value = f->message_type()->map_value();
      if (absl::Status s =
              CheckNames(member.value.get_object().value_unsafe(), map_value->message_type(),
                         absl::StrCat("is a key given twice in map ", f->name()));
          !s.ok()) {
        return s;
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (absl::Status s = CheckEach(member.value, f->message_type()); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckFieldsOnce(absl::string_view json, const Descriptor* descriptor) {
  // A parser keeps the buffers of the largest document it has read: one per thread for request
  // bodies of common sizes, and one of its own for a large body, freed with it.
  constexpr std::size_t kKeptParserBytes = 64 * 1024;
  thread_local simdjson::dom::parser kept;
  std::unique_ptr<simdjson::dom::parser> own;
  simdjson::dom::parser* parser = &kept;
  if (json.size() > kKeptParserBytes) {
    own = std::make_unique<simdjson::dom::parser>();
    parser = own.get();
  }
  element root;
  if (const auto error = parser->parse(json.data(), json.size(), true).get(root); error) {
    if (error == simdjson::NUMBER_ERROR) {  // RFC 8259 6 lets a reader bound its numbers
      return absl::InvalidArgumentError(
          "a number past what this service reads: 64-bit integers, and doubles");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("not RFC 8259 JSON: ", simdjson::error_message(error)));
  }
  return Check(root, descriptor);
}

}  // namespace hotpath::json
