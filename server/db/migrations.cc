#include "server/db/migrations.h"

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/db/host_order.h"
#include "server/db/pg_pool.h"
#include "server/db/pg_status.h"

namespace hotpath::db {
namespace {

// An arbitrary constant all hotpath replicas agree on ("hotpath" in ASCII).
constexpr std::int64_t kMigrationLockKey = 0x686f7470617468;

constexpr char kCreateMigrationsTable[] = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    text PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
))sql";

// lock_not_available: a wait past lock_timeout.
constexpr char kLockNotAvailable[] = "55P03";

// One run of the migrations: what it applied, or which step waited past lock_timeout and who
// probably held the lock.
struct Run {
  absl::Status status;
  std::vector<std::string> applied;
  std::string blocked;  // empty: no wait went past lock_timeout
  std::string holder;
};

// The oldest transaction open in this database, other than this session's, in words for the
// operator: the likely holder of a lock a migration waited for (a transaction in another database
// of the same server cannot hold a lock on this one's tables).
std::string OldestTransaction(pqxx::connection& connection) {
  try {
    pqxx::nontransaction tx(connection);
    const pqxx::result oldest = tx.exec(
        "SELECT pid, state, floor(extract(epoch FROM now() - xact_start))::bigint, left(query, 80)"
        " FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend' AND datname = current_database()"
        " ORDER BY xact_start LIMIT 1");
    if (oldest.empty()) return "no transaction is open now";
    return absl::StrCat("the oldest open transaction is pid ", oldest[0][0].c_str(), ", ",
                        oldest[0][1].c_str(), " for ", oldest[0][2].c_str(),
                        " s (last statement: ", oldest[0][3].c_str(), ")");
  } catch (const std::exception& e) {
    return absl::StrCat("the open transactions could not be read: ", ErrorText(e));
  }
}

Run MigrateOnce(const std::string& database_url, const std::vector<Migration>& migrations,
                const MigrateOptions& options) {
  Run run;
  try {
    const std::unique_ptr<pqxx::connection> opened = Connect(database_url, options.connect_timeout);
    pqxx::connection& connection = *opened;
    std::string step = "schema_migrations";
    try {
      pqxx::work tx(connection, "migrate");
      tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")"));
      tx.exec(
          absl::StrCat("SET LOCAL lock_timeout = ",
                       std::max<std::int64_t>(1, absl::ToInt64Milliseconds(options.lock_timeout))));
      tx.exec(kCreateMigrationsTable);
      for (const auto& migration : migrations) {
        step = std::string(migration.version);
        if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", step).empty()) {
          continue;
        }
        tx.exec(std::string(migration.sql));
        tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", step);
        run.applied.push_back(step);
      }
      tx.commit();
    } catch (const pqxx::sql_error& e) {
      // tx has rolled back by now: the connection is free to ask who holds the lock.
      if (e.sqlstate() != kLockNotAvailable) throw;
      run.applied.clear();
      run.blocked = std::move(step);
      run.holder = OldestTransaction(connection);
    }
  } catch (const std::exception& e) {
    run.applied.clear();
    run.status = StatusFromException(e, "migrating the schema");
  }
  return run;
}

}  // namespace

absl::Status Migrate(const std::string& database_url, const std::vector<Migration>& migrations,
                     std::vector<std::string>* applied, const MigrateOptions& options) {
  absl::Duration pause = options.first_pause;
  for (int runs = 1;; ++runs) {
    Run run = MigrateOnce(database_url, migrations, options);
    if (run.blocked.empty()) {
      if (applied != nullptr) {
        applied->insert(applied->end(), run.applied.begin(), run.applied.end());
      }
      return run.status;
    }
    const std::string waited =
        absl::StrCat("migration ", run.blocked, " waited more than ",
                     absl::FormatDuration(options.lock_timeout), " for a lock");
    if (runs >= options.attempts) {
      return absl::UnavailableError(
          absl::StrCat(waited, " in each of ", runs, " runs; nothing was applied; ", run.holder));
    }
    std::cerr << "hotpath: " << waited << " (" << run.holder << "); rolled back, trying again in "
              << pause << "\n";
    absl::SleepFor(pause);
    pause *= 2;
  }
}

}  // namespace hotpath::db
