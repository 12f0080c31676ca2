// A check that is slow (a database round trip, a connection to a listener; a rendering of every
// metric) run on a thread of its own, never on the work queues or event loops it reports on: a
// probe must not fail because the service is busy, nor a loop stall on it. One check runs at a
// time; every caller that asks while one runs gets the next one's result, so a flood of probes
// costs one check at a time, and with a gap, at most one check a gap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace hotpath::http {

class CoalescedProbe final {
 public:
  using Done = std::function<void(absl::Status)>;
  // check: blocking, bounded in time by itself. min_gap: the least time from the end of one
  // check to the start of the next (callers that ask meanwhile wait, and share it).
  explicit CoalescedProbe(std::function<absl::Status()> check,
                          absl::Duration min_gap = absl::ZeroDuration());
  // Answers callers still waiting with UNAVAILABLE, then joins the thread.
  ~CoalescedProbe();

  // done runs on the probe's thread with the result of a check that starts after this call.
  void operator()(Done done);

 private:
  void Run();

  const std::function<absl::Status()> check_;         // what a probe does
  const std::chrono::nanoseconds min_gap_;            // see the constructor
  std::mutex mu_;                                     // guards the members below
  std::condition_variable wake_;                      // a caller is waiting, or stopping
  std::vector<Done> waiting_;                         // callers the next check answers
  bool stopping_ = false;                             // the destructor has begun
  std::chrono::steady_clock::time_point next_start_;  // the next check starts no earlier
  std::thread thread_;                                // runs the checks
};

}  // namespace hotpath::http
