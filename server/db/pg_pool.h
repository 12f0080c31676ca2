// A bounded pool of libpqxx connections.
//
// Connections are opened lazily up to max_size (min_size of them at start), handed out LIFO so the
// warmest are reused, and discarded when found broken, so the pool heals by itself after PostgreSQL
// restarts. Acquire never waits past the caller's deadline. Each lease sets the session's
// statement_timeout no longer than the caller's remaining time, so PostgreSQL itself stops a query
// nobody is waiting for; and a lease's connection whose server has not answered by then (it
// stopped: db/answer_watch.h) is cut, so no caller waits on it much longer.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/db/answer_watch.h"
#include "server/db/host_order.h"
#include "server/rpc/cancellation.h"

namespace hotpath::db {

struct PreparedStatement {
  std::string name;  // what exec_prepared calls it
  std::string sql;   // the statement, with $1.. parameters
};

// A libpqxx error's message without the newline libpq ends it with.
std::string ErrorText(const std::exception& e);

// Set on every pooled connection as it opens, whatever the server's or the URL's defaults:
// - times print in UTC in ISO form ("2026-12-01 05:21:54.442703+00"), which pg_time.h reads;
// - each prepared statement is planned once per connection (a generic plan). PostgreSQL's default
//   plans again at every execution whenever the generic plan's estimate is dearer than the
//   custom plans', which for a keyset page (LIMIT a parameter) it always is: that planning was
//   two fifths of a 50-row page's cost in the database (bench/NOTES.md). So a module's statements
//   must have good generic plans: predicates that leave the planner one fitting index
//   (tests/sql_plans_e2e_test.cc checks the catalog's).
inline constexpr char kPinnedSessionSettings[] =
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET plan_cache_mode = force_generic_plan";

struct PgPoolOptions {
  // libpq connection string or URL, e.g. "postgresql://user@host:5432/db" or "host=/tmp port=5432".
  std::string database_url;
  // Connections opened at start. Default 2.
  int min_size = 2;
  // Most connections ever open at once. Default 16.
  int max_size = 16;
  // Longest a new connection may take to open. Default 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // statement_timeout for callers without a deadline. Default 30 s.
  absl::Duration max_statement_timeout = absl::Seconds(30);
  // Longest wait for a connection, whatever the caller's deadline (none included). Default 10 s.
  absl::Duration max_acquire_wait = absl::Seconds(10);
  // Prepared (lazily, once) on every connection.
  std::vector<PreparedStatement> statements;
  // Run on every connection once it opens, before the statements are prepared (session settings,
  // e.g. "SET hotpath.announced = on").
  std::vector<std::string> on_connect;
  // Told how long each Acquire waited (for a histogram); optional, must be thread-safe.
  std::function<void(absl::Duration)> on_acquire_wait;
  // After a connection fails to open while none is open, the database counts as down: Acquire fails
  // at once with UNAVAILABLE (no caller waits on a connect that cannot succeed, nor on libpq's 2 s
  // minimum connect timeout) while one background prober tries to connect this often. Its first
  // success brings the pool back. A connection refused while others are open (PostgreSQL's
  // max_connections reached by other clients) is a limit, not an outage: callers wait for one of
  // the open ones instead, and no new one is tried for this long. Default 100 ms.
  absl::Duration probe_interval = absl::Milliseconds(100);
};

struct PgPoolStats {
  int in_use = 0;                     // leased right now
  int idle = 0;                       // open and waiting
  int waiting = 0;                    // Acquire calls waiting in line for a connection
  int max_size = 0;                   // the bound
  std::int64_t opened = 0;            // connections opened since start
  std::int64_t broken = 0;            // connections discarded as broken
  std::int64_t connect_errors = 0;    // failed attempts to open one
  std::int64_t acquire_timeouts = 0;  // Acquire calls that ran out of time
  std::int64_t fail_fast = 0;         // Acquire calls refused at once while the database was down
  std::int64_t idle_leases = 0;       // connections TryAcquire lent (to event loops' statements)
  bool down = false;                  // the database is unreachable; the prober is at work
};

class PgPool;

// The backend process ids of a pool's open connections (pg_backend_pid()), so that a listener can
// tell a notification sent by one of this process's own writes. Thread-safe.
class BackendPids final {
 public:
  void Add(int pid);
  void Remove(int pid);
  bool Contains(int pid) const;

 private:
  mutable std::mutex mu_;  // guards pids_
  std::vector<int> pids_;  // open connections' backends (a few dozen at most)
};

// One connection, exclusively the holder's until the lease is destroyed.
class PgLease final {
 public:
  PgLease(PgLease&& other) noexcept;
  PgLease& operator=(PgLease&&) = delete;
  ~PgLease();

  pqxx::connection& connection() { return *slot_->connection; }
  // libpq's own handle of connection(), for its non-blocking calls (db/loop_query.h). The same
  // for the connection's whole life: libpqxx is not let reconnect it behind the pool's back.
  PGconn* raw_connection() { return slot_->raw; }

  // Whether the statement_timeout the session has now already stops a statement by deadline, no
  // later and not much sooner (LimitTo would leave it as it is): a statement sent without
  // LimitTo's round trip is then still bounded by the caller's deadline.
  bool TimeoutFits(absl::Time deadline) const;

  // Sets statement_timeout to a little less than the time left before deadline (and at most the
  // pool's max_statement_timeout). DEADLINE_EXCEEDED when no time is left.
  absl::Status LimitTo(absl::Time deadline);

  // The connection failed: discard it on release and drop the idle ones opened before it (a server
  // restart breaks them all).
  void MarkBroken() { broken_ = true; }

  // Whether the connection was cut because its server had not answered by the lease's bound.
  bool cut() const { return slot_->cut.load(); }
  // A lease starts watched (db/answer_watch.h): its connection is cut if it is still leased at its
  // caller's deadline, or max_statement_timeout from the lease when that comes first, plus
  // kAnswerGrace. Unwatch for a holder that waits on its own client between statements (an
  // import); Watch(deadline) again, bound as a new lease would be, before it waits on the server.
  void Watch(absl::Time deadline);
  void Unwatch();

 private:
  friend class PgPool;
  struct Slot {
    ~Slot() {
      if (pids != nullptr) pids->Remove(pid);
    }
    std::unique_ptr<pqxx::connection> connection;  // the libpqxx connection
    PGconn* raw = nullptr;                         // connection's libpq handle
    std::shared_ptr<BackendPids> pids;             // where pid is listed while the slot lives
    int pid = 0;                                   // its backend's process id
    std::int64_t timeout_ms = -1;                  // statement_timeout now set on it, -1: unknown
    std::int64_t generation = 0;                   // pool generation when it was opened
    std::atomic<bool> cancel_sent{false};          // a cancel request went to its backend
    int socket = -1;                               // raw's socket, which the watch may cut
    AnswerWatch::Ticket watch = 0;                 // while leased: its watch, 0: none
    std::atomic<bool> cut{false};                  // the watch cut it: discard
  };
  // Leased to a caller whose deadline is deadline, and watched for it.
  PgLease(PgPool* pool, std::unique_ptr<Slot> slot, absl::Time deadline);

  PgPool* pool_;                // where the connection goes back
  std::unique_ptr<Slot> slot_;  // null once moved from
  bool broken_ = false;         // discard instead of returning
  // The call this lease works for, whose Cancel cancels the running statement; null: none.
  rpc::Cancellation* cancellation_ = nullptr;
};

class PgPool final {
 public:
  // Opens min_size connections; fails (UNAVAILABLE) if the first cannot be opened.
  static absl::StatusOr<std::unique_ptr<PgPool>> Create(PgPoolOptions options);
  ~PgPool();

  // A connection, waiting for one at most until deadline and at most max_acquire_wait
  // (DEADLINE_EXCEEDED), or UNAVAILABLE when a new one cannot be opened or the pool is closed.
  // Waiters are served in the order they came: a caller finding none idle goes behind those
  // already waiting, even when one comes back before it is served.
  // When the calling thread works for a call (rpc::Cancellation::Current()), cancelling that call
  // cancels the statement running on the lease (and the connection is then discarded, so a late
  // cancel request cannot reach its next user); CANCELLED if the call is cancelled already.
  absl::StatusOr<PgLease> Acquire(absl::Time deadline);

  // An idle connection whose statement_timeout already fits deadline (PgLease::TimeoutFits), now,
  // or none: never waits, never opens or sets up one (all block), and binds no call's cancellation
  // (for work that serves many callers, started from an event loop). None while a caller waits in
  // Acquire: a connection that comes back is the oldest waiter's, and the loop's work goes the
  // blocking way, behind it.
  std::optional<PgLease> TryAcquire(absl::Time deadline);

  // Reaches PostgreSQL with "SELECT 1" on a pooled connection: OK, or why not.
  absl::Status Ping(absl::Time deadline);

  // Readiness, never queued behind callers: UNAVAILABLE while the database is down; else
  // "SELECT 1" on an idle connection when there is one; OK when every open connection is leased
  // (busy is not down: a query failing on one of them is what marks the pool down).
  absl::Status CheckReady(absl::Time deadline);

  // Fails every waiting and future Acquire, closes idle connections, stops the prober. Leases
  // still out close on release.
  void Close();

  PgPoolStats stats() const;
  // Whether pid is the backend of one of this pool's open connections.
  bool OwnsBackend(int pid) const { return pids_->Contains(pid); }
  const PgPoolOptions& options() const { return options_; }

 private:
  friend class PgLease;
  explicit PgPool(PgPoolOptions options)
      : options_(std::move(options)), hosts_(HostOrder::For(options_.database_url)) {}
  absl::StatusOr<PgLease> AcquireUntimed(absl::Time deadline);
  // With mu_ held and idle_ not empty: leases the warmest idle connection to a caller whose
  // deadline is deadline.
  PgLease TakeIdleLocked(absl::Time deadline);
  absl::StatusOr<std::unique_ptr<PgLease::Slot>> Open(absl::Time deadline);
  void Release(std::unique_ptr<PgLease::Slot> slot, bool broken);
  // With mu_ held: the database is unreachable (why); starts the prober unless it runs.
  void MarkDownLocked(const absl::Status& why);
  // The prober's loop: connect every probe_interval until it works or the pool closes.
  void Probe();

  const PgPoolOptions options_;  // as given
  const HostOrder& hosts_;       // options_.database_url's: which connections it keeps
  const std::shared_ptr<BackendPids> pids_ = std::make_shared<BackendPids>();  // open backends
  mutable std::mutex mu_;                             // guards everything below
  std::condition_variable released_;                  // a slot came back or the pool closed
  std::vector<std::unique_ptr<PgLease::Slot>> idle_;  // open, unused; back is the warmest
  int open_ = 0;                                      // open or opening connections, leased or idle
  int in_use_ = 0;                                    // leased
  std::int64_t generation_ = 0;                       // bumped when a broken connection is seen
  bool closed_ = false;                               // Close was called
  bool down_ = false;                                 // unreachable: fail fast, prober runs
  absl::Status down_reason_;                          // the connect error that marked it down
  absl::Time no_open_before_ = absl::InfinitePast();  // a refused connect holds off opening
  std::deque<std::uint64_t> waiting_;                 // tickets of Acquire's waiters, oldest first
  std::uint64_t next_ticket_ = 0;                     // the next waiter's ticket
  std::condition_variable probe_wake_;                // wakes the prober early on Close
  std::thread prober_;                                // connects while down_; joined by Close
  PgPoolStats counters_;                              // the monotonic counters of stats()
};

}  // namespace hotpath::db
