// PostgreSQL restarts under a running hotpathd: calls fail fast while it is down, and the service
// heals by itself once it is back. Restarts the shared test cluster, so ctest runs it alone.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/demo_items.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

class PgRestartTest : public ServerTest {
 protected:
  void SetUp() override {
    if (std::getenv("HOTPATH_TEST_PG_SCRIPT") == nullptr ||
        std::getenv("HOTPATH_TEST_PG_BASE") == nullptr) {
      GTEST_SKIP() << "needs HOTPATH_TEST_PG_SCRIPT and HOTPATH_TEST_PG_BASE (set by scripts/test)";
    }
    ServerTest::SetUp();
    StartServer(Options());
  }

  grpc::Status Get(std::int64_t id, absl::Duration deadline) {
    v1::GetItemRequest request;
    request.set_id(id);
    v1::Item item;
    return stub_->GetItem(Context(deadline).get(), request, &item);
  }

  // A read the caches never answer (a search).
  grpc::Status Search(absl::Duration deadline) {
    v1::SearchItemsRequest request;
    request.set_query("demo");
    v1::SearchItemsResponse response;
    return stub_->SearchItems(Context(deadline).get(), request, &response);
  }
};

TEST_F(PgRestartTest, CallsFailFastDuringTheOutageAndRecoverAfter) {
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(Get(item.id(), absl::Seconds(5)).ok());  // now cached
  const absl::Time cached_at = absl::Now();
  // The change feed loses the database with everyone else: from then on a cached entry is served
  // only while younger than the staleness bound (nothing that changed meanwhile is announced).
  const absl::Duration bound = Options().change_feed_max_staleness;
  // Warm every pooled connection, so all of them are stale after the restart.
  std::vector<std::thread> warmers;
  for (int i = 0; i < 8; ++i)
    warmers.emplace_back([&] { EXPECT_TRUE(Search(absl::Seconds(5)).ok()); });
  for (auto& t : warmers) t.join();

  ASSERT_EQ(TestCluster("stop"), 0);
  for (int i = 0; i < 10; ++i) {
    const absl::Time start = absl::Now();
    const grpc::Status status = Search(absl::Seconds(2));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "a call hung while the database was down";
    EXPECT_EQ(Get(item.id() + 1000, absl::Seconds(2)).error_code(), grpc::StatusCode::UNAVAILABLE);
    if (i == 0) {  // through the gateway, a 503 that says when to ask again
      HttpReply rest =
          Http(server_->http_port(), "GET", absl::StrCat("/v1/items/", item.id() + 1000));
      EXPECT_EQ(rest.status, 503) << rest.body;
      EXPECT_EQ(rest.headers["retry-after"], "1") << rest.body;
    }
    // The cached item is still served while the database is away, within the bound.
    if (absl::Now() - cached_at < bound / 2) {
      EXPECT_TRUE(Get(item.id(), absl::Seconds(2)).ok());
    }
    v1::CreateItemRequest create;
    create.mutable_item()->set_sku(absl::StrCat("OUTAGE-", i));
    create.mutable_item()->set_name("written during the outage");
    create.mutable_item()->set_category("c");
    v1::Item created;
    EXPECT_EQ(stub_->CreateItem(Context(absl::Seconds(2)).get(), create, &created).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }

  // Past the bound it is not: the read goes to the database, and fails fast like the rest.
  absl::SleepFor(cached_at + bound + absl::Milliseconds(100) - absl::Now());
  const absl::Time asked = absl::Now();
  EXPECT_EQ(Get(item.id(), absl::Seconds(2)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_LT(absl::Now() - asked, absl::Seconds(1));

  ASSERT_EQ(TestCluster("start"), 0);
  const absl::Time back = absl::Now();
  while (!Search(absl::Seconds(1)).ok() && absl::Now() - back < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LT(absl::Now() - back, absl::Seconds(2)) << "service took too long to recover";

  // Every connection works again, writes included, and no lease leaked.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (!Search(absl::Seconds(5)).ok()) ++failures;
      v1::Item created = CreateDemo(100 + i);
      if (created.id() == 0) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items WHERE sku LIKE 'OUTAGE-%'"), "0");
  EXPECT_EQ(server_->pool().stats().in_use, 0);
}

// A crash (immediate shutdown) under idle pooled connections: each backend sends a warning and
// exits. The next statement on such a connection fails in its write, and libpq reports that
// ("server closed the connection unexpectedly") as a failed result without a SQLSTATE, the
// connection not yet marked bad: a database unavailable like any other lost connection, never an
// internal error, and the connection is not used again.
TEST_F(PgRestartTest, CallsOnConnectionsACrashClosedAnswerUnavailable) {
  CreateDemo(1);
  std::vector<std::thread> warmers;
  for (int i = 0; i < 8; ++i) {
    warmers.emplace_back([&] { EXPECT_TRUE(Search(absl::Seconds(5)).ok()); });
  }
  for (auto& t : warmers) t.join();

  ASSERT_EQ(TestCluster("crash"), 0);
  std::mutex mutex;
  std::vector<grpc::Status> answers;
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&, i] {
      grpc::Status status;
      if (i % 2 == 0) {
        status = Search(absl::Seconds(2));
      } else {
        v1::CreateItemRequest create;
        create.mutable_item()->set_sku(absl::StrCat("CRASHED-", i));
        create.mutable_item()->set_name("written after the crash");
        create.mutable_item()->set_category("c");
        v1::Item created;
        status = stub_->CreateItem(Context(absl::Seconds(2)).get(), create, &created);
      }
      const std::lock_guard lock(mutex);
      answers.push_back(status);
    });
  }
  for (auto& t : callers) t.join();
  for (const grpc::Status& status : answers) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }

  ASSERT_EQ(TestCluster("start"), 0);
  const absl::Time back = absl::Now();
  while (!Search(absl::Seconds(1)).ok() && absl::Now() - back < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(Search(absl::Seconds(2)).ok());
  // (The item created before the crash may be gone: the test cluster commits asynchronously.)
  const v1::Item after = CreateDemo(2);
  EXPECT_TRUE(Get(after.id(), absl::Seconds(2)).ok());
  EXPECT_EQ(server_->pool().stats().in_use, 0);
}

// The outage under steady gRPC and REST load (writes and database reads), PostgreSQL down 5 s.
TEST_F(PgRestartTest, UnderLoadNothingHangsNothingAcknowledgedIsLostAndServiceReturns) {
  const int http_port = server_->http_port();
  std::mutex mutex;
  std::map<grpc::StatusCode, int> grpc_codes;  // every gRPC answer, by code
  std::map<int, int> http_statuses;            // every HTTP answer, by status
  absl::Duration slowest;                      // the longest call, any outcome
  std::set<std::int64_t> acknowledged;         // ids of creates answered OK (gRPC)
  std::set<std::string> acknowledged_http;     // skus of creates answered 200 (REST)
  std::atomic<bool> stop{false};
  std::atomic<int> sku{1};
  std::atomic<std::int64_t> last_failure_ns{0};  // when a call last failed
  constexpr absl::Duration kDeadline = absl::Seconds(1);

  auto note = [&](absl::Time start, bool ok) {
    const absl::Duration took = absl::Now() - start;
    std::lock_guard lock(mutex);
    slowest = std::max(slowest, took);
    if (!ok) last_failure_ns = absl::ToUnixNanos(absl::Now());
  };
  GrpcLoad grpc_load(
      channel_, 4, kDeadline,
      [&](const grpc::Status& status, std::int64_t created, absl::Time start, absl::Time) {
        note(start, status.ok());
        std::lock_guard lock(mutex);
        ++grpc_codes[status.error_code()];
        if (status.ok() && created != 0) acknowledged.insert(created);
      });
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      while (!stop.load()) {
        const absl::Time start = absl::Now();
        const std::string http_sku = absl::StrCat("REST-", sku.fetch_add(1));
        const HttpReply reply =
            t == 0
                ? Http(http_port, "GET", "/v1/items?page_size=10", "", {{"X-Timeout-Ms", "1000"}})
                : Http(http_port, "POST", "/v1/items",
                       absl::StrCat(R"({"sku":")", http_sku,
                                    R"(","name":"n","category":"c","priceCents":"5"})"),
                       {{"Content-Type", "application/json"}, {"X-Timeout-Ms", "1000"}});
        note(start, reply.status == 200);
        {
          std::lock_guard lock(mutex);
          ++http_statuses[reply.status];
          if (t == 1 && reply.status == 200) acknowledged_http.insert(http_sku);
        }
        if (reply.status != 200) absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }

  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_EQ(TestCluster("stop"), 0);
  absl::SleepFor(absl::Seconds(5));
  ASSERT_EQ(TestCluster("start"), 0);
  const absl::Time back = absl::Now();
  absl::SleepFor(absl::Seconds(3));
  stop = true;
  grpc_load.Stop();
  for (auto& thread : load) thread.join();

  const absl::Duration recovery =
      std::max(absl::ZeroDuration(), absl::FromUnixNanos(last_failure_ns.load()) - back);
  std::cerr << "under load: gRPC OK " << grpc_codes[grpc::StatusCode::OK] << ", UNAVAILABLE "
            << grpc_codes[grpc::StatusCode::UNAVAILABLE] << "; HTTP 200 " << http_statuses[200]
            << ", 503 " << http_statuses[503] << "; slowest call " << slowest << "; last failure "
            << recovery << " after PostgreSQL was back\n";
  for (const auto& [code, count] : grpc_codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::UNAVAILABLE)
        << count << " calls answered " << code;
  }
  for (const auto& [status, count] : http_statuses) {
    EXPECT_TRUE(status == 200 || status == 503) << count << " answers of " << status;
  }
  EXPECT_GT(grpc_codes[grpc::StatusCode::UNAVAILABLE], 0);  // the outage was seen
  EXPECT_LT(slowest, kDeadline) << "a call hung instead of failing fast";
  EXPECT_LT(recovery, absl::Seconds(2)) << "service took too long to recover";
  std::string ids = "0";
  for (std::int64_t id : acknowledged) absl::StrAppend(&ids, ",", id);
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE id IN (", ids, ")")),
            std::to_string(acknowledged.size()));
  std::string skus = "''";
  for (const std::string& s : acknowledged_http) absl::StrAppend(&skus, ",'", s, "'");
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE sku IN (", skus, ")")),
            std::to_string(acknowledged_http.size()));
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);  // no lease leaked
}

}  // namespace
}  // namespace hotpath::testing
