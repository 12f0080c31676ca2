#include "server/app/usable_cores.h"

#include <sched.h>

#include "gtest/gtest.h"

namespace hotpath::app {
namespace {

TEST(CoresOfCpuMax, ReadsQuotaOverPeriodAndNoLimitAsNone) {
  EXPECT_EQ(CoresOfCpuMax("200000 100000"), 2.0);
  EXPECT_EQ(CoresOfCpuMax("150000 100000\n"), 1.5);
  EXPECT_EQ(CoresOfCpuMax("max 100000"), std::nullopt);
  EXPECT_EQ(CoresOfCpuMax(""), std::nullopt);
  EXPECT_EQ(CoresOfCpuMax("100000"), std::nullopt);
  EXPECT_EQ(CoresOfCpuMax("0 100000"), std::nullopt);
  EXPECT_EQ(CoresOfCpuMax("100000 0"), std::nullopt);
}

TEST(CoresOfCfsQuota, ReadsQuotaOverPeriodAndMinusOneAsNone) {
  EXPECT_EQ(CoresOfCfsQuota("50000", "100000"), 0.5);
  EXPECT_EQ(CoresOfCfsQuota("-1", "100000"), std::nullopt);
  EXPECT_EQ(CoresOfCfsQuota("x", "100000"), std::nullopt);
}

// The affinity mask is the calling thread's: the test narrows its own and puts it back.
TEST(UsableCores, FollowsTheAffinityMask) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  EXPECT_GE(UsableCores(), 1);
  EXPECT_LE(UsableCores(), CPU_COUNT(&all));
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  EXPECT_EQ(UsableCores(), 1);
  ASSERT_EQ(sched_setaffinity(0, sizeof(all), &all), 0);
}

}  // namespace
}  // namespace hotpath::app
