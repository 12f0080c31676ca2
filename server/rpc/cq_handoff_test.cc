#include "server/rpc/cq_handoff.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace hotpath::rpc {
namespace {

// A completion queue polled as the server polls its own (PollCompletionQueue), on a thread of
// its own; every tag a CompletionHandler*.
class Polled final {
 public:
  Polled()
      : handoff_(std::make_shared<CqHandoff>(&cq_)), poller_([this] {
          poller_id_ = std::this_thread::get_id();
          started_.store(true);
          void* tag;
          bool ok;
          while (cq_.Next(&tag, &ok)) static_cast<CompletionHandler*>(tag)->OnComplete(ok);
        }) {
    while (!started_.load()) std::this_thread::yield();
  }
  ~Polled() {
    cq_.Shutdown();
    poller_.join();
  }

  std::shared_ptr<CqHandoff> handoff() const { return handoff_; }
  std::thread::id poller_id() const { return poller_id_; }

 private:
  grpc::CompletionQueue cq_;            // the queue polled
  std::shared_ptr<CqHandoff> handoff_;  // its handoff (destroyed after the queue is drained)
  std::thread::id poller_id_;           // the polling thread's id, set before started_
  std::atomic<bool> started_{false};    // the polling thread is running
  std::thread poller_;                  // polls cq_ until it is shut down and drained
};

TEST(CqHandoffTest, TheWorkOfABatchRunsOnThePollingThreadInOrder) {
  Polled polled;
  std::vector<int> ran;
  std::atomic<bool> wrong_thread{false};
  std::atomic<int> done{0};
  {
    app::HandoffBatch batch;
    for (int i = 0; i < 5; ++i) {
      app::HandoffBatch::Add(polled.handoff(), [&, i] {
        if (std::this_thread::get_id() != polled.poller_id()) wrong_thread.store(true);
        ran.push_back(i);
        done.fetch_add(1);
      });
    }
    EXPECT_EQ(done.load(), 0);  // nothing is handed over before the batch closes
  }
  while (done.load() < 5) std::this_thread::yield();
  EXPECT_FALSE(wrong_thread.load());
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
}

// Many threads closing batches at once: each piece of work runs once, whether its handoff set
// the alarm or joined one already set.
TEST(CqHandoffTest, BatchesFromManyThreadsAllRunOnce) {
  Polled polled;
  constexpr int kThreads = 4, kBatches = 2000;
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        app::HandoffBatch batch;
        for (int i = 0; i <= (b + t) % 3; ++i) {
          app::HandoffBatch::Add(polled.handoff(), [&] { ran.fetch_add(1); });
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int b = 0; b < kBatches; ++b) expected += (b + t) % 3 + 1;
  }
  while (ran.load() < expected) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ran.load(), expected);
}

}  // namespace
}  // namespace hotpath::rpc
