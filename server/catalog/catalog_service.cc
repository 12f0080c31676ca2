#include "server/catalog/catalog_service.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/rpc/consistency.h"
#include "server/rpc/status.h"

namespace hotpath::catalog {
namespace {

// Room kept in an answer for what is not an item: the next page token and the fields' tags.
constexpr std::size_t kAnswerEnvelopeBytes = 1024;

// Bytes an item adds to a repeated message field: its tag, its length and itself.
std::size_t RepeatedFieldBytes(const v1::Item& item) {
  const std::size_t size = item.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

// How many of items, from the first, fit in max_bytes of answer (at least one: a single item is
// always far smaller than any limit, its fields being bounded).
template <class Items, class ItemOf>
std::size_t ItemsThatFit(const Items& items, std::size_t max_bytes, ItemOf item_of) {
  const std::size_t budget =
      max_bytes > kAnswerEnvelopeBytes ? max_bytes - kAnswerEnvelopeBytes : 0;
  std::size_t bytes = 0;
  for (std::size_t n = 0; n < items.size(); ++n) {
    bytes += RepeatedFieldBytes(item_of(items[n]));
    if (bytes > budget) return std::max<std::size_t>(n, 1);
  }
  return items.size();
}

// A batch is all its items or an error: one that cannot fit in an answer is refused, naming the
// limit, rather than left for gRPC to fail after the fact.
absl::StatusOr<v1::BatchGetItemsResponse> FitOrRefuse(v1::BatchGetItemsResponse response,
                                                      std::size_t max_bytes) {
  const std::size_t bytes = response.ByteSizeLong();
  if (bytes <= max_bytes) return response;
  return absl::FailedPreconditionError(absl::StrCat(
      "the ", response.items_size(), " items asked come to ", bytes, " bytes, more than the ",
      max_bytes, " an answer may hold (--max_message_bytes): ask for fewer ids at once"));
}

// The request fields a list token is bound to: change any of them and old tokens are refused.
std::string ListScope(const v1::ListItemsRequest& r) {
  return absl::StrCat("list|", r.category(), "|",
                      r.has_min_price_cents() ? absl::StrCat(r.min_price_cents().value()) : "", "|",
                      r.has_max_price_cents() ? absl::StrCat(r.max_price_cents().value()) : "", "|",
                      r.order_by());
}

std::string SearchScope(const v1::SearchItemsRequest& r) {
  return absl::StrCat("search|", r.query());
}

template <class Request>
ItemFilter FilterOf(const Request& r) {
  ItemFilter filter;
  filter.category = r.category();
  if (r.has_min_price_cents()) filter.min_price_cents = r.min_price_cents().value();
  if (r.has_max_price_cents()) filter.max_price_cents = r.max_price_cents().value();
  return filter;
}

// A write's unique violation is always the sku: say so plainly.
absl::Status ExplainConflict(const absl::Status& status, const std::string& sku) {
  if (!absl::IsAlreadyExists(status)) return status;
  return absl::AlreadyExistsError(absl::StrCat("an item with sku \"", sku, "\" already exists"));
}

class ExportSource final : public rpc::StreamSource<v1::Item> {
 public:
  ExportSource(ItemStore* store, ItemFilter filter, absl::Time deadline)
      : store_(store), filter_(std::move(filter)), deadline_(deadline) {}

  absl::Status Next(std::vector<v1::Item>* batch, bool* done) override {
    auto items = store_->List(filter_, after_, CatalogService::kExportBatchSize, deadline_);
    if (!items.ok()) return items.status();
    *done = items->size() < static_cast<std::size_t>(CatalogService::kExportBatchSize);
    if (!items->empty()) after_.last_id = items->back().id();
    *batch = *std::move(items);
    return absl::OkStatus();
  }

 private:
  ItemStore* store_;     // where items are read
  ItemFilter filter_;    // which items
  absl::Time deadline_;  // the call's deadline
  PageCursor after_;     // last id sent
};

class ImportSink final : public rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse> {
 public:
  // on_commit: runs after the rows are committed, before the call is answered.
  ImportSink(ItemStore* store, absl::Time deadline, std::function<void()> on_commit)
      : store_(store), deadline_(deadline), on_commit_(std::move(on_commit)) {}

  absl::Status Consume(std::vector<v1::CreateItemRequest>& batch) override {
    std::vector<v1::Item> items;
    items.reserve(batch.size());
    for (auto& request : batch) {
      const std::int64_t index = received_++;
      rpc::FieldViolations violations;
      const std::string prefix = absl::StrCat("items[", index, "]");
      if (!request.has_item()) {
        violations.Add(prefix, "is required");
      } else {
        ValidateItemFields(request.item(), ItemFields::All(), prefix, violations);
      }
      if (!violations.empty()) {
        return rpc::WithMessagePrefix(
            violations.ToStatus(), absl::StrCat("item ", index, " rejected, nothing imported: "));
      }
      items.push_back(std::move(*request.mutable_item()));
    }
    if (import_ == nullptr) {
      auto import = store_->BeginImport(deadline_);
      if (!import.ok()) return import.status();
      import_ = *std::move(import);
    }
    return import_->Write(items, received_ - static_cast<std::int64_t>(items.size()));
  }

  absl::StatusOr<v1::ImportItemsResponse> Finish(const std::atomic<bool>& cancelled) override {
    if (cancelled.load() || absl::Now() > deadline_) {
      return absl::CancelledError("import cancelled before it completed; nothing imported");
    }
    v1::ImportItemsResponse response;
    if (import_ == nullptr) return response;  // an empty stream
    auto count = import_->Commit();
    if (!count.ok()) return count.status();
    on_commit_();
    response.set_imported_count(*count);
    return response;
  }

 private:
  ItemStore* store_;                    // where items go
  absl::Time deadline_;                 // the call's deadline
  std::int64_t received_ = 0;           // messages seen so far
  std::unique_ptr<ItemImport> import_;  // opened with the first batch
  std::function<void()> on_commit_;     // cache upkeep after a commit
};

// Runs load on the scheduler and hands its result to done as a shared value.
template <class T, class Load>
void LoadWith(const cache::Scheduler& scheduler, CatalogService::Done<T> done, Load load) {
  auto shared = std::make_shared<CatalogService::Done<T>>(std::move(done));
  absl::Status refused = scheduler([shared, load = std::move(load)]() mutable {
    absl::StatusOr<T> result = load();
    if (!result.ok()) return (*shared)(result.status());
    (*shared)(std::make_shared<const T>(*std::move(result)));
  });
  if (!refused.ok()) (*shared)(std::move(refused));
}

// The write position this call's reads must include (read-your-writes); 0: none asked.
std::uint64_t ReadAfter() {
  const rpc::Consistency* consistency = rpc::Consistency::Current();
  return consistency != nullptr ? consistency->read_after() : 0;
}

// LoadWith for a read that must include position: past every cache (a cache cannot tell how
// recent its entries are), with the position Current() where load reads the store.
template <class T, class Load>
void LoadAfter(const cache::Scheduler& scheduler, std::uint64_t position,
               CatalogService::Done<T> done, Load load) {
  LoadWith<T>(scheduler, std::move(done), [position, load = std::move(load)]() mutable {
    rpc::Consistency consistency(position);
    rpc::Consistency::Scope scope(&consistency);
    return load();
  });
}

}  // namespace

CatalogService::CatalogService(ItemStore* store, const PageTokenCodec* tokens,
                               cache::Scheduler scheduler, const CatalogCacheOptions& cache_options,
                               cache::Scheduler read_scheduler)
    : store_(store),
      tokens_(tokens),
      scheduler_(std::move(scheduler)),
      load_timeout_(cache_options.load_timeout) {
  if (cache_options.item_reads.max_in_flight > 0) {
    cache::BatchLoaderOptions reads = cache_options.item_reads;
    if (!cache_options.enabled || cache_options.item_refresh_at <= 0) {
      reads.background_wait = absl::ZeroDuration();  // no refreshes: no flusher thread
    } else {
      reads.background_wait = std::min(
          reads.background_wait, cache_options.items.ttl * (1 - cache_options.item_refresh_at) / 4);
    }
    item_reads_ = std::make_unique<cache::BatchLoader<std::int64_t, v1::Item>>(
        reads,
        [this](const std::vector<std::int64_t>& ids, absl::Time deadline) {
          return store_->GetEach(ids, LoadDeadline(deadline));
        },
        read_scheduler ? std::move(read_scheduler) : scheduler_);
    if (cache_options.item_reads_on_loops) {
      item_reads_->set_start([this](const std::vector<std::int64_t>& ids, absl::Time deadline,
                                    ItemStore::EachAnswer& answered) {
        return store_->StartGetEach(ids, LoadDeadline(deadline), answered);
      });
    }
  }
  if (cache_options.enabled) StartCaches(cache_options);
  if (lists_ == nullptr && cache_options.list_reads_in_flight > 0) {
    list_reads_ = std::make_unique<cache::ReadCoalescer<std::string, v1::ListItemsResponse>>(
        cache_options.list_reads_in_flight,
        [this](const std::string& key, absl::Time deadline) {
          return LoadList(key, LoadDeadline(deadline));
        },
        scheduler_);
  }
}

void CatalogService::StartCaches(const CatalogCacheOptions& cache_options) {
  cache::CacheOptions items = cache_options.items;
  if (cache_options.item_refresh_at > 0)
    items.refresh_after = items.ttl * cache_options.item_refresh_at;
  items_ = std::make_unique<cache::TtlCache<std::int64_t, v1::Item>>(
      std::move(items),
      [this](const std::int64_t& id, absl::Time deadline) {
        return store_->Get(id, LoadDeadline(deadline));
      },
      scheduler_);
  if (item_reads_ != nullptr) {
    // Misses that come together share queries, and refreshes (background reads) wait up to 100
    // ms for others: a cold start's or a refresh wave's thousands of loads are dozens of
    // statements, not thousands.
    items_->set_start_loader(
        [reads = item_reads_.get()](const std::int64_t& id, absl::Time deadline,
                                    std::function<void(absl::StatusOr<v1::Item>)> loaded) {
          reads->Get(id, deadline, std::move(loaded));
        });
    items_->set_start_refresh(
        [reads = item_reads_.get()](const std::int64_t& id, absl::Time,
                                    std::function<void(absl::StatusOr<v1::Item>)> loaded) {
          reads->GetInBackground(id, std::move(loaded));
        });
  }
  stats_ = std::make_unique<cache::TtlCache<std::string, v1::CategoryStats>>(
      cache_options.category_stats,
      [this](const std::string& category, absl::Time deadline) {
        return store_->CategoryStats(category, LoadDeadline(deadline));
      },
      scheduler_);
  if (cache_options.list_pages.ttl > absl::ZeroDuration() &&
      cache_options.list_pages.max_entries > 0) {
    lists_ = std::make_unique<cache::TtlCache<std::string, v1::ListItemsResponse>>(
        cache_options.list_pages,
        [this](const std::string& key, absl::Time deadline) {
          return LoadList(key, LoadDeadline(deadline));
        },
        scheduler_);
    lists_->set_keep([max = cache_options.max_list_page_bytes](const v1::ListItemsResponse& page) {
      return page.ByteSizeLong() <= max;
    });
  }
}

void CatalogService::Invalidate(std::int64_t id) {
  if (items_ != nullptr) items_->Invalidate(id);
  // Any write may move an item into or out of any page.
  if (lists_ != nullptr) lists_->Clear();
  if (announce_) announce_(absl::StrCat(id));
}

void CatalogService::OnItemsChanged(std::string_view payload, std::uint64_t position) {
  std::vector<std::int64_t> ids;  // empty: every item ("*", or not what we sent)
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(payload.data(), payload.size()), ',', absl::SkipEmpty())) {
    std::int64_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      ids.clear();
      break;
    }
    ids.push_back(id);
  }
  // First the store learns what reads must include, so no refill after the invalidation below
  // reads a copy that has not replayed the write.
  store_->Changed(ids, position);
  if (lists_ != nullptr) lists_->Clear();
  if (items_ == nullptr) return;
  if (ids.empty()) return items_->Clear();
  for (const std::int64_t id : ids) items_->Invalidate(id);
}

void CatalogService::DistrustCaches(absl::Duration max_age) {
  if (items_ != nullptr) items_->LimitAge(max_age);
  if (lists_ != nullptr) lists_->LimitAge(max_age);
}

void CatalogService::TrustCaches() {
  if (items_ != nullptr) {
    items_->Clear();
    items_->LimitAge(absl::InfiniteDuration());
  }
  if (lists_ != nullptr) {
    lists_->Clear();
    lists_->LimitAge(absl::InfiniteDuration());
  }
}

void CatalogService::GetItem(const v1::GetItemRequest& request, absl::Time deadline,
                             Done<v1::Item> done) {
  if (absl::Status s = ValidateGet(request); !s.ok()) return done(s);
  if (const std::uint64_t after = ReadAfter(); after != 0) {
    return LoadAfter<v1::Item>(
        scheduler_, after, std::move(done),
        [this, id = request.id(), deadline] { return store_->Get(id, deadline); });
  }
  if (items_ != nullptr) return items_->Get(request.id(), std::move(done), deadline);
  if (item_reads_ != nullptr) {
    return item_reads_->Get(request.id(), deadline,
                            [done = std::move(done)](absl::StatusOr<v1::Item> item) {
                              if (!item.ok()) return done(item.status());
                              done(std::make_shared<const v1::Item>(*std::move(item)));
                            });
  }
  LoadWith<v1::Item>(scheduler_, std::move(done),
                     [this, id = request.id(), deadline] { return store_->Get(id, deadline); });
}

void CatalogService::BatchGetItems(const v1::BatchGetItemsRequest& request, absl::Time deadline,
                                   Done<v1::BatchGetItemsResponse> done) {
  if (absl::Status s = ValidateBatchGet(request); !s.ok()) return done(s);
  const std::vector<std::int64_t> ids(request.ids().begin(), request.ids().end());
  if (const std::uint64_t after = ReadAfter(); after != 0) {
    return LoadAfter<v1::BatchGetItemsResponse>(
        scheduler_, after, std::move(done),
        [this, ids, deadline]() -> absl::StatusOr<v1::BatchGetItemsResponse> {
          auto items = store_->BatchGet(ids, deadline);
          if (!items.ok()) return items.status();
          v1::BatchGetItemsResponse response;
          for (auto& item : *items) *response.add_items() = std::move(item);
          return FitOrRefuse(std::move(response), max_answer_bytes_);
        });
  }
  // Whatever the cache holds answers now; the rest comes from one query.
  auto found = std::make_shared<std::vector<std::shared_ptr<const v1::Item>>>(ids.size());
  std::vector<std::int64_t> missing;
  for (std::size_t i = 0; items_ != nullptr && i < ids.size(); ++i) {
    auto hit = items_->Peek(ids[i]);
    if (!hit) continue;
    if (!hit->ok()) return done(absl::NotFoundError(absl::StrCat("items not found: ", ids[i])));
    (*found)[i] = **hit;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if ((*found)[i] == nullptr) missing.push_back(ids[i]);
  }
  auto assemble = [ids, found, max_bytes = max_answer_bytes_] {
    v1::BatchGetItemsResponse response;
    response.mutable_items()->Reserve(static_cast<int>(ids.size()));
    for (const auto& item : *found) *response.add_items() = *item;
    return FitOrRefuse(std::move(response), max_bytes);
  };
  if (missing.empty()) {
    auto response = assemble();
    if (!response.ok()) return done(response.status());
    return done(std::make_shared<const v1::BatchGetItemsResponse>(*std::move(response)));
  }
  LoadWith<v1::BatchGetItemsResponse>(
      scheduler_, std::move(done),
      [this, ids, found, missing, deadline,
       assemble]() -> absl::StatusOr<v1::BatchGetItemsResponse> {
        std::vector<std::uint64_t> epochs;
        if (items_ != nullptr) {
          for (const std::int64_t id : missing) epochs.push_back(items_->Epoch(id));
        }
        auto items = store_->BatchGet(missing, deadline);
        if (!items.ok()) return items.status();
        std::unordered_map<std::int64_t, std::shared_ptr<const v1::Item>> loaded;
        for (std::size_t i = 0; i < items->size(); ++i) {
          if (items_ != nullptr) items_->PutIfUnchanged(missing[i], (*items)[i], epochs[i]);
          loaded.emplace(missing[i], std::make_shared<const v1::Item>(std::move((*items)[i])));
        }
        for (std::size_t i = 0; i < ids.size(); ++i) {
          if ((*found)[i] == nullptr) (*found)[i] = loaded.at(ids[i]);
        }
        return assemble();
      });
}

void CatalogService::GetCategoryStats(const v1::GetCategoryStatsRequest& request,
                                      absl::Time deadline, Done<v1::CategoryStats> done) {
  if (absl::Status s = ValidateCategoryStats(request); !s.ok()) return done(s);
  if (const std::uint64_t after = ReadAfter(); after != 0) {
    return LoadAfter<v1::CategoryStats>(scheduler_, after, std::move(done),
                                        [this, category = request.category(), deadline] {
                                          return store_->CategoryStats(category, deadline);
                                        });
  }
  if (stats_ != nullptr) return stats_->Get(request.category(), std::move(done), deadline);
  LoadWith<v1::CategoryStats>(scheduler_, std::move(done),
                              [this, category = request.category(), deadline] {
                                return store_->CategoryStats(category, deadline);
                              });
}

absl::StatusOr<v1::Item> CatalogService::CreateItem(const v1::CreateItemRequest& request,
                                                    absl::Time deadline) {
  if (absl::Status s = ValidateCreate(request); !s.ok()) return s;
  auto item = store_->Create(request.item(), request.request_id(), deadline);
  if (!item.ok()) {
    // A lost connection leaves the insert's outcome unknown: a page may already hold the item,
    // and another replica may hold a NOT_FOUND for its id.
    const absl::StatusCode code = item.status().code();
    const bool nothing_written = code == absl::StatusCode::kAlreadyExists ||
                                 code == absl::StatusCode::kInvalidArgument ||
                                 code == absl::StatusCode::kAborted;
    if (!nothing_written) {
      if (lists_ != nullptr) lists_->Clear();
      if (announce_) announce_("*");
    }
    return ExplainConflict(item.status(), request.item().sku());
  }
  Invalidate(item->id());  // a cached NOT_FOUND from before the insert, and every list page
  return item;
}

absl::StatusOr<std::string> CatalogService::ListKey(const v1::ListItemsRequest& request) const {
  // Bad requests and tokens are refused here, before any cache or database.
  if (absl::Status s = ValidateList(request); !s.ok()) return s;
  if (!request.page_token().empty()) {
    if (auto cursor = tokens_->Decode(request.page_token(), ListScope(request)); !cursor.ok())
      return cursor.status();
  }
  v1::ListItemsRequest normalised = request;
  normalised.DiscardUnknownFields();
  normalised.set_page_size(EffectivePageSize(request.page_size()));
  return normalised.SerializeAsString();
}

void CatalogService::ListItems(const v1::ListItemsRequest& request, absl::Time deadline,
                               Done<v1::ListItemsResponse> done) {
  absl::StatusOr<std::string> key = ListKey(request);
  if (!key.ok()) return done(key.status());
  if (const std::uint64_t after = ReadAfter(); after != 0) {
    return LoadAfter<v1::ListItemsResponse>(
        scheduler_, after, std::move(done),
        [this, key = *std::move(key), deadline] { return LoadList(key, deadline); });
  }
  if (lists_ != nullptr) return lists_->Get(*key, std::move(done), deadline);
  if (list_reads_ != nullptr) return list_reads_->Get(*key, deadline, std::move(done));
  LoadWith<v1::ListItemsResponse>(
      scheduler_, std::move(done),
      [this, key = *std::move(key), deadline] { return LoadList(key, deadline); });
}

absl::StatusOr<v1::ListItemsResponse> CatalogService::ListItemsNow(
    const v1::ListItemsRequest& request, absl::Time deadline) {
  absl::StatusOr<std::string> key = ListKey(request);
  if (!key.ok()) return key.status();
  return LoadList(*key, deadline);
}

absl::StatusOr<v1::ListItemsResponse> CatalogService::LoadList(const std::string& key,
                                                               absl::Time deadline) {
  v1::ListItemsRequest request;
  if (!request.ParseFromString(key)) return absl::InternalError("unreadable list page key");
  const std::string scope = ListScope(request);
  PageCursor after;
  if (!request.page_token().empty()) {
    auto cursor = tokens_->Decode(request.page_token(), scope);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  ItemFilter filter = FilterOf(request);
  filter.order_by_category = request.order_by() == "category,id";
  const int page_size = EffectivePageSize(request.page_size());
  auto items = store_->List(filter, after, page_size + 1, deadline);
  if (!items.ok()) return items.status();
  v1::ListItemsResponse response;
  bool more = items->size() > static_cast<std::size_t>(page_size);
  if (more) items->pop_back();
  // A short page when the items would not fit in one answer (AIP-158 allows it).
  const std::size_t fit = ItemsThatFit(
      *items, max_answer_bytes_, [](const v1::Item& item) -> const v1::Item& { return item; });
  if (fit < items->size()) {
    items->erase(items->begin() + static_cast<std::ptrdiff_t>(fit), items->end());
    more = true;
  }
  for (auto& item : *items) *response.add_items() = std::move(item);
  if (more) {
    const v1::Item& last = response.items(response.items_size() - 1);
    response.set_next_page_token(
        tokens_->Encode({.last_id = last.id(), .last_category = last.category()}, scope));
  }
  return response;
}

absl::StatusOr<v1::Item> CatalogService::UpdateItem(const v1::UpdateItemRequest& request,
                                                    absl::Time deadline) {
  auto fields = ValidateUpdate(request);
  if (!fields.ok()) return fields.status();
  std::optional<std::int64_t> expected_version;
  if (!request.item().etag().empty()) {
    auto version = ParseEtag(request.item().etag(), "item.etag");
    if (!version.ok()) return version.status();
    expected_version = *version;
  }
  auto item = store_->Update(request.item(), *fields, expected_version, deadline);
  Invalidate(request.item().id());  // even on failure: the outcome of a lost connection is unknown
  if (!item.ok()) return ExplainConflict(item.status(), request.item().sku());
  return item;
}

absl::StatusOr<v1::DeleteItemResponse> CatalogService::DeleteItem(
    const v1::DeleteItemRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateDelete(request); !s.ok()) return s;
  std::optional<std::int64_t> expected_version;
  if (!request.etag().empty()) {
    auto version = ParseEtag(request.etag(), "etag");
    if (!version.ok()) return version.status();
    expected_version = *version;
  }
  const absl::Status deleted = store_->Delete(request.id(), expected_version, deadline);
  Invalidate(request.id());
  if (!deleted.ok()) return deleted;
  return v1::DeleteItemResponse();
}

absl::StatusOr<v1::SearchItemsResponse> CatalogService::SearchItems(
    const v1::SearchItemsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateSearch(request); !s.ok()) return s;
  const std::string scope = SearchScope(request);
  std::optional<PageCursor> after;
  if (!request.page_token().empty()) {
    auto cursor = tokens_->Decode(request.page_token(), scope);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  const int page_size = EffectivePageSize(request.page_size());
  auto hits = store_->Search(request.query(), after, page_size + 1, deadline);
  if (!hits.ok()) return hits.status();
  v1::SearchItemsResponse response;
  bool more = hits->size() > static_cast<std::size_t>(page_size);
  if (more) hits->pop_back();
  const std::size_t fit = ItemsThatFit(*hits, max_answer_bytes_,
                                       [](const auto& hit) -> const v1::Item& { return hit.item; });
  if (fit < hits->size()) {
    hits->erase(hits->begin() + static_cast<std::ptrdiff_t>(fit), hits->end());
    more = true;
  }
  if (more) {
    response.set_next_page_token(tokens_->Encode(
        {.last_id = hits->back().item.id(), .last_rank = hits->back().rank}, scope));
  }
  for (auto& hit : *hits) *response.add_items() = std::move(hit.item);
  return response;
}

absl::StatusOr<std::unique_ptr<rpc::StreamSource<v1::Item>>> CatalogService::ExportItems(
    const v1::ExportItemsRequest& request, absl::Time deadline) {
  if (absl::Status s = ValidateExport(request); !s.ok()) return s;
  return std::make_unique<ExportSource>(store_, FilterOf(request), deadline);
}

absl::StatusOr<std::unique_ptr<rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse>>>
CatalogService::ImportItems(absl::Time deadline) {
  // New rows get ids nobody knew, except through a cached NOT_FOUND: drop those with the rest.
  return std::make_unique<ImportSink>(store_, deadline, [this] {
    if (items_ != nullptr) items_->Clear();
    if (lists_ != nullptr) lists_->Clear();
    if (announce_) announce_("*");
  });
}

}  // namespace hotpath::catalog
