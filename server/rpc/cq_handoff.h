// Work handed to a completion queue's polling thread, as app::HandoffBatch gathers it.
//
// A unary call answered from another thread (a database read's executor thread) used to start
// its final operation there: gRPC's write then ran outside the thread that polls the call's
// connection, and handed parts of it on (the transport's combiner, gRPC's own executor threads):
// about two context switches a call where an answer on the polling thread makes a third of one
// (bench/NOTES.md). From inside a HandoffBatch (a read answering every caller it served), the
// calls' final operations go instead to their queues' polling threads, one wakeup (an expired
// grpc::Alarm) per queue per batch.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <mutex>
#include <utility>
#include <vector>

#include "server/app/handoff_batch.h"
#include "server/rpc/call_base.h"
#include "server/rpc/grpc_handoff.h"

namespace hotpath::rpc {

class CqHandoff final : public app::HandoffBatch::Queue, public CompletionHandler {
 public:
  // cq must outlive this, and be polled (its tags being CompletionHandler*, as
  // PollCompletionQueue takes them) until this has nothing pending.
  explicit CqHandoff(grpc::CompletionQueue* cq) : cq_(cq) {}

  // Runs each of work on cq's polling thread, in order: the alarm's completion delivers it.
  void HandOff(std::vector<app::HandoffBatch::Work> work) override {
    std::lock_guard lock(mutex_);
    for (app::HandoffBatch::Work& each : work) pending_.push_back(std::move(each));
    if (armed_) return;  // the alarm set earlier has not gone off: it takes these too
    armed_ = true;
    // The tag is what the polling thread casts it back to.
    CompletionHandler* const tag = this;
    HandingToGrpc handing(tag);
    alarm_.Set(cq_, gpr_inf_past(GPR_CLOCK_MONOTONIC), tag);
  }

  void OnComplete(bool) override {
    std::vector<app::HandoffBatch::Work> work;
    {
      std::lock_guard lock(mutex_);
      work.swap(pending_);
      armed_ = false;  // gone off: it may be set again
    }
    for (app::HandoffBatch::Work& each : work) std::move(each)();
  }

 private:
  grpc::CompletionQueue* const cq_;               // whose polling thread runs the work
  std::mutex mutex_;                              // guards pending_, armed_ and alarm_'s Set
  std::vector<app::HandoffBatch::Work> pending_;  // handed off, not yet run
  bool armed_ = false;                            // alarm_ is set and has not gone off
  grpc::Alarm alarm_;                             // the wakeup
};

}  // namespace hotpath::rpc
