// The X-Process-Time value every answer carries (gRPC metadata x-process-time and the gateway's
// header, like the timing middleware of FastAPI's documentation): seconds with six decimals.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace hotpath::http {

// "0.000123" for 123 us.
inline std::string FormatProcessTime(std::chrono::steady_clock::duration elapsed) {
  const std::int64_t micros =
      std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  return absl::StrCat(micros / 1000000, ".", absl::Dec(micros % 1000000, absl::kZeroPad6));
}

}  // namespace hotpath::http
