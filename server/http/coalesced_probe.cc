#include "server/http/coalesced_probe.h"

#include <utility>

#include "server/app/named_thread.h"

namespace hotpath::http {

CoalescedProbe::CoalescedProbe(std::function<absl::Status()> check, absl::Duration min_gap)
    : check_(std::move(check)),
      min_gap_(absl::ToChronoNanoseconds(min_gap)),
      thread_(app::NamedThread("hotpath-probe", [this] { Run(); })) {}

CoalescedProbe::~CoalescedProbe() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CoalescedProbe::operator()(Done done) {
  {
    std::lock_guard lock(mu_);
    waiting_.push_back(std::move(done));
  }
  wake_.notify_one();
}

void CoalescedProbe::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !waiting_.empty(); });
    wake_.wait_until(lock, next_start_, [this] { return stopping_; });
    std::vector<Done> answer = std::exchange(waiting_, {});
    if (stopping_) {
      lock.unlock();
      for (auto& done : answer) done(absl::UnavailableError("shutting down"));
      return;
    }
    lock.unlock();
    const absl::Status status = check_();
    for (auto& done : answer) done(status);
    lock.lock();
    next_start_ = std::chrono::steady_clock::now() + min_gap_;
  }
}

}  // namespace hotpath::http
