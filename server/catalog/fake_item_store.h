// An ItemStore in memory, for the catalog's unit tests: the same answers PgItemStore gives for the
// cases the tests use (ids and versions counting up, sku unique, etag preconditions, ordered and
// filtered pages), plus what a test needs to see and steer: how often each read ran, a failure to
// return next, and a gate that holds reads until the test opens it.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/catalog/item_store.h"

namespace hotpath::catalog {

class FakeItemStore final : public ItemStore {
 public:
  // Reads (Get, GetEach, BatchGet, List, Search, CategoryStats) run so far.
  int reads() const { return reads_.load(); }
  // The next call of any kind fails with status instead.
  void FailNext(absl::Status status) {
    std::lock_guard lock(mutex_);
    fail_next_ = std::move(status);
  }
  // Reads read the rows, then wait here until Open: a read caught between its query and its answer.
  void Hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void Open() {
    std::lock_guard lock(mutex_);
    held_ = false;
    opened_.notify_all();
  }
  // Blocks until a held read is waiting.
  void AwaitHeldRead() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [this] { return waiting_ > 0; });
  }
  // A write that did not go through the service (another replica, psql).
  void SetStockBehindTheServicesBack(std::int64_t id, std::int32_t stock) {
    std::lock_guard lock(mutex_);
    v1::Item& item = rows_.at(id);
    item.set_stock(stock);
    Bump(item);
  }

  absl::StatusOr<v1::Item> Get(std::int64_t id, absl::Time) override {
    std::unique_lock lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    auto it = rows_.find(id);
    absl::StatusOr<v1::Item> found =
        it == rows_.end()
            ? absl::StatusOr<v1::Item>(absl::NotFoundError(absl::StrCat("item ", id, " not found")))
            : it->second;
    WaitIfHeld(lock);
    return found;
  }

  absl::StatusOr<std::vector<v1::Item>> BatchGet(const std::vector<std::int64_t>& ids,
                                                 absl::Time) override {
    std::unique_lock lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    std::vector<v1::Item> items;
    std::vector<std::int64_t> missing;
    for (const std::int64_t id : ids) {
      auto it = rows_.find(id);
      if (it == rows_.end()) {
        missing.push_back(id);
      } else {
        items.push_back(it->second);
      }
    }
    if (!missing.empty()) {
      return absl::NotFoundError(absl::StrCat("items not found: ", absl::StrJoin(missing, ", ")));
    }
    return items;
  }

  absl::StatusOr<std::vector<absl::StatusOr<v1::Item>>> GetEach(
      const std::vector<std::int64_t>& ids, absl::Time) override {
    std::unique_lock lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    std::vector<absl::StatusOr<v1::Item>> each;
    for (const std::int64_t id : ids) {
      auto it = rows_.find(id);
      each.push_back(it == rows_.end() ? absl::StatusOr<v1::Item>(absl::NotFoundError(
                                             absl::StrCat("item ", id, " not found")))
                                       : it->second);
    }
    WaitIfHeld(lock);
    return each;
  }

  absl::StatusOr<v1::Item> Create(const v1::Item& item, const std::string& request_id,
                                  absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    if (!request_id.empty()) {
      if (auto earlier = by_request_.find(request_id); earlier != by_request_.end()) {
        return rows_.at(earlier->second);
      }
    }
    for (const auto& [id, row] : rows_) {
      if (row.sku() == item.sku()) return absl::AlreadyExistsError("duplicate key: sku");
    }
    v1::Item row = item;
    row.set_id(next_id_++);
    Bump(row);
    rows_[row.id()] = row;
    if (!request_id.empty()) by_request_[request_id] = row.id();
    return row;
  }

  absl::StatusOr<v1::Item> Update(const v1::Item& item, const ItemFields& fields,
                                  std::optional<std::int64_t> expected_version,
                                  absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    auto it = rows_.find(item.id());
    if (it == rows_.end())
      return absl::NotFoundError(absl::StrCat("item ", item.id(), " not found"));
    v1::Item& row = it->second;
    if (expected_version && EtagForVersion(*expected_version) != row.etag()) {
      return absl::AbortedError(
          absl::StrCat("etag ", *expected_version, " does not match ", row.etag()));
    }
    if (fields.sku) row.set_sku(item.sku());
    if (fields.name) row.set_name(item.name());
    if (fields.description) row.set_description(item.description());
    if (fields.category) row.set_category(item.category());
    if (fields.price_cents) row.set_price_cents(item.price_cents());
    if (fields.stock) row.set_stock(item.stock());
    if (fields.tags) *row.mutable_tags() = item.tags();
    Bump(row);
    return row;
  }

  absl::Status Delete(std::int64_t id, std::optional<std::int64_t> expected_version,
                      absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    auto it = rows_.find(id);
    if (it == rows_.end()) return absl::NotFoundError(absl::StrCat("item ", id, " not found"));
    if (expected_version && EtagForVersion(*expected_version) != it->second.etag()) {
      return absl::AbortedError("etag does not match");
    }
    rows_.erase(it);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::Item>> List(const ItemFilter& filter, const PageCursor& after,
                                             int limit, absl::Time) override {
    std::unique_lock lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    std::vector<v1::Item> page;
    for (const auto& [id, row] : rows_) {
      if (!filter.category.empty() && row.category() != filter.category) continue;
      if (row.price_cents() < filter.min_price_cents || row.price_cents() > filter.max_price_cents)
        continue;
      page.push_back(row);
    }
    auto key = [&filter](const v1::Item& row) {
      return std::make_pair(filter.order_by_category ? row.category() : std::string(), row.id());
    };
    std::sort(page.begin(), page.end(),
              [&key](const v1::Item& a, const v1::Item& b) { return key(a) < key(b); });
    const auto cursor = std::make_pair(
        filter.order_by_category ? after.last_category : std::string(), after.last_id);
    std::erase_if(page, [&](const v1::Item& row) { return key(row) <= cursor; });
    if (page.size() > static_cast<std::size_t>(limit)) page.resize(limit);
    WaitIfHeld(lock);
    return page;
  }

  // Every item whose name contains the query, rank 1, by id.
  absl::StatusOr<std::vector<RankedItem>> Search(const std::string& query,
                                                 const std::optional<PageCursor>& after, int limit,
                                                 absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    std::vector<RankedItem> hits;
    for (const auto& [id, row] : rows_) {
      if (after && id <= after->last_id) continue;
      if (!absl::StrContains(row.name(), query)) continue;
      if (hits.size() == static_cast<std::size_t>(limit)) break;
      hits.push_back({row, 1.0f});
    }
    return hits;
  }

  absl::StatusOr<v1::CategoryStats> CategoryStats(const std::string& category,
                                                  absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    ++reads_;
    v1::CategoryStats stats;
    stats.set_category(category);
    for (const auto& [id, row] : rows_) {
      if (row.category() != category) continue;
      stats.set_item_count(stats.item_count() + 1);
      stats.set_stock_total(stats.stock_total() + row.stock());
    }
    if (stats.item_count() == 0) return absl::NotFoundError("no items in category");
    return stats;
  }

  // Rows become visible at Commit, all together.
  absl::StatusOr<std::unique_ptr<ItemImport>> BeginImport(absl::Time) override {
    std::lock_guard lock(mutex_);
    if (auto failure = TakeFailure()) return *failure;
    return std::make_unique<Import>(this);
  }

 private:
  class Import final : public ItemImport {
   public:
    explicit Import(FakeItemStore* store) : store_(store) {}
    absl::Status Write(const std::vector<v1::Item>& items, std::int64_t) override {
      pending_.insert(pending_.end(), items.begin(), items.end());
      return absl::OkStatus();
    }
    absl::StatusOr<std::int64_t> Commit() override {
      for (const v1::Item& item : pending_) {
        auto row = store_->Create(item, "", absl::InfiniteFuture());
        if (!row.ok()) return row.status();
      }
      return static_cast<std::int64_t>(pending_.size());
    }

   private:
    FakeItemStore* store_;           // where the rows go
    std::vector<v1::Item> pending_;  // written, not committed
  };

  // Under mutex_.
  std::optional<absl::Status> TakeFailure() { return std::exchange(fail_next_, std::nullopt); }
  void Bump(v1::Item& row) { row.set_etag(EtagForVersion(++next_version_)); }
  void WaitIfHeld(std::unique_lock<std::mutex>& lock) {
    if (!held_) return;
    ++waiting_;
    opened_.notify_all();
    opened_.wait(lock, [this] { return !held_; });
    --waiting_;
  }

  std::mutex mutex_;                                // guards everything below
  std::condition_variable opened_;                  // Open, or a read waiting
  std::map<std::int64_t, v1::Item> rows_;           // by id
  std::map<std::string, std::int64_t> by_request_;  // create request_id -> id
  std::int64_t next_id_ = 1;                        // the next row's id
  std::int64_t next_version_ = 0;                   // the last version handed out
  std::optional<absl::Status> fail_next_;           // FailNext
  bool held_ = false;                               // Hold
  int waiting_ = 0;                                 // reads held right now
  std::atomic<int> reads_{0};                       // reads()
};

}  // namespace hotpath::catalog
