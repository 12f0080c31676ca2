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

namespace hotpath::catalog {

class PgItemStore final : public ItemStore {
 public:
  // What the pool must prepare on each connection for this store.
  static std::vector<db::PreparedStatement> Statements();

  explicit PgItemStore(db::PgPool* pool) : pool_(pool) {}

  absl::StatusOr<v1::Item> Get(std::int64_t id, absl::Time deadline) override;
  absl::StatusOr<std::vector<v1::Item>> BatchGet(const std::vector<std::int64_t>& ids,
                                                 absl::Time deadline) override;
  absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> GetEach(
      const std::vector<std::int64_t>& ids, absl::Time deadline) override;
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

 private:
  template <class T, class Fn>
  absl::StatusOr<T> WithConnection(const char* what, absl::Time deadline, bool idempotent, Fn fn);

  db::PgPool* pool_;  // shared with whoever else uses the database
};

}  // namespace hotpath::catalog
