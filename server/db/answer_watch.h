// Bounds how long a connection waits for PostgreSQL's answer.
//
// libpq's blocking calls (every libpqxx statement) wait for the server with no bound of their own,
// and statement_timeout is the server's: a server that stops answering (its storage or its
// process hung, its machine gone, a network between dropping everything) holds the waiting thread,
// and the call it works for, as long as TCP takes to give up (minutes; for ever while the kernel
// at the other end still acknowledges). A connection still watched at its cut time has its socket
// shut down (not closed: its owner still holds it): the waiting statement fails at once as on a
// lost connection, and the owner discards the connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace hotpath::db {

// How long past the bound its owner keeps (a caller's deadline, which statement_timeout already
// makes PostgreSQL keep) a connection may go unanswered before it is cut: time for an answer
// already on its way, and for a thread the machine's load has delayed.
inline constexpr absl::Duration kAnswerGrace = absl::Milliseconds(500);

class AnswerWatch final {
 public:
  using Ticket = std::uint64_t;  // names one watched socket; 0: none

  // The process's watch; its thread starts on first use and runs until the process exits.
  static AnswerWatch& Instance();

  // Shuts socket down at cut_at (kept to within a few milliseconds) unless Unwatch(ticket) comes
  // first, and then sets *cut (when given). socket must stay open until Unwatch returns. 0, and
  // nothing watched, for a negative socket or a cut_at of InfiniteFuture.
  Ticket Watch(int socket, absl::Time cut_at, std::atomic<bool>* cut = nullptr);
  // Once this returns, socket is not cut (it may have been already: see *cut). 0 does nothing.
  void Unwatch(Ticket ticket);

  // Sockets cut since start.
  std::int64_t cuts() const { return cuts_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    Ticket ticket;           // what Unwatch names it by
    int socket;              // shut down at cut_at
    absl::Time cut_at;       // when
    std::atomic<bool>* cut;  // set when it is; may be null
  };
  AnswerWatch();
  void Run();

  std::mutex mu_;                                 // guards the below
  std::condition_variable wake_;                  // an entry earlier than the thread's wake-up came
  std::vector<Entry> entries_;                    // watched now (tens: one per busy connection)
  Ticket next_ticket_ = 1;                        // the next Watch's
  absl::Time wakes_at_ = absl::InfiniteFuture();  // when the thread will look next
  std::atomic<std::int64_t> cuts_{0};             // sockets cut
};

// A socket watched for as long as this lives (AnswerWatch::Watch until the destructor).
class Watched final {
 public:
  Watched(int socket, absl::Time cut_at)
      : ticket_(AnswerWatch::Instance().Watch(socket, cut_at, &cut_)) {}
  // Cut unless answered within bound from now and kAnswerGrace: a round trip's.
  Watched(int socket, absl::Duration bound) : Watched(socket, absl::Now() + bound + kAnswerGrace) {}
  ~Watched() { AnswerWatch::Instance().Unwatch(ticket_); }
  Watched(const Watched&) = delete;
  Watched& operator=(const Watched&) = delete;

  // Whether the socket was cut (the server did not answer in time).
  bool cut() const { return cut_.load(); }

 private:
  std::atomic<bool> cut_{false};  // set by the watch's thread
  AnswerWatch::Ticket ticket_;    // this scope's
};

}  // namespace hotpath::db
