// JSON string literals, written the one way every hotpath answer writes them: as protobuf's JSON
// printer does (the gateway's printer, error bodies, the access log).
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace hotpath::http {

// Appends text as a JSON string literal, quotes included: quote, backslash and control characters
// escaped, and, as protobuf does, < and > (unsafe in HTML) and U+2028/U+2029 (line breaks to
// JavaScript); other bytes as they are (the caller supplies UTF-8).
void AppendJsonString(absl::string_view text, std::string* out);

// The same, as a new string: "a\"b" -> "\"a\\\"b\"".
std::string JsonQuote(absl::string_view text);

}  // namespace hotpath::http
