#include "server/db/pg_pool.h"

#include <algorithm>
#include <optional>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/db/host_order.h"
#include "server/db/raw_connection.h"

namespace hotpath::db {

void BackendPids::Add(int pid) {
  std::lock_guard lock(mu_);
  pids_.push_back(pid);
}

void BackendPids::Remove(int pid) {
  std::lock_guard lock(mu_);
  if (auto it = std::find(pids_.begin(), pids_.end(), pid); it != pids_.end()) pids_.erase(it);
}

bool BackendPids::Contains(int pid) const {
  std::lock_guard lock(mu_);
  return std::find(pids_.begin(), pids_.end(), pid) != pids_.end();
}

std::string ErrorText(const std::exception& e) {
  std::string why = e.what();
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  return why;
}

PgLease::PgLease(PgLease&& other) noexcept
    : pool_(other.pool_),
      slot_(std::move(other.slot_)),
      broken_(other.broken_),
      cancellation_(std::exchange(other.cancellation_, nullptr)) {}

PgLease::~PgLease() {
  // First: once this returns, no cancel request for this call can be sent on the connection.
  if (cancellation_ != nullptr) cancellation_->ClearOnCancel();
  if (slot_ == nullptr) return;
  // Then: once this returns, the watch no longer touches the socket.
  Unwatch();
  // Read before the move: the order in which arguments are evaluated is unspecified, and clang
  // moves slot_ into the first parameter before it evaluates the second.
  const bool broken = broken_ || slot_->cancel_sent || slot_->cut;
  pool_->Release(std::move(slot_), broken);
}

namespace {

// What Acquire answers a call whose caller went away before its statement started.
absl::Status CallerGone() {
  return absl::CancelledError("the caller went away before the query started");
}

// The bound of a lease for a caller whose deadline is deadline: the caller's deadline, or a
// statement's longest (max_statement_timeout) from now when that comes first (a caller with no
// deadline), plus the grace. A lease that runs several statements for such a caller is bound by
// one statement's longest in all: a transaction whose statements take that long together is cut as
// one that went unanswered. A deadline already past runs no statement (LimitTo), and its lease,
// given back at once, is not cut.
absl::Time LeaseBound(absl::Time deadline, absl::Duration max_statement_timeout) {
  const absl::Time now = absl::Now();
  return std::clamp(deadline, now, now + max_statement_timeout) + kAnswerGrace;
}

}  // namespace

PgLease::PgLease(PgPool* pool, std::unique_ptr<Slot> slot, absl::Time deadline)
    : pool_(pool), slot_(std::move(slot)) {
  Watch(deadline);
}

void PgLease::Watch(absl::Time deadline) {
  Unwatch();
  if (slot_->cut) return;  // already: the next statement fails as on a lost connection
  slot_->watch = AnswerWatch::Instance().Watch(
      slot_->socket, LeaseBound(deadline, pool_->options().max_statement_timeout), &slot_->cut);
}

void PgLease::Unwatch() { AnswerWatch::Instance().Unwatch(std::exchange(slot_->watch, 0)); }

namespace {

// The statement_timeout, in ms, that stops a statement a little before deadline (a tenth of the
// time left, at most 50 ms: the caller's deadline is a moment later here than at the client
// (transit), and a statement still blocked when the client hears DEADLINE_EXCEEDED could
// otherwise go on to commit what the client was told timed out), at most max; 0: no time left.
std::int64_t TimeoutFor(absl::Time deadline, absl::Duration max) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  const absl::Duration budget = left - std::min(left / 10, absl::Milliseconds(50));
  return std::max<std::int64_t>(1, absl::ToInt64Milliseconds(std::min(budget, max)));
}

// TimeoutFor's timeout, or DEADLINE_EXCEEDED when no time is left to start a statement.
absl::StatusOr<std::int64_t> TimeoutToStart(absl::Time deadline, absl::Duration max) {
  const std::int64_t timeout = TimeoutFor(deadline, max);
  if (timeout == 0)
    return absl::DeadlineExceededError("deadline passed before the query could start");
  return timeout;
}

// Re-setting statement_timeout costs a round trip: the current value is kept while it is no
// longer than wanted and not much shorter.
bool Fits(std::int64_t current_ms, std::int64_t want_ms) {
  return current_ms > 0 && current_ms <= want_ms && current_ms * 2 >= want_ms;
}

// Whether a session whose statement_timeout is current_ms stops a statement by deadline, no later
// and not much sooner.
bool TimeoutFits(std::int64_t current_ms, absl::Time deadline, absl::Duration max) {
  const std::int64_t want = TimeoutFor(deadline, max);
  return want > 0 && Fits(current_ms, want);
}

}  // namespace

bool PgLease::TimeoutFits(absl::Time deadline) const {
  return db::TimeoutFits(slot_->timeout_ms, deadline, pool_->options().max_statement_timeout);
}

absl::Status PgLease::LimitTo(absl::Time deadline) {
  const absl::StatusOr<std::int64_t> wanted =
      TimeoutToStart(deadline, pool_->options().max_statement_timeout);
  if (!wanted.ok()) return wanted.status();
  const std::int64_t want = *wanted;
  if (Fits(slot_->timeout_ms, want)) return absl::OkStatus();
  // Set a little (1/32) under what is wanted: the next callers' deadlines, as long as this one's
  // and computed a moment later, want a few ms less, and would find it too long by those ms.
  const std::int64_t timeout = std::max<std::int64_t>(1, want - want / 32);
  try {
    pqxx::nontransaction tx(*slot_->connection);
    tx.exec(absl::StrCat("SET statement_timeout = ", timeout));
    slot_->timeout_ms = timeout;
    return absl::OkStatus();
  } catch (const pqxx::broken_connection& e) {
    MarkBroken();
    return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what()));
  } catch (const std::exception& e) {
    MarkBroken();
    return absl::UnavailableError(absl::StrCat("could not set statement_timeout: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<PgPool>> PgPool::Create(PgPoolOptions options) {
  options.min_size = std::clamp(options.min_size, 0, std::max(1, options.max_size));
  options.max_size = std::max(1, options.max_size);
  std::unique_ptr<PgPool> pool(new PgPool(std::move(options)));
  const absl::Time deadline = absl::Now() + pool->options_.connect_timeout;
  std::vector<PgLease> warm;
  for (int i = 0; i < std::max(1, pool->options_.min_size); ++i) {
    auto lease = pool->Acquire(deadline);
    if (!lease.ok()) return lease.status();
    warm.push_back(*std::move(lease));
  }
  return pool;
}

PgPool::~PgPool() { Close(); }

absl::StatusOr<PgLease> PgPool::Acquire(absl::Time deadline) {
  rpc::Cancellation* call = rpc::Cancellation::Current();
  // A caller already gone takes no connection from those still waiting (the streams a closed
  // connection left, which gRPC still hands over, would each take one in turn).
  if (call != nullptr && call->cancelled()) return CallerGone();
  const absl::Time start = absl::Now();
  auto lease = AcquireUntimed(deadline);
  if (options_.on_acquire_wait) options_.on_acquire_wait(absl::Now() - start);
  if (!lease.ok() || call == nullptr) return lease;
  PgLease::Slot* slot = lease->slot_.get();
  const bool registered = call->OnCancel([slot] {
    slot->cancel_sent = true;
    // PQcancel sends the request on a connection of its own and waits, with no bound, for the
    // server to close it: a server that stopped answering never does. What runs this action
    // holds the call's cancellation, which the lease's release waits for, so the request goes out
    // after it, on the Canceller's thread, with what it needs copied (PQgetCancel).
    std::shared_ptr<PGcancel> request(PQgetCancel(slot->raw), PQfreeCancel);
    if (request == nullptr) return;
    auto send = std::make_shared<rpc::Cancellation>();
    send->OnCancel([request] {
      char why[256];
      // Failing means nothing ran, or the server is gone: either way the statement is not going on.
      PQcancel(request.get(), why, sizeof why);
    });
    rpc::CancelSoon(std::move(send));
  });
  if (!registered) return CallerGone();
  lease->cancellation_ = call;
  return lease;
}

namespace {

// "SELECT 1" on lease's connection, within deadline (and max_statement_timeout); a failure marks
// the connection broken. The bound is SET LOCAL, sent in the same query (one implicit transaction,
// one round trip): the session's statement_timeout stays what the reads set, so a readiness check
// every scrape leaves no connection with a timeout too short for the next read (LimitTo would).
absl::Status SelectOne(PgLease& lease, absl::Time deadline, absl::Duration max_statement_timeout) {
  const absl::StatusOr<std::int64_t> timeout = TimeoutToStart(deadline, max_statement_timeout);
  if (!timeout.ok()) return timeout.status();
  try {
    pqxx::nontransaction tx(lease.connection());
    tx.exec(absl::StrCat("SET LOCAL statement_timeout = ", *timeout, "; SELECT 1"));
    return absl::OkStatus();
  } catch (const std::exception& e) {
    lease.MarkBroken();
    return absl::UnavailableError(absl::StrCat("database unavailable: ", e.what()));
  }
}

}  // namespace

absl::Status PgPool::Ping(absl::Time deadline) {
  auto lease = Acquire(deadline);
  if (!lease.ok()) return lease.status();
  return SelectOne(*lease, deadline, options_.max_statement_timeout);
}

absl::Status PgPool::CheckReady(absl::Time deadline) {
  std::optional<PgLease> lease;
  {
    std::lock_guard lock(mu_);
    if (closed_) return absl::UnavailableError("database pool is closed");
    if (down_) return down_reason_;
    if (!idle_.empty()) {
      lease.emplace(TakeIdleLocked(deadline));
    } else if (open_ > 0) {
      return absl::OkStatus();  // every connection is at work
    }
  }
  if (!lease) return Ping(deadline);  // none open: open one
  return SelectOne(*lease, deadline, options_.max_statement_timeout);
}

std::optional<PgLease> PgPool::TryAcquire(absl::Time deadline) {
  std::optional<PgLease> lease;
  {
    std::lock_guard lock(mu_);
    // Callers waiting in Acquire come first: a connection that came back is the oldest's.
    if (closed_ || down_ || !waiting_.empty()) return std::nullopt;
    // The warmest that fits.
    auto fits = std::find_if(idle_.rbegin(), idle_.rend(), [&](const auto& slot) {
      return TimeoutFits(slot->timeout_ms, deadline, options_.max_statement_timeout);
    });
    if (fits == idle_.rend()) return std::nullopt;
    std::unique_ptr<PgLease::Slot> slot = std::move(*fits);
    idle_.erase(std::next(fits).base());
    ++in_use_;
    ++counters_.idle_leases;
    lease.emplace(PgLease(this, std::move(slot), deadline));
  }
  if (options_.on_acquire_wait) options_.on_acquire_wait(absl::ZeroDuration());
  return lease;
}

absl::StatusOr<PgLease> PgPool::AcquireUntimed(absl::Time deadline) {
  // Never an unbounded wait (and never InfiniteFuture, which no clock can wait for).
  const absl::Time wait_deadline = std::min(deadline, absl::Now() + options_.max_acquire_wait);
  std::unique_lock lock(mu_);
  // Once this caller has to wait, its place in line: only the oldest waiter takes a connection
  // that comes back (or opens one), so a caller that releases and asks again at once goes behind
  // those already waiting instead of winning every connection from them.
  std::optional<std::uint64_t> ticket;
  const auto leave_line = [&] {
    if (!ticket.has_value()) return;
    std::erase(waiting_, *ticket);
    ticket.reset();
    if (!waiting_.empty()) released_.notify_all();  // the next in line may go
  };
  for (;;) {
    if (closed_) {
      leave_line();
      return absl::UnavailableError("database pool is closed");
    }
    if (down_) {
      leave_line();
      ++counters_.fail_fast;
      return absl::UnavailableError(
          absl::StrCat(down_reason_.message(), " (reconnecting in the background)"));
    }
    const bool my_turn = waiting_.empty() || (ticket.has_value() && waiting_.front() == *ticket);
    if (my_turn && !idle_.empty()) {
      leave_line();
      return TakeIdleLocked(deadline);
    }
    const absl::Time now = absl::Now();
    if (ticket.has_value() && now >= wait_deadline) {  // waited, and no connection came in time
      leave_line();
      ++counters_.acquire_timeouts;
      return absl::DeadlineExceededError(absl::StrCat(
          "timed out waiting for a database connection (all ", options_.max_size, " in use)"));
    }
    if (my_turn && open_ < options_.max_size && now >= no_open_before_) {
      leave_line();
      ++open_;
      ++in_use_;
      lock.unlock();
      auto slot = Open(wait_deadline);
      if (slot.ok()) return PgLease(this, *std::move(slot), deadline);
      lock.lock();
      --open_;
      --in_use_;
      ++counters_.connect_errors;
      released_.notify_all();
      if (!absl::IsUnavailable(slot.status())) return slot.status();
      // With no connection left, the database is down. With some still open, it refused one
      // more (max_connections reached by other clients, say): that is a limit, not an outage,
      // so wait for one of ours to come back, and try opening again only after a while.
      if (open_ == 0) {
        MarkDownLocked(slot.status());
        return slot.status();
      }
      no_open_before_ = absl::Now() + options_.probe_interval;
      continue;
    }
    if (!ticket.has_value()) {
      ticket = next_ticket_++;
      waiting_.push_back(*ticket);
    }
    absl::Time wake = wait_deadline;
    if (open_ < options_.max_size) wake = std::min(wake, no_open_before_);
    released_.wait_until(lock, absl::ToChronoTime(wake));
  }
}

PgLease PgPool::TakeIdleLocked(absl::Time deadline) {
  auto slot = std::move(idle_.back());  // the warmest
  idle_.pop_back();
  ++in_use_;
  return PgLease(this, std::move(slot), deadline);
}

absl::StatusOr<std::unique_ptr<PgLease::Slot>> PgPool::Open(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("deadline passed before a database connection could open");
  }
  auto slot = std::make_unique<PgLease::Slot>();
  std::optional<Watched> watched;
  absl::Time setup_limit = absl::InfiniteFuture();  // the setup's own bound, without the caller's
  try {
    slot->connection = Connect(options_.database_url, std::min(left, options_.connect_timeout));
    // Setting the session up is bounded as connecting was: a server may take connections and then
    // answer nothing.
    setup_limit = absl::Now() + options_.connect_timeout;
    watched.emplace(slot->connection->sock(), std::min(deadline, setup_limit) + kAnswerGrace);
    pqxx::nontransaction(*slot->connection).exec(kPinnedSessionSettings);
    // Prepared here, now, with no caller's deadline or cancellation on the connection: prepared
    // lazily on first use (libpqxx's default), a PREPARE cut short by a statement_timeout or a
    // cancel could leave libpqxx and the server disagreeing about it, and every later use of
    // the connection fails with "prepared statement ... already exists".
    for (const std::string& sql : options_.on_connect) {
      pqxx::nontransaction(*slot->connection).exec(sql);
    }
    for (const auto& statement : options_.statements) {
      slot->connection->prepare(statement.name, statement.sql);
      slot->connection->prepare_now(statement.name);
    }
    // A broken connection is discarded, never reopened by libpqxx (its default): raw stays its.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    slot->connection->inhibit_reactivation(true);
#pragma GCC diagnostic pop
    slot->raw = RawConnection::Of(*slot->connection);
    slot->socket = PQsocket(slot->raw);
  } catch (const std::exception& e) {
    if (!watched || !watched->cut()) {
      return absl::UnavailableError(absl::StrCat("database unavailable: ", ErrorText(e)));
    }
  }
  if (watched->cut()) {
    // Cut at the caller's deadline, sooner than the server had to answer by: the caller's time
    // ran out, which says nothing of the database (a busy server may take a while to set a
    // session up), so the pool does not count it down.
    if (deadline < setup_limit) {
      return absl::DeadlineExceededError(
          "deadline exceeded while opening a database connection: the database did not answer "
          "in time");
    }
    return absl::UnavailableError(
        "database unavailable: the server took the connection and then did not answer");
  }
  watched.reset();
  slot->pid = slot->connection->backendpid();
  slot->pids = pids_;
  pids_->Add(slot->pid);
  std::lock_guard lock(mu_);
  slot->generation = generation_;
  ++counters_.opened;
  return slot;
}

void PgPool::Release(std::unique_ptr<PgLease::Slot> slot, bool broken) {
  // A primary that stopped taking writes (fenced for a switchover, or demoted) stopped for every
  // connection to it: they all go, like the older ones after a failure.
  if (!broken && slot->raw != nullptr && !hosts_.Keeps(slot->raw)) broken = true;
  std::vector<std::unique_ptr<PgLease::Slot>> discard;
  {
    std::lock_guard lock(mu_);
    --in_use_;
    if (broken) {
      ++counters_.broken;
      // Whatever broke this one (most often a server restart) broke the older idle ones too: drop
      // them now rather than fail one caller per stale connection.
      if (slot->generation == generation_) ++generation_;
      for (auto& idle : idle_) {
        if (idle->generation < generation_) discard.push_back(std::move(idle));
      }
      std::erase(idle_, nullptr);
    }
    if (broken || closed_ || !slot->connection->is_open()) {
      discard.push_back(std::move(slot));
    } else {
      idle_.push_back(std::move(slot));
    }
    open_ -= static_cast<int>(discard.size());
  }
  released_.notify_all();
  // discard's destructors close the connections outside the lock.
}

void PgPool::Close() {
  std::vector<std::unique_ptr<PgLease::Slot>> discard;
  std::thread prober;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    discard.swap(idle_);
    open_ -= static_cast<int>(discard.size());
    prober.swap(prober_);
  }
  released_.notify_all();
  probe_wake_.notify_all();
  if (prober.joinable()) prober.join();
}

void PgPool::MarkDownLocked(const absl::Status& why) {
  if (down_ || closed_) return;
  down_ = true;
  down_reason_ = why;
  // Whatever idle connections remain predate the outage.
  ++generation_;
  if (prober_.joinable()) prober_.detach();  // a finished prober's thread; nothing left to join
  prober_ = std::thread([this] { Probe(); });
}

void PgPool::Probe() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      probe_wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.probe_interval),
                           [this] { return closed_; });
      if (closed_) return;
    }
    auto slot = Open(absl::Now() + options_.connect_timeout);
    std::lock_guard lock(mu_);
    if (!slot.ok()) {
      ++counters_.connect_errors;
      down_reason_ = slot.status();
      continue;
    }
    down_ = false;
    if (closed_) return;
    // The probe's connection is the first of the new generation.
    (*slot)->generation = generation_;
    ++open_;
    idle_.push_back(*std::move(slot));
    released_.notify_all();
    return;
  }
}

PgPoolStats PgPool::stats() const {
  std::lock_guard lock(mu_);
  PgPoolStats stats = counters_;
  stats.in_use = in_use_;
  stats.idle = static_cast<int>(idle_.size());
  stats.waiting = static_cast<int>(waiting_.size());
  stats.max_size = options_.max_size;
  stats.down = down_;
  return stats;
}

}  // namespace hotpath::db
