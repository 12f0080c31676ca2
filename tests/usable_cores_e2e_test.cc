// README "How a call runs": hotpathd sizes its polling threads (one per usable core) and its HTTP
// event loops (two per usable core) by the CPUs it may use, not the machine's: the affinity mask,
// and the CPU quota of a real cgroup (v1's cpu controller, or v2's cpu.max) it is started in.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

namespace fs = std::filesystem;

// The number of each thread name of process pid.
std::map<std::string, int> ThreadNames(pid_t pid) {
  std::map<std::string, int> names;
  for (const auto& task : fs::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    std::ifstream in(task.path() / "comm");
    std::string name;
    std::getline(in, name);
    ++names[name];
  }
  return names;
}

bool WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return !out.fail();
}

// A cgroup with a CPU quota of one core, made under this process's own cgroup of the cpu
// controller (v1) or the v2 hierarchy, and removed afterwards. Enter() moves this process into it
// (so that a child started next starts there), Leave() moves it back; a child still inside when
// it is removed must have ended. error() says why it could not be made (not root, no cpu
// controller).
class OneCpuCgroup final {
 public:
  OneCpuCgroup() {
    const std::string name = absl::StrCat("hotpath-test-", getpid());
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
      const std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
      if (fields.size() != 3) continue;
      if (fields[0] == "0" && fields[1].empty()) {
        v2_home_ = fs::path("/sys/fs/cgroup") / fs::path(fields[2]).relative_path();
        continue;
      }
      const std::vector<std::string> controllers = absl::StrSplit(fields[1], ',');
      if (std::find(controllers.begin(), controllers.end(), "cpu") == controllers.end()) continue;
      home_ = fs::path("/sys/fs/cgroup") / fields[1] / fs::path(fields[2]).relative_path();
      dir_ = home_ / name;
      std::error_code error;
      if (fs::create_directory(dir_, error) && WriteFile(dir_ / "cpu.cfs_period_us", "100000") &&
          WriteFile(dir_ / "cpu.cfs_quota_us", "100000")) {
        return;
      }
      error_ = absl::StrCat("cannot make ", dir_.string(), " with a quota: ", error.message());
      Remove();
    }
    if (home_.empty() && !v2_home_.empty()) {
      // v2: a sibling of this process's cgroup (a cgroup with processes may not have children
      // that use controllers), with cpu enabled for the parent's children.
      home_ = v2_home_;
      dir_ = v2_home_.parent_path() / name;
      std::error_code error;
      WriteFile(v2_home_.parent_path() / "cgroup.subtree_control", "+cpu");
      if (fs::create_directory(dir_, error) && WriteFile(dir_ / "cpu.max", "100000 100000")) return;
      error_ = absl::StrCat("cannot make ", dir_.string(), " with cpu.max: ", error.message());
      Remove();
    }
    if (error_.empty()) error_ = "no cgroup of the cpu controller";
  }
  ~OneCpuCgroup() {
    Leave();
    Remove();
  }
  const std::string& error() const { return error_; }
  bool Enter() { return WriteFile(dir_ / "cgroup.procs", absl::StrCat(getpid())); }
  void Leave() {
    if (!dir_.empty()) WriteFile(home_ / "cgroup.procs", absl::StrCat(getpid()));
  }

 private:
  void Remove() {
    if (dir_.empty()) return;
    rmdir(dir_.c_str());
    dir_.clear();
  }
  fs::path home_;     // this process's cgroup, where it goes back
  fs::path v2_home_;  // its v2 cgroup, if the hierarchy is mounted
  fs::path dir_;      // the cgroup made
  std::string error_;
};

class UsableCoresTest : public ::testing::Test {
 protected:
  // hotpathd's binary with the default thread counts, as a child of this process (which it
  // inherits the affinity mask and cgroup of).
  std::unique_ptr<HotpathdProcess> Start(const std::string& log) {
    return std::make_unique<HotpathdProcess>(
        HOTPATH_HOTPATHD_BINARY, database_.url(),
        std::vector<std::string>{"--cq_threads=0", "--http_threads=0"}, ::testing::TempDir() + log);
  }

  TestDatabase database_;
};

TEST_F(UsableCoresTest, OneAllowedCpuMakesOnePollingThreadAndTwoEventLoops) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);  // the child inherits it
  std::unique_ptr<HotpathdProcess> hotpathd = Start("usable_cores_affinity.log");
  ASSERT_EQ(sched_setaffinity(0, sizeof(all), &all), 0);
  ASSERT_TRUE(hotpathd->WaitReady(absl::Seconds(20)));
  const std::map<std::string, int> names = ThreadNames(hotpathd->process().pid());
  EXPECT_EQ(names.at("hotpath-cq"), 1);
  EXPECT_EQ(names.at("hotpath-http"), 2);
}

TEST_F(UsableCoresTest, AOneCpuQuotaMakesOnePollingThreadAndTwoEventLoops) {
  OneCpuCgroup cgroup;
  if (!cgroup.error().empty()) GTEST_SKIP() << cgroup.error();
  ASSERT_TRUE(cgroup.Enter());
  std::unique_ptr<HotpathdProcess> hotpathd = Start("usable_cores_quota.log");
  cgroup.Leave();  // the child stays in it
  ASSERT_TRUE(hotpathd->WaitReady(absl::Seconds(20)));
  const std::map<std::string, int> names = ThreadNames(hotpathd->process().pid());
  EXPECT_EQ(names.at("hotpath-cq"), 1);
  EXPECT_EQ(names.at("hotpath-http"), 2);
  hotpathd.reset();  // ended before the cgroup is removed
}

}  // namespace
}  // namespace hotpath::testing
