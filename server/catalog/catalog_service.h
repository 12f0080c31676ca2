// The catalog's logic, one plain method per RPC: validate, call the store, shape the answer.
// Knows nothing of gRPC or HTTP; catalog_module.cc binds it to the wire.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hotpath/catalog/v1/catalog.pb.h"
#include "server/cache/batch_loader.h"
#include "server/cache/read_coalescer.h"
#include "server/cache/ttl_cache.h"
#include "server/catalog/item_store.h"
#include "server/catalog/page_token.h"
#include "server/rpc/streams.h"

namespace hotpath::catalog {

struct CatalogCacheOptions {
  // Off: every read goes to the database (the benchmarks' database-read scenarios).
  bool enabled = true;
  // GetItem / BatchGetItems, by id. Writes invalidate their item before they answer.
  cache::CacheOptions items{.name = "items",
                            .max_entries = 100'000,
                            .ttl = absl::Seconds(60),
                            .negative_ttl = absl::Seconds(5),
                            .refresh_spread = 0.25};
  // An item read past this fraction of items.ttl (each one's point drawn between 3/4 of it and it)
  // is reloaded in the background while still served: the items in use never expire under their
  // readers, and items loaded together (a cold start, an import's clearing) are reloaded spread
  // out, not all at once. 0: off (items expire, and the next read waits for the database).
  double item_refresh_at = 0.75;
  // GetCategoryStats, by category: an aggregate, kept for its TTL (writes do not invalidate it) and
  // refreshed in the background once past refresh_after.
  cache::CacheOptions category_stats{.name = "category_stats",
                                     .max_entries = 1000,
                                     .ttl = absl::Seconds(30),
                                     .negative_ttl = absl::Seconds(5),
                                     .refresh_after = absl::Seconds(10)};
  // ListItems pages, by their request (filter, cursor, page size): the same first pages are what
  // most clients ask for. Every write through this service clears them before it answers; a write
  // through another process shows after at most ttl. Zero ttl or max_entries: not cached. Pages
  // over max_list_page_bytes (wire size) are not kept, so memory stays within max_entries times
  // that (a 1000-item page of long descriptions could otherwise hold megabytes per entry).
  cache::CacheOptions list_pages{.name = "list_pages",
                                 .max_entries = 256,
                                 .ttl = absl::Seconds(5),
                                 .negative_ttl = absl::ZeroDuration()};
  std::size_t max_list_page_bytes = 64 << 10;
  // GetItem's database reads (every read with the cache off, the item cache's loads with it on):
  // reads that arrive while a query runs share the next one (cache::BatchLoader). max_in_flight 0:
  // every read is a query of its own. The item cache's refreshes wait up to background_wait to
  // share a query (at most a quarter of what an entry has left when its refresh starts).
  cache::BatchLoaderOptions item_reads{
      .max_batch = 100, .max_in_flight = 2, .background_wait = absl::Milliseconds(100)};
  // Those batches, when the read that starts one comes from an event loop (the HTTP gateway's),
  // sent and answered on that loop without an executor thread (ItemStore::StartGetEach).
  bool item_reads_on_loops = true;
  // ListItems with its pages not cached: loads of one page (the same ListKey) running at once;
  // identical lists arriving meanwhile share the next (cache::ReadCoalescer). 0: every list is a
  // query of its own.
  int list_reads_in_flight = 2;
  // Longest a cache load may take. A load runs until the deadline of the call whose miss started
  // it (callers that join it share that), and never longer than this.
  absl::Duration load_timeout = absl::Seconds(5);
};

class CatalogService final {
 public:
  // Items per ExportItems batch (one query each). A stream holds its batch while its client reads,
  // so this is most of what an export whose client stops reading keeps (~110 KB of demo items;
  // 500 held twice that, for up to --max_in_flight streams). 250 exports as fast as 500 did;
  // 100 cost a gRPC export about a tenth more (bench/stalled_exports, bench/NOTES.md).
  static constexpr int kExportBatchSize = 250;

  // Answers of the cached reads; shared with the cache, so a hit copies nothing.
  template <class T>
  using Done = rpc::SharedDone<T>;

  // scheduler: where database reads for the cached methods run (the database executor);
  // read_scheduler: where GetItem's batched reads run (ModuleContext::read_scheduler; empty: on
  // scheduler).
  CatalogService(ItemStore* store, const PageTokenCodec* tokens, cache::Scheduler scheduler,
                 const CatalogCacheOptions& cache_options, cache::Scheduler read_scheduler = {});

  // Cached reads: done runs at once (on the caller's thread) for a cache hit or a validation error,
  // else on the scheduler's thread once the database answers.
  void GetItem(const v1::GetItemRequest& request, absl::Time deadline, Done<v1::Item> done);
  void BatchGetItems(const v1::BatchGetItemsRequest& request, absl::Time deadline,
                     Done<v1::BatchGetItemsResponse> done);
  void GetCategoryStats(const v1::GetCategoryStatsRequest& request, absl::Time deadline,
                        Done<v1::CategoryStats> done);
  // With the page cache (list_cache() not null) or shared page reads (list_reads() not null).
  void ListItems(const v1::ListItemsRequest& request, absl::Time deadline,
                 Done<v1::ListItemsResponse> done);

  // The rest block on the database: call them on the executor.
  absl::StatusOr<v1::Item> CreateItem(const v1::CreateItemRequest& request, absl::Time deadline);
  // A page straight from the database (what the page cache loads): for the executor when the
  // page cache is off, where a client that cancels also cancels the query.
  absl::StatusOr<v1::ListItemsResponse> ListItemsNow(const v1::ListItemsRequest& request,
                                                     absl::Time deadline);
  absl::StatusOr<v1::Item> UpdateItem(const v1::UpdateItemRequest& request, absl::Time deadline);
  absl::StatusOr<v1::DeleteItemResponse> DeleteItem(const v1::DeleteItemRequest& request,
                                                    absl::Time deadline);
  absl::StatusOr<v1::SearchItemsResponse> SearchItems(const v1::SearchItemsRequest& request,
                                                      absl::Time deadline);

  // Validates now (no I/O); the source reads kExportBatchSize items per Next, in id order.
  absl::StatusOr<std::unique_ptr<rpc::StreamSource<v1::Item>>> ExportItems(
      const v1::ExportItemsRequest& request, absl::Time deadline);
  // An import that validates every item and stores all of them, or none.
  absl::StatusOr<std::unique_ptr<rpc::StreamSink<v1::CreateItemRequest, v1::ImportItemsResponse>>>
  ImportItems(absl::Time deadline);

  // The channel the catalog's triggers announce item changes on (migration 0003_item_changes).
  static constexpr char kChangeChannel[] = "hotpath_catalog_items";
  // A change made anywhere (this replica, another one, psql): payload is what the trigger sent,
  // comma-separated ids or "*" for all. Drops the items named and every list page. Malformed: all.
  // position: the primary's write position once the change was received (0: not known), told to
  // the store before anything is dropped (ItemStore::Changed).
  void OnItemsChanged(std::string_view payload, std::uint64_t position = 0);
  // The feed of changes is down: the item and list caches serve no entry older than max_age (what
  // changed since is not announced). Back: they start empty (what changed was missed) and entries
  // live their TTL again.
  void DistrustCaches(absl::Duration max_age);
  void TrustCaches();
  // Tells the other replicas what this one wrote (ModuleContext::announce): payload as
  // OnItemsChanged reads it. Set before the first call; null: nobody is told (the triggers do).
  void set_announce(std::function<void(std::string_view payload)> announce) {
    announce_ = std::move(announce);
  }
  // The largest answer a call may carry (ModuleContext::max_message_bytes): list and search pages
  // stop short of it (fewer items than page_size, with a next page token), and BatchGetItems
  // refuses ids whose items cannot fit (FAILED_PRECONDITION naming the limit). Default 4 MiB.
  void set_max_answer_bytes(std::size_t bytes) { max_answer_bytes_ = bytes; }

  // Null when caching is off.
  cache::TtlCache<std::int64_t, v1::Item>* item_cache() { return items_.get(); }
  cache::TtlCache<std::string, v1::CategoryStats>* category_stats_cache() { return stats_.get(); }
  cache::TtlCache<std::string, v1::ListItemsResponse>* list_cache() { return lists_.get(); }
  // Null unless GetItem's database reads are batched (the item cache's loads, or every read).
  cache::BatchLoader<std::int64_t, v1::Item>* item_reads() { return item_reads_.get(); }
  // Null unless list pages are not cached and identical lists share their reads.
  cache::ReadCoalescer<std::string, v1::ListItemsResponse>* list_reads() {
    return list_reads_.get();
  }

 private:
  // The item, category stats and list page caches (those the options ask for).
  void StartCaches(const CatalogCacheOptions& cache_options);
  // Drops what a write to item id made stale, before the write is answered.
  void Invalidate(std::int64_t id);
  // The request validated (its page token checked) and normalised: known fields only, the page
  // size in effect. The page cache's key, and what LoadList reads.
  absl::StatusOr<std::string> ListKey(const v1::ListItemsRequest& request) const;
  // One page from the database. key: from ListKey.
  absl::StatusOr<v1::ListItemsResponse> LoadList(const std::string& key, absl::Time deadline);
  // A load's deadline: the one it was given (its callers'), but no later than load_timeout_ from
  // now.
  absl::Time LoadDeadline(absl::Time deadline) const {
    return std::min(deadline, absl::Now() + load_timeout_);
  }

  ItemStore* store_;              // where items live
  const PageTokenCodec* tokens_;  // signs and checks page tokens
  cache::Scheduler scheduler_;    // runs database reads for the cached methods
  absl::Duration load_timeout_;   // deadline of cache loads
  // GetItem's database reads, batched; null when batching is off. Before items_, whose loads it
  // runs: items_ goes first, waiting for them.
  std::unique_ptr<cache::BatchLoader<std::int64_t, v1::Item>> item_reads_;
  std::unique_ptr<cache::TtlCache<std::int64_t, v1::Item>> items_;              // by id
  std::unique_ptr<cache::TtlCache<std::string, v1::CategoryStats>> stats_;      // by category
  std::unique_ptr<cache::TtlCache<std::string, v1::ListItemsResponse>> lists_;  // by ListKey
  // ListItems' database reads when lists_ is off; null when sharing is off too.
  std::unique_ptr<cache::ReadCoalescer<std::string, v1::ListItemsResponse>> list_reads_;
  std::function<void(std::string_view payload)> announce_;  // tells other replicas; may be null
  std::size_t max_answer_bytes_ = 4 * 1024 * 1024;          // see set_max_answer_bytes
};

}  // namespace hotpath::catalog
