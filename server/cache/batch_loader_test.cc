#include "server/cache/batch_loader.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "server/cache/manual_scheduler.h"

namespace hotpath::cache {
namespace {

// A scheduler whose tasks run when the test says so, and a load that records its batches.
class BatchLoaderTest : public ::testing::Test {
 protected:
  ManualScheduler tasks_;  // where loads wait to run (first: the loader under test uses it)

  BatchLoaderTest()
      : loader_(
            BatchLoaderOptions{.max_batch = 3, .max_in_flight = 1},
            [this](const std::vector<int>& keys, absl::Time deadline)
                -> absl::StatusOr<std::vector<absl::StatusOr<std::string>>> {
              batches_.push_back(keys);
              deadlines_.push_back(deadline);
              if (fail_) return absl::UnavailableError("database unavailable");
              std::vector<absl::StatusOr<std::string>> results;
              for (int key : keys) {
                if (key < 0) {
                  results.push_back(absl::NotFoundError("no such key"));
                } else {
                  results.push_back("value " + std::to_string(key));
                }
              }
              return results;
            },
            tasks_.scheduler()) {}

  // Runs the oldest scheduled load.
  void RunOne() { tasks_.RunOne(); }

  std::function<void(absl::StatusOr<std::string>)> Into(std::vector<std::string>* answers) {
    return [answers](absl::StatusOr<std::string> r) {
      answers->push_back(r.ok() ? *r : std::string(r.status().message()));
    };
  }

  std::vector<std::vector<int>> batches_;  // keys of each load, in order
  std::vector<absl::Time> deadlines_;      // deadline of each load
  bool fail_ = false;
  BatchLoader<int, std::string> loader_;
};

TEST_F(BatchLoaderTest, ALoneReadLoadsAtOnce) {
  std::vector<std::string> answers;
  loader_.Get(7, absl::InfiniteFuture(), Into(&answers));
  ASSERT_EQ(tasks_.queued(), 1u);
  RunOne();
  EXPECT_EQ(batches_, (std::vector<std::vector<int>>{{7}}));
  EXPECT_EQ(answers, std::vector<std::string>{"value 7"});
}

TEST_F(BatchLoaderTest, ReadsThatArriveDuringALoadShareTheNextOne) {
  std::vector<std::string> answers;
  const absl::Time early = absl::Now() + absl::Seconds(1);
  const absl::Time late = absl::Now() + absl::Seconds(9);
  loader_.Get(1, early, Into(&answers));  // starts a load
  loader_.Get(2, early, Into(&answers));  // wait: one load at a time
  loader_.Get(2, early, Into(&answers));  // the same key: read once
  loader_.Get(-3, late, Into(&answers));
  loader_.Get(4, early, Into(&answers));
  loader_.Get(5, early, Into(&answers));  // a fourth distinct key: past max_batch, the load after
  EXPECT_EQ(tasks_.queued(), 1u);
  RunOne();  // {1}; ending, it schedules the next load before answering
  ASSERT_EQ(tasks_.queued(), 1u);
  RunOne();
  RunOne();
  ASSERT_EQ(batches_.size(), 3u);
  EXPECT_EQ(batches_[1], (std::vector<int>{2, -3, 4}));
  EXPECT_EQ(batches_[2], (std::vector<int>{5}));
  EXPECT_EQ(deadlines_[1], late);  // the latest reader's
  EXPECT_EQ(answers, (std::vector<std::string>{"value 1", "value 2", "value 2", "no such key",
                                               "value 4", "value 5"}));
  EXPECT_EQ(loader_.loads(), 3);
}

TEST_F(BatchLoaderTest, ABatchErrorReachesEveryReaderAndTheNextLoadStillRuns) {
  std::vector<std::string> answers;
  loader_.Get(1, absl::InfiniteFuture(), Into(&answers));
  loader_.Get(2, absl::InfiniteFuture(), Into(&answers));
  fail_ = true;
  RunOne();
  EXPECT_EQ(answers, std::vector<std::string>{"database unavailable"});
  fail_ = false;
  RunOne();
  EXPECT_EQ(answers, (std::vector<std::string>{"database unavailable", "value 2"}));
  EXPECT_EQ(tasks_.queued(), 0u);
}

TEST_F(BatchLoaderTest, ARefusedLoadAnswersBusyAndFreesItsSlot) {
  std::vector<std::string> answers;
  tasks_.refuse = true;
  loader_.Get(1, absl::InfiniteFuture(), Into(&answers));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_NE(answers[0].find("server busy"), std::string::npos);
  tasks_.refuse = false;
  loader_.Get(2, absl::InfiniteFuture(), Into(&answers));  // not stuck behind the refused one
  RunOne();
  EXPECT_EQ(answers.back(), "value 2");
}

TEST_F(BatchLoaderTest, ALoadAnswersItsReadersInsideOneHandoffBatch) {
  std::vector<bool> batched;
  auto record = [&batched](const absl::StatusOr<std::string>&) {
    batched.push_back(app::HandoffBatch::Open());
  };
  loader_.Get(1, absl::InfiniteFuture(), record);
  loader_.Get(2, absl::InfiniteFuture(), record);
  loader_.Get(3, absl::InfiniteFuture(), record);
  RunOne();
  RunOne();
  EXPECT_EQ(batched, (std::vector<bool>{true, true, true}));
  EXPECT_FALSE(app::HandoffBatch::Open());
}

}  // namespace
}  // namespace hotpath::cache
