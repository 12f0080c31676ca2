// A fast printer of protobuf's canonical JSON, for the gateway's answers: the same output as
// google::protobuf::util::MessageToJsonString with always_print_primitive_fields (lowerCamelCase
// names, int64 as strings, enums by name, zero values and empty lists emitted), without building
// the converter's object tree for every message. Types it does not handle (maps, Any, Struct,
// Value, ListValue) make it decline, and the caller falls back to protobuf's printer.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace hotpath::gateway {

// Appends message's JSON to out; false (out unspecified) when the message holds a type this
// printer leaves to protobuf.
bool AppendCanonicalJson(const google::protobuf::Message& message, std::string* out);

}  // namespace hotpath::gateway
