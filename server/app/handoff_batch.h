// Work handed from one thread to other threads' queues (the HTTP event loops), gathered while a
// HandoffBatch is open on the handing thread and delivered as one handoff per queue when it
// closes. Code that answers many waiting callers in a row (a batched database read answering each
// reader it served) opens one around the answers: each event loop then takes one lock and wakes
// at most once for all of them, instead of once per answer, racing back to sleep in between.
//
// Only for work that nothing on the handing thread waits for before the batch closes: it is
// delivered at the close, in the order it was added (per queue).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace hotpath::app {

class HandoffBatch final {
 public:
  using Work = absl::AnyInvocable<void() &&>;

  // A queue that takes several pieces of work in one handoff.
  class Queue {
   public:
    virtual ~Queue() = default;
    // Runs each of work, in order, on the queue's thread, or drops them all (as one handoff of
    // each would be dropped: a stopped queue).
    virtual void HandOff(std::vector<Work> work) = 0;
  };

  // Opens a batch on this thread. One opened inside another adds to the outer one, which
  // delivers everything when it closes.
  HandoffBatch() : outermost_(current_ == nullptr) {
    if (outermost_) current_ = this;
  }
  ~HandoffBatch() {
    if (!outermost_) return;
    current_ = nullptr;  // what HandOff queues from here on is handed off at once
    for (Pending& pending : pending_) pending.queue->HandOff(std::move(pending.work));
  }
  HandoffBatch(const HandoffBatch&) = delete;
  HandoffBatch& operator=(const HandoffBatch&) = delete;

  // Whether a batch is open on this thread: Add would take the work.
  static bool Open() { return current_ != nullptr; }
  // Adds work for queue to the batch open on this thread (Open() must be true).
  static void Add(std::shared_ptr<Queue> queue, Work work) {
    std::vector<Pending>& pending = current_->pending_;
    for (Pending& each : pending) {
      if (each.queue == queue) return each.work.push_back(std::move(work));
    }
    pending.push_back(Pending{std::move(queue), {}});
    pending.back().work.push_back(std::move(work));
  }

 private:
  struct Pending {
    std::shared_ptr<Queue> queue;  // where the work goes
    std::vector<Work> work;        // in the order it was added
  };

  const bool outermost_;          // this batch delivers (no other was open when it opened)
  std::vector<Pending> pending_;  // by queue: a few (one per event loop), searched in turn
  static inline thread_local HandoffBatch* current_ = nullptr;  // the outermost open batch
};

}  // namespace hotpath::app
