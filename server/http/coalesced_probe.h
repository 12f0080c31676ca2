// A readiness check that is slow (a database round trip, a connection to a listener) run on a
// thread of its own, never on the work queues it reports on: a probe must not fail because the
// service is busy. One check runs at a time; every caller that asks while it runs gets its result,
// so a flood of probes costs one check at a time.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace hotpath::http {

class CoalescedProbe final {
 public:
  using Done = std::function<void(absl::Status)>;
  // check: blocking, bounded in time by itself.
  explicit CoalescedProbe(std::function<absl::Status()> check);
  // Answers callers still waiting with UNAVAILABLE, then joins the thread.
  ~CoalescedProbe();

  // done runs on the probe's thread with the result of a check that ends after this call.
  void operator()(Done done);

 private:
  void Run();

  const std::function<absl::Status()> check_;  // what a probe does
  std::mutex mu_;                              // guards the members below
  std::condition_variable wake_;               // a caller is waiting, or stopping
  std::vector<Done> waiting_;                  // callers the next check answers
  bool stopping_ = false;                      // the destructor has begun
  std::thread thread_;                         // runs the checks
};

}  // namespace hotpath::http
