#include "server/app/flag_ranges.h"

#include "absl/strings/str_cat.h"

namespace hotpath::app {

absl::Status CheckFlagRanges(std::initializer_list<FlagRange> flags) {
  for (const FlagRange& flag : flags) {
    if (flag.value >= flag.min && flag.value <= flag.max) continue;
    if (flag.max == std::numeric_limits<int>::max() ||
        flag.max == std::numeric_limits<std::int64_t>::max()) {  // the type's bound, not the flag's
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag.name, " must be at least ", flag.min, ", not ", flag.value));
    }
    return absl::InvalidArgumentError(absl::StrCat("--", flag.name, " must be ", flag.min, " to ",
                                                   flag.max, ", not ", flag.value));
  }
  return absl::OkStatus();
}

absl::Status CheckFlagRanges(std::initializer_list<DurationFlagRange> flags) {
  for (const DurationFlagRange& flag : flags) {
    if (flag.value >= flag.min && flag.value <= flag.max) continue;
    if (flag.max == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag.name, " must be at least ",
                                                     absl::FormatDuration(flag.min), ", not ",
                                                     absl::FormatDuration(flag.value)));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag.name, " must be ", absl::FormatDuration(flag.min), " to ",
                     absl::FormatDuration(flag.max), ", not ", absl::FormatDuration(flag.value)));
  }
  return absl::OkStatus();
}

}  // namespace hotpath::app
