// JSON string literals, written the one way every hotpath answer writes them: as protobuf's JSON
// printer does (the gateway's printer, error bodies, the access log).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace hotpath::http {

// Appends text as a JSON string literal, quotes included, byte for byte as protobuf 3.21's JSON
// printer writes it: quote, backslash and control characters escaped, < and > (unsafe in HTML),
// and the C1 controls and invisible format characters (U+00AD, U+200B-200F, U+2028-202E, U+FEFF,
// ...: json_quote.cc lists them) as \u escapes, surrogate pairs past U+FFFF; other bytes as they
// are (the caller supplies UTF-8).
void AppendJsonString(absl::string_view text, std::string* out);

// The same, as a new string: "a\"b" -> "\"a\\\"b\"".
std::string JsonQuote(absl::string_view text);

}  // namespace hotpath::http
