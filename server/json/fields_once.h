// JSON objects that set one protobuf field twice. Protobuf 3.21's JSON parser (Debian 12's) keeps
// the last of `{"sku":"a","sku":"b"}`, and of `price_cents` beside `priceCents`; Go's protojson and
// protobuf's own parser from 22 on refuse both. A body read one way by the server and the other way
// by a proxy, a WAF or a log in front of it is a request smuggled past their checks, so hotpath
// refuses it too: run this on JSON that protobuf has already parsed into `descriptor`'s message
// (whose errors, with a byte offset, come first).
#pragma once

#include <google/protobuf/descriptor.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hotpath::json {

// OK, or InvalidArgument naming the first member that sets a field an earlier member of the same
// object set (by either of its names), a map key given twice, or a name given twice in an object
// of no known message (google.protobuf.Struct, Any, unknown fields). Nested messages are checked
// against their own types. Also InvalidArgument for what is not strict RFC 8259 JSON, which
// protobuf 3.21 lets through too (`{sku: 'a',}`: unquoted names, single quotes, trailing commas),
// and for numbers past double's range or integers past 64 bits. The message names no input: the
// caller says what was read ("invalid JSON body: ...", "items.jsonl:7: ...").
absl::Status CheckFieldsOnce(absl::string_view json,
                             const google::protobuf::Descriptor* descriptor);

}  // namespace hotpath::json
