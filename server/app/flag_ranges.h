// Numeric flags checked against their ranges before a binary opens anything. A value outside its
// range fails the start with a message that names the flag, the range and the value, rather than
// being clamped without a word, or cast: a negative size cast to std::size_t is no bound at all
// (`--item_cache_size=-1` was a cache without a limit, `--pool_max=-1` an abort).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hotpath::app {

struct FlagRange {
  absl::string_view name;                              // the flag, without its dashes
  std::int64_t value;                                  // as given
  std::int64_t min;                                    // the smallest value it takes
  std::int64_t max = std::numeric_limits<int>::max();  // the largest
};

// OK, or InvalidArgument for the first flag outside its range: "--NAME must be at least MIN, not
// VALUE" (when MAX is INT_MAX or INT64_MAX, the type's bound) or "--NAME must be MIN to MAX, not
// VALUE".
absl::Status CheckFlagRanges(std::initializer_list<FlagRange> flags);

struct DurationFlagRange {
  absl::string_view name;                         // the flag, without its dashes
  absl::Duration value;                           // as given
  absl::Duration min;                             // the shortest it takes
  absl::Duration max = absl::InfiniteDuration();  // the longest
};

// The same for durations: "--NAME must be at least MIN, not VALUE" or "--NAME must be MIN to
// MAX, not VALUE", in absl's notation (250ms, 1h).
absl::Status CheckFlagRanges(std::initializer_list<DurationFlagRange> flags);

}  // namespace hotpath::app
