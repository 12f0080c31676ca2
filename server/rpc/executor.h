// A fixed pool of worker threads with a bounded queue: where blocking work (database calls) runs so
// that completion-queue threads never block.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/rpc/status.h"

namespace hotpath::rpc {

class Executor final {
 public:
  // threads: worker count (>= 1). max_queued: tasks waiting beyond the running ones before Submit
  // refuses (>= 1). nice: added to the workers' scheduling niceness (Linux, per thread; 0 leaves
  // it), so that under CPU overload the threads that read and shed calls win the cores from the
  // threads doing admitted work, and excess calls are refused instead of queueing unseen in the
  // transport.
  Executor(std::size_t threads, std::size_t max_queued, int nice = 0);
  ~Executor();

  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues task; false when the queue is full or the executor is stopping (the task is dropped, and
  // the caller answers RESOURCE_EXHAUSTED / UNAVAILABLE itself).
  [[nodiscard]] bool Submit(std::function<void()> task);
  // Submit as a cache::Scheduler: OK once queued, else BusyError().
  absl::Status Schedule(std::function<void()> task) {
    return Submit(std::move(task)) ? absl::OkStatus() : BusyError();
  }
  // What a call whose work the executor refused is answered (RESOURCE_EXHAUSTED): the one "server
  // busy" message of every path that queues database work.
  static absl::Status BusyError() {
    return Busy("server busy: the database work queue is full, retry later");
  }

  // Runs every task already queued, then joins the workers. Idempotent.
  void Stop();

  std::size_t queued() const;

 private:
  void WorkerLoop(int nice);

  const std::size_t max_queued_;             // bound on tasks_ size
  mutable std::mutex mu_;                    // guards tasks_ and stopping_
  std::condition_variable cv_;               // signals new tasks or stop
  std::deque<std::function<void()>> tasks_;  // waiting tasks, oldest first
  bool stopping_ = false;                    // set once by Stop
  std::vector<std::thread> workers_;         // the worker threads
};

}  // namespace hotpath::rpc
