#include "server/catalog/pg_item_store.h"

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <pqxx/pqxx>
#include <unordered_map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "server/app/event_loop.h"
#include "server/db/copy_text.h"
#include "server/db/loop_query.h"
#include "server/db/pg_status.h"
#include "server/db/pg_time.h"
#include "server/db/with_connection.h"
#include "server/rpc/consistency.h"

namespace hotpath::catalog {
namespace {

// The columns every item query returns, in RowToItem's order. Times come as the server prints
// them (db/pg_time.h: cheaper for it than converting them to epoch microseconds).
#define HOTPATH_ITEM_COLUMNS                                         \
  "id, sku, name, description, category, price_cents, stock, tags, " \
  "create_time, update_time, version"

constexpr char kGetItem[] = "get_item";
constexpr char kGetItemSql[] = "SELECT " HOTPATH_ITEM_COLUMNS " FROM items WHERE id = $1";

constexpr char kBatchGetItems[] = "batch_get_items";
constexpr char kBatchGetItemsSql[] =
    "SELECT " HOTPATH_ITEM_COLUMNS " FROM items WHERE id = ANY($1::bigint[])";

constexpr char kCreateItem[] = "create_item";
constexpr char kCreateItemSql[] =
    "INSERT INTO items (sku, name, description, category, price_cents, stock, tags) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::text[]) RETURNING " HOTPATH_ITEM_COLUMNS;

// A create with an idempotency key: inserts, or returns the row an earlier create with the same
// key made. No row: that earlier create committed after this statement's snapshot was taken (the
// insert waited for it); kItemByRequestId, a statement of its own, sees it then.
constexpr char kCreateItemOnce[] = "create_item_once";
constexpr char kCreateItemOnceSql[] =
    "WITH inserted AS ("
    "INSERT INTO items (sku, name, description, category, price_cents, stock, tags, "
    "create_request_id) VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8) "
    "ON CONFLICT (create_request_id) WHERE create_request_id IS NOT NULL DO NOTHING "
    "RETURNING " HOTPATH_ITEM_COLUMNS
    ") "
    "SELECT * FROM inserted UNION ALL "
    "SELECT " HOTPATH_ITEM_COLUMNS " FROM items WHERE create_request_id = $8 LIMIT 1";
constexpr char kItemByRequestId[] = "item_by_request_id";
constexpr char kItemByRequestIdSql[] =
    "SELECT " HOTPATH_ITEM_COLUMNS " FROM items WHERE create_request_id = $1";

// One statement for every update mask: each field is set only when its flag is true.
constexpr char kUpdateItem[] = "update_item";
constexpr char kUpdateItemSql[] =
    "UPDATE items SET "
    "sku = CASE WHEN $2 THEN $3 ELSE sku END, "
    "name = CASE WHEN $4 THEN $5 ELSE name END, "
    "description = CASE WHEN $6 THEN $7 ELSE description END, "
    "category = CASE WHEN $8 THEN $9 ELSE category END, "
    "price_cents = CASE WHEN $10 THEN $11::bigint ELSE price_cents END, "
    "stock = CASE WHEN $12 THEN $13::integer ELSE stock END, "
    "tags = CASE WHEN $14 THEN $15::text[] ELSE tags END, "
    "version = version + 1, update_time = now() "
    "WHERE id = $1 AND ($16::bigint IS NULL OR version = $16::bigint) "
    "RETURNING " HOTPATH_ITEM_COLUMNS;

constexpr char kDeleteItem[] = "delete_item";
constexpr char kDeleteItemSql[] =
    "DELETE FROM items WHERE id = $1 AND ($2::bigint IS NULL OR version = $2::bigint) RETURNING id";

// Why an update or delete matched no row: gone, or its version moved on.
constexpr char kItemVersion[] = "item_version";
constexpr char kItemVersionSql[] = "SELECT version FROM items WHERE id = $1";

// Keyset pages. Each filter shape has its own statement so every plan can use its index
// (items_pkey, or items_category_id for a category or the (category, id) order). The pool plans
// each statement once (generic plans, pg_pool.h), so the predicates name the index they need:
// a category's page compares (category, id), which only items_category_id can serve; with
// `category = $1 AND id > $2` alone a generic plan walks items_pkey with the category as a filter.
constexpr char kListById[] = "list_by_id";
constexpr char kListByIdSql[] =
    "SELECT " HOTPATH_ITEM_COLUMNS
    " FROM items "
    "WHERE id > $1 AND price_cents BETWEEN $2 AND $3 ORDER BY id LIMIT $4";

constexpr char kListInCategory[] = "list_in_category";
constexpr char kListInCategorySql[] =
    "SELECT " HOTPATH_ITEM_COLUMNS
    " FROM items "
    "WHERE category = $1 AND (category, id) > ($1, $2) AND price_cents BETWEEN $3 AND $4 "
    "ORDER BY category, id LIMIT $5";

constexpr char kListByCategoryOrder[] = "list_by_category_order";
constexpr char kListByCategoryOrderSql[] =
    "SELECT " HOTPATH_ITEM_COLUMNS
    " FROM items "
    "WHERE (category, id) > ($1, $2) AND price_cents BETWEEN $3 AND $4 "
    "ORDER BY category, id LIMIT $5";

// Ranked full-text search; keyset on (rank DESC, id).
constexpr char kSearchItems[] = "search_items";
constexpr char kSearchItemsSql[] =
    "SELECT * FROM (SELECT " HOTPATH_ITEM_COLUMNS
    ", ts_rank(search_vector, q) AS rank "
    "FROM items, websearch_to_tsquery('english', $1) AS q WHERE search_vector @@ q) AS hits "
    "WHERE $2::real IS NULL OR rank < $2::real OR (rank = $2::real AND id > $3) "
    "ORDER BY rank DESC, id LIMIT $4";

constexpr char kCategoryStats[] = "category_stats";
constexpr char kCategoryStatsSql[] =
    "SELECT count(*), coalesce(sum(stock), 0)::bigint, coalesce(min(price_cents), 0), "
    "coalesce(max(price_cents), 0), coalesce(avg(price_cents), 0)::float8 "
    "FROM items WHERE category = $1";

#undef HOTPATH_ITEM_COLUMNS

constexpr int kSearchRankColumn = 11;

void SetTimestamp(std::int64_t micros, google::protobuf::Timestamp* timestamp) {
  std::int64_t seconds = micros / 1000000;
  std::int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  timestamp->set_seconds(seconds);
  timestamp->set_nanos(static_cast<std::int32_t>(rest * 1000));
}

// A row's fields as PostgreSQL printed them, from libpqxx (blocking reads) or straight from
// libpq (db::PgRows, reads on an event loop): Text(i) is NUL-terminated, as libpq keeps it.
struct PqxxFields {
  std::string_view Text(int i) const { return {row[i].c_str(), row[i].size()}; }
  const pqxx::row& row;
};
struct PgFields {
  std::string_view Text(int i) const { return rows.Text(row, i); }
  const db::PgRows& rows;
  int row;
};

// The integer PostgreSQL printed in text (its column's type guarantees the form); false if not.
template <class Int>
bool ToInt(std::string_view text, Int* value) {
  return absl::SimpleAtoi(absl::string_view(text.data(), text.size()), value);
}

// False when a numeric column does not read as its type (nothing a sound schema returns).
template <class Fields>
[[nodiscard]] bool FieldsToItem(const Fields& row, v1::Item* item) {
  std::int64_t id = 0, price_cents = 0, version = 0;
  std::int32_t stock = 0;
  if (!ToInt(row.Text(0), &id) || !ToInt(row.Text(5), &price_cents) ||
      !ToInt(row.Text(6), &stock) || !ToInt(row.Text(10), &version)) {
    return false;
  }
  item->set_id(id);
  const std::string_view sku = row.Text(1);
  item->set_sku(sku.data(), sku.size());
  const std::string_view name = row.Text(2);
  item->set_name(name.data(), name.size());
  const std::string_view description = row.Text(3);
  item->set_description(description.data(), description.size());
  const std::string_view category = row.Text(4);
  item->set_category(category.data(), category.size());
  item->set_price_cents(price_cents);
  item->set_stock(stock);
  pqxx::array_parser tags(row.Text(7).data(), pqxx::internal::encoding_group::UTF8);
  for (auto next = tags.get_next(); next.first != pqxx::array_parser::done;
       next = tags.get_next()) {
    if (next.first == pqxx::array_parser::string_value) item->add_tags(std::move(next.second));
  }
  SetTimestamp(db::TimestamptzMicros(row.Text(8)), item->mutable_create_time());
  SetTimestamp(db::TimestamptzMicros(row.Text(9)), item->mutable_update_time());
  item->set_etag(EtagForVersion(version));
  return true;
}

constexpr char kUnreadableRow[] = "an item row whose numbers do not read as numbers";

// Throws as libpqxx's own conversions do (the store's caller turns it into INTERNAL).
void RowToItem(const pqxx::row& row, v1::Item* item) {
  if (!FieldsToItem(PqxxFields{row}, item)) throw pqxx::conversion_error(kUnreadableRow);
}

// ids as kBatchGetItems' one parameter, a bigint[] literal ("{1,2,3}").
std::string IdArrayLiteral(const std::vector<std::int64_t>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

// Each of ids' item among found (by id), or NOT_FOUND, in the order of ids (repeats answered
// alike).
std::vector<absl::StatusOr<v1::Item>> EachOf(const std::vector<std::int64_t>& ids,
                                             std::unordered_map<std::int64_t, v1::Item>& found) {
  std::vector<absl::StatusOr<v1::Item>> results;
  results.reserve(ids.size());  // no reallocation: a repeat copies an earlier element
  std::unordered_map<std::int64_t, std::size_t> first;  // where each id was answered
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (auto seen = first.find(ids[i]); seen != first.end()) {
      results.push_back(results[seen->second]);
      continue;
    }
    first.emplace(ids[i], i);
    if (auto it = found.find(ids[i]); it != found.end()) {
      results.push_back(std::move(it->second));
    } else {
      results.push_back(absl::NotFoundError(absl::StrCat("item ", ids[i], " not found")));
    }
  }
  return results;
}

// The failures of a read on a standby that the primary may not share (the standby went away, a
// conflict with recovery cancelled the query): the primary answers those instead.
bool PrimaryMayAnswer(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

const char* Flag(bool on) { return on ? "true" : "false"; }

// The row's etag mismatch or absence, after an update or delete matched nothing.
absl::Status ExplainNoMatch(pqxx::connection& connection, std::int64_t id) {
  pqxx::nontransaction tx(connection);
  const pqxx::result current = tx.exec_prepared(kItemVersion, id);
  if (current.empty()) return absl::NotFoundError(absl::StrCat("item ", id, " not found"));
  return absl::AbortedError(absl::StrCat("etag mismatch: item ", id, " has changed (etag is now \"",
                                         EtagForVersion(current[0][0].as<std::int64_t>()),
                                         "\"); read it again and retry"));
}

class CopyImport final : public ItemImport {
 public:
  // committed: told the connection once the import has committed.
  CopyImport(db::PgLease lease, absl::Time deadline,
             std::function<void(pqxx::connection&)> committed)
      : lease_(std::move(lease)),
        deadline_(deadline),
        tx_(lease_.connection(), "import"),
        committed_(std::move(committed)) {
    // statement_timeout bounds the whole COPY: the caller's deadline, or none at all.
    const absl::Duration left = deadline - absl::Now();
    // PostgreSQL takes at most INT_MAX ms (24.8 days); a longer deadline is as good as none.
    const std::int64_t ms =
        deadline == absl::InfiniteFuture() || left >= absl::Milliseconds(INT32_MAX)
            ? 0
            : std::max<std::int64_t>(1, absl::ToInt64Milliseconds(left));
    tx_.exec(absl::StrCat("SET LOCAL statement_timeout = ", ms));
    stream_ = std::make_unique<db::CopyWriter>(
        tx_, "items",
        std::vector<std::string>{"sku", "name", "description", "category", "price_cents", "stock",
                                 "tags"});
    // Between batches the connection waits for the client, not for PostgreSQL: unbounded.
    lease_.Unwatch();
  }

  ~CopyImport() override {
    if (stream_ != nullptr) {
      // Abandoned: end the COPY so the transaction can roll back; the connection is kept only if
      // that worked.
      lease_.Watch(deadline_);
      try {
        stream_->Complete();
      } catch (const std::exception&) {
        lease_.MarkBroken();
      }
    }
  }

  absl::Status Write(const std::vector<v1::Item>& items, std::int64_t first_index) override {
    try {
      rows_.Clear();
      for (const auto& item : items) {
        rows_.Text(item.sku());
        rows_.Text(item.name());
        rows_.Text(item.description());
        rows_.Text(item.category());
        rows_.Integer(item.price_cents());
        rows_.Integer(item.stock());
        rows_.TextArray(item.tags());
        rows_.EndRow();
      }
      // A batch PostgreSQL does not take is one it did not answer.
      lease_.Watch(deadline_);
      stream_->Write(rows_);
      lease_.Unwatch();
      written_ += static_cast<std::int64_t>(items.size());
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return Fail(e, first_index);
    }
  }

  absl::StatusOr<std::int64_t> Commit() override {
    lease_.Watch(deadline_);
    try {
      stream_->Complete();
      stream_.reset();
      tx_.commit();
      committed_(lease_.connection());
      return written_;
    } catch (const std::exception& e) {
      stream_.reset();
      return Fail(e, 0);
    }
  }

 private:
  // COPY reports the failing row as "COPY items, line N" (1-based): name it by stream index.
  absl::Status Fail(const std::exception& e, std::int64_t fallback_index) {
    if (db::IsConnectionLost(e)) lease_.MarkBroken();
    const absl::Status status = db::StatusFromException(e, "importing items");
    const absl::string_view text = e.what();
    std::int64_t index = -1;
    if (const auto at = text.find("COPY items, line "); at != absl::string_view::npos) {
      absl::string_view digits = text.substr(at + 17);
      digits = digits.substr(0, digits.find_first_not_of("0123456789"));
      if (std::int64_t line; absl::SimpleAtoi(digits, &line)) index = line - 1;
    }
    if (index < 0) return status;
    return absl::Status(
        status.code(),
        absl::StrCat("item ", index, " rejected, nothing imported: ", status.message()));
  }

  db::PgLease lease_;                                 // the connection the import holds
  const absl::Time deadline_;                         // the caller's
  pqxx::work tx_;                                     // everything or nothing
  std::function<void(pqxx::connection&)> committed_;  // after the commit
  std::unique_ptr<db::CopyWriter> stream_;            // the COPY in progress; null once completed
  db::CopyText rows_;                                 // the batch being written, reused
  std::int64_t written_ = 0;                          // rows sent so far
};

}  // namespace

std::vector<db::PreparedStatement> PgItemStore::Statements() {
  return {
      {kGetItem, kGetItemSql},
      {kBatchGetItems, kBatchGetItemsSql},
      {kCreateItem, kCreateItemSql},
      {kCreateItemOnce, kCreateItemOnceSql},
      {kItemByRequestId, kItemByRequestIdSql},
      {kUpdateItem, kUpdateItemSql},
      {kDeleteItem, kDeleteItemSql},
      {kItemVersion, kItemVersionSql},
      {kListById, kListByIdSql},
      {kListInCategory, kListInCategorySql},
      {kListByCategoryOrder, kListByCategoryOrderSql},
      {kSearchItems, kSearchItemsSql},
      {kCategoryStats, kCategoryStatsSql},
  };
}

template <class T, class Fn>
absl::StatusOr<T> PgItemStore::WithConnection(const char* what, absl::Time deadline,
                                              bool idempotent, Fn fn) {
  return db::WithConnection<T>(*pool_, what, deadline, idempotent, std::move(fn));
}

template <class T, class Floor, class Fn>
absl::StatusOr<T> PgItemStore::Read(const char* what, absl::Time deadline, Floor floor, Fn fn) {
  if (replicas_ != nullptr) {
    if (db::PgPool* target = ReadTarget(floor()); target != pool_) {
      auto result = db::WithConnection<T>(*target, what, deadline, true, fn);
      // An answer, or a failure that is the request's own.
      if (!PrimaryMayAnswer(result.status().code())) return result;
      // The primary answers instead: a monotonic call's later reads stay there.
      if (rpc::Consistency* consistency = rpc::Consistency::Current();
          consistency != nullptr && consistency->monotonic()) {
        consistency->set_source(pool_);
      }
    }
  }
  return WithConnection<T>(what, deadline, true, std::move(fn));
}

db::PgPool* PgItemStore::ReadTarget(std::uint64_t floor) {
  if (replicas_ == nullptr) return pool_;
  rpc::Consistency* consistency = rpc::Consistency::Current();
  const std::uint64_t position =
      std::max<std::uint64_t>(floor, consistency != nullptr ? consistency->read_after() : 0);
  // Monotonic reads: one standby's replay only moves forward, and the primary is ahead of every
  // standby, so a call whose reads stay on the standby of its first read, or move to the primary
  // for good, never reads older data than it already has. Two standbys may be at different
  // positions: round robin between them could. The primary is no standby of replicas_:
  // On(pool_) reads the primary.
  const bool monotonic = consistency != nullptr && consistency->monotonic();
  auto* source = monotonic ? static_cast<db::PgPool*>(consistency->source()) : nullptr;
  db::PgPool* standby =
      source != nullptr ? replicas_->On(source, position) : replicas_->For(position);
  db::PgPool* target = standby != nullptr ? standby : pool_;
  if (monotonic) consistency->set_source(target);
  return target;
}

void PgItemStore::Wrote(pqxx::connection& c, const std::vector<std::int64_t>& keys) {
  if (replicas_ == nullptr) return;
  std::uint64_t position = 0;
  try {
    position = db::WalInsertPosition(c);
  } catch (const pqxx::usage_error& e) {
    // A fault of this code, not of the database (a transaction left open on c once hid every
    // create's position): said, then handled as below.
    std::cerr << "hotpath: asking a write's position misused libpqxx: " << e.what() << "\n";
  } catch (const std::exception&) {
    // Written, but where is not known: no standby is read until the primary is sampled again.
  }
  if (position == 0) return replicas_->WroteUnknown();
  if (rpc::Consistency* consistency = rpc::Consistency::Current()) {
    consistency->Committed(position);
  }
  if (keys.empty()) return replicas_->WroteAll(position);
  replicas_->Wrote(position, keys);
}

void PgItemStore::MayHaveWritten(const absl::Status& status) {
  // A connection lost mid-statement leaves the outcome unknown.
  if (replicas_ != nullptr && (absl::IsUnavailable(status) || absl::IsUnknown(status))) {
    replicas_->WroteUnknown();
  }
}

void PgItemStore::Changed(const std::vector<std::int64_t>& ids, std::uint64_t position) {
  if (replicas_ == nullptr || position == 0) return;
  if (ids.empty()) return replicas_->WroteAll(position);
  replicas_->Wrote(position, ids);
}

absl::StatusOr<v1::Item> PgItemStore::Get(std::int64_t id, absl::Time deadline) {
  return Read<v1::Item>(
      "reading an item", deadline, [&] { return replicas_->FloorOf({id}); },
      [id](pqxx::connection& c) -> absl::StatusOr<v1::Item> {
        pqxx::nontransaction tx(c);
        const pqxx::result rows = tx.exec_prepared(kGetItem, id);
        if (rows.empty()) return absl::NotFoundError(absl::StrCat("item ", id, " not found"));
        v1::Item item;
        RowToItem(rows[0], &item);
        return item;
      });
}

absl::StatusOr<std::vector<v1::Item>> PgItemStore::BatchGet(const std::vector<std::int64_t>& ids,
                                                            absl::Time deadline) {
  auto each = GetEach(ids, deadline);
  if (!each.ok()) return each.status();
  std::vector<v1::Item> items;
  std::vector<std::int64_t> missing;
  items.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if ((*each)[i].ok()) {
      items.push_back(*std::move((*each)[i]));
    } else if (missing.size() < 20) {
      missing.push_back(ids[i]);
    }
  }
  if (!missing.empty()) {
    return absl::NotFoundError(absl::StrCat("items not found: ", absl::StrJoin(missing, ", ")));
  }
  return items;
}

absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> PgItemStore::GetEach(
    const std::vector<std::int64_t>& ids, absl::Time deadline) {
  const std::string literal = IdArrayLiteral(ids);
  using Results = std::vector<absl::StatusOr<v1::Item>>;
  return Read<Results>(
      "reading items", deadline, [&] { return replicas_->FloorOf(ids); },
      [&](pqxx::connection& c) -> absl::StatusOr<Results> {
        pqxx::nontransaction tx(c);
        const pqxx::result rows = tx.exec_prepared(kBatchGetItems, literal);
        std::unordered_map<std::int64_t, v1::Item> found;
        found.reserve(rows.size());
        for (const auto& row : rows) {
          v1::Item item;
          RowToItem(row, &item);
          found.emplace(item.id(), std::move(item));
        }
        return EachOf(ids, found);
      });
}

bool PgItemStore::StartGetEach(const std::vector<std::int64_t>& ids, absl::Time deadline,
                               EachAnswer& answer) {
  boost::asio::io_context* loop = app::EventLoop::Current();
  if (loop == nullptr) return false;
  db::PgPool* target = ReadTarget(replicas_ != nullptr ? replicas_->FloorOf(ids) : 0);
  std::optional<db::PgLease> lease = target->TryAcquire(deadline);
  if (!lease.has_value()) {
    if (replicas_ != nullptr) replicas_->Unread(target != pool_ ? target : nullptr);
    return false;
  }
  std::vector<std::string> params{IdArrayLiteral(ids)};
  db::StartLoopQuery(*loop, *std::move(lease), "reading items", kBatchGetItems, std::move(params),
                     deadline,
                     [ids, standby = target != pool_,
                      answer = std::move(answer)](absl::StatusOr<db::PgRows> rows) mutable {
                       // A lost connection, or a standby's own failure: the blocking read tries
                       // again (a fresh connection; the primary).
                       if (!rows.ok() && (absl::IsUnavailable(rows.status()) ||
                                          (standby && PrimaryMayAnswer(rows.status().code())))) {
                         return std::move(answer)(std::nullopt);
                       }
                       if (!rows.ok()) return std::move(answer)(rows.status());
                       std::unordered_map<std::int64_t, v1::Item> found;
                       found.reserve(rows->size());
                       for (int i = 0; i < rows->size(); ++i) {
                         v1::Item item;
                         if (!FieldsToItem(PgFields{*rows, i}, &item)) {
                           return std::move(answer)(db::StatusFromException(
                               pqxx::conversion_error(kUnreadableRow), "reading items"));
                         }
                         found.emplace(item.id(), std::move(item));
                       }
                       std::move(answer)(EachOf(ids, found));
                     });
  return true;
}

absl::StatusOr<v1::Item> PgItemStore::Create(const v1::Item& item, const std::string& request_id,
                                             absl::Time deadline) {
  const std::string tags = db::TextArrayLiteral(item.tags());
  auto result = WithConnection<v1::Item>(
      "creating an item", deadline, false, [&](pqxx::connection& c) -> absl::StatusOr<v1::Item> {
        pqxx::result rows;
        // A retry whose insert looked for its key before the first attempt's row had it, then
        // met that row's sku: the first attempt's item is still its answer.
        std::exception_ptr sku_taken;
        try {
          pqxx::nontransaction tx(c);
          rows = request_id.empty()
                     ? tx.exec_prepared(kCreateItem, item.sku(), item.name(), item.description(),
                                        item.category(), item.price_cents(), item.stock(), tags)
                     : tx.exec_prepared(kCreateItemOnce, item.sku(), item.name(),
                                        item.description(), item.category(), item.price_cents(),
                                        item.stock(), tags, request_id);
        } catch (const pqxx::unique_violation&) {
          if (request_id.empty()) throw;
          sku_taken = std::current_exception();
        }
        if (rows.empty()) {
          rows = pqxx::nontransaction(c).exec_prepared(kItemByRequestId, request_id);
        }
        if (rows.empty() && sku_taken) std::rethrow_exception(sku_taken);
        if (rows.empty()) {
          // Its item was deleted between the two statements.
          return absl::AbortedError(absl::StrCat("a create with request_id \"", request_id,
                                                 "\" changed meanwhile; retry"));
        }
        v1::Item created;
        RowToItem(rows[0], &created);
        Wrote(c, {created.id()});
        return created;
      });
  MayHaveWritten(result.status());
  return result;
}

absl::StatusOr<v1::Item> PgItemStore::Update(const v1::Item& item, const ItemFields& fields,
                                             std::optional<std::int64_t> expected_version,
                                             absl::Time deadline) {
  const std::string tags = db::TextArrayLiteral(item.tags());
  const std::string price = absl::StrCat(item.price_cents());
  const std::string stock = absl::StrCat(item.stock());
  const std::string version = expected_version ? absl::StrCat(*expected_version) : "";
  auto result = WithConnection<v1::Item>(
      "updating an item", deadline, false, [&](pqxx::connection& c) -> absl::StatusOr<v1::Item> {
        pqxx::result rows;
        {
          pqxx::nontransaction tx(c);
          rows = tx.exec_prepared(
              kUpdateItem, item.id(), Flag(fields.sku), item.sku(), Flag(fields.name), item.name(),
              Flag(fields.description), item.description(), Flag(fields.category), item.category(),
              Flag(fields.price_cents), price, Flag(fields.stock), stock, Flag(fields.tags), tags,
              expected_version ? version.c_str() : nullptr);
        }
        if (rows.empty()) return ExplainNoMatch(c, item.id());
        v1::Item updated;
        RowToItem(rows[0], &updated);
        Wrote(c, {updated.id()});
        return updated;
      });
  MayHaveWritten(result.status());
  return result;
}

absl::Status PgItemStore::Delete(std::int64_t id, std::optional<std::int64_t> expected_version,
                                 absl::Time deadline) {
  const std::string version = expected_version ? absl::StrCat(*expected_version) : "";
  auto result = WithConnection<bool>(
      "deleting an item", deadline, false, [&](pqxx::connection& c) -> absl::StatusOr<bool> {
        pqxx::result rows;
        {
          pqxx::nontransaction tx(c);
          rows = tx.exec_prepared(kDeleteItem, id, expected_version ? version.c_str() : nullptr);
        }
        if (rows.empty()) return ExplainNoMatch(c, id);
        Wrote(c, {id});
        return true;
      });
  MayHaveWritten(result.status());
  return result.status();
}

absl::StatusOr<std::vector<v1::Item>> PgItemStore::List(const ItemFilter& filter,
                                                        const PageCursor& after, int limit,
                                                        absl::Time deadline) {
  return Read<std::vector<v1::Item>>(
      "listing items", deadline, [&] { return replicas_->FloorOfAll(); },
      [&](pqxx::connection& c) -> absl::StatusOr<std::vector<v1::Item>> {
        pqxx::nontransaction tx(c);
        pqxx::result rows;
        if (!filter.category.empty()) {
          rows = tx.exec_prepared(kListInCategory, filter.category, after.last_id,
                                  filter.min_price_cents, filter.max_price_cents, limit);
        } else if (filter.order_by_category) {
          rows = tx.exec_prepared(kListByCategoryOrder, after.last_category, after.last_id,
                                  filter.min_price_cents, filter.max_price_cents, limit);
        } else {
          rows = tx.exec_prepared(kListById, after.last_id, filter.min_price_cents,
                                  filter.max_price_cents, limit);
        }
        std::vector<v1::Item> items(rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) RowToItem(rows[i], &items[i]);
        return items;
      });
}

absl::StatusOr<std::vector<RankedItem>> PgItemStore::Search(const std::string& query,
                                                            const std::optional<PageCursor>& after,
                                                            int limit, absl::Time deadline) {
  // The previous page's last rank, exactly.
  const std::string rank = after && after->last_rank ? RankText(*after->last_rank) : "";
  const std::int64_t after_id = after ? after->last_id : 0;
  return Read<std::vector<RankedItem>>(
      "searching items", deadline, [&] { return replicas_->FloorOfAll(); },
      [&](pqxx::connection& c) -> absl::StatusOr<std::vector<RankedItem>> {
        pqxx::nontransaction tx(c);
        const pqxx::result rows = tx.exec_prepared(
            kSearchItems, query, rank.empty() ? nullptr : rank.c_str(), after_id, limit);
        std::vector<RankedItem> items(rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
          RowToItem(rows[i], &items[i].item);
          items[i].rank = rows[i][kSearchRankColumn].as<float>();
        }
        return items;
      });
}

absl::StatusOr<v1::CategoryStats> PgItemStore::CategoryStats(const std::string& category,
                                                             absl::Time deadline) {
  return Read<v1::CategoryStats>(
      "computing category stats", deadline, [&] { return replicas_->FloorOfAll(); },
      [&](pqxx::connection& c) -> absl::StatusOr<v1::CategoryStats> {
        pqxx::nontransaction tx(c);
        const pqxx::result rows = tx.exec_prepared(kCategoryStats, category);
        const pqxx::row row = rows.at(0);
        if (row[0].as<std::int64_t>() == 0) {
          return absl::NotFoundError(absl::StrCat("category \"", category, "\" has no items"));
        }
        v1::CategoryStats stats;
        stats.set_category(category);
        stats.set_item_count(row[0].as<std::int64_t>());
        stats.set_stock_total(row[1].as<std::int64_t>());
        stats.set_min_price_cents(row[2].as<std::int64_t>());
        stats.set_max_price_cents(row[3].as<std::int64_t>());
        stats.set_avg_price_cents(row[4].as<double>());
        return stats;
      });
}

absl::StatusOr<std::unique_ptr<ItemImport>> PgItemStore::BeginImport(absl::Time deadline) {
  auto lease = pool_->Acquire(deadline);
  if (!lease.ok()) return lease.status();
  try {
    return std::unique_ptr<ItemImport>(
        new CopyImport(*std::move(lease), deadline, [this](pqxx::connection& c) { Wrote(c, {}); }));
  } catch (const std::exception& e) {
    return db::StatusFromException(e, "starting an import");
  }
}

}  // namespace hotpath::catalog
