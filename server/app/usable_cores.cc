#include "server/app/usable_cores.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hotpath::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

// The first line of a small file (the cgroup files are one line), or nullopt if it cannot be read.
std::optional<std::string> FirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<double> Cores(std::int64_t quota_us, std::int64_t period_us) {
  if (quota_us <= 0 || period_us <= 0) return std::nullopt;
  return static_cast<double>(quota_us) / static_cast<double>(period_us);
}

// Keeps in lowest the lower of it and cores (nullopt: no limit).
void KeepLower(std::optional<double>& lowest, std::optional<double> cores) {
  if (cores && (!lowest || *cores < *lowest)) lowest = cores;
}

// The quota of the cgroup in dir, in cores: v2's cpu.max, v1's cfs files.
std::optional<double> CpuMaxAt(const fs::path& dir) {
  const std::optional<std::string> text = FirstLine(dir / "cpu.max");
  return text ? CoresOfCpuMax(*text) : std::nullopt;
}
std::optional<double> CfsQuotaAt(const fs::path& dir) {
  const std::optional<std::string> quota = FirstLine(dir / "cpu.cfs_quota_us");
  const std::optional<std::string> period = FirstLine(dir / "cpu.cfs_period_us");
  return quota && period ? CoresOfCfsQuota(*quota, *period) : std::nullopt;
}

// The lowest quota, in cores, on the way from mount/cgroup up to mount: a cgroup's limit applies
// to everything under it. Folders that are not there (a runtime that mounts only the container's
// own subtree at the root) are passed over.
std::optional<double> LowestQuota(const fs::path& mount, absl::string_view cgroup,
                                  std::optional<double> (*quota_at)(const fs::path&)) {
  std::optional<double> lowest;
  fs::path dir = mount / fs::path(std::string(absl::StripPrefix(cgroup, "/"))).relative_path();
  for (;;) {
    KeepLower(lowest, quota_at(dir));
    if (dir == mount || !dir.has_relative_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return lowest;
}

// The CPU quota of this process's cgroups, v2 or v1, in cores; nullopt when there is none.
std::optional<double> CgroupQuota() {
  std::ifstream in("/proc/self/cgroup");
  std::optional<double> lowest;
  for (std::string line; std::getline(in, line);) {
    // "hierarchy-id:controllers:path"; v2's line is "0::path".
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      for (const char* mount : {kCgroupRoot, "/sys/fs/cgroup/unified"}) {
        KeepLower(lowest, LowestQuota(mount, fields[2], CpuMaxAt));
      }
      continue;
    }
    const std::vector<absl::string_view> controllers = absl::StrSplit(fields[1], ',');
    if (std::find(controllers.begin(), controllers.end(), "cpu") == controllers.end()) continue;
    // Mounted as the controller list ("cpu,cpuacct"), often with a "cpu" link beside it.
    for (const fs::path& mount :
         {fs::path(kCgroupRoot) / std::string(fields[1]), fs::path(kCgroupRoot) / "cpu"}) {
      KeepLower(lowest, LowestQuota(mount, fields[2], CfsQuotaAt));
    }
  }
  return lowest;
}

}  // namespace

std::optional<double> CoresOfCpuMax(absl::string_view text) {
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  std::int64_t quota = 0, period = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[0], &quota) ||
      !absl::SimpleAtoi(fields[1], &period)) {
    return std::nullopt;  // "max 100000" included: no limit
  }
  return Cores(quota, period);
}

std::optional<double> CoresOfCfsQuota(absl::string_view quota, absl::string_view period) {
  std::int64_t quota_us = 0, period_us = 0;
  if (!absl::SimpleAtoi(quota, &quota_us) || !absl::SimpleAtoi(period, &period_us)) {
    return std::nullopt;
  }
  return Cores(quota_us, period_us);  // -1: no limit
}

int UsableCores() {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
    cores = std::max(1, CPU_COUNT(&allowed));
  }
  if (const std::optional<double> quota = CgroupQuota()) {
    cores = std::min(cores, std::max(1, static_cast<int>(std::ceil(*quota - 1e-9))));
  }
  return cores;
}

}  // namespace hotpath::app
