// UTF-8 as every layer of hotpath judges it: what protobuf accepts in a string field (overlong
// forms, surrogates and code points past U+10FFFF refused), so the gateway, validation and the
// wire never disagree about a string.
#pragma once

#include <google/protobuf/stubs/common.h>

#include "absl/strings/string_view.h"

namespace hotpath::text {

inline bool IsValidUtf8(absl::string_view s) {
  return google::protobuf::internal::IsStructurallyValidUTF8(s.data(), static_cast<int>(s.size()));
}

// Code points in s, or -1 when s is not valid UTF-8.
inline int Utf8CodePoints(absl::string_view s) {
  if (!IsValidUtf8(s)) return -1;
  int count = 0;
  for (const char c : s) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

}  // namespace hotpath::text
