// Every CatalogService RPC through a generated stub against an in-process hotpathd and a real
// PostgreSQL, error paths included.
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "grpc_reflection_v1alpha/reflection.pb.h"
#include "server/catalog/pg_item_store.h"
#include "server/db/migrations.h"
#include "server/db/pg_pool.h"
#include "server/rpc/cancellation.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ReflectionRequest = ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ReflectionResponse = ::grpc::reflection::v1alpha::ServerReflectionResponse;

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class CatalogTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
  }

  // The server again, with a pool of one connection, and an item created on it: what its calls
  // read.
  v1::Item RestartWithOneConnection() {
    server_.reset();
    ServerOptions options = Options();
    options.database.max_size = 1;
    StartServer(options);
    return CreateDemo(1);
  }

  // Imports DemoItem(1..count) through ImportItems.
  v1::ImportItemsResponse ImportDemo(int first, int count, grpc::Status* status) {
    auto context = Context(absl::Seconds(60));
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    for (int n = first; n < first + count; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    *status = writer->Finish();
    return response;
  }

  std::int64_t CountItems() const {
    return std::stoll(database_->Query("SELECT count(*) FROM items"));
  }
};

TEST_F(CatalogTest, CreateAssignsIdTimesAndEtagAndGetReturnsIt) {
  const v1::Item created = CreateDemo(1);
  EXPECT_GT(created.id(), 0);
  EXPECT_EQ(created.sku(), "SKU-1");
  EXPECT_EQ(created.etag(), "1");
  EXPECT_GT(created.create_time().seconds(), 1'600'000'000);
  EXPECT_EQ(created.create_time().seconds(), created.update_time().seconds());

  v1::GetItemRequest get;
  get.set_id(created.id());
  v1::Item fetched;
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &fetched).ok());
  EXPECT_EQ(fetched.SerializeAsString(), created.SerializeAsString());
}

TEST_F(CatalogTest, CreateStoresTextExactly) {
  v1::CreateItemRequest request;
  v1::Item& item = *request.mutable_item();
  item.set_sku("Q-1");
  item.set_name("Quote ' and \" and \\ and ; DROP TABLE items; -- é 中文");
  item.set_description("line one\nline\ttwo");
  item.set_category("odd");
  item.add_tags("a,b");
  item.add_tags("{braces}");
  item.add_tags("\"quoted\"");
  item.add_tags("back\\slash");
  item.add_tags("NULL");
  v1::Item created;
  ASSERT_TRUE(stub_->CreateItem(Context().get(), request, &created).ok());
  EXPECT_EQ(created.name(), item.name());
  EXPECT_EQ(created.description(), item.description());
  EXPECT_THAT(created.tags(), ElementsAre("a,b", "{braces}", "\"quoted\"", "back\\slash", "NULL"));
  EXPECT_EQ(CountItems(), 1);
}

TEST_F(CatalogTest, CreateRejectsInvalidFieldsWithFieldViolations) {
  v1::CreateItemRequest request;
  request.mutable_item()->set_sku("has space");
  request.mutable_item()->set_price_cents(-5);
  v1::Item created;
  const grpc::Status status = stub_->CreateItem(Context().get(), request, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status),
              ElementsAre("item.sku", "item.name", "item.category", "item.price_cents"));
  EXPECT_EQ(CountItems(), 0);
}

TEST_F(CatalogTest, CreateDuplicateSkuIsAlreadyExists) {
  CreateDemo(1);
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(1);
  v1::Item created;
  const grpc::Status status = stub_->CreateItem(Context().get(), request, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("SKU-1"));
}

// A create retried with its request_id while the first attempt is still being written: the
// retry's insert can look for its key before the first attempt's row has it, then wait on that
// row's sku. Once the first attempt commits, the retry was answered ALREADY_EXISTS (seen under
// TSan); its answer is the first attempt's item. Here the first attempt is a transaction of the
// test's own that takes the sku first and the key once the retry waits, then commits.
TEST_F(CatalogTest, ARetryThatMeetsItsFirstAttemptsSkuGetsThatAttemptsItem) {
  const auto create_beside_first_attempt = [&](int n, const std::string& retry_key,
                                               const std::string& first_key, v1::Item* created) {
    const v1::Item demo = client::DemoItem(n);
    pqxx::connection first(database_->url());
    pqxx::work attempt(first);
    attempt.exec_params("INSERT INTO items (sku, name, category) VALUES ($1, 'first', 'home')",
                        demo.sku());
    grpc::Status status;
    std::thread retry([&] {
      v1::CreateItemRequest request;
      *request.mutable_item() = demo;
      request.set_request_id(retry_key);
      status = stub_->CreateItem(Context(absl::Seconds(20)).get(), request, created);
    });
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (database_->Query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND query LIKE '%INSERT INTO items%' "
                            "AND datname = current_database()") != "1" &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (!first_key.empty()) {
      attempt.exec_params("UPDATE items SET create_request_id = $1 WHERE sku = $2", first_key,
                          demo.sku());
    }
    attempt.commit();
    retry.join();
    return status;
  };

  v1::Item created;
  const grpc::Status retried = create_beside_first_attempt(1, "key-1", "key-1", &created);
  ASSERT_TRUE(retried.ok()) << retried.error_message();
  EXPECT_EQ(created.name(), "first");
  EXPECT_EQ(created.id(), std::stoll(database_->Query("SELECT id FROM items WHERE sku = 'SKU-1'")));
  EXPECT_EQ(CountItems(), 1);
  // The sku taken by a create with another key, or with none: a conflict, as ever.
  EXPECT_EQ(create_beside_first_attempt(2, "key-2", "other", &created).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(create_beside_first_attempt(3, "key-3", "", &created).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CountItems(), 3);
}

TEST_F(CatalogTest, GetMissingIsNotFoundAndBadIdIsInvalid) {
  v1::GetItemRequest get;
  get.set_id(999);
  v1::Item item;
  EXPECT_EQ(stub_->GetItem(Context().get(), get, &item).error_code(), grpc::StatusCode::NOT_FOUND);
  get.set_id(-1);
  const grpc::Status status = stub_->GetItem(Context().get(), get, &item);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status), ElementsAre("id"));
}

TEST_F(CatalogTest, BatchGetKeepsRequestOrderAndNamesMissingIds) {
  const v1::Item a = CreateDemo(1), b = CreateDemo(2), c = CreateDemo(3);
  v1::BatchGetItemsRequest request;
  for (auto id : {c.id(), a.id(), c.id(), b.id()}) request.add_ids(id);
  v1::BatchGetItemsResponse response;
  ASSERT_TRUE(stub_->BatchGetItems(Context().get(), request, &response).ok());
  std::vector<std::int64_t> ids;
  for (const auto& item : response.items()) ids.push_back(item.id());
  EXPECT_THAT(ids, ElementsAre(c.id(), a.id(), c.id(), b.id()));

  request.add_ids(4242);
  const grpc::Status status = stub_->BatchGetItems(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("4242"));

  request.clear_ids();
  for (int i = 1; i <= 1001; ++i) request.add_ids(i);
  EXPECT_EQ(stub_->BatchGetItems(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogTest, ListPagesThroughEveryItemOnceWithFilters) {
  grpc::Status status;
  ImportDemo(1, 95, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto collect = [this](v1::ListItemsRequest request) {
    std::vector<v1::Item> all;
    for (int pages = 0; pages < 100; ++pages) {
      v1::ListItemsResponse response;
      const grpc::Status s = stub_->ListItems(Context().get(), request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      all.insert(all.end(), response.items().begin(), response.items().end());
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return all;
  };

  v1::ListItemsRequest request;
  request.set_page_size(10);
  std::vector<v1::Item> all = collect(request);
  ASSERT_EQ(all.size(), 95u);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].id(), all[i].id());

  request.set_category("cat-3");
  request.mutable_min_price_cents()->set_value(200);
  request.mutable_max_price_cents()->set_value(2000);
  std::vector<v1::Item> filtered = collect(request);
  ASSERT_FALSE(filtered.empty());
  for (const auto& item : filtered) {
    EXPECT_EQ(item.category(), "cat-3");
    EXPECT_GE(item.price_cents(), 200);
    EXPECT_LE(item.price_cents(), 2000);
  }
  // DemoItem(n): category n % 20, price 37n: cat-3 in [200, 2000] is n = 23, 43.
  EXPECT_EQ(filtered.size(), 2u);

  v1::ListItemsRequest by_category;
  by_category.set_page_size(7);
  by_category.set_order_by("category,id");
  std::vector<v1::Item> ordered = collect(by_category);
  ASSERT_EQ(ordered.size(), 95u);
  for (std::size_t i = 1; i < ordered.size(); ++i) {
    EXPECT_LT(std::make_tuple(ordered[i - 1].category(), ordered[i - 1].id()),
              std::make_tuple(ordered[i].category(), ordered[i].id()));
  }
}

TEST_F(CatalogTest, ListDefaultsToFiftyAndRejectsTamperedOrForeignTokens) {
  grpc::Status status;
  ImportDemo(1, 60, &status);
  ASSERT_TRUE(status.ok());
  v1::ListItemsRequest request;
  v1::ListItemsResponse response;
  ASSERT_TRUE(stub_->ListItems(Context().get(), request, &response).ok());
  EXPECT_EQ(response.items_size(), 50);
  ASSERT_FALSE(response.next_page_token().empty());

  std::string tampered = response.next_page_token();
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  request.set_page_token(tampered);
  status = stub_->ListItems(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status), ElementsAre("page_token"));

  v1::ListItemsResponse first;
  ASSERT_TRUE(stub_->ListItems(Context().get(), v1::ListItemsRequest(), &first).ok());
  request.set_page_token(first.next_page_token());
  request.set_category("cat-1");  // other filters than the token was made for
  EXPECT_EQ(stub_->ListItems(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogTest, UpdateAppliesTheMaskAndChecksTheEtag) {
  const v1::Item original = CreateDemo(1);
  CreateDemo(2);
  v1::UpdateItemRequest request;
  request.mutable_item()->set_id(original.id());
  request.mutable_item()->set_name("Renamed");
  request.mutable_item()->set_stock(123);  // not in the mask: must not change
  request.mutable_item()->set_etag(original.etag());
  request.mutable_update_mask()->add_paths("name");
  v1::Item updated;
  ASSERT_TRUE(stub_->UpdateItem(Context().get(), request, &updated).ok());
  EXPECT_EQ(updated.name(), "Renamed");
  EXPECT_EQ(updated.stock(), original.stock());
  EXPECT_EQ(updated.sku(), original.sku());
  EXPECT_NE(updated.etag(), original.etag());
  EXPECT_GE(absl::FromUnixSeconds(updated.update_time().seconds()) +
                absl::Nanoseconds(updated.update_time().nanos()),
            absl::FromUnixSeconds(original.update_time().seconds()) +
                absl::Nanoseconds(original.update_time().nanos()));

  // The same (now stale) etag again: ABORTED, nothing changed.
  request.mutable_item()->set_name("Again");
  grpc::Status status = stub_->UpdateItem(Context().get(), request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT name FROM items WHERE id = ", original.id())),
            "Renamed");

  // Taking another item's sku: ALREADY_EXISTS.
  request.mutable_item()->clear_etag();
  request.mutable_item()->set_sku("SKU-2");
  request.mutable_update_mask()->add_paths("sku");
  status = stub_->UpdateItem(Context().get(), request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);

  request.mutable_item()->set_id(99999);
  request.mutable_item()->set_sku("SKU-NEW");
  EXPECT_EQ(stub_->UpdateItem(Context().get(), request, &updated).error_code(),
            grpc::StatusCode::NOT_FOUND);

  request.mutable_update_mask()->add_paths("create_time");
  status = stub_->UpdateItem(Context().get(), request, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogTest, DeleteHonoursTheEtag) {
  const v1::Item item = CreateDemo(1);
  v1::DeleteItemRequest request;
  request.set_id(item.id());
  request.set_etag("77");
  v1::DeleteItemResponse response;
  EXPECT_EQ(stub_->DeleteItem(Context().get(), request, &response).error_code(),
            grpc::StatusCode::ABORTED);
  request.set_etag(item.etag());
  ASSERT_TRUE(stub_->DeleteItem(Context().get(), request, &response).ok());
  EXPECT_EQ(stub_->DeleteItem(Context().get(), request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CountItems(), 0);
}

// #16's pages over 4 MiB: 300 items of 4,000 emoji (16 KB each, 4.8 MB in all) in one category.
// A page of 1000 stops short of gRPC's 4 MiB with a next page token (AIP-158), so paging returns
// every item once; a batch of all of them is refused naming the limit, not failed by gRPC after
// the fact; the metrics count what the client received; the gateway answers the same.
TEST_F(CatalogTest, PagesOverTheMessageLimitComeShortAndABatchThatCannotFitIsRefused) {
  std::string emoji;
  for (int i = 0; i < 4000; ++i) emoji += "\xF0\x9F\x98\x80";  // U+1F600
  {
    auto context = Context(absl::Seconds(60));
    v1::ImportItemsResponse imported;
    auto writer = stub_->ImportItems(context.get(), &imported);
    for (int n = 1; n <= 300; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      request.mutable_item()->set_name(absl::StrCat("Wide thing ", n));
      request.mutable_item()->set_category("wide");
      request.mutable_item()->set_description(emoji);
      ASSERT_TRUE(writer->Write(request));
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  const std::size_t limit = 4 * 1024 * 1024;
  const auto pages = [&](auto request, auto call) {
    std::set<std::int64_t> seen;
    std::vector<int> sizes;
    for (;;) {
      decltype(call(request)) response = call(request);
      EXPECT_LE(response.ByteSizeLong(), limit);
      sizes.push_back(response.items_size());
      for (const v1::Item& item : response.items()) EXPECT_TRUE(seen.insert(item.id()).second);
      if (response.next_page_token().empty() || sizes.size() > 10) break;
      request.set_page_token(response.next_page_token());
    }
    EXPECT_EQ(seen.size(), 300u);
    return sizes;
  };
  v1::ListItemsRequest list;
  list.set_category("wide");
  list.set_page_size(1000);
  const std::vector<int> list_pages = pages(list, [&](const v1::ListItemsRequest& request) {
    v1::ListItemsResponse response;
    const grpc::Status status = stub_->ListItems(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  });
  ASSERT_GE(list_pages.size(), 2u);
  EXPECT_GT(list_pages[0], 200);  // short only by what does not fit
  v1::SearchItemsRequest search;
  search.set_query("wide");
  search.set_page_size(1000);
  EXPECT_GE(pages(search,
                  [&](const v1::SearchItemsRequest& request) {
                    v1::SearchItemsResponse response;
                    const grpc::Status status =
                        stub_->SearchItems(Context().get(), request, &response);
                    EXPECT_TRUE(status.ok()) << status.error_message();
                    return response;
                  })
                .size(),
            2u);

  v1::BatchGetItemsRequest batch;
  std::string ids;
  for (int id = 1; id <= 300; ++id) {
    batch.add_ids(id);
    absl::StrAppend(&ids, ids.empty() ? "?" : "&", "ids=", id);
  }
  v1::BatchGetItemsResponse got;
  const grpc::Status refused = stub_->BatchGetItems(Context().get(), batch, &got);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("4194304"));
  batch.mutable_ids()->Truncate(100);
  EXPECT_TRUE(stub_->BatchGetItems(Context().get(), batch, &got).ok());
  EXPECT_EQ(got.items_size(), 100);

  // What the client received is what the metrics count.
  const int http = server_->http_port();
  EXPECT_EQ(Metric(http, "grpc_server_handled_total",
                   {"grpc_method=\"BatchGetItems\"", "grpc_code=\"FailedPrecondition\""}),
            1);
  EXPECT_EQ(Metric(http, "grpc_server_handled_total",
                   {"grpc_method=\"BatchGetItems\"", "grpc_code=\"OK\""}),
            1);
  EXPECT_EQ(
      Metric(http, "grpc_server_handled_total", {"grpc_method=\"ListItems\"", "grpc_code=\"OK\""}),
      static_cast<double>(list_pages.size()));

  // The gateway: the same short page, and a 400 (not a 429 to retry) for the batch.
  const HttpReply page = Http(http, "GET", "/v1/items?category=wide&pageSize=1000");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.body, ::testing::HasSubstr("\"nextPageToken\""));
  const HttpReply too_big = Http(http, "GET", absl::StrCat("/v1/items:batchGet", ids));
  EXPECT_EQ(too_big.status, 400) << too_big.body.substr(0, 200);
  EXPECT_THAT(too_big.body, ::testing::HasSubstr("4194304"));
}

TEST_F(CatalogTest, SearchRanksAndPagesThroughEveryHitOnce) {
  grpc::Status status;
  ImportDemo(1, 40, &status);
  ASSERT_TRUE(status.ok());
  v1::CreateItemRequest create;
  *create.mutable_item() = client::DemoItem(1000);
  create.mutable_item()->set_name("Cobalt anvil");
  create.mutable_item()->set_description("An anvil, cobalt blue. The anvil of anvils.");
  v1::Item anvil;
  ASSERT_TRUE(stub_->CreateItem(Context().get(), create, &anvil).ok());

  v1::SearchItemsRequest request;
  request.set_query("anvil");
  v1::SearchItemsResponse response;
  ASSERT_TRUE(stub_->SearchItems(Context().get(), request, &response).ok());
  ASSERT_EQ(response.items_size(), 1);
  EXPECT_EQ(response.items(0).id(), anvil.id());

  // "item" matches the 40 demo rows (not the anvil); pages of 6 must return each exactly once.
  request.set_query("item");
  request.set_page_size(6);
  std::set<std::int64_t> seen;
  int served = 0;
  for (int pages = 0; pages < 20; ++pages) {
    ASSERT_TRUE(stub_->SearchItems(Context().get(), request, &response).ok());
    for (const auto& item : response.items()) seen.insert(item.id());
    served += response.items_size();
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(served, 40);
  EXPECT_EQ(seen.size(), 40u);

  request.set_query("");
  request.clear_page_token();
  EXPECT_EQ(stub_->SearchItems(Context().get(), request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogTest, CategoryStatsAggregatesAndUnknownIsNotFound) {
  grpc::Status status;
  ImportDemo(1, 100, &status);
  ASSERT_TRUE(status.ok());
  v1::GetCategoryStatsRequest request;
  request.set_category("cat-5");
  v1::CategoryStats stats;
  ASSERT_TRUE(stub_->GetCategoryStats(Context().get(), request, &stats).ok());
  // cat-5 among 1..100: n = 5, 25, 45, 65, 85.
  EXPECT_EQ(stats.item_count(), 5);
  EXPECT_EQ(stats.stock_total(), 5 + 25 + 45 + 65 + 85);
  EXPECT_EQ(stats.min_price_cents(), 5 * 37);
  EXPECT_EQ(stats.max_price_cents(), 85 * 37);
  EXPECT_DOUBLE_EQ(stats.avg_price_cents(), 45 * 37);

  request.set_category("nothing-here");
  EXPECT_EQ(stub_->GetCategoryStats(Context().get(), request, &stats).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CatalogTest, ExportStreamsEveryMatchingItemInIdOrder) {
  grpc::Status status;
  ImportDemo(1, 1234, &status);  // more than two export batches
  ASSERT_TRUE(status.ok());
  auto read_all = [this](const v1::ExportItemsRequest& request, grpc::Status* finish) {
    auto context = Context(absl::Seconds(30));
    auto reader = stub_->ExportItems(context.get(), request);
    std::vector<std::int64_t> ids;
    v1::Item item;
    while (reader->Read(&item)) ids.push_back(item.id());
    *finish = reader->Finish();
    return ids;
  };
  std::vector<std::int64_t> ids = read_all(v1::ExportItemsRequest(), &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ids.size(), 1234u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));

  v1::ExportItemsRequest filtered;
  filtered.set_category("cat-7");
  EXPECT_EQ(read_all(filtered, &status).size(), 62u);  // n % 20 == 7 for n in 1..1234

  filtered.mutable_min_price_cents()->set_value(-1);
  read_all(filtered, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CatalogTest, ImportStoresEverythingInOneGo) {
  grpc::Status status;
  const v1::ImportItemsResponse response = ImportDemo(1, 2500, &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.imported_count(), 2500);
  EXPECT_EQ(CountItems(), 2500);
  EXPECT_EQ(database_->Query("SELECT tags::text FROM items WHERE sku = 'SKU-12'"), "{t5,t1}");
}

// Every character a field may hold comes back as sent, and the largest integers too: the COPY
// text the import writes escapes what its format gives meaning to (backslash, tab, newline,
// carriage return), text arrays quote every element, and UTF-8 passes through as it is
// (db/copy_text.h).
TEST_F(CatalogTest, ImportKeepsEveryCharacterAsSent) {
  std::vector<v1::Item> sent;
  for (int n = 1; n <= 3; ++n) {
    v1::Item item = client::DemoItem(n);
    item.set_category("odd");
    sent.push_back(item);
  }
  sent[0].set_name("back\\slash \\N \\t \"quoted\" caf\xC3\xA9 \xF0\x9F\x98\x80");
  sent[0].set_description("tab\there\nnew line\r\nand \\. alone\n\\.\n");
  sent[0].mutable_tags()->Clear();
  for (const char* tag : {"NULL", "say \"hi\"", "a\\b", "x,y {z}", " spaced "}) {
    sent[0].add_tags(tag);
  }
  sent[1].set_description("");
  sent[1].mutable_tags()->Clear();
  sent[1].set_price_cents(1000000000000);  // the largest price: five bytes of an int8
  sent[2].set_description("\\");
  sent[2].set_stock(std::numeric_limits<std::int32_t>::max());
  {
    auto context = Context();
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    for (const v1::Item& item : sent) {
      v1::CreateItemRequest request;
      *request.mutable_item() = item;
      ASSERT_TRUE(writer->Write(request));
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.imported_count(), 3);
  }
  v1::ListItemsRequest list;
  list.set_category("odd");
  v1::ListItemsResponse listed;
  const grpc::Status status = stub_->ListItems(Context().get(), list, &listed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(listed.items_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const v1::Item& got = listed.items(i);
    EXPECT_EQ(got.sku(), sent[i].sku());
    EXPECT_EQ(got.name(), sent[i].name());
    EXPECT_EQ(got.description(), sent[i].description());
    EXPECT_EQ(got.category(), "odd");
    EXPECT_EQ(got.price_cents(), sent[i].price_cents());
    EXPECT_EQ(got.stock(), sent[i].stock());
    EXPECT_THAT(got.tags(), ElementsAreArray(sent[i].tags()));
  }
}

TEST_F(CatalogTest, ImportWithABadRowStoresNothingAndNamesTheRow) {
  CreateDemo(5000);
  auto context = Context();
  v1::ImportItemsResponse response;
  auto writer = stub_->ImportItems(context.get(), &response);
  for (int n = 1; n <= 1500; ++n) {
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    if (n == 1208) request.mutable_item()->set_stock(-3);  // index 1207, in the second batch
    if (!writer->Write(request)) break;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("item 1207"));
  EXPECT_THAT(ViolatedFields(status), ElementsAre("items[1207].stock"));
  EXPECT_EQ(CountItems(), 1);

  // A sku already taken is caught by the database at commit: still nothing stored.
  auto context2 = Context();
  auto writer2 = stub_->ImportItems(context2.get(), &response);
  for (int n = 4990; n <= 5010; ++n) {
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    writer2->Write(request);
  }
  writer2->WritesDone();
  status = writer2->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("item 10"));  // SKU-5000 is the 11th row
  EXPECT_EQ(CountItems(), 1);
}

TEST_F(CatalogTest, ImportCancelledMidStreamStoresNothing) {
  auto context = Context();
  v1::ImportItemsResponse response;
  auto writer = stub_->ImportItems(context.get(), &response);
  for (int n = 1; n <= 2100; ++n) {  // two batches reach the database
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    if (!writer->Write(request)) break;
  }
  context->TryCancel();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server learns of it asynchronously: wait until its connection is back in the pool.
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);
  EXPECT_EQ(CountItems(), 0);
}

TEST_F(CatalogTest, ConcurrentCreatesAllLandWithDistinctIds) {
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::int64_t> ids;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        v1::CreateItemRequest request;
        *request.mutable_item() = client::DemoItem(t * 1000 + i + 1);
        v1::Item item;
        if (!stub_->CreateItem(Context().get(), request, &item).ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        ids.insert(item.id());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(CountItems(), kThreads * kPerThread);
}

TEST_F(CatalogTest, ConcurrentEtagUpdatesLoseNoIncrement) {
  const v1::Item item = CreateDemo(500);  // stock 0
  constexpr int kThreads = 6, kIncrements = 10;
  std::vector<std::thread> threads;
  std::atomic<int> conflicts{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        v1::GetItemRequest get;
        get.set_id(item.id());
        v1::Item current;
        ASSERT_TRUE(stub_->GetItem(Context().get(), get, &current).ok());
        v1::UpdateItemRequest update;
        update.mutable_item()->set_id(item.id());
        update.mutable_item()->set_stock(current.stock() + 1);
        update.mutable_item()->set_etag(current.etag());
        update.mutable_update_mask()->add_paths("stock");
        v1::Item updated;
        const grpc::Status status = stub_->UpdateItem(Context().get(), update, &updated);
        if (status.ok()) {
          ++done;
        } else {
          ASSERT_EQ(status.error_code(), grpc::StatusCode::ABORTED) << status.error_message();
          ++conflicts;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT stock FROM items WHERE id = ", item.id())),
            absl::StrCat(kThreads * kIncrements));
}

TEST_F(CatalogTest, AcquireWaitsNoLongerThanTheDeadline) {
  const v1::Item item = RestartWithOneConnection();
  {
    auto held = server_->pool().Acquire(absl::Now() + absl::Seconds(1));  // the only connection
    ASSERT_TRUE(held.ok());
    v1::GetItemRequest get;
    get.set_id(item.id());
    v1::Item fetched;
    const absl::Time start = absl::Now();
    const grpc::Status status =
        stub_->GetItem(Context(absl::Milliseconds(300)).get(), get, &fetched);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_LT(absl::Now() - start, absl::Seconds(3));
    // The server gives up on its own at the same deadline, while the connection is still held.
    for (int i = 0; i < 100 && server_->pool().stats().acquire_timeouts == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_EQ(server_->pool().stats().acquire_timeouts, 1);
  }
}

TEST_F(CatalogTest, MetricsShowCallersWaitingForAConnectionWhileTheyWait) {
  const v1::Item item = RestartWithOneConnection();
  const int http = server_->http_port();
  const auto waiting = [&] { return Metric(http, "hotpath_db_pool_waiting"); };
  EXPECT_EQ(waiting(), 0);
  std::optional<absl::StatusOr<db::PgLease>> held =
      server_->pool().Acquire(absl::Now() + absl::Seconds(10));  // the only connection
  ASSERT_TRUE(held->ok());
  grpc::Status status;
  std::thread reader([&] {
    v1::GetItemRequest get;
    get.set_id(item.id());
    v1::Item fetched;
    status = stub_->GetItem(Context(absl::Seconds(10)).get(), get, &fetched);
  });
  for (const absl::Time end = absl::Now() + absl::Seconds(5);
       waiting() == 0 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(waiting(), 1);
  held.reset();
  reader.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(waiting(), 0);
}

TEST_F(CatalogTest, StatementTimeoutCancelsQueriesPastTheDeadline) {
  // Lock the table so the update blocks in PostgreSQL until statement_timeout stops it.
  const v1::Item item = CreateDemo(1);
  pqxx::connection blocker(database_->url());
  pqxx::work lock(blocker);
  lock.exec("LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(item.id());
  update.mutable_item()->set_stock(9);
  v1::Item updated;
  const absl::Time start = absl::Now();
  const grpc::Status status =
      stub_->UpdateItem(Context(absl::Milliseconds(500)).get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  lock.abort();
  // The cancelled statement left nothing behind, and the connection is usable again.
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT stock FROM items WHERE id = ", item.id())), "1");
  v1::GetItemRequest get;
  get.set_id(item.id());
  EXPECT_TRUE(stub_->GetItem(Context().get(), get, &updated).ok());
}

// One reflection stream of the given version ("v1" or "v1alpha"): every request written, then every
// answer read, as a client such as grpcurl does it (the messages are the same for both).
std::vector<ReflectionResponse> Reflect(const std::shared_ptr<grpc::Channel>& channel,
                                        const std::string& version,
                                        const std::vector<ReflectionRequest>& requests,
                                        grpc::Status* status) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::CompletionQueue cq;
  auto await = [&cq] {
    void* tag;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  auto call = generic.PrepareCall(
      &context,
      absl::StrCat("/grpc.reflection.", version, ".ServerReflection/ServerReflectionInfo"), &cq);
  call->StartCall(nullptr);
  std::vector<ReflectionResponse> answers;
  if (!await()) return answers;
  for (const ReflectionRequest& request : requests) {
    grpc::Slice bytes(request.SerializeAsString());
    grpc::ByteBuffer buffer(&bytes, 1);
    call->Write(buffer, nullptr);
    if (!await()) break;
    grpc::ByteBuffer response;
    call->Read(&response, nullptr);
    if (!await()) break;
    grpc::Slice merged;
    EXPECT_TRUE(response.DumpToSingleSlice(&merged).ok());
    answers.emplace_back().ParseFromArray(merged.begin(), static_cast<int>(merged.size()));
  }
  call->WritesDone(nullptr);
  await();
  call->Finish(status, nullptr);
  await();
  // Timed like every other call, though reflection has a state machine of its own.
  EXPECT_EQ(context.GetServerInitialMetadata().count("x-process-time"), 1u);
  EXPECT_EQ(context.GetServerTrailingMetadata().count("x-process-time"), 1u);
  return answers;
}

// Server reflection, v1 (what current grpcurl, Postman and grpc-js tooling ask first) and v1alpha:
// the services, then the catalog's file with every dependency, enough to build its descriptors
// from nothing (what a client does to call it), and a clear error for what does not exist.
TEST_F(CatalogTest, ReflectionV1AndV1AlphaDescribeTheCatalog) {
  for (const std::string version : {"v1", "v1alpha"}) {
    SCOPED_TRACE(version);
    std::vector<ReflectionRequest> requests(4);
    requests[0].set_list_services("");
    requests[1].set_file_containing_symbol("hotpath.catalog.v1.CatalogService");
    requests[2].set_file_containing_symbol("hotpath.catalog.v1.NoSuchThing");
    requests[3].set_file_by_filename("hotpath/catalog/v1/catalog.proto");
    grpc::Status status;
    const auto answers = Reflect(channel_, version, requests, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(answers.size(), 4u);
    std::set<std::string> services;
    for (const auto& service : answers[0].list_services_response().service()) {
      services.insert(service.name());
    }
    EXPECT_EQ(services,
              (std::set<std::string>{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                                     "grpc.reflection.v1alpha.ServerReflection",
                                     "hotpath.catalog.v1.CatalogService"}));
    // The files, dependencies included, build the service in an empty pool.
    google::protobuf::DescriptorPool pool;
    std::map<std::string, google::protobuf::FileDescriptorProto> files;
    for (const std::string& bytes : answers[1].file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      files[file.name()] = file;
    }
    // Dependencies first, as a client's database would order them.
    std::function<void(const std::string&)> build = [&](const std::string& name) {
      if (pool.FindFileByName(name) != nullptr) return;
      ASSERT_TRUE(files.count(name)) << "missing " << name;
      for (const std::string& dependency : files[name].dependency()) build(dependency);
      ASSERT_NE(pool.BuildFile(files[name]), nullptr) << name;
    };
    build("hotpath/catalog/v1/catalog.proto");
    const auto* catalog = pool.FindServiceByName("hotpath.catalog.v1.CatalogService");
    ASSERT_NE(catalog, nullptr);
    EXPECT_NE(catalog->FindMethodByName("ExportItems"), nullptr);
    EXPECT_EQ(answers[2].error_response().error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(answers[2].error_response().error_message(), HasSubstr("NoSuchThing"));
    // Asked again on the same stream: the file itself, its dependencies not again.
    EXPECT_EQ(answers[3].file_descriptor_response().file_descriptor_proto_size(), 1);
  }
}

// Every statement the store prepares, planned generically on 10,000 rows, uses an index.
TEST_F(CatalogTest, EveryQueryPlanUsesAnIndex) {
  database_->Query(
      "INSERT INTO items (sku, name, description, category, price_cents, stock, tags) "
      "SELECT 'SKU-' || g, 'Item ' || g, 'Description of item ' || g, 'cat-' || (g % 20), "
      "(g * 37) % 100000, g % 500, ARRAY['t' || (g % 7)] FROM generate_series(1, 10000) g");
  database_->Query("ANALYZE items");
  const std::map<std::string, std::string> arguments = {
      {"get_item", "(1)"},
      {"batch_get_items", "('{1,2,3}')"},
      {"create_item", "('s', 'n', 'd', 'c', 1, 1, '{}')"},
      {"create_item_once", "('s', 'n', 'd', 'c', 1, 1, '{}', 'k')"},
      {"item_by_request_id", "('k')"},
      {"update_item",
       "(1, true, 's', false, 'n', false, 'd', false, 'c', false, 1, false, 1, false, '{}', NULL)"},
      {"delete_item", "(1, NULL)"},
      {"item_version", "(1)"},
      {"list_by_id", "(0, 0, 100000, 51)"},
      {"list_in_category", "('cat-3', 0, 0, 100000, 51)"},
      {"list_by_category_order", "('cat-3', 0, 0, 100000, 51)"},
      {"search_items", "('item', NULL, 0, 51)"},
      {"category_stats", "('cat-3')"},
  };
  pqxx::connection connection(database_->url());
  pqxx::nontransaction tx(connection);
  tx.exec("SET plan_cache_mode = force_generic_plan");
  for (const auto& statement : catalog::PgItemStore::Statements()) {
    SCOPED_TRACE(statement.name);
    ASSERT_TRUE(arguments.count(statement.name)) << "no arguments for " << statement.name;
    tx.exec(absl::StrCat("PREPARE ", statement.name, " AS ", statement.sql));
    std::string plan;
    for (const auto& row :
         tx.exec(absl::StrCat("EXPLAIN EXECUTE ", statement.name, arguments.at(statement.name)))) {
      absl::StrAppend(&plan, row[0].c_str(), "\n");
    }
    EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
  }
}

// A pool of one connection to database, waiting for it at most max_acquire_wait.
absl::StatusOr<std::unique_ptr<db::PgPool>> OneConnectionPool(
    const TestDatabase& database, absl::Duration max_acquire_wait = absl::Seconds(10)) {
  db::PgPoolOptions options;
  options.database_url = database.url();
  options.min_size = 1;
  options.max_size = 1;
  options.max_acquire_wait = max_acquire_wait;
  return db::PgPool::Create(options);
}

// Returns once a caller waits in pool's line (at most 10 s).
void UntilSomeoneWaits(const db::PgPool& pool) {
  for (const absl::Time end = absl::Now() + absl::Seconds(10);
       pool.stats().waiting == 0 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
}

TEST(PgPool, ACallerWithoutDeadlineStillWaitsABoundedTime) {
  TestDatabase database;
  auto pool = OneConnectionPool(database, absl::Milliseconds(300));
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto held = (*pool)->Acquire(absl::InfiniteFuture());
  ASSERT_TRUE(held.ok());
  const absl::Time start = absl::Now();
  auto second = (*pool)->Acquire(absl::InfiniteFuture());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

// A call whose caller went away before its statement started does not wait for a connection:
// before, it waited for one (here until its deadline, 2 s) only to give it back.
TEST(PgPool, ACallerThatWentAwayWaitsForNoConnection) {
  TestDatabase database;
  auto pool = OneConnectionPool(database);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto held = (*pool)->Acquire(absl::InfiniteFuture());
  ASSERT_TRUE(held.ok());
  rpc::Cancellation gone;
  gone.MarkDeparted();
  const rpc::Cancellation::Scope scope(&gone);
  const absl::Time start = absl::Now();
  auto lease = (*pool)->Acquire(absl::Now() + absl::Seconds(2));
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kCancelled) << lease.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ((*pool)->stats().acquire_timeouts, 0);
}

// Waiters are served in the order they came. One connection, held by a worker that gives it
// back and at once asks again, 20 times (the executor's threads between two fetches, say): a
// caller already waiting gets it at the first give-back. Before, the worker, still running when
// it asked again, mostly won it back: the waiter got it after 9 of the worker's turns.
TEST(PgPool, AWaitingCallerIsServedBeforeOneThatAsksAgain) {
  TestDatabase database;
  auto pool = OneConnectionPool(database);
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::optional<absl::StatusOr<db::PgLease>> held =
      (*pool)->Acquire(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(held->ok());
  std::atomic<int> turns = 0;          // the worker's turns so far
  std::atomic<int> served_after = -1;  // how many went before the waiter's
  std::thread waiter([&] {
    auto lease = (*pool)->Acquire(absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(lease.ok()) << lease.status();
    served_after = turns.load();
  });
  UntilSomeoneWaits(**pool);
  for (int i = 0; i < 20; ++i) {
    held.reset();                                                     // given back...
    held.emplace((*pool)->Acquire(absl::Now() + absl::Seconds(10)));  // ...and asked for again
    ASSERT_TRUE(held->ok()) << held->status();
    turns = i + 1;
    absl::SleepFor(absl::Milliseconds(1));
  }
  held.reset();
  waiter.join();
  EXPECT_EQ(served_after.load(), 0);
}

TEST(PgPool, AnEventLoopTakesNoConnectionFromACallerWaiting) {
  TestDatabase database;
  auto pool = OneConnectionPool(database);
  ASSERT_TRUE(pool.ok()) << pool.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::optional<absl::StatusOr<db::PgLease>> held = (*pool)->Acquire(deadline);
  ASSERT_TRUE(held->ok());
  ASSERT_TRUE((*held)->LimitTo(deadline).ok());  // so that an event loop's statement would fit it
  held.reset();
  EXPECT_TRUE((*pool)->TryAcquire(deadline).has_value());  // nobody waiting: the loop may take it
  held.emplace((*pool)->Acquire(deadline));
  ASSERT_TRUE(held->ok());
  std::atomic<bool> served = false;
  absl::Notification tried;  // the waiter keeps what it got until then
  std::thread waiter([&] {
    auto lease = (*pool)->Acquire(deadline);
    EXPECT_TRUE(lease.ok()) << lease.status();
    served = true;
    tried.WaitForNotification();
  });
  UntilSomeoneWaits(**pool);
  held.reset();  // comes back for the waiter, which may not have woken yet
  EXPECT_FALSE((*pool)->TryAcquire(deadline).has_value());
  tried.Notify();
  waiter.join();
  EXPECT_TRUE(served.load());
}

TEST(Migrations, ConcurrentStartsApplyEachMigrationOnce) {
  TestDatabase database(TestDatabase::Schema::kEmpty);
  std::vector<std::thread> threads;
  std::atomic<int> applied{0}, failed{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::vector<std::string> done;
      if (!db::Migrate(database.url(), catalog::Migrations(), &done).ok()) ++failed;
      applied += static_cast<int>(done.size());
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(applied.load(), static_cast<int>(catalog::Migrations().size()));
  EXPECT_EQ(database.Query("SELECT count(*) FROM schema_migrations"),
            absl::StrCat(catalog::Migrations().size()));
}

// A table a first migration made, read by a transaction that stays open (so it holds a lock that
// ALTER TABLE waits for), and a second migration that alters it, run on a thread of its own.
class BlockedMigration {
 public:
  explicit BlockedMigration(const TestDatabase& database) : database_(database) {
    EXPECT_TRUE(db::Migrate(database.url(), {first_}).ok());
    held_.exec("SELECT * FROM t");
  }
  ~BlockedMigration() {
    if (!migrating_.joinable()) return;
    try {
      held_.abort();  // a test that failed early: let a migration still waiting go on
    } catch (const std::exception&) {
    }
    migrating_.join();
  }

  // Starts both migrations and returns once the second waits for its lock.
  void Start(const db::MigrateOptions& options) {
    migrating_ = std::thread([this, options] {
      status_ = db::Migrate(database_.url(), {first_, second_}, &applied_, options);
    });
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (database_.Query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                           "'Lock' AND query LIKE 'ALTER TABLE t%' "
                           "AND datname = current_database()") != "1") {
      ASSERT_LT(absl::Now(), give_up) << "the migration never waited for its lock";
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  // Migrate's status, once it returned; what it says it applied.
  const absl::Status& Finish() {
    migrating_.join();
    return status_;
  }
  const std::vector<std::string>& applied() const { return applied_; }
  std::string Recorded() const {
    return database_.Query(
        "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations");
  }
  int holder_pid() const { return holder_.backendpid(); }
  void EndTheLongTransaction() { held_.commit(); }

 private:
  const TestDatabase& database_;
  const db::Migration first_{"0001_t", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"};
  const db::Migration second_{"0002_add", "ALTER TABLE t ADD COLUMN x int"};
  pqxx::connection holder_{database_.url()};
  pqxx::work held_{holder_};
  std::thread migrating_;
  absl::Status status_;
  std::vector<std::string> applied_;
};

TEST(Migrations, AMigrationBehindALongTransactionGivesUpLetsReadersGoAndNamesTheHolder) {
  // README: the error names the oldest open transaction "in its database". An older one in
  // another database of the same server cannot hold the lock, and must not be named.
  TestDatabase elsewhere(TestDatabase::Schema::kEmpty);
  pqxx::connection elsewhere_connection(elsewhere.url());
  pqxx::work older(elsewhere_connection);
  older.exec("SELECT 1");
  TestDatabase database(TestDatabase::Schema::kEmpty);
  BlockedMigration blocked(database);
  blocked.Start({.lock_timeout = absl::Milliseconds(300),
                 .attempts = 2,
                 .first_pause = absl::Milliseconds(100)});
  // A read arriving while the ALTER waits queues behind it, and goes on once the ALTER gives up:
  // with no bound it would wait as long as the holder's transaction stays open.
  pqxx::connection reader(database.url());
  pqxx::nontransaction read(reader);
  read.exec("SET statement_timeout = '10s'");  // fails the test rather than hang it
  EXPECT_EQ(read.exec("SELECT count(*) FROM t")[0][0].as<int>(), 1);
  const absl::Status& status = blocked.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("migration 0002_add waited more than 300ms for a lock "
                                          "in each of 2 runs; nothing was applied"));
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat("the oldest open transaction is pid ", blocked.holder_pid(),
                                     ", idle in transaction")));
  EXPECT_TRUE(blocked.applied().empty());
  EXPECT_EQ(blocked.Recorded(), "0001_t");
  EXPECT_EQ(
      database.Query("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'"),
      "1");
}

// README: "tries again (5 runs, 1 s to 8 s apart)", with the schedule hotpathd uses (it sets
// only the timeouts). Takes 15 s of pauses.
TEST(Migrations, ByDefaultAWaitingRunIsTriedFiveTimesOneToEightSecondsApart) {
  TestDatabase database(TestDatabase::Schema::kEmpty);
  BlockedMigration blocked(database);
  ::testing::internal::CaptureStderr();
  const absl::Time start = absl::Now();
  blocked.Start({.lock_timeout = absl::Milliseconds(200)});
  const absl::Status& status = blocked.Finish();
  const absl::Duration took = absl::Now() - start;
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("in each of 5 runs; nothing was applied"));
  std::vector<std::string> pauses;
  for (absl::string_view line : absl::StrSplit(said, '\n')) {
    if (const std::size_t at = line.find("trying again in "); at != absl::string_view::npos) {
      pauses.emplace_back(line.substr(at + std::strlen("trying again in ")));
    }
  }
  EXPECT_THAT(pauses, ElementsAre("1s", "2s", "4s", "8s")) << said;
  EXPECT_GE(took, absl::Seconds(15));
  EXPECT_EQ(blocked.Recorded(), "0001_t");
}

TEST(Migrations, AMigrationThatWaitedIsAppliedOnceTheLockIsFree) {
  TestDatabase database(TestDatabase::Schema::kEmpty);
  BlockedMigration blocked(database);
  blocked.Start({.lock_timeout = absl::Milliseconds(200), .first_pause = absl::Milliseconds(500)});
  absl::SleepFor(absl::Milliseconds(400));  // most likely past the first run, in its pause
  blocked.EndTheLongTransaction();
  const absl::Status& status = blocked.Finish();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_THAT(blocked.applied(), ElementsAre("0002_add"));
  EXPECT_EQ(blocked.Recorded(), "0001_t,0002_add");
}

TEST(Migrations, AdoptAPeerCreatedItemsTable) {
  TestDatabase database(TestDatabase::Schema::kEmpty);
  database.Query(
      "CREATE TABLE items (id bigserial PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL,"
      " description text NOT NULL DEFAULT '', category text NOT NULL,"
      " price_cents bigint NOT NULL DEFAULT 0, stock integer NOT NULL DEFAULT 0,"
      " tags text[] NOT NULL DEFAULT '{}', create_time timestamptz NOT NULL DEFAULT now(),"
      " update_time timestamptz NOT NULL DEFAULT now());"
      "INSERT INTO items (sku, name, category) VALUES ('P-1', 'Peer row', 'c')");
  ASSERT_TRUE(db::Migrate(database.url(), catalog::Migrations()).ok());
  EXPECT_EQ(database.Query("SELECT version FROM items WHERE sku = 'P-1'"), "1");
  EXPECT_EQ(database.Query("SELECT count(*) FROM items WHERE search_vector @@ 'peer'::tsquery"),
            "1");
}

}  // namespace
}  // namespace hotpath::testing
