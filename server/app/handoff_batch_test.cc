#include "server/app/handoff_batch.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace hotpath::app {
namespace {

// A queue that records each handoff it is given and runs its work at once.
class RecordingQueue final : public HandoffBatch::Queue {
 public:
  void HandOff(std::vector<HandoffBatch::Work> work) override {
    handoffs.push_back(work.size());
    for (HandoffBatch::Work& each : work) std::move(each)();
  }
  // Hands fn over the way an event loop's Post does: into the open batch, else on its own.
  void Post(std::shared_ptr<RecordingQueue> self, HandoffBatch::Work fn) {
    if (HandoffBatch::Open()) return HandoffBatch::Add(std::move(self), std::move(fn));
    std::vector<HandoffBatch::Work> one;
    one.push_back(std::move(fn));
    HandOff(std::move(one));
  }

  std::vector<std::size_t> handoffs;  // the size of each handoff, in order
};

TEST(HandoffBatchTest, WithoutABatchNothingWaits) {
  EXPECT_FALSE(HandoffBatch::Open());
  auto queue = std::make_shared<RecordingQueue>();
  std::vector<std::string> ran;
  queue->Post(queue, [&] { ran.push_back("a"); });
  EXPECT_EQ(ran, std::vector<std::string>{"a"});
  EXPECT_EQ(queue->handoffs, std::vector<std::size_t>{1});
}

TEST(HandoffBatchTest, EachQueueGetsItsWorkInOneHandoffInOrderWhenTheBatchCloses) {
  auto first = std::make_shared<RecordingQueue>();
  auto second = std::make_shared<RecordingQueue>();
  std::vector<std::string> ran;
  {
    const HandoffBatch batch;
    EXPECT_TRUE(HandoffBatch::Open());
    first->Post(first, [&] { ran.push_back("first 1"); });
    second->Post(second, [&] { ran.push_back("second 1"); });
    first->Post(first, [&] { ran.push_back("first 2"); });
    first->Post(first, [&] { ran.push_back("first 3"); });
    EXPECT_TRUE(ran.empty());
  }
  EXPECT_FALSE(HandoffBatch::Open());
  EXPECT_EQ(first->handoffs, std::vector<std::size_t>{3});
  EXPECT_EQ(second->handoffs, std::vector<std::size_t>{1});
  EXPECT_EQ(ran, (std::vector<std::string>{"first 1", "first 2", "first 3", "second 1"}));
}

TEST(HandoffBatchTest, ABatchInsideAnotherDeliversNothingUntilTheOuterCloses) {
  auto queue = std::make_shared<RecordingQueue>();
  std::vector<std::string> ran;
  {
    const HandoffBatch outer;
    queue->Post(queue, [&] { ran.push_back("outer"); });
    {
      const HandoffBatch inner;
      queue->Post(queue, [&] { ran.push_back("inner"); });
    }
    EXPECT_TRUE(ran.empty());
    EXPECT_TRUE(HandoffBatch::Open());
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"outer", "inner"}));
  EXPECT_EQ(queue->handoffs, std::vector<std::size_t>{2});
}

TEST(HandoffBatchTest, WorkHandedOverWhileTheBatchDeliversGoesAtOnce) {
  auto queue = std::make_shared<RecordingQueue>();
  std::vector<std::string> ran;
  {
    const HandoffBatch batch;
    queue->Post(queue, [&] {
      ran.push_back("batched");
      queue->Post(queue, [&] { ran.push_back("posted while delivering"); });
    });
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"batched", "posted while delivering"}));
  EXPECT_EQ(queue->handoffs, (std::vector<std::size_t>{1, 1}));
}

TEST(HandoffBatchTest, EachThreadHasItsOwnBatch) {
  const HandoffBatch batch;
  bool open_elsewhere = true;
  std::thread([&] { open_elsewhere = HandoffBatch::Open(); }).join();
  EXPECT_FALSE(open_elsewhere);
  EXPECT_TRUE(HandoffBatch::Open());
}

}  // namespace
}  // namespace hotpath::app
