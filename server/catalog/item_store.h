// The catalog's SQL: every statement a named constant, prepared once per pooled connection, and
// every libpqxx exception turned into an absl::Status before it leaves this class.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/catalog/item_validation.h"
#include "server/catalog/page_token.h"
#include "server/db/pg_pool.h"

namespace hotpath::catalog {

// A page of a list: the rows in order and, for search, their ranks.
struct ItemFilter {
  std::string category;                                                     // empty: any
  std::int64_t min_price_cents = 0;                                         // inclusive
  std::int64_t max_price_cents = std::numeric_limits<std::int64_t>::max();  // inclusive
  bool order_by_category = false;  // (category, id) instead of id
};

struct RankedItem {
  v1::Item item;  // the row
  float rank;     // ts_rank of the query
};

// Writes one import's rows with COPY inside one transaction; nothing is visible until Commit.
class ItemImport {
 public:
  virtual ~ItemImport() = default;
  // first_index: the stream position of items[0], named in errors.
  virtual absl::Status Write(const std::vector<v1::Item>& items, std::int64_t first_index) = 0;
  virtual absl::StatusOr<std::int64_t> Commit() = 0;
};

class ItemStore final {
 public:
  // What the pool must prepare on each connection for this store.
  static std::vector<db::PreparedStatement> Statements();

  explicit ItemStore(db::PgPool* pool) : pool_(pool) {}

  absl::StatusOr<v1::Item> Get(std::int64_t id, absl::Time deadline);
  // In the order of ids; NOT_FOUND naming the missing ones.
  absl::StatusOr<std::vector<v1::Item>> BatchGet(const std::vector<std::int64_t>& ids,
                                                 absl::Time deadline);
  // One query for many ids: each id's item, or NOT_FOUND for it, in the order of ids.
  absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> GetEach(
      const std::vector<std::int64_t>& ids, absl::Time deadline);
  // request_id: the create's idempotency key, "" for none; with one, the row an earlier create
  // with the same key made, if there is one (ABORTED while that create is still committing).
  absl::StatusOr<v1::Item> Create(const v1::Item& item, const std::string& request_id,
                                  absl::Time deadline);
  // expected_version: the etag precondition (ABORTED when it no longer matches).
  absl::StatusOr<v1::Item> Update(const v1::Item& item, const ItemFields& fields,
                                  std::optional<std::int64_t> expected_version,
                                  absl::Time deadline);
  absl::Status Delete(std::int64_t id, std::optional<std::int64_t> expected_version,
                      absl::Time deadline);
  // Up to limit items after cursor in the filter's order.
  absl::StatusOr<std::vector<v1::Item>> List(const ItemFilter& filter, const PageCursor& after,
                                             int limit, absl::Time deadline);
  // Best matches first; after: the last row of the previous page.
  absl::StatusOr<std::vector<RankedItem>> Search(const std::string& query,
                                                 const std::optional<PageCursor>& after, int limit,
                                                 absl::Time deadline);
  // NOT_FOUND when the category has no items.
  absl::StatusOr<v1::CategoryStats> CategoryStats(const std::string& category, absl::Time deadline);
  // Holds one pooled connection until the import commits or is destroyed (rolled back).
  absl::StatusOr<std::unique_ptr<ItemImport>> BeginImport(absl::Time deadline);

 private:
  template <class T, class Fn>
  absl::StatusOr<T> WithConnection(const char* what, absl::Time deadline, bool idempotent, Fn fn);

  db::PgPool* pool_;  // shared with whoever else uses the database
};

// "1234" for version 1234: the etag form of a row version.
std::string EtagForVersion(std::int64_t version);

}  // namespace hotpath::catalog
