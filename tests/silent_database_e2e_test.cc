// A database that stops answering under a running hotpathd: its process or storage hung, its
// machine gone, or a network between dropping everything. Nothing tells libpq the connection is
// lost and statement_timeout never fires, so without a bound of its own every thread waiting on
// PostgreSQL waits for ever. hotpathd's connections all go through a relay (DatabaseProxy) that
// the tests silence: the calls in flight end at their deadlines, the connections they held are
// cut (server/db/answer_watch.h), the pool counts the database as down and calls fail fast, the
// change feed knows it hears nothing, and once the database answers again service returns. A
// standby that stops answering is no longer read. A server that dies under a statement, closing
// its connection without a word, is a database unavailable, never an internal error.
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SilentDatabaseTest : public ServerTest {
 protected:
  void TearDown() override {
    // First: whatever still waits on a silenced connection (a failing test's) learns it ended.
    proxy_.reset();
    ServerTest::TearDown();
  }

  // hotpathd with every connection through proxy_. A statement runs 2 s at most when its caller
  // set no deadline.
  void StartBehindProxy(bool cache = true) {
    proxy_ = std::make_unique<DatabaseProxy>(database_->url());
    ASSERT_NE(proxy_->port(), 0);
    ServerOptions options = Options();
    options.catalog.cache.enabled = cache;
    options.database.database_url = proxy_->Conninfo();
    options.database.connect_timeout = absl::Seconds(2);  // libpq's least
    options.database.max_statement_timeout = absl::Seconds(2);
    StartServer(options);
  }

  grpc::Status Create(int n, absl::Duration deadline, grpc::ClientContext* context = nullptr) {
    std::unique_ptr<grpc::ClientContext> own;
    if (context == nullptr) {
      own = Context(deadline);
      context = own.get();
    }
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    request.mutable_item()->set_sku(absl::StrCat("SILENT-", n));
    v1::Item item;
    return stub_->CreateItem(context, request, &item);
  }

  // Creates (a new item each time, 2 s deadline) until one is acknowledged or limit has passed:
  // the last answer.
  grpc::Status CreateWithin(absl::Duration limit) {
    const absl::Time end = absl::Now() + limit;
    grpc::Status created;
    for (int n = 200; absl::Now() < end; ++n) {
      created = Create(n, absl::Seconds(2));
      if (created.ok()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return created;
  }

  // Whether the server's pool has no connection leased within limit.
  bool LeasesEndWithin(absl::Duration limit) const {
    const absl::Time end = absl::Now() + limit;
    while (server_->pool().stats().in_use > 0) {
      if (absl::Now() > end) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return true;
  }

  std::unique_ptr<DatabaseProxy> proxy_;  // between hotpathd and the test cluster
};

TEST_F(SilentDatabaseTest, CallsEndByTheirDeadlinesThenFailFastAndServiceReturnsWithTheDatabase) {
  StartBehindProxy();
  CreateDemo(1);
  absl::Time end = absl::Now() + absl::Seconds(5);
  while (Metric(server_->http_port(), "hotpath_change_feed_connected") != 1 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Metric(server_->http_port(), "hotpath_change_feed_connected"), 1);
  proxy_->Silence();

  // More writes and reads (each its own page, which no cache holds) than the pool has
  // connections, in flight as it stops answering, each with a 1 s deadline: every connection
  // they hold is cut soon after (the grace is 0.5 s).
  std::vector<std::thread> callers;
  for (int i = 0; i < 12; ++i) {
    callers.emplace_back([&, i] {
      if (i % 2 == 0) {
        EXPECT_FALSE(Create(i + 10, absl::Seconds(1)).ok());
        return;
      }
      v1::ListItemsRequest request;
      request.mutable_min_price_cents()->set_value(i);
      v1::ListItemsResponse page;
      EXPECT_FALSE(stub_->ListItems(Context(absl::Seconds(1)).get(), request, &page).ok());
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_TRUE(LeasesEndWithin(absl::Seconds(3)))
      << server_->pool().stats().in_use << " connections still wait for the silent database";
  EXPECT_GE(Metric(server_->http_port(), "hotpath_db_connections_cut_total"), 1);

  // Then the database counts as down: readiness says so, and calls fail at once.
  end = absl::Now() + absl::Seconds(10);
  while (Http(server_->http_port(), "GET", "/readyz").status != 503 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(Http(server_->http_port(), "GET", "/readyz").status, 503);
  const absl::Time start = absl::Now();
  const grpc::Status refused = Create(100, absl::Seconds(5));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  // The change feed's check went unanswered: it counts itself down, so no cache entry outlives
  // --change_feed_max_staleness while it cannot hear about writes.
  end = absl::Now() + absl::Seconds(6);
  while (Metric(server_->http_port(), "hotpath_change_feed_connected") != 0 && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(Metric(server_->http_port(), "hotpath_change_feed_connected"), 0);

  // The database answers again: so does hotpathd, with no restart.
  proxy_->Resume();
  const grpc::Status created = CreateWithin(absl::Seconds(10));
  EXPECT_TRUE(created.ok()) << created.error_message();
  EXPECT_EQ(Http(server_->http_port(), "GET", "/readyz").status, 200);
}

TEST_F(SilentDatabaseTest, ACallWithoutADeadlineEndsWhenAStatementCouldHaveRunItsLongest) {
  StartBehindProxy();
  CreateDemo(1);
  proxy_->Silence();
  const absl::Time start = absl::Now();
  auto answered = std::async(std::launch::async, [&] {
    grpc::ClientContext no_deadline;
    return Create(2, absl::InfiniteDuration(), &no_deadline);
  });
  // max_statement_timeout (2 s) and the grace; without a bound the call would wait for ever.
  const bool ended = answered.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!ended) proxy_.reset();  // ends the wait, so that the call and the test can end
  ASSERT_TRUE(ended) << "a call without a deadline still waits for the silent database";
  const grpc::Status status = answered.get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("the database did not answer"));
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(LeasesEndWithin(absl::Seconds(1)));
}

TEST_F(SilentDatabaseTest, ACancelledCallsConnectionIsFreedThoughItsCancelRequestIsNotAnswered) {
  StartBehindProxy();
  CreateDemo(1);
  proxy_->Silence();
  // The client gives up: hotpathd sends PostgreSQL a cancel request, which the silent database
  // takes and never answers. The call's connection is still cut at its deadline and given back.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  auto answered = std::async(std::launch::async, [&] { return Create(2, {}, &context); });
  absl::SleepFor(absl::Milliseconds(300));
  context.TryCancel();
  EXPECT_EQ(answered.get().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(LeasesEndWithin(absl::Seconds(4)))
      << "the cancelled call's connection is still leased";
}

TEST_F(SilentDatabaseTest, AConnectionClosedUnderAStatementAnswersUnavailable) {
  StartBehindProxy(/*cache=*/false);
  const v1::Item item = CreateDemo(1);
  // Every connection, those leased now and those opened for the retry a read is allowed, ends at
  // the next word from the server: each call's statement is sent and never answered. libpq
  // reports that as a failed result without a SQLSTATE ("server closed the connection
  // unexpectedly"), not as a lost connection.
  proxy_->DropAnswers();
  std::vector<std::pair<std::string, grpc::Status>> answers;
  {
    v1::GetItemRequest request;
    request.set_id(item.id());
    v1::Item got;
    answers.emplace_back("GetItem", stub_->GetItem(Context(absl::Seconds(3)).get(), request, &got));
  }
  {
    v1::ListItemsRequest request;
    v1::ListItemsResponse page;
    answers.emplace_back("ListItems",
                         stub_->ListItems(Context(absl::Seconds(3)).get(), request, &page));
  }
  {
    v1::SearchItemsRequest request;
    request.set_query("demo");
    v1::SearchItemsResponse page;
    answers.emplace_back("SearchItems",
                         stub_->SearchItems(Context(absl::Seconds(3)).get(), request, &page));
  }
  {
    v1::GetCategoryStatsRequest request;
    request.set_category(item.category());
    v1::CategoryStats stats;
    answers.emplace_back("GetCategoryStats",
                         stub_->GetCategoryStats(Context(absl::Seconds(3)).get(), request, &stats));
  }
  answers.emplace_back("CreateItem", Create(2, absl::Seconds(3)));
  {
    v1::UpdateItemRequest request;
    *request.mutable_item() = item;
    request.mutable_item()->set_stock(item.stock() + 1);
    request.mutable_update_mask()->add_paths("stock");
    v1::Item updated;
    answers.emplace_back("UpdateItem",
                         stub_->UpdateItem(Context(absl::Seconds(3)).get(), request, &updated));
  }
  {
    auto context = Context(absl::Seconds(3));
    v1::ImportItemsResponse imported;
    auto writer = stub_->ImportItems(context.get(), &imported);
    v1::CreateItemRequest row;
    *row.mutable_item() = client::DemoItem(3);
    row.mutable_item()->set_sku("SILENT-IMPORT-3");
    writer->Write(row);
    writer->WritesDone();
    answers.emplace_back("ImportItems", writer->Finish());
  }
  {
    auto context = Context(absl::Seconds(3));
    v1::ExportItemsRequest request;
    auto reader = stub_->ExportItems(context.get(), request);
    for (v1::Item exported; reader->Read(&exported);) {
    }
    answers.emplace_back("ExportItems", reader->Finish());
  }
  for (const auto& [call, status] : answers) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << call << " answered " << status.error_code() << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), Not(HasSubstr("details in the log"))) << call;
  }

  // The server is back: so is every call, with no restart.
  proxy_->Resume();
  const grpc::Status created = CreateWithin(absl::Seconds(10));
  EXPECT_TRUE(created.ok()) << created.error_message();
}

TEST_F(SilentDatabaseTest, ReadsGoToThePrimaryOnceAStandbyStopsAnswering) {
  ASSERT_TRUE(TestStandby::Get().ok()) << TestStandby::Get().error();
  proxy_ = std::make_unique<DatabaseProxy>(TestStandby::Get().Url(database_->name()));
  ASSERT_NE(proxy_->port(), 0);
  ServerOptions options = Options();
  options.database_read_urls = {proxy_->Conninfo()};
  options.database.connect_timeout = absl::Seconds(2);  // the replica monitor's bound
  options.catalog.cache.enabled = false;
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  const auto usable = [&] {
    return Metric(server_->http_port(), "hotpath_read_standby_usable", {"standby=\"0\""});
  };
  absl::Time end = absl::Now() + absl::Seconds(10);
  while (usable() != 1 && absl::Now() < end) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(usable(), 1);

  // The monitor's round trip to the standby goes unanswered: within its bound (2 s and the
  // grace) the standby is no longer read, and reads are the primary's.
  proxy_->Silence();
  end = absl::Now() + absl::Seconds(6);
  while (usable() != 0 && absl::Now() < end) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(usable(), 0) << "the silent standby is still read";
  const double primary_reads = Metric(server_->http_port(), "hotpath_read_primary_reads_total");
  for (int i = 0; i < 10; ++i) {
    v1::GetItemRequest request;
    request.set_id(item.id());
    v1::Item got;
    const grpc::Status status = stub_->GetItem(Context(absl::Seconds(2)).get(), request, &got);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_GE(Metric(server_->http_port(), "hotpath_read_primary_reads_total"), primary_reads + 10);
}

// Two standbys, and standby 0 stops answering: standby 1 is still followed as closely as before.
// A write's reads (each needing a standby known to have replayed it) go to standby 1 after 400 ms
// (the test cluster commits asynchronously: its WAL writer flushes, and so streams, every 200 ms),
// though every sample of the silent one waits out its bound.
TEST_F(SilentDatabaseTest, AnotherStandbyIsFollowedAsCloselyWhileOneStopsAnswering) {
  for (int n = 0; n < 2; ++n) ASSERT_TRUE(TestStandby::Get(n).ok()) << TestStandby::Get(n).error();
  proxy_ = std::make_unique<DatabaseProxy>(TestStandby::Get(0).Url(database_->name()));
  ASSERT_NE(proxy_->port(), 0);
  ServerOptions options = Options();
  options.database_read_urls = {proxy_->Conninfo(), TestStandby::Get(1).Url(database_->name())};
  options.database.connect_timeout = absl::Seconds(2);  // the replica monitor's bound
  options.catalog.cache.enabled = false;
  StartServer(options);
  v1::Item item = CreateDemo(1);
  const auto usable = [&](int n) {
    return Metric(server_->http_port(), "hotpath_read_standby_usable",
                  {absl::StrCat("standby=\"", n, "\"")});
  };
  absl::Time end = absl::Now() + absl::Seconds(10);
  while ((usable(0) != 1 || usable(1) != 1) && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(usable(0) + usable(1), 2);

  proxy_->Silence();
  end = absl::Now() + absl::Seconds(6);
  while (usable(0) != 0 && absl::Now() < end) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(usable(0), 0) << "the silent standby is still read";
  const auto standby_reads = [&] {
    return Metric(server_->http_port(), "hotpath_read_standby_reads_total", {"standby=\"1\""});
  };
  const double before = standby_reads();
  constexpr int kWrites = 20;
  for (int i = 0; i < kWrites; ++i) {
    v1::UpdateItemRequest update;
    update.mutable_item()->set_id(item.id());
    update.mutable_item()->set_stock(item.stock() + i + 1);
    update.mutable_update_mask()->add_paths("stock");
    ASSERT_TRUE(stub_->UpdateItem(Context(absl::Seconds(2)).get(), update, &item).ok());
    absl::SleepFor(absl::Milliseconds(400));
    v1::GetItemRequest request;
    request.set_id(item.id());
    v1::Item got;
    ASSERT_TRUE(stub_->GetItem(Context(absl::Seconds(2)).get(), request, &got).ok());
    EXPECT_EQ(got.stock(), item.stock());
  }
  std::cerr << "a standby silent: reads of fresh writes on the other standby "
            << standby_reads() - before << " of " << kWrites << "\n";
  EXPECT_EQ(usable(1), 1);
  EXPECT_GE(standby_reads() - before, kWrites - 4)
      << "reads of fresh writes went to the primary: standby 1 is sampled only as often as the "
         "silent one answers";
}

}  // namespace
}  // namespace hotpath::testing
