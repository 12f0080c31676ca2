#include "server/json/field_names.h"

#include <string>

namespace hotpath::json {

const google::protobuf::FieldDescriptor* FindFieldByAnyName(
    const google::protobuf::Descriptor* descriptor, absl::string_view name) {
  const std::string key(name);
  if (const auto* f = descriptor->FindFieldByName(key)) return f;
  if (const auto* f = descriptor->FindFieldByCamelcaseName(key)) return f;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    if (descriptor->field(i)->json_name() == key) return descriptor->field(i);
  }
  return nullptr;
}

}  // namespace hotpath::json
