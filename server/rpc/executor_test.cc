#include "server/rpc/executor.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

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

// What a caller whose work the full queue refused is answered: RESOURCE_EXHAUSTED that says when
// to ask again, as the in-flight cap's refusal does (a google.rpc.RetryInfo of 1 s on the wire).
TEST(ExecutorTest, ARefusalSaysWhenToAskAgain) {
  Executor executor(1, 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(executor.Submit([released] { released.wait(); }));
  absl::Status refused;
  for (int i = 0; i < 3 && refused.ok(); ++i) refused = executor.Schedule([] {});
  release.set_value();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  const grpc::Status on_the_wire = ToGrpcStatus(refused);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(on_the_wire.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  executor.Stop();
}

}  // namespace
}  // namespace hotpath::rpc
