// Every flag of hotpathd and hotpath-gateway falls back to an environment variable named in its
// help, as README promises (containers are configured by environment), and the variable is
// honoured.
#include <sys/wait.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
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

// Every variable of a flag that is not a string, set to what no such flag takes, stops the binary
// at once, naming it: a variable that did not parse used to leave its flag at the default without
// a word (HOTPATH_CACHE_ENABLED=flase kept the cache on). A flag added later is checked too.
void ExpectEveryVariableThatDoesNotParseFailsTheStart(const std::string& binary,
                                                      const std::string& main_file,
                                                      const std::string& command) {
  int checked = 0;
  for (const std::string& flag : FlagHelps(binary, main_file)) {
    const std::size_t env = flag.find("(env ");
    if (env == std::string::npos || absl::StrContains(flag, "; default: \"")) continue;
    const std::string name = flag.substr(env + 5, flag.find_first_of(");", env) - env - 5);
    if (name == "DATABASE_URL") continue;
    ++checked;
    int rc = -1;
    const std::string output = RunCommand(absl::StrCat(name, "=bogus! ", command, " 2>&1"), &rc);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << name << ": " << rc;
    EXPECT_THAT(output, ::testing::HasSubstr(absl::StrCat(name, " is \"bogus!\", not "))) << name;
  }
  EXPECT_GT(checked, 10) << binary;
}

TEST(FlagsTest, EveryHotpathdVariableThatDoesNotParseFailsTheStartByName) {
  ExpectEveryVariableThatDoesNotParseFailsTheStart(HOTPATH_HOTPATHD_BINARY, "main",
                                                   "timeout 10 " HOTPATH_HOTPATHD_BINARY
                                                   " --database_url=postgresql://127.0.0.1:1/none");
}

TEST(FlagsTest, EveryGatewayVariableThatDoesNotParseFailsTheStartByName) {
  ExpectEveryVariableThatDoesNotParseFailsTheStart(HOTPATH_GATEWAY_BINARY, "gateway_main",
                                                   "timeout 10 " HOTPATH_GATEWAY_BINARY
                                                   " --upstream=127.0.0.1:1 --http_port=0");
}

TEST(FlagsTest, AVariableThatDoesNotParseFailsTheStartEvenWhenItsFlagIsGiven) {
  int rc = -1;
  const std::string output =
      RunCommand("HOTPATH_POOL_MAX=abc timeout 10 " HOTPATH_HOTPATHD_BINARY
                 " --pool_max=4 --database_url=postgresql://127.0.0.1:1/none 2>&1",
                 &rc);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << rc;
  EXPECT_THAT(output, ::testing::HasSubstr("HOTPATH_POOL_MAX is \"abc\", not a whole number"));
}

TEST(FlagsTest, AnEmptyVariableCountsAsUnset) {
  for (const std::string& flag :
       FlagHelps("HOTPATH_POOL_MAX= HOTPATH_CACHE_ENABLED= " HOTPATH_HOTPATHD_BINARY, "main")) {
    if (absl::StartsWith(flag, "pool_max ")) {
      EXPECT_THAT(flag, ::testing::EndsWith("default: 16;"));
    }
    if (absl::StartsWith(flag, "cache_enabled ")) {
      EXPECT_THAT(flag, ::testing::EndsWith("default: true;"));
    }
  }
  int rc = -1;
  const std::string output = RunCommand("HOTPATH_POOL_MAX= timeout 10 " HOTPATH_HOTPATHD_BINARY
                                        " --database_url=postgresql://127.0.0.1:1/none 2>&1",
                                        &rc);
  EXPECT_THAT(output, ::testing::Not(::testing::HasSubstr("HOTPATH_POOL_MAX")));
}

TEST(FlagsTest, AVariableThatDoesNotParseSaysWhatItShouldBe) {
  for (const auto& [variable, why] : std::vector<std::pair<std::string, std::string>>{
           {"HOTPATH_CACHE_ENABLED=flase", "HOTPATH_CACHE_ENABLED is \"flase\", not true or false"},
           {"HOTPATH_ITEM_CACHE_TTL=5", "HOTPATH_ITEM_CACHE_TTL is \"5\", not a duration"},
           {"HOTPATH_POOL_MAX=16x", "HOTPATH_POOL_MAX is \"16x\", not a whole number"},
           {"HOTPATH_ITEM_CACHE_REFRESH_AT=half", "not a number"}}) {
    SCOPED_TRACE(variable);
    int rc = -1;
    const std::string output =
        RunCommand(absl::StrCat(variable, " timeout 10 " HOTPATH_HOTPATHD_BINARY
                                          " --database_url=postgresql://127.0.0.1:1/none 2>&1"),
                   &rc);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << variable << ": " << rc;
    EXPECT_THAT(output, ::testing::HasSubstr(why)) << variable;
  }
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

// Bounded: a gateway that accepted a value would serve on.
constexpr char kGateway[] =
    "timeout 10 " HOTPATH_GATEWAY_BINARY " --upstream=127.0.0.1:1 --http_port=0";

TEST(FlagsTest, AGatewayConnectTimeoutThatIsNoTimeFailsTheStartAndSaysWhy) {
  ExpectTheStartRefused("upstream_connect_timeout_ms", {"0", "-5"},
                        "--upstream_connect_timeout_ms must be at least 1, not ", kGateway);
}

// The names of the flags of the binary's main file whose default, as its help prints it, passes
// `kind`.
std::vector<std::string> FlagsWhoseDefault(const std::string& binary, const std::string& main_file,
                                           bool (*kind)(const std::string& value)) {
  std::vector<std::string> names;
  for (const std::string& flag : FlagHelps(binary, main_file)) {
    std::string value = flag.substr(flag.rfind("; default: ") + 11);
    value = value.substr(0, value.find(';'));
    if (!value.empty() && kind(value)) names.push_back(flag.substr(0, flag.find(' ')));
  }
  return names;
}

bool IsWholeNumber(const std::string& value) {
  return value.find_first_not_of("-0123456789") == std::string::npos;
}

// 1s, 250ms, 1h30m: a digit first, a unit last.
bool IsDuration(const std::string& value) {
  return absl::ascii_isdigit(value.front()) && absl::ascii_isalpha(value.back());
}

// No whole-number flag takes a negative value (sizes, counts, ports, times), and none is cast or
// clamped into one: each refuses it by name. A negative size cast to std::size_t was no bound at
// all (--item_cache_size=-1 a cache without a limit, the gateway's --max_body_bytes=-1 bodies
// without one) and --pool_max=-1 an abort.
TEST(FlagsTest, EveryWholeNumberFlagRefusesANegativeValueByName) {
  const std::vector<std::string> hotpathd =
      FlagsWhoseDefault(HOTPATH_HOTPATHD_BINARY, "main", IsWholeNumber);
  EXPECT_GT(hotpathd.size(), 25u);
  for (const std::string& flag : hotpathd) {
    ExpectTheStartRefused(flag, {"-1"}, absl::StrCat("--", flag, " must be "));
  }
  const std::vector<std::string> gateway =
      FlagsWhoseDefault(HOTPATH_GATEWAY_BINARY, "gateway_main", IsWholeNumber);
  EXPECT_GT(gateway.size(), 8u);
  for (const std::string& flag : gateway) {
    ExpectTheStartRefused(flag, {"-1"}, absl::StrCat("--", flag, " must be "), kGateway);
  }
}

// No duration flag takes a negative one either. --change_feed_check_interval=-1s was a wait that
// not even SIGTERM ended, and 0 a loop of round trips to PostgreSQL.
TEST(FlagsTest, EveryDurationFlagRefusesANegativeValueByName) {
  const std::vector<std::string> durations =
      FlagsWhoseDefault(HOTPATH_HOTPATHD_BINARY, "main", IsDuration);
  EXPECT_GT(durations.size(), 8u);
  for (const std::string& flag : durations) {
    ExpectTheStartRefused(flag, {"-1s"}, absl::StrCat("--", flag, " must be "));
  }
  ExpectTheStartRefused("change_feed_check_interval", {"0", "2h"},
                        "--change_feed_check_interval must be 10ms to 1h");
  ExpectTheStartRefused("item_cache_ttl", {"0"}, "--item_cache_ttl must be at least 1ms, not 0");
}

TEST(FlagsTest, SizesAndCountsOutsideTheirRangesFailTheStartAndSayWhy) {
  ExpectTheStartRefused("pool_max", {"0", "10001"}, "--pool_max must be 1 to 10000");
  ExpectTheStartRefused("worker_nice", {"20"}, "--worker_nice must be 0 to 19, not 20");
  ExpectTheStartRefused("max_message_bytes", {"65535"},
                        "--max_message_bytes must be at least 65536, not 65535");
  ExpectTheStartRefused("grpc_port", {"65536"}, "--grpc_port must be 0 to 65535");
  ExpectTheStartRefused("item_cache_size", {"0"}, "--item_cache_size must be at least 1");
  ExpectTheStartRefused("max_body_bytes", {"0"}, "--max_body_bytes must be at least 1", kGateway);
}

// The load generator too, before it connects anywhere (it exits 2 on a usage error): a negative
// count of calls in flight, connections or threads used to be read as one.
TEST(FlagsTest, TheLoadGeneratorRefusesCountsOutsideTheirRangesAndSaysWhy) {
  const std::string bench = HOTPATH_BENCH_BINARY " --addr=127.0.0.1:1 --duration=1s";
  for (const auto& [flag, why] : std::vector<std::pair<std::string, std::string>>{
           {"--concurrency=0", "--concurrency must be at least 1, not 0"},
           {"--connections=-1", "--connections must be 1 to 1024, not -1"},
           {"--threads=0", "--threads must be 1 to 1024, not 0"},
           {"--ids=0", "--ids must be at least 1, not 0"},
           {"--requests=-1", "--requests must be at least 0, not -1"},
           {"--rate=-5", "--rate must be 0 (closed loop) or a positive number"},
           {"--rate=nan", "--rate must be 0 (closed loop) or a positive number"}}) {
    int rc = -1;
    const std::string output = RunCommand(absl::StrCat(bench, " ", flag, " 2>&1"), &rc);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << flag << ": " << rc;
    EXPECT_THAT(output, ::testing::HasSubstr(why)) << flag;
  }
}

TEST(FlagsTest, TheCliRefusesNumbersItUsesItselfOutsideTheirRanges) {
  // --items and --first pick demo items without asking the server (an --items past the int64
  // range from --first used to print nothing); a deadline of no time fails every call.
  const std::string cli = HOTPATH_CLI_BINARY " --addr=127.0.0.1:1";
  for (const auto& [flags, why] : std::vector<std::pair<std::string, std::string>>{
           {"--items=-1 demo-items", "--items must be 0 to 1000000000, not -1"},
           {"--first=0 demo-items", "--first must be 1 to 1000000000000, not 0"},
           {"--first=9223372036854775800 --items=100 demo-items", "--first must be 1 to"},
           {"--deadline=-1s get 1", "--deadline must be at least 1ms, not -1s"},
           {"--deadline=0s get 1", "--deadline must be at least 1ms, not 0"}}) {
    int rc = -1;
    const std::string output = RunCommand(absl::StrCat(cli, " ", flags, " 2>&1"), &rc);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << flags << ": " << rc;
    EXPECT_THAT(output, ::testing::HasSubstr(why)) << flags;
  }
  int rc = -1;
  const std::string lines =
      RunCommand(HOTPATH_CLI_BINARY " --first=999999999999 --items=2 demo-items", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_THAT(lines, ::testing::HasSubstr("\"sku\":\"SKU-1000000000000\""));
}

}  // namespace
}  // namespace hotpath::testing
