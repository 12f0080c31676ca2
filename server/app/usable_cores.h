// How many cores this process can run on at once, for the default sizes of its thread pools.
//
// std::thread::hardware_concurrency() counts the machine's CPUs. A container limited to 2 CPUs
// on a 64-core host would start 64 polling threads, which only take turns on its 2 CPUs' worth
// of time: more wake-ups and hand-offs per call, and a group that spends its quota early in a
// period waits out the rest of it. With the threads competing for a share of two cores rather
// than for the cores, one completion queue per usable core kept hotpathd's p99 at 6 ms where
// one per machine core let it reach 24 (bench/NOTES.md, thirty-first session).
#pragma once

#include <optional>

#include "absl/strings/string_view.h"

namespace hotpath::app {

// The CPUs the affinity mask allows, capped by the CPU quota of the process's cgroup and every
// cgroup above it (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up; at
// least 1. cgroup file systems are looked for where systemd and container runtimes mount them:
// /sys/fs/cgroup (v2, or a v1 controller's folder under it).
int UsableCores();

// The cores a v2 `cpu.max` ("200000 100000": quota and period in us) allows; nullopt for "max"
// (no limit) or text that does not parse.
std::optional<double> CoresOfCpuMax(absl::string_view text);

// The cores a v1 quota and period (the contents of `cpu.cfs_quota_us`, `cpu.cfs_period_us`)
// allow; nullopt for a quota of -1 (no limit) or text that does not parse.
std::optional<double> CoresOfCfsQuota(absl::string_view quota, absl::string_view period);

}  // namespace hotpath::app
