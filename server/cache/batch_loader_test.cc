#include "server/cache/batch_loader.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
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

// A second load beside a running one, by how long that one has run (overlap_after).
class OverlapTest : public ::testing::Test {
 protected:
  using Loader = BatchLoader<int, std::string>;
  static Loader::Load Values() {
    return [](const std::vector<int>& keys, absl::Time) {
      return Loader::Results(std::vector<absl::StatusOr<std::string>>(keys.size(), "value"));
    };
  }
  ManualScheduler tasks_;  // where loads wait to run
};

TEST_F(OverlapTest, AReadWaitsForTheNextBatchWhileTheLoadRunningIsYoung) {
  Loader loader(BatchLoaderOptions{.max_in_flight = 2, .overlap_after = absl::Hours(1)}, Values(),
                tasks_.scheduler());
  int answered = 0;
  auto count = [&answered](const absl::StatusOr<std::string>&) { ++answered; };
  loader.Get(1, absl::InfiniteFuture(), count);
  loader.Get(2, absl::InfiniteFuture(), count);
  loader.Get(3, absl::InfiniteFuture(), count);
  EXPECT_EQ(tasks_.queued(), 1u);  // {1} only: {2, 3} wait, under max_in_flight
  tasks_.RunOne();
  ASSERT_EQ(tasks_.queued(), 1u);  // {2, 3}, started as {1} ended
  tasks_.RunOne();
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(loader.loads(), 2);
}

TEST_F(OverlapTest, AReadStartsASecondLoadOnceTheRunningOneHasRunTheOverlap) {
  Loader loader(BatchLoaderOptions{.max_in_flight = 2, .overlap_after = absl::Milliseconds(20)},
                Values(), tasks_.scheduler());
  int answered = 0;
  auto count = [&answered](const absl::StatusOr<std::string>&) { ++answered; };
  loader.Get(1, absl::InfiniteFuture(), count);
  loader.Get(2, absl::InfiniteFuture(), count);  // {1} is young: waits
  EXPECT_EQ(tasks_.queued(), 1u);
  absl::SleepFor(absl::Milliseconds(30));
  loader.Get(3, absl::InfiniteFuture(), count);  // {1} has run 20 ms: {2, 3} start beside it
  EXPECT_EQ(tasks_.queued(), 2u);
  loader.Get(4, absl::InfiniteFuture(), count);  // two running: the most
  absl::SleepFor(absl::Milliseconds(30));
  loader.Get(5, absl::InfiniteFuture(), count);
  EXPECT_EQ(tasks_.queued(), 2u);
  tasks_.RunOne();  // {1}; {4, 5} start as it ends
  tasks_.RunOne();
  tasks_.RunOne();
  EXPECT_EQ(answered, 5);
  EXPECT_EQ(loader.loads(), 3);
}

TEST_F(OverlapTest, ZeroOverlapStartsLoadsAtOnceUpToTheMost) {
  Loader loader(BatchLoaderOptions{.max_in_flight = 2, .overlap_after = absl::ZeroDuration()},
                Values(), tasks_.scheduler());
  int answered = 0;
  auto count = [&answered](const absl::StatusOr<std::string>&) { ++answered; };
  loader.Get(1, absl::InfiniteFuture(), count);
  loader.Get(2, absl::InfiniteFuture(), count);
  loader.Get(3, absl::InfiniteFuture(), count);
  EXPECT_EQ(tasks_.queued(), 2u);  // {1} and {2}; {3} waits for one of them
  tasks_.RunOne();
  tasks_.RunOne();
  tasks_.RunOne();
  EXPECT_EQ(answered, 3);
}

// Loads started without the scheduler (set_start): kept here until the test answers them.
class StartedLoadTest : public BatchLoaderTest {
 protected:
  using Loader = BatchLoader<int, std::string>;
  void SetUp() override {
    loader_.set_start([this](const std::vector<int>& keys, absl::Time, Loader::Answered& answered) {
      if (decline_) return false;
      started_.push_back(keys);
      answers_due_.push_back(std::move(answered));
      return true;
    });
  }
  // Answers the oldest started load with each key's value, or with nullopt (it could not finish).
  void Answer(bool finished = true) {
    Loader::Answered answered = std::move(answers_due_.front());
    answers_due_.erase(answers_due_.begin());
    const std::vector<int>& keys = started_[answered_++];
    if (!finished) return std::move(answered)(std::nullopt);
    std::vector<absl::StatusOr<std::string>> values;
    for (int key : keys) values.push_back("started " + std::to_string(key));
    std::move(answered)(std::move(values));
  }

  bool decline_ = false;                       // the start hook declines every load
  std::vector<std::vector<int>> started_;      // keys of each load it started
  std::vector<Loader::Answered> answers_due_;  // started, not yet answered
  std::size_t answered_ = 0;                   // of started_, answered so far
};

TEST_F(StartedLoadTest, AStartedLoadAnswersItsReadersWithoutTheScheduler) {
  std::vector<std::string> answers;
  loader_.Get(1, absl::InfiniteFuture(), Into(&answers));
  loader_.Get(2, absl::InfiniteFuture(), Into(&answers));  // waits: one load at a time
  loader_.Get(3, absl::InfiniteFuture(), Into(&answers));
  EXPECT_EQ(tasks_.queued(), 0u);
  ASSERT_EQ(started_.size(), 1u);
  Answer();  // {1}; the next load starts before its readers are answered
  ASSERT_EQ(started_.size(), 2u);
  EXPECT_EQ(started_[1], (std::vector<int>{2, 3}));
  Answer();
  EXPECT_EQ(answers, (std::vector<std::string>{"started 1", "started 2", "started 3"}));
  EXPECT_TRUE(batches_.empty());  // the scheduler's load never ran
  EXPECT_EQ(loader_.loads(), 2);
}

TEST_F(StartedLoadTest, ADeclinedLoadRunsOnTheScheduler) {
  std::vector<std::string> answers;
  decline_ = true;
  loader_.Get(4, absl::InfiniteFuture(), Into(&answers));
  ASSERT_EQ(tasks_.queued(), 1u);
  RunOne();
  EXPECT_EQ(answers, std::vector<std::string>{"value 4"});
  EXPECT_TRUE(started_.empty());
}

TEST_F(StartedLoadTest, ALoadThatCouldNotFinishRunsOnTheSchedulerWithTheSameReaders) {
  std::vector<std::string> answers;
  loader_.Get(5, absl::InfiniteFuture(), Into(&answers));
  loader_.Get(6, absl::InfiniteFuture(), Into(&answers));  // waits for the next load
  Answer(/*finished=*/false);                              // {5}: lost its connection, say
  EXPECT_TRUE(answers.empty());
  ASSERT_EQ(tasks_.queued(), 1u);
  RunOne();  // {5} again, the blocking way; then {6} is started
  EXPECT_EQ(batches_, (std::vector<std::vector<int>>{{5}}));
  ASSERT_EQ(started_.size(), 2u);
  Answer();
  EXPECT_EQ(answers, (std::vector<std::string>{"value 5", "started 6"}));
}

TEST_F(StartedLoadTest, AnErrorOfAStartedLoadReachesEveryReader) {
  std::vector<std::string> answers;
  loader_.Get(7, absl::InfiniteFuture(), Into(&answers));
  Loader::Answered answered = std::move(answers_due_.front());
  answers_due_.clear();
  std::move(answered)(Loader::Results(absl::InvalidArgumentError("bad keys")));
  EXPECT_EQ(answers, std::vector<std::string>{"bad keys"});
  EXPECT_EQ(tasks_.queued(), 0u);
}

TEST_F(StartedLoadTest, TheLoaderOutlivesItsStartedLoads) {
  std::vector<std::string> answers;
  auto loader = std::make_unique<Loader>(
      BatchLoaderOptions{}, [](const std::vector<int>&, absl::Time) { return Loader::Results(); },
      tasks_.scheduler());
  Loader::Answered due;
  loader->set_start([&due](const std::vector<int>&, absl::Time, Loader::Answered& answered) {
    due = std::move(answered);
    return true;
  });
  loader->Get(8, absl::InfiniteFuture(), Into(&answers));
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    loader.reset();  // waits for the started load
    destroyed = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(destroyed.load());
  std::move(due)(std::vector<absl::StatusOr<std::string>>{"late"});
  due = nullptr;  // its token goes with it: the load is over
  destroyer.join();
  EXPECT_EQ(answers, std::vector<std::string>{"late"});
}

// Background reads (a cache's refreshes): they wait up to background_wait to share a load.
class BackgroundReadTest : public ::testing::Test {
 protected:
  using Loader = BatchLoader<int, std::string>;
  // Records each load's keys; loads run where they are scheduled (any thread).
  Loader::Load Recorded() {
    return [this](const std::vector<int>& keys, absl::Time) {
      std::lock_guard lock(mu_);
      batches_.push_back(keys);
      return Loader::Results(std::vector<absl::StatusOr<std::string>>(keys.size(), "value"));
    };
  }
  static Scheduler Inline() {
    return [](std::function<void()> task) {
      task();
      return absl::OkStatus();
    };
  }
  std::function<void(absl::StatusOr<std::string>)> Count() {
    return [this](const absl::StatusOr<std::string>&) { ++answered_; };
  }
  std::vector<std::vector<int>> Batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }
  // Waits (up to 10 s) until n reads are answered.
  bool AnsweredBy(int n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (answered_.load() < n && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    return answered_.load() >= n;
  }

  ManualScheduler tasks_;
  std::mutex mu_;
  std::vector<std::vector<int>> batches_;  // keys of each load, in order
  std::atomic<int> answered_{0};
};

TEST_F(BackgroundReadTest, BackgroundReadsWaitToShareOneLoad) {
  Loader loader(BatchLoaderOptions{.background_wait = absl::Milliseconds(500)}, Recorded(),
                Inline());
  for (int key = 1; key <= 20; ++key) loader.GetInBackground(key, Count());
  EXPECT_EQ(loader.loads(), 0) << "an idle loader would have loaded the first one at once";
  ASSERT_TRUE(AnsweredBy(20));
  ASSERT_EQ(Batches().size(), 1u);
  EXPECT_EQ(Batches()[0].size(), 20u);
}

TEST_F(BackgroundReadTest, BackgroundReadsRideAlongWithTheNextLoad) {
  Loader loader(BatchLoaderOptions{.background_wait = absl::Hours(1)}, Recorded(),
                tasks_.scheduler());
  loader.GetInBackground(1, Count());
  loader.GetInBackground(2, Count());
  EXPECT_EQ(tasks_.queued(), 0u);
  loader.Get(3, absl::InfiniteFuture(), Count());  // a caller waits: a load now, with both
  ASSERT_EQ(tasks_.queued(), 1u);
  tasks_.RunOne();
  EXPECT_EQ(Batches(), (std::vector<std::vector<int>>{{3, 1, 2}}));
  EXPECT_EQ(answered_.load(), 3);
}

TEST_F(BackgroundReadTest, AFullBatchOfBackgroundReadsLoadsAtOnce) {
  Loader loader(BatchLoaderOptions{.max_batch = 3, .background_wait = absl::Hours(1)}, Recorded(),
                tasks_.scheduler());
  loader.GetInBackground(1, Count());
  loader.GetInBackground(2, Count());
  EXPECT_EQ(tasks_.queued(), 0u);
  loader.GetInBackground(3, Count());
  ASSERT_EQ(tasks_.queued(), 1u);
  tasks_.RunOne();
  EXPECT_EQ(Batches(), (std::vector<std::vector<int>>{{1, 2, 3}}));
}

TEST_F(BackgroundReadTest, ALoaderThatStopsLoadsTheBackgroundReadsStillWaiting) {
  auto loader = std::make_unique<Loader>(BatchLoaderOptions{.background_wait = absl::Hours(1)},
                                         Recorded(), Inline());
  loader->GetInBackground(4, Count());
  loader->GetInBackground(5, Count());
  loader.reset();
  EXPECT_EQ(answered_.load(), 2);
  EXPECT_EQ(Batches(), (std::vector<std::vector<int>>{{4, 5}}));
}

TEST_F(BackgroundReadTest, WithoutAWaitABackgroundReadIsAnyRead) {
  Loader loader(BatchLoaderOptions{}, Recorded(), tasks_.scheduler());
  loader.GetInBackground(6, Count());
  ASSERT_EQ(tasks_.queued(), 1u);
  tasks_.RunOne();
  EXPECT_EQ(answered_.load(), 1);
}

}  // namespace
}  // namespace hotpath::cache
