// A message's field by either of the names JSON may give it, as protobuf's JSON parser finds it:
// its proto name (`price_cents`) or its JSON name (`priceCents`, or a `json_name` option).
#pragma once

#include <google/protobuf/descriptor.h>

#include "absl/strings/string_view.h"

namespace hotpath::json {

// The field, or nullptr when `name` names none of `descriptor`'s fields.
const google::protobuf::FieldDescriptor* FindFieldByAnyName(
    const google::protobuf::Descriptor* descriptor, absl::string_view name);

}  // namespace hotpath::json
