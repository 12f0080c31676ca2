#include "server/rpc/executor.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>

namespace hotpath::rpc {
namespace {

int NiceOfThisThread() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

TEST(ExecutorTest, WorkersRunAtTheAddedNiceness) {
  const int caller = NiceOfThisThread();
  Executor executor(2, 8, 5);
  std::promise<int> seen;
  ASSERT_TRUE(executor.Submit([&seen] { seen.set_value(NiceOfThisThread()); }));
  EXPECT_EQ(seen.get_future().get(), std::min(caller + 5, 19));
  EXPECT_EQ(NiceOfThisThread(), caller);  // the caller's own priority is untouched
}

TEST(ExecutorTest, RefusesBeyondTheQueueBoundAndRunsWhatItAcceptedBeforeStopping) {
  Executor executor(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(executor.Submit([&started, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // the only worker is busy from here on
  std::atomic<int> ran{0};
  EXPECT_TRUE(executor.Submit([&ran] { ++ran; }));
  EXPECT_TRUE(executor.Submit([&ran] { ++ran; }));
  EXPECT_FALSE(executor.Submit([&ran] { ++ran; }));  // two queued: the bound
  EXPECT_EQ(executor.queued(), 2u);
  release.set_value();
  executor.Stop();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_FALSE(executor.Submit([] {}));  // stopped
}

}  // namespace
}  // namespace hotpath::rpc
