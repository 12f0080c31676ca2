// For the cache's tests: a Scheduler whose tasks run only when the test says so, or that refuses.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "server/cache/ttl_cache.h"

namespace hotpath::cache {

class ManualScheduler final {
 public:
  // What the code under test schedules with; refers to this.
  Scheduler scheduler() {
    return [this](std::function<void()> task) {
      if (refuse) return absl::ResourceExhaustedError("server busy");
      tasks_.push_back(std::move(task));
      return absl::OkStatus();
    };
  }
  // Runs the oldest task scheduled.
  void RunOne() {
    ASSERT_FALSE(tasks_.empty());
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    task();
  }
  std::size_t queued() const { return tasks_.size(); }

  bool refuse = false;  // true: scheduling fails with "server busy"

 private:
  std::deque<std::function<void()>> tasks_;  // scheduled, not run yet
};

}  // namespace hotpath::cache
