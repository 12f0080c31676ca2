#include "server/rpc/cancellation.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace hotpath::rpc {
namespace {

// A cancellation whose action records the thread that ran it.
std::shared_ptr<Cancellation> Recording(std::mutex& mu, std::set<std::thread::id>& threads,
                                        std::atomic<int>& ran) {
  auto cancellation = std::make_shared<Cancellation>();
  cancellation->OnCancel([&mu, &threads, &ran] {
    std::lock_guard lock(mu);
    threads.insert(std::this_thread::get_id());
    ran.fetch_add(1);
  });
  return cancellation;
}

// Keeps the Canceller's one thread busy until the promise returned is set: what is submitted
// meanwhile waits in its queue.
std::promise<void> HoldTheCancellersThread() {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto started = std::make_shared<std::promise<void>>();
  auto blocker = std::make_shared<Cancellation>();
  blocker->OnCancel([started, released] {
    started->set_value();
    released.wait();
  });
  EXPECT_TRUE(Canceller::Instance().Submit(blocker));
  started->get_future().wait();
  return release;
}

TEST(CancellerTest, AStormOfDeparturesRunsOnOneThreadNotOneEach) {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::atomic<int> ran{0};
  constexpr int kDepartures = 5000;
  int queued = 0;
  for (int i = 0; i < kDepartures; ++i) {
    if (Canceller::Instance().Submit(Recording(mu, threads, ran))) ++queued;
    if (i % 500 == 0) std::this_thread::yield();
  }
  while (ran.load() < queued) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::lock_guard lock(mu);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
}

TEST(CancellerTest, BeyondTheQueueBoundCancellationsAreDroppedAndCounted) {
  std::promise<void> release = HoldTheCancellersThread();
  const std::int64_t dropped_before = Canceller::Instance().dropped();
  std::vector<std::shared_ptr<Cancellation>> waiting;
  int accepted = 0;
  for (std::size_t i = 0; i < Canceller::kMaxQueued + 10; ++i) {
    waiting.push_back(std::make_shared<Cancellation>());
    if (Canceller::Instance().Submit(waiting.back())) ++accepted;
  }
  EXPECT_EQ(accepted, static_cast<int>(Canceller::kMaxQueued));
  EXPECT_EQ(Canceller::Instance().dropped() - dropped_before, 10);
  release.set_value();
  // The accepted ones all run once the thread is free.
  while (!waiting[Canceller::kMaxQueued - 1]->cancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(waiting.back()->cancelled());
}

// A departure is seen at once by work not yet started, even one the full queue drops: its caller
// is gone, and only the cancelling of what already runs waits for the Canceller's thread.
TEST(CancellerTest, ADepartureIsSeenAtOnceEvenWhenItsCancellingIsDropped) {
  std::promise<void> release = HoldTheCancellersThread();
  std::vector<std::shared_ptr<Cancellation>> waiting;
  for (std::size_t i = 0; i < Canceller::kMaxQueued; ++i) {
    waiting.push_back(std::make_shared<Cancellation>());
    Canceller::Instance().Submit(waiting.back());
  }
  auto departed = std::make_shared<Cancellation>();
  std::atomic<bool> ran{false};
  ASSERT_TRUE(departed->OnCancel([&ran] { ran = true; }));
  const std::int64_t dropped_before = Canceller::Instance().dropped();
  CancelSoon(departed);
  EXPECT_EQ(Canceller::Instance().dropped() - dropped_before, 1);
  EXPECT_TRUE(departed->cancelled());
  EXPECT_FALSE(departed->OnCancel([] {})) << "work that had not started would start";
  release.set_value();
  while (!waiting.back()->cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_FALSE(ran) << "the action runs only on the Canceller's thread, which dropped it";
}

}  // namespace
}  // namespace hotpath::rpc
