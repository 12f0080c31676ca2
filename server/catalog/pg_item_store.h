// The catalog's SQL: every statement a named constant, prepared once per pooled connection, and
// every libpqxx exception turned into an absl::Status before it leaves this class.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/catalog/item_store.h"
#include "server/db/pg_pool.h"
#include "server/db/read_replicas.h"

namespace hotpath::catalog {

class PgItemStore final : public ItemStore {
 public:
  // What the pool must prepare on each connection for this store.
  static std::vector<db::PreparedStatement> Statements();

  // replicas: hot standbys for reads (null: every read goes to pool, the primary's).
  explicit PgItemStore(db::PgPool* pool, db::ReadReplicas* replicas = nullptr)
      : pool_(pool), replicas_(replicas) {}

  absl::StatusOr<v1::Item> Get(std::int64_t id, absl::Time deadline) override;
  absl::StatusOr<std::vector<v1::Item>> BatchGet(const std::vector<std::int64_t>& ids,
                                                 absl::Time deadline) override;
  absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> GetEach(
      const std::vector<std::int64_t>& ids, absl::Time deadline) override;
  // On the calling event loop's thread, with an idle connection of the pool the read goes to
  // (db::StartLoopQuery).
  bool StartGetEach(const std::vector<std::int64_t>& ids, absl::Time deadline,
                    EachAnswer& answer) override;
  absl::StatusOr<v1::Item> Create(const v1::Item& item, const std::string& request_id,
                                  absl::Time deadline) override;
  absl::StatusOr<v1::Item> Update(const v1::Item& item, const ItemFields& fields,
                                  std::optional<std::int64_t> expected_version,
                                  absl::Time deadline) override;
  absl::Status Delete(std::int64_t id, std::optional<std::int64_t> expected_version,
                      absl::Time deadline) override;
  absl::StatusOr<std::vector<v1::Item>> List(const ItemFilter& filter, const PageCursor& after,
                                             int limit, absl::Time deadline) override;
  absl::StatusOr<std::vector<RankedItem>> Search(const std::string& query,
                                                 const std::optional<PageCursor>& after, int limit,
                                                 absl::Time deadline) override;
  absl::StatusOr<v1::CategoryStats> CategoryStats(const std::string& category,
                                                  absl::Time deadline) override;
  // A COPY inside one transaction, holding one pooled connection until it commits or is destroyed.
  absl::StatusOr<std::unique_ptr<ItemImport>> BeginImport(absl::Time deadline) override;
  void Changed(const std::vector<std::int64_t>& ids, std::uint64_t position) override;

 private:
  template <class T, class Fn>
  absl::StatusOr<T> WithConnection(const char* what, absl::Time deadline, bool idempotent, Fn fn);
  // A read: on a standby that has replayed what it must include (floor(), and the call's
  // read-your-writes position), else on the primary; a standby that fails leaves it to the
  // primary.
  template <class T, class Floor, class Fn>
  absl::StatusOr<T> Read(const char* what, absl::Time deadline, Floor floor, Fn fn);
  // A write (or a failure that may have written) finished on c: with standbys, tells the call
  // and the floors the position of its commit (keys: the rows written; empty: any row).
  void Wrote(pqxx::connection& c, const std::vector<std::int64_t>& keys);
  void MayHaveWritten(const absl::Status& status);
  // Where a read that must include floor goes: a usable standby's pool, else the primary's.
  db::PgPool* ReadTarget(std::uint64_t floor);

  db::PgPool* pool_;            // shared with whoever else uses the database
  db::ReadReplicas* replicas_;  // standbys for reads; null: none
};

}  // namespace hotpath::catalog
