#include "server/db/migrations.h"

#include <cstdint>
#include <memory>
#include <pqxx/connection>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "server/db/host_order.h"
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

}  // namespace

absl::Status Migrate(const std::string& database_url, const std::vector<Migration>& migrations,
                     std::vector<std::string>* applied, absl::Duration connect_timeout) {
  try {
    const std::unique_ptr<pqxx::connection> opened = Connect(database_url, connect_timeout);
    pqxx::connection& connection = *opened;
    pqxx::work tx(connection, "migrate");
    tx.exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")"));
    tx.exec(kCreateMigrationsTable);
    for (const auto& migration : migrations) {
      const std::string version(migration.version);
      if (!tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", version).empty()) {
        continue;
      }
      tx.exec(std::string(migration.sql));
      tx.exec_params("INSERT INTO schema_migrations (version) VALUES ($1)", version);
      if (applied != nullptr) applied->push_back(version);
    }
    tx.commit();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return StatusFromException(e, "migrating the schema");
  }
}

}  // namespace hotpath::db
