// The catalog's logic against an in-memory store: validation, caching and its invalidation, page
// tokens, streams. No database, no transport: each test runs in milliseconds.
#include "server/catalog/catalog_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "server/catalog/fake_item_store.h"

namespace hotpath::catalog {
namespace {

constexpr absl::Duration kLong = absl::Seconds(30);

v1::Item NewItem(const std::string& sku, const std::string& category = "tools",
                 std::int64_t price_cents = 500) {
  v1::Item item;
  item.set_sku(sku);
  item.set_name(absl::StrCat("Item ", sku));
  item.set_category(category);
  item.set_price_cents(price_cents);
  item.set_stock(1);
  return item;
}

// Runs work at once, on the caller's thread.
absl::Status RunNow(std::function<void()> work) {
  work();
  return absl::OkStatus();
}

class CatalogServiceTest : public ::testing::Test {
 protected:
  explicit CatalogServiceTest(cache::Scheduler scheduler = RunNow, bool cached = true,
                              int list_reads_in_flight = 2)
      : tokens_("test secret") {
    CatalogCacheOptions options;
    options.enabled = cached;
    options.list_reads_in_flight = list_reads_in_flight;
    service_ = std::make_unique<CatalogService>(&store_, &tokens_, std::move(scheduler), options);
  }

  absl::Time Deadline() const { return absl::Now() + kLong; }

  v1::Item Create(const v1::Item& item) {
    v1::CreateItemRequest request;
    *request.mutable_item() = item;
    auto created = service_->CreateItem(request, Deadline());
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : v1::Item();
  }

  // A cached method's answer, waited for.
  template <class Request, class Response>
  absl::StatusOr<Response> Call(void (CatalogService::*method)(const Request&, absl::Time,
                                                               CatalogService::Done<Response>),
                                const Request& request) {
    std::promise<absl::StatusOr<Response>> answer;
    (service_.get()->*method)(request, Deadline(),
                              [&answer](const absl::StatusOr<std::shared_ptr<const Response>>& r) {
                                if (r.ok()) {
                                  answer.set_value(**r);
                                } else {
                                  answer.set_value(r.status());
                                }
                              });
    return answer.get_future().get();
  }

  absl::StatusOr<v1::Item> Get(std::int64_t id) {
    v1::GetItemRequest request;
    request.set_id(id);
    return Call(&CatalogService::GetItem, request);
  }

  absl::StatusOr<v1::Item> SetStock(std::int64_t id, int stock, const std::string& etag = "") {
    v1::UpdateItemRequest request;
    request.mutable_item()->set_id(id);
    request.mutable_item()->set_stock(stock);
    request.mutable_item()->set_etag(etag);
    request.mutable_update_mask()->add_paths("stock");
    return service_->UpdateItem(request, Deadline());
  }

  FakeItemStore store_;                      // where items live
  PageTokenCodec tokens_;                    // signs page tokens
  std::unique_ptr<CatalogService> service_;  // under test
};

TEST_F(CatalogServiceTest, AReadIsLoadedOnceThenAnsweredFromTheCache) {
  const v1::Item item = Create(NewItem("A-1"));
  ASSERT_TRUE(Get(item.id()).ok());
  ASSERT_TRUE(Get(item.id()).ok());
  EXPECT_EQ(store_.reads(), 1);
}

TEST_F(CatalogServiceTest, AWriteThroughTheServiceIsSeenByTheNextRead) {
  const v1::Item item = Create(NewItem("A-1"));
  ASSERT_TRUE(Get(item.id()).ok());
  ASSERT_TRUE(SetStock(item.id(), 42).ok());
  auto read = Get(item.id());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->stock(), 42);
}

// What #14's coherence is about: a write the service did not make stays unseen until the TTL.
TEST_F(CatalogServiceTest, AWriteBehindTheServicesBackIsNotSeenWhileCached) {
  const v1::Item item = Create(NewItem("A-1"));
  ASSERT_TRUE(Get(item.id()).ok());
  store_.SetStockBehindTheServicesBack(item.id(), 42);
  EXPECT_EQ(Get(item.id())->stock(), 1);
}

TEST_F(CatalogServiceTest, ACachedNotFoundIsDroppedByTheCreateThatFillsIt) {
  ASSERT_EQ(Get(1).status().code(), absl::StatusCode::kNotFound);
  const v1::Item item = Create(NewItem("A-1"));
  ASSERT_EQ(item.id(), 1);
  EXPECT_TRUE(Get(1).ok());
}

TEST_F(CatalogServiceTest, AStoreFailureIsPassedOnAndNotCached) {
  const v1::Item item = Create(NewItem("A-1"));
  store_.FailNext(absl::UnavailableError("database down"));
  EXPECT_EQ(Get(item.id()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Get(item.id()).ok());
}

TEST_F(CatalogServiceTest, BadRequestsNeverReachTheStore) {
  EXPECT_EQ(Get(0).status().code(), absl::StatusCode::kInvalidArgument);
  v1::Item bad = NewItem("");
  v1::CreateItemRequest create;
  *create.mutable_item() = bad;
  EXPECT_EQ(service_->CreateItem(create, Deadline()).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::ListItemsRequest list;
  list.set_page_size(-1);
  EXPECT_EQ(Call(&CatalogService::ListItems, list).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.reads(), 0);
  EXPECT_EQ(Get(1).status().code(), absl::StatusCode::kNotFound);  // nothing was stored
}

TEST_F(CatalogServiceTest, ATakenSkuIsNamedInTheError) {
  Create(NewItem("A-1"));
  v1::CreateItemRequest request;
  *request.mutable_item() = NewItem("A-1");
  auto again = service_->CreateItem(request, Deadline());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.status().message(), "an item with sku \"A-1\" already exists");
}

TEST_F(CatalogServiceTest, AStaleEtagIsRefusedAndTheCacheStillDropsTheItem) {
  const v1::Item item = Create(NewItem("A-1"));
  ASSERT_TRUE(Get(item.id()).ok());
  store_.SetStockBehindTheServicesBack(item.id(), 7);  // the etag moves on
  EXPECT_EQ(SetStock(item.id(), 9, item.etag()).status().code(), absl::StatusCode::kAborted);
  // The refusal told the client the item changed: the next read must show the change.
  EXPECT_EQ(Get(item.id())->stock(), 7);
}

TEST_F(CatalogServiceTest, ListPagesFollowTheirTokensAndRefuseAnotherFiltersToken) {
  for (int i = 0; i < 5; ++i) Create(NewItem(absl::StrCat("L-", i)));
  v1::ListItemsRequest request;
  request.set_page_size(2);
  std::vector<std::int64_t> seen;
  for (int page = 0; page < 3; ++page) {
    auto answer = Call(&CatalogService::ListItems, request);
    ASSERT_TRUE(answer.ok()) << answer.status();
    for (const auto& item : answer->items()) seen.push_back(item.id());
    EXPECT_EQ(answer->next_page_token().empty(), page == 2);
    request.set_page_token(answer->next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));

  v1::ListItemsRequest first;
  first.set_page_size(2);
  v1::ListItemsRequest other;
  other.set_page_size(2);
  other.set_category("tools");
  other.set_page_token(Call(&CatalogService::ListItems, first)->next_page_token());
  EXPECT_EQ(Call(&CatalogService::ListItems, other).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Pages stop short of the answer limit with a token to the rest; a batch that cannot fit is
// refused.
TEST_F(CatalogServiceTest, PagesStopShortOfTheAnswerLimitAndAnOversizeBatchIsRefused) {
  service_->set_max_answer_bytes(10'000);
  v1::BatchGetItemsRequest batch;
  for (int i = 0; i < 20; ++i) {
    v1::Item item = NewItem(absl::StrCat("W-", i));
    item.set_description(std::string(2000, 'w'));
    batch.add_ids(Create(item).id());
  }
  v1::ListItemsRequest request;
  request.set_page_size(20);
  std::vector<std::int64_t> seen;
  int pages = 0;
  for (; pages < 20; ++pages) {
    auto answer = Call(&CatalogService::ListItems, request);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_LE(answer->ByteSizeLong(), 10'000u);
    EXPECT_EQ(answer->items_size(), answer->next_page_token().empty() ? 20 - 4 * pages : 4);
    for (const auto& item : answer->items()) seen.push_back(item.id());
    if (answer->next_page_token().empty()) break;
    request.set_page_token(answer->next_page_token());
  }
  EXPECT_EQ(pages, 4);  // 4 items of ~2 KB fit in 10 KB less the envelope: 5 pages
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  const auto refused = Call(&CatalogService::BatchGetItems, batch);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("10000"));
  batch.mutable_ids()->Truncate(4);
  EXPECT_TRUE(Call(&CatalogService::BatchGetItems, batch).ok());
}

TEST_F(CatalogServiceTest, ACreateClearsTheCachedPages) {
  Create(NewItem("P-1"));
  v1::ListItemsRequest request;
  ASSERT_EQ(Call(&CatalogService::ListItems, request)->items_size(), 1);
  Create(NewItem("P-2"));
  EXPECT_EQ(Call(&CatalogService::ListItems, request)->items_size(), 2);
}

TEST_F(CatalogServiceTest, BatchGetAnswersInTheRequestedOrderAndNamesTheMissing) {
  const v1::Item a = Create(NewItem("B-1"));
  const v1::Item b = Create(NewItem("B-2"));
  ASSERT_TRUE(Get(b.id()).ok());  // one cached, one not
  v1::BatchGetItemsRequest request;
  request.add_ids(b.id());
  request.add_ids(a.id());
  auto answer = Call(&CatalogService::BatchGetItems, request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_EQ(answer->items_size(), 2);
  EXPECT_EQ(answer->items(0).id(), b.id());
  EXPECT_EQ(answer->items(1).id(), a.id());
  request.add_ids(99);
  auto missing = Call(&CatalogService::BatchGetItems, request);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("99"), std::string::npos) << missing.status();
}

TEST_F(CatalogServiceTest, AnImportWithOneBadItemStoresNone) {
  auto sink = service_->ImportItems(Deadline());
  ASSERT_TRUE(sink.ok());
  std::vector<v1::CreateItemRequest> batch(3);
  *batch[0].mutable_item() = NewItem("I-1");
  *batch[1].mutable_item() = NewItem("I-2");
  *batch[2].mutable_item() = NewItem("");  // no sku
  const absl::Status consumed = (*sink)->Consume(batch);
  EXPECT_EQ(consumed.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(consumed.message().find("item 2 rejected, nothing imported"), std::string::npos)
      << consumed;
  sink->reset();  // the call ends with the error: nothing was committed
  EXPECT_EQ(Get(1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CatalogServiceTest, AnImportCommitsAllAndDropsCachedNotFounds) {
  ASSERT_EQ(Get(1).status().code(), absl::StatusCode::kNotFound);
  auto sink = service_->ImportItems(Deadline());
  ASSERT_TRUE(sink.ok());
  std::vector<v1::CreateItemRequest> batch(2);
  *batch[0].mutable_item() = NewItem("I-1");
  *batch[1].mutable_item() = NewItem("I-2");
  ASSERT_TRUE((*sink)->Consume(batch).ok());
  const std::atomic<bool> cancelled{false};
  auto answer = (*sink)->Finish(cancelled);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->imported_count(), 2);
  EXPECT_TRUE(Get(1).ok());
}

TEST_F(CatalogServiceTest, AnExportReadsInBatchesUntilTheLastShortOne) {
  const int total = CatalogService::kExportBatchSize * 2 + 7;
  for (int i = 0; i < total; ++i) Create(NewItem(absl::StrCat("E-", i)));
  auto source = service_->ExportItems(v1::ExportItemsRequest(), Deadline());
  ASSERT_TRUE(source.ok());
  std::vector<std::size_t> sizes;
  bool done = false;
  while (!done) {
    std::vector<v1::Item> batch;
    ASSERT_TRUE((*source)->Next(&batch, &done).ok());
    sizes.push_back(batch.size());
  }
  const std::size_t full = CatalogService::kExportBatchSize;
  EXPECT_EQ(sizes, (std::vector<std::size_t>{full, full, 7}));
}

TEST_F(CatalogServiceTest, AChangeAnnouncedElsewhereDropsWhatItNames) {
  const v1::Item a = Create(NewItem("C-1"));
  const v1::Item b = Create(NewItem("C-2"));
  ASSERT_TRUE(Get(a.id()).ok());
  ASSERT_TRUE(Get(b.id()).ok());
  store_.SetStockBehindTheServicesBack(a.id(), 8);
  store_.SetStockBehindTheServicesBack(b.id(), 9);
  service_->OnItemsChanged(absl::StrCat(a.id()));
  EXPECT_EQ(Get(a.id())->stock(), 8);
  EXPECT_EQ(Get(b.id())->stock(), 1);  // not named: still cached
  service_->OnItemsChanged("*");
  EXPECT_EQ(Get(b.id())->stock(), 9);
}

// With the feed down, what changed is not announced: entries older than the bound are read again.
// Back, the caches start empty (changes were missed) and trust their entries again.
TEST_F(CatalogServiceTest, DistrustedCachesServeOnlyEntriesYoungerThanTheBound) {
  const v1::Item item = Create(NewItem("S-1"));
  ASSERT_TRUE(Get(item.id()).ok());
  service_->DistrustCaches(absl::Milliseconds(50));
  const int reads = store_.reads();
  EXPECT_TRUE(Get(item.id()).ok());  // young enough
  EXPECT_EQ(store_.reads(), reads);
  store_.SetStockBehindTheServicesBack(item.id(), 3);
  absl::SleepFor(absl::Milliseconds(60));
  EXPECT_EQ(Get(item.id())->stock(), 3);  // too old: read again
  EXPECT_EQ(store_.reads(), reads + 1);
  store_.SetStockBehindTheServicesBack(item.id(), 4);
  service_->TrustCaches();
  EXPECT_EQ(Get(item.id())->stock(), 4);
  absl::SleepFor(absl::Milliseconds(60));
  EXPECT_EQ(Get(item.id())->stock(), 4);
  EXPECT_EQ(store_.reads(), reads + 2);
}

// Runs work on a thread of its own.
absl::Status OnAThreadEach(std::function<void()> work) {
  std::thread(std::move(work)).detach();
  return absl::OkStatus();
}

// Loads run on their own thread here, so one can be caught between its read and its answer.
class CatalogServiceRaceTest : public CatalogServiceTest {
 protected:
  CatalogServiceRaceTest() : CatalogServiceTest(OnAThreadEach) {}
};

// The stale refill race: a load read the old row, a write commits and invalidates, then the load
// answers. Its caller may see the old row (it asked first), but the cache must not keep it.
TEST_F(CatalogServiceRaceTest, ALoadThatReadBeforeAWriteDoesNotPutTheOldRowBack) {
  const v1::Item item = Create(NewItem("R-1"));
  store_.Hold();
  v1::GetItemRequest request;
  request.set_id(item.id());
  std::promise<absl::StatusOr<v1::Item>> first;
  service_->GetItem(request, Deadline(),
                    [&first](const absl::StatusOr<std::shared_ptr<const v1::Item>>& r) {
                      first.set_value(r.ok() ? absl::StatusOr<v1::Item>(**r) : r.status());
                    });
  store_.AwaitHeldRead();                    // the load has read stock 1
  ASSERT_TRUE(SetStock(item.id(), 2).ok());  // writes pass the gate: committed and invalidated
  store_.Open();                             // now the load answers with what it read
  EXPECT_EQ(first.get_future().get()->stock(), 1);
  EXPECT_EQ(Get(item.id())->stock(), 2);
}

// Caches off, one page read at a time per page: identical lists share reads.
class CatalogServiceSharedListsTest : public CatalogServiceTest {
 protected:
  CatalogServiceSharedListsTest() : CatalogServiceTest(OnAThreadEach, /*cached=*/false, 1) {}

  using Page = absl::StatusOr<std::shared_ptr<const v1::ListItemsResponse>>;
  std::future<Page> StartList() {
    auto answer = std::make_shared<std::promise<Page>>();
    std::future<Page> page = answer->get_future();
    service_->ListItems(v1::ListItemsRequest(), Deadline(),
                        [answer](const Page& r) { answer->set_value(r); });
    return page;
  }
};

// Never stale with the caches off: lists that arrive while a read of their page runs wait for the
// next one, which starts after all of them, and sees a write committed before they asked.
TEST_F(CatalogServiceSharedListsTest, IdenticalListsWaitingShareOneReadThatStartsAfterThemAll) {
  ASSERT_NE(service_->list_reads(), nullptr);
  const v1::Item item = Create(NewItem("S-1"));
  store_.Hold();
  std::future<Page> first = StartList();
  store_.AwaitHeldRead();                    // the first read has read stock 1
  ASSERT_TRUE(SetStock(item.id(), 2).ok());  // committed before the next lists ask
  std::vector<std::future<Page>> next;
  for (int i = 0; i < 3; ++i) next.push_back(StartList());
  EXPECT_EQ(store_.reads(), 1) << "the lists that came after the write joined the running read";
  store_.Open();
  const Page answer = first.get();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ((*answer)->items(0).stock(), 1);  // it asked first
  std::vector<const v1::ListItemsResponse*> objects;
  for (auto& page : next) {
    const Page shared = page.get();
    ASSERT_TRUE(shared.ok()) << shared.status();
    EXPECT_EQ((*shared)->items(0).stock(), 2);
    objects.push_back(shared->get());
  }
  EXPECT_EQ(store_.reads(), 2);
  EXPECT_EQ(objects[0], objects[1]);
  EXPECT_EQ(objects[1], objects[2]);
  EXPECT_EQ(service_->list_reads()->loads(), 2);
}

TEST_F(CatalogServiceTest, ListsReadEachTheirOwnWhenSharingIsOff) {
  CatalogCacheOptions options;
  options.enabled = false;
  options.list_reads_in_flight = 0;
  CatalogService service(&store_, &tokens_, RunNow, options);
  EXPECT_EQ(service.list_reads(), nullptr);
  EXPECT_NE(service_->list_cache(), nullptr) << "the page cache, when on, needs no sharing";
  EXPECT_EQ(service_->list_reads(), nullptr);
}

// GetItem's batched reads (the item cache's loads) run where the read scheduler says (hotpathd's
// threads at the normal priority); the other cached reads stay on the database scheduler.
TEST(CatalogServiceSchedulersTest, BatchedItemReadsGoToTheReadSchedulerAndTheRestDoNot) {
  FakeItemStore store;
  PageTokenCodec tokens("test secret");
  int database = 0;
  int reads = 0;
  CatalogService service(
      &store, &tokens,
      [&database](std::function<void()> work) {
        ++database;
        return RunNow(std::move(work));
      },
      CatalogCacheOptions{},
      [&reads](std::function<void()> work) {
        ++reads;
        return RunNow(std::move(work));
      });
  v1::CreateItemRequest create;
  *create.mutable_item() = NewItem("S-1", "saws");
  auto created = service.CreateItem(create, absl::Now() + kLong);
  ASSERT_TRUE(created.ok()) << created.status();

  v1::GetItemRequest get;
  get.set_id(created->id());
  std::promise<bool> item;
  service.GetItem(get, absl::Now() + kLong, [&item](const auto& r) { item.set_value(r.ok()); });
  ASSERT_TRUE(item.get_future().get());
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(database, 0);

  v1::GetCategoryStatsRequest stats;
  stats.set_category("saws");
  std::promise<bool> counted;
  service.GetCategoryStats(stats, absl::Now() + kLong,
                           [&counted](const auto& r) { counted.set_value(r.ok()); });
  ASSERT_TRUE(counted.get_future().get());
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(database, 1);
}

// README "Caching": the item cache's refreshes share queries, so a refresh wave's loads are a few
// statements, not one per item.
class SteppedClock final : public cache::Clock {
 public:
  absl::Time Now() const override { return absl::Now() + ahead_.load() * absl::Seconds(1); }
  void Advance(int seconds) { ahead_ += seconds; }

 private:
  std::atomic<int> ahead_{0};
};

TEST(CatalogServiceRefreshTest, ARefreshWaveOfTwoHundredItemsTakesAFewQueries) {
  FakeItemStore store;
  PageTokenCodec tokens("test secret");
  SteppedClock clock;
  CatalogCacheOptions options;
  options.items.clock = &clock;
  CatalogService service(&store, &tokens, RunNow, options);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 200; ++i) {
    v1::CreateItemRequest create;
    *create.mutable_item() = NewItem(absl::StrCat("R-", i));
    auto created = service.CreateItem(create, absl::Now() + kLong);
    ASSERT_TRUE(created.ok()) << created.status();
    ids.push_back(created->id());
  }
  auto read_all = [&] {
    for (const std::int64_t id : ids) {
      v1::GetItemRequest get;
      get.set_id(id);
      bool ok = false;
      service.GetItem(get, absl::Now() + kLong, [&ok](const auto& r) { ok = r.ok(); });
      ASSERT_TRUE(ok);  // a miss is answered at once here (RunNow), a hit always is
    }
  };
  read_all();  // loads them
  const int loaded = store.reads();
  clock.Advance(46);  // past every item's refresh age (at most 3/4 of the 60 s TTL), still live
  read_all();         // hits, each starting a refresh
  // Until the refreshes are over: no new query for half a second.
  int reads = store.reads();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  for (absl::Time quiet = absl::Now();
       absl::Now() - quiet < absl::Milliseconds(500) && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(10));
    if (store.reads() != reads) {
      reads = store.reads();
      quiet = absl::Now();
    }
  }
  EXPECT_GE(reads - loaded, 2) << "200 refreshes fit no fewer than two queries of 100";
  EXPECT_LE(reads - loaded, 10) << "one query per refresh would be 200";
}

// README "Caching": a refresh waits up to 100 ms, at most a quarter of what its item has left to
// live (here 1 s x (1 - 3/4) / 4), and nothing waits when there are no refreshes.
TEST(CatalogServiceRefreshTest, ARefreshWaitsAtMostAQuarterOfWhatItsItemHasLeft) {
  FakeItemStore store;
  PageTokenCodec tokens("test secret");
  CatalogCacheOptions options;
  EXPECT_EQ(
      CatalogService(&store, &tokens, RunNow, options).item_reads()->options().background_wait,
      absl::Milliseconds(100));
  options.items.ttl = absl::Seconds(1);
  EXPECT_EQ(
      CatalogService(&store, &tokens, RunNow, options).item_reads()->options().background_wait,
      absl::Milliseconds(62.5));
  options.item_refresh_at = 0;
  EXPECT_EQ(
      CatalogService(&store, &tokens, RunNow, options).item_reads()->options().background_wait,
      absl::ZeroDuration());
  options.item_refresh_at = 0.75;
  options.enabled = false;
  EXPECT_EQ(
      CatalogService(&store, &tokens, RunNow, options).item_reads()->options().background_wait,
      absl::ZeroDuration());
}

}  // namespace
}  // namespace hotpath::catalog
