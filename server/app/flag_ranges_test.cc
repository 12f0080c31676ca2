#include "server/app/flag_ranges.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hotpath::app {
namespace {

using ::testing::HasSubstr;

TEST(FlagRangesTest, ValuesInsideTheirRangesPass) {
  EXPECT_TRUE(CheckFlagRanges({{"a", 0, 0}, {"b", 19, 0, 19}, {"c", 1 << 30, 1}}).ok());
  EXPECT_TRUE(CheckFlagRanges(std::initializer_list<FlagRange>{}).ok());
}

TEST(FlagRangesTest, TheFirstValueOutsideItsRangeIsNamedWithTheRange) {
  const absl::Status below = CheckFlagRanges({{"ok", 1, 0}, {"pool_max", -1, 1, 10000}});
  EXPECT_EQ(below.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(below.message(), "--pool_max must be 1 to 10000, not -1");
  EXPECT_EQ(CheckFlagRanges({{"item_cache_size", -1, 1}}).message(),
            "--item_cache_size must be at least 1, not -1");
  EXPECT_THAT(CheckFlagRanges({{"worker_nice", 20, 0, 19}, {"x", -5, 0}}).message(),
              HasSubstr("--worker_nice must be 0 to 19, not 20"));
  // A bound past int's range is still the flag's own, and named; only the type's is left out.
  EXPECT_EQ(CheckFlagRanges({{"first", 0, 1, 1'000'000'000'000}}).message(),
            "--first must be 1 to 1000000000000, not 0");
  EXPECT_EQ(
      CheckFlagRanges({{"requests", -1, 0, std::numeric_limits<std::int64_t>::max()}}).message(),
      "--requests must be at least 0, not -1");
}

TEST(FlagRangesTest, DurationsAreNamedInAbslNotation) {
  EXPECT_TRUE(CheckFlagRanges({{"ttl", absl::Seconds(1), absl::ZeroDuration()}}).ok());
  EXPECT_EQ(CheckFlagRanges({{"ttl", absl::Seconds(-1), absl::Milliseconds(1)}}).message(),
            "--ttl must be at least 1ms, not -1s");
  EXPECT_EQ(
      CheckFlagRanges({{"interval", absl::ZeroDuration(), absl::Milliseconds(10), absl::Hours(1)}})
          .message(),
      "--interval must be 10ms to 1h, not 0");
}

}  // namespace
}  // namespace hotpath::app
