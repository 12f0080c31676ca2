#include "server/http/coalesced_probe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

namespace hotpath::http {
namespace {

// Every caller gets a check that began after it asked: one asking while a check runs waits for
// the next one, not the running one's older result.
TEST(CoalescedProbeTest, ACallerGetsACheckThatBeganAfterItAsked) {
  std::atomic<int> checks{0};
  std::promise<void> first_started;
  std::promise<void> release_first;
  std::shared_future<void> released = release_first.get_future().share();
  CoalescedProbe probe([&] {
    if (checks.fetch_add(1) == 0) {
      first_started.set_value();
      released.wait();
    }
    return absl::OkStatus();
  });
  std::promise<int> first_saw, second_saw;
  probe([&](absl::Status) { first_saw.set_value(checks.load()); });
  first_started.get_future().wait();
  probe([&](absl::Status) { second_saw.set_value(checks.load()); });  // asks during check 1
  release_first.set_value();
  EXPECT_EQ(first_saw.get_future().get(), 1);
  EXPECT_EQ(second_saw.get_future().get(), 2);
}

// With a gap, a flood of callers shares few checks, and every caller is answered.
TEST(CoalescedProbeTest, WithAGapAFloodSharesFewChecksAndEveryCallerIsAnswered) {
  std::atomic<int> checks{0};
  std::atomic<int> answered{0};
  {
    CoalescedProbe probe(
        [&] {
          checks.fetch_add(1);
          return absl::OkStatus();
        },
        absl::Milliseconds(100));
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    int asked = 0;
    while (std::chrono::steady_clock::now() < end) {
      probe([&](absl::Status) { answered.fetch_add(1); });
      ++asked;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    while (answered.load() < asked) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GT(asked, 100);
  }
  // 500 ms of asking at one check per 100 ms: 6 at most, and one more for the last callers.
  EXPECT_LE(checks.load(), 7);
  EXPECT_GE(checks.load(), 2);
}

TEST(CoalescedProbeTest, CallersStillWaitingAtTheEndAreToldItIsShuttingDown) {
  std::atomic<int> unavailable{0};
  {
    CoalescedProbe probe([] { return absl::OkStatus(); }, absl::Seconds(30));
    std::promise<void> first;
    probe([&](absl::Status) { first.set_value(); });  // runs at once; the next waits 30 s
    first.get_future().wait();
    for (int i = 0; i < 3; ++i) {
      probe([&](absl::Status s) {
        if (s.code() == absl::StatusCode::kUnavailable) unavailable.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(unavailable.load(), 3);
}

}  // namespace
}  // namespace hotpath::http
