// The way every store runs its SQL: a pooled connection limited to the caller's deadline, libpqxx
// exceptions turned into statuses, and a read retried once on a fresh connection when the one it
// got turns out stale (PostgreSQL restarted since it was last used).
#pragma once

#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/db/pg_pool.h"
#include "server/db/pg_status.h"

namespace hotpath::db {

// Runs fn(pqxx::connection&) -> absl::StatusOr<T> on a connection of pool. what names the work in
// errors ("reading an item"); idempotent: safe to run again after a lost connection (reads).
template <class T, class Fn>
absl::StatusOr<T> WithConnection(PgPool& pool, const char* what, absl::Time deadline,
                                 bool idempotent, Fn&& fn) {
  for (int attempt = 0;; ++attempt) {
    auto lease = pool.Acquire(deadline);
    if (!lease.ok()) return lease.status();
    if (const absl::Status limited = lease->LimitTo(deadline); !limited.ok()) {
      // Nothing was sent yet, so even a write may go again on a fresh connection.
      if (absl::IsUnavailable(limited) && attempt == 0) continue;
      return limited;
    }
    try {
      return fn(lease->connection());
    } catch (const std::exception& e) {
      // Cut by the pool's watch (whatever libpqxx made of it): the server had not answered by the
      // caller's deadline.
      if (lease->cut()) {
        return absl::DeadlineExceededError(
            absl::StrCat("deadline exceeded while ", what, ": the database did not answer"));
      }
      if (IsConnectionLost(e)) {
        lease->MarkBroken();
        // A stale connection (the server restarted since it was used) fails on first use: a read
        // is safe to repeat once on a fresh one.
        if (idempotent && attempt == 0) continue;
      }
      return StatusFromException(e, what);
    }
  }
}

}  // namespace hotpath::db
