// What the catalog needs of a store of items, whatever holds them.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/catalog/item_validation.h"
#include "server/catalog/page_token.h"

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

// Writes one import's rows; nothing is visible until Commit.
class ItemImport {
 public:
  virtual ~ItemImport() = default;
  // first_index: the stream position of items[0], named in errors.
  virtual absl::Status Write(const std::vector<v1::Item>& items, std::int64_t first_index) = 0;
  virtual absl::StatusOr<std::int64_t> Commit() = 0;
};

// Where the catalog's items live. PgItemStore (pg_item_store.h) is the one the server uses; the
// catalog's logic is unit-tested against an in-memory one (fake_item_store.h). Every method
// returns a status and never throws; deadline bounds the call.
class ItemStore {
 public:
  virtual ~ItemStore() = default;

  virtual absl::StatusOr<v1::Item> Get(std::int64_t id, absl::Time deadline) = 0;
  // In the order of ids; NOT_FOUND naming the missing ones.
  virtual absl::StatusOr<std::vector<v1::Item>> BatchGet(const std::vector<std::int64_t>& ids,
                                                         absl::Time deadline) = 0;
  // One query for many ids: each id's item, or NOT_FOUND for it, in the order of ids.
  virtual absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> GetEach(
      const std::vector<std::int64_t>& ids, absl::Time deadline) = 0;
  // GetEach without blocking the calling thread, for a store that can: started when the thread
  // runs an event loop (app::EventLoop) and the store can read at once, answered later on that
  // loop; answered with nullopt when it could not be finished that way (a lost connection): read
  // with GetEach then. Returns false, leaving answer unused, when it cannot start (the default).
  using EachAnswer = absl::AnyInvocable<
      void(std::optional<absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>>>) &&>;
  virtual bool StartGetEach(const std::vector<std::int64_t>& ids, absl::Time deadline,
                            EachAnswer& answer) {
    return false;
  }
  // request_id: the create's idempotency key, "" for none; with one, the row an earlier create
  // with the same key made, if there is one (ABORTED while that create is still committing).
  // ALREADY_EXISTS for a taken sku.
  virtual absl::StatusOr<v1::Item> Create(const v1::Item& item, const std::string& request_id,
                                          absl::Time deadline) = 0;
  // fields: which of item's fields to write. expected_version: the etag precondition (ABORTED
  // when it no longer matches); NOT_FOUND for no such item.
  virtual absl::StatusOr<v1::Item> Update(const v1::Item& item, const ItemFields& fields,
                                          std::optional<std::int64_t> expected_version,
                                          absl::Time deadline) = 0;
  virtual absl::Status Delete(std::int64_t id, std::optional<std::int64_t> expected_version,
                              absl::Time deadline) = 0;
  // Up to limit items after cursor in the filter's order.
  virtual absl::StatusOr<std::vector<v1::Item>> List(const ItemFilter& filter,
                                                     const PageCursor& after, int limit,
                                                     absl::Time deadline) = 0;
  // Best matches first; after: the last row of the previous page.
  virtual absl::StatusOr<std::vector<RankedItem>> Search(const std::string& query,
                                                         const std::optional<PageCursor>& after,
                                                         int limit, absl::Time deadline) = 0;
  // NOT_FOUND when the category has no items.
  virtual absl::StatusOr<v1::CategoryStats> CategoryStats(const std::string& category,
                                                          absl::Time deadline) = 0;
  // An import that writes nothing visible until it commits; destroyed uncommitted, rolled back.
  virtual absl::StatusOr<std::unique_ptr<ItemImport>> BeginImport(absl::Time deadline) = 0;
  // Writes made elsewhere (another replica, psql) changed items ids (every item when empty) and
  // committed before position: reads of them must include it. For stores that read from copies
  // that may lag (standbys); 0: the position is not known. Nothing by default.
  virtual void Changed(const std::vector<std::int64_t>& ids, std::uint64_t position) {}
};

// "1234" for version 1234: the etag form of a row version.
inline std::string EtagForVersion(std::int64_t version) { return absl::StrCat(version); }

}  // namespace hotpath::catalog
