#include "server/db/answer_watch.h"

#include <sys/socket.h>

#include <algorithm>
#include <thread>

namespace hotpath::db {

AnswerWatch& AnswerWatch::Instance() {
  // Never destroyed: connections may still be watched while static objects are torn down at exit.
  static AnswerWatch* const instance = new AnswerWatch();
  return *instance;
}

AnswerWatch::AnswerWatch() {
  std::thread([this] { Run(); }).detach();
}

AnswerWatch::Ticket AnswerWatch::Watch(int socket, absl::Time cut_at, std::atomic<bool>* cut) {
  if (socket < 0 || cut_at == absl::InfiniteFuture()) return 0;
  bool earlier = false;
  Ticket ticket;
  {
    std::lock_guard lock(mu_);
    ticket = next_ticket_++;
    entries_.push_back({ticket, socket, cut_at, cut});
    // Woken only when it would sleep past this one: the common entry (a call's deadline, a few
    // seconds on) is later than one already watched, and costs the thread nothing.
    earlier = cut_at < wakes_at_;
    if (earlier) wakes_at_ = cut_at;
  }
  if (earlier) wake_.notify_one();
  return ticket;
}

void AnswerWatch::Unwatch(Ticket ticket) {
  if (ticket == 0) return;
  std::lock_guard lock(mu_);
  // The newest are at the back, and most leases end soon after they begin.
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->ticket == ticket) {
      *it = entries_.back();
      entries_.pop_back();
      return;
    }
  }
}

void AnswerWatch::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    for (std::size_t i = 0; i < entries_.size();) {
      Entry& entry = entries_[i];
      if (entry.cut_at > now) {
        next = std::min(next, entry.cut_at);
        ++i;
        continue;
      }
      // Told first: the owner, woken by the shutdown, must find out why.
      if (entry.cut != nullptr) entry.cut->store(true);
      cuts_.fetch_add(1, std::memory_order_relaxed);
      // Under the lock: the owner closes the socket only after Unwatch, which waits for it.
      ::shutdown(entry.socket, SHUT_RDWR);
      entry = entries_.back();
      entries_.pop_back();
    }
    wakes_at_ = next;
    if (next == absl::InfiniteFuture()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, absl::ToChronoTime(next));
    }
  }
}

}  // namespace hotpath::db
