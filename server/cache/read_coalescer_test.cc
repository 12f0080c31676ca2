#include "server/cache/read_coalescer.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "server/cache/manual_scheduler.h"

namespace hotpath::cache {
namespace {

// A scheduler whose tasks run when the test says so, and a load that reads the test's "database"
// (version_) as it is when the load runs.
class ReadCoalescerTest : public ::testing::Test {
 protected:
  ManualScheduler tasks_;  // where loads wait to run (first: the loader under test uses it)

  ReadCoalescerTest()
      : coalescer_(
            1,
            [this](const std::string& key, absl::Time deadline) -> absl::StatusOr<std::string> {
              loaded_.push_back(key);
              deadlines_.push_back(deadline);
              if (fail_) return absl::UnavailableError("database unavailable");
              return key + " v" + std::to_string(version_);
            },
            tasks_.scheduler()) {}

  // Runs the oldest scheduled load.
  void RunOne() { tasks_.RunOne(); }

  // Collects answers, and the objects they point to.
  ReadCoalescer<std::string, std::string>::Callback Into(std::vector<std::string>* answers) {
    return [this, answers](absl::StatusOr<std::shared_ptr<const std::string>> r) {
      answers->push_back(r.ok() ? **r : std::string(r.status().message()));
      objects_.push_back(r.ok() ? r->get() : nullptr);
    };
  }

  std::vector<std::string> loaded_;    // key of each load, in order
  std::vector<absl::Time> deadlines_;  // deadline of each load
  std::vector<const void*> objects_;   // what each answer pointed to
  int version_ = 1;
  bool fail_ = false;
  ReadCoalescer<std::string, std::string> coalescer_;
};

TEST_F(ReadCoalescerTest, ALoneReadLoadsAtOnceAndLeavesNothingBehind) {
  std::vector<std::string> answers;
  coalescer_.Get("page", absl::InfiniteFuture(), Into(&answers));
  ASSERT_EQ(tasks_.queued(), 1u);
  RunOne();
  EXPECT_EQ(answers, std::vector<std::string>{"page v1"});
  EXPECT_EQ(coalescer_.keys(), 0u);
}

TEST_F(ReadCoalescerTest, ReadsWaitingForTheSameKeyShareOneLoadAndOneObject) {
  std::vector<std::string> answers;
  const absl::Time early = absl::Now() + absl::Seconds(1);
  const absl::Time late = absl::Now() + absl::Seconds(9);
  coalescer_.Get("a", early, Into(&answers));  // loads at once
  coalescer_.Get("a", early, Into(&answers));  // waits: one load of "a" at a time
  coalescer_.Get("a", late, Into(&answers));
  coalescer_.Get("a", early, Into(&answers));
  coalescer_.Get("b", early, Into(&answers));  // another key does not wait for "a"
  EXPECT_EQ(tasks_.queued(), 2u);
  RunOne();  // the first "a"; ending, it schedules the next load of "a"
  RunOne();  // "b"
  RunOne();  // the three waiting for "a"
  EXPECT_EQ(loaded_, (std::vector<std::string>{"a", "b", "a"}));
  EXPECT_EQ(deadlines_[2], late);  // the latest reader's
  ASSERT_EQ(objects_.size(), 5u);
  EXPECT_EQ(objects_[2], objects_[3]);
  EXPECT_EQ(objects_[3], objects_[4]);
  EXPECT_NE(objects_[0], objects_[2]);
  EXPECT_EQ(coalescer_.loads(), 3);
  EXPECT_EQ(coalescer_.keys(), 0u);
}

TEST_F(ReadCoalescerTest, AReadNeverSharesALoadThatStartedBeforeIt) {
  std::vector<std::string> answers;
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));  // its load is under way
  version_ = 2;  // a write commits, then a read arrives
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));
  // The first load was scheduled before the write; whenever it reads, the second read is not its.
  RunOne();
  RunOne();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1], "a v2");
  EXPECT_EQ(coalescer_.loads(), 2);
}

TEST_F(ReadCoalescerTest, AnErrorReachesEveryReaderOfItsLoadAndTheNextLoadStillRuns) {
  std::vector<std::string> answers;
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));
  fail_ = true;
  RunOne();
  EXPECT_EQ(answers, std::vector<std::string>{"database unavailable"});
  fail_ = false;
  RunOne();
  EXPECT_EQ(answers, (std::vector<std::string>{"database unavailable", "a v1"}));
  EXPECT_EQ(tasks_.queued(), 0u);
  EXPECT_EQ(coalescer_.keys(), 0u);
}

TEST_F(ReadCoalescerTest, ARefusedLoadAnswersBusyAndFreesItsSlot) {
  std::vector<std::string> answers;
  tasks_.refuse = true;
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_NE(answers[0].find("server busy"), std::string::npos);
  EXPECT_EQ(coalescer_.keys(), 0u);
  tasks_.refuse = false;
  coalescer_.Get("a", absl::InfiniteFuture(), Into(&answers));  // not stuck behind it
  RunOne();
  EXPECT_EQ(answers.back(), "a v1");
}

TEST_F(ReadCoalescerTest, ALoadAnswersItsReadersInsideOneHandoffBatch) {
  std::vector<bool> batched;
  auto record = [&batched](const auto&) { batched.push_back(app::HandoffBatch::Open()); };
  coalescer_.Get("a", absl::InfiniteFuture(), record);
  coalescer_.Get("a", absl::InfiniteFuture(), record);
  coalescer_.Get("a", absl::InfiniteFuture(), record);
  RunOne();
  RunOne();
  EXPECT_EQ(batched, (std::vector<bool>{true, true, true}));
  EXPECT_FALSE(app::HandoffBatch::Open());
}

}  // namespace
}  // namespace hotpath::cache
