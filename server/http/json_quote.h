// A string as a JSON string literal, quotes included.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace hotpath::http {

// "a\"b" -> "\"a\\\"b\"": quotes, backslashes and control characters escaped; other bytes as they
// are (the caller supplies UTF-8).
std::string JsonQuote(absl::string_view text);

}  // namespace hotpath::http
