// Every flag of hotpathd and hotpath-gateway falls back to an environment variable named in its
// help, as README promises (containers are configured by environment), and the variable is
// honoured.
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

// The help of each flag the binary's main file defines, one entry per flag.
std::vector<std::string> FlagHelps(const std::string& binary, const std::string& main_file) {
  const std::string help = RunCommand(binary + " --helpon=" + main_file + " 2>&1");
  std::vector<std::string> flags;
  for (absl::string_view entry : absl::StrSplit(help, "\n    --")) {
    // Help is wrapped at 80 columns: one space for each run of blanks.
    std::string flag;
    for (const char c : entry) {
      const bool blank = c == ' ' || c == '\n';
      if (!blank || (!flag.empty() && flag.back() != ' ')) flag.push_back(blank ? ' ' : c);
    }
    if (absl::StrContains(flag, "; default: ")) flags.push_back(std::move(flag));
  }
  return flags;
}

void ExpectEveryFlagNamesItsVariable(const std::string& binary, const std::string& main_file) {
  const std::vector<std::string> flags = FlagHelps(binary, main_file);
  EXPECT_GT(flags.size(), 10u) << binary;
  for (const std::string& flag : flags) {
    EXPECT_TRUE(absl::StrContains(flag, "(env HOTPATH_") ||
                absl::StrContains(flag, "(env DATABASE_URL"))
        << binary << ": --" << flag;
  }
}

TEST(FlagsTest, EveryHotpathdFlagFallsBackToAnEnvironmentVariable) {
  ExpectEveryFlagNamesItsVariable(HOTPATH_HOTPATHD_BINARY, "main");
}

TEST(FlagsTest, EveryGatewayFlagFallsBackToAnEnvironmentVariable) {
  ExpectEveryFlagNamesItsVariable(HOTPATH_GATEWAY_BINARY, "gateway_main");
}

// README's table of flags gives --gateway_answer_memo's default as a number (the memo's size,
// chosen by measurement in bench/NOTES.md); it is the one hotpathd starts with.
TEST(FlagsTest, ReadmeStatesTheAnswerMemosDefaultAsHotpathdHasIt) {
  std::string readme_default;
  for (absl::string_view line : absl::StrSplit(ReadFile(HOTPATH_SOURCE_DIR "/README.md"), '\n')) {
    if (absl::StartsWith(line, "| `--gateway_answer_memo` |")) {
      const std::vector<absl::string_view> cells = absl::StrSplit(line, " | ");
      ASSERT_GE(cells.size(), 3u) << line;
      readme_default = std::string(cells[2].substr(0, cells[2].find(':')));
    }
  }
  ASSERT_FALSE(readme_default.empty()) << "no README row for --gateway_answer_memo";
  bool found = false;
  for (const std::string& flag : FlagHelps(HOTPATH_HOTPATHD_BINARY, "main")) {
    if (!absl::StartsWith(flag, "gateway_answer_memo ")) continue;
    found = true;
    EXPECT_THAT(flag, ::testing::HasSubstr(absl::StrCat("default: ", readme_default, ";")));
  }
  EXPECT_TRUE(found);
}

TEST(FlagsTest, TheVariablesAreHonouredForEveryKindOfFlag) {
  const std::string help = RunCommand(
      "HOTPATH_ITEM_CACHE_TTL=7s HOTPATH_LIST_CACHE_SIZE=9 HOTPATH_MIGRATE=false "
      "HOTPATH_PAGE_TOKEN_SECRET=s3 HOTPATH_ITEM_CACHE_REFRESH_AT=0.5 " HOTPATH_HOTPATHD_BINARY
      " --helpon=main 2>&1");
  EXPECT_THAT(help, ::testing::HasSubstr("default: 7s;"));
  EXPECT_THAT(help, ::testing::HasSubstr("default: 9;"));
  EXPECT_THAT(help, ::testing::HasSubstr("default: false;"));
  EXPECT_THAT(help, ::testing::HasSubstr("default: \"s3\";"));
  EXPECT_THAT(help, ::testing::HasSubstr("default: 0.5;"));
}

// command (hotpathd on a database it never reaches, unless told) started with --flag=value for
// each value exits 1 at once, saying why.
void ExpectTheStartRefused(const std::string& flag, const std::vector<std::string>& values,
                           const std::string& why,
                           const std::string& command = HOTPATH_HOTPATHD_BINARY
                           " --database_url=postgresql://127.0.0.1:1/none") {
  for (const std::string& value : values) {
    int rc = -1;
    const std::string output =
        RunCommand(absl::StrCat(command, " --", flag, "=", value, " 2>&1"), &rc);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << value << ": " << rc;
    EXPECT_THAT(output, ::testing::HasSubstr(why)) << value;
  }
}

TEST(FlagsTest, AFractionOutsideItsRangeFailsTheStartAndSaysWhy) {
  ExpectTheStartRefused("item_cache_refresh_at", {"1", "1.5", "-0.1", "nan"},
                        "--item_cache_refresh_at must be at least 0 and below 1");
}

TEST(FlagsTest, AMigrationLockWaitWithNoBoundFailsTheStartAndSaysWhy) {
  ExpectTheStartRefused("migrate_lock_timeout", {"0", "-1s"},
                        "--migrate_lock_timeout must be above 0");
}

TEST(FlagsTest, AGatewayConnectTimeoutThatIsNoTimeFailsTheStartAndSaysWhy) {
  ExpectTheStartRefused(
      "upstream_connect_timeout_ms", {"0", "-5"}, "--upstream_connect_timeout_ms must be positive",
      // Bounded: a gateway that accepted the value would serve on.
      "timeout 10 " HOTPATH_GATEWAY_BINARY " --upstream=127.0.0.1:1 --http_port=0");
}

}  // namespace
}  // namespace hotpath::testing
