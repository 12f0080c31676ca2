// Versioned schema migrations. Each module brings its own, compiled in from its .sql files by
// hotpath_embed_migrations (cmake/hotpath.cmake).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hotpath::db {

struct Migration {
  absl::string_view version;  // file name without .sql, e.g. "0001_items"; applied in this order
  absl::string_view sql;      // the file's text
};

// How a migration run waits. A pending migration's DDL takes its table's strongest lock, and while
// it waits for one (behind a long transaction, say) every other query on that table queues behind
// it: the wait is bounded, and past it the run rolls back, nothing applied, and tries again.
struct MigrateOptions {
  // The connection opens as every other (host_order.h), within this.
  absl::Duration connect_timeout = absl::Seconds(5);
  // The longest wait for any one lock (PostgreSQL's lock_timeout, set once the advisory lock is
  // held, so replicas waiting for a peer's run are not bound by it).
  absl::Duration lock_timeout = absl::Seconds(2);
  // Runs at most; the pauses between them double from first_pause.
  int attempts = 5;
  absl::Duration first_pause = absl::Seconds(1);
};

// Applies the migrations not yet recorded in schema_migrations, all in one transaction that holds
// an advisory lock, so replicas starting at once apply each exactly once. Returns what was applied.
// When every run waited past lock_timeout: UNAVAILABLE naming the migration that waited and the
// oldest open transaction in its database (the likely holder), nothing applied.
absl::Status Migrate(const std::string& database_url, const std::vector<Migration>& migrations,
                     std::vector<std::string>* applied = nullptr,
                     const MigrateOptions& options = {});

}  // namespace hotpath::db
