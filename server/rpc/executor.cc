#include "server/rpc/executor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <utility>

#include "server/app/named_thread.h"

namespace hotpath::rpc {

Executor::Executor(std::size_t threads, std::size_t max_queued, int nice)
    : max_queued_(max_queued == 0 ? 1 : max_queued) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.push_back(app::NamedThread("hotpath-exec", [this, nice] { WorkerLoop(nice); }));
  }
}

Executor::~Executor() { Stop(); }

bool Executor::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || tasks_.size() >= max_queued_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

void Executor::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& worker : workers_) worker.join();
}

std::size_t Executor::queued() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void Executor::WorkerLoop(int nice) {
  if (nice != 0) {
    // On Linux the nice value belongs to the thread; raising it needs no privilege. A failure
    // (lowering it without CAP_SYS_NICE) leaves the thread as it was: a tuning, not a requirement.
    const int current = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), current + nice);
  }
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      // Drain before exiting: a queued task may hold a call that must still be answered.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace hotpath::rpc
