// db::StartLoopQuery against a real PostgreSQL: a statement run from an event loop answers on that
// loop without holding it up, fails as the blocking path would, and never puts a connection back
// in the pool mid-statement.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/db/loop_query.h"
#include "server/db/pg_pool.h"
#include "tests/test_env.h"

namespace hotpath::db {
namespace {

using ::hotpath::testing::TestDatabase;
using ::testing::HasSubstr;

namespace asio = boost::asio;

constexpr char kSleepThenEcho[] = "sleep_then_echo";  // $1 seconds of pg_sleep, then $2
constexpr char kDivide[] = "divide";                  // 100 / $1
constexpr char kBackend[] = "backend";                // the session's backend pid

class LoopQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::make_unique<TestDatabase>(TestDatabase::Schema::kEmpty);
    PgPoolOptions options;
    options.database_url = database_->url();
    options.min_size = 1;
    options.max_size = 2;
    options.statements = {
        {kSleepThenEcho, "SELECT $2::text FROM pg_sleep($1::float8)"},
        {kDivide, "SELECT 100 / $1::int"},
        {kBackend, "SELECT pg_backend_pid()"},
    };
    auto pool = PgPool::Create(options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  // An idle connection whose statement_timeout fits deadline, as a caller of StartLoopQuery
  // finds one (the blocking path's LimitTo sets it).
  PgLease Lease(absl::Time deadline) {
    auto lease = pool_->Acquire(deadline);
    EXPECT_TRUE(lease.ok()) << lease.status();
    EXPECT_TRUE(lease->LimitTo(deadline).ok());
    EXPECT_TRUE(lease->TimeoutFits(deadline));
    return *std::move(lease);
  }

  // Runs statement(params) from loop_'s thread; its answer and the thread it came on.
  struct Outcome {
    absl::StatusOr<std::string> first;  // the first row's first field, or the failure
    std::thread::id thread;             // where done ran
  };
  Outcome Run(const char* statement, std::vector<std::string> params, absl::Time deadline) {
    PgLease lease = Lease(deadline);
    Outcome outcome{absl::UnknownError("not answered"), {}};
    asio::post(loop_, [&] {
      StartLoopQuery(loop_, std::move(lease), "testing", statement, std::move(params), deadline,
                     [&](absl::StatusOr<PgRows> rows) {
                       outcome.thread = std::this_thread::get_id();
                       if (!rows.ok()) {
                         outcome.first = rows.status();
                       } else if (rows->size() == 0) {
                         outcome.first = absl::NotFoundError("no rows");
                       } else {
                         outcome.first = std::string(rows->Text(0, 0));
                       }
                     });
    });
    loop_.run();
    loop_.restart();
    return outcome;
  }

  std::unique_ptr<TestDatabase> database_;  // this test's database
  std::unique_ptr<PgPool> pool_;            // on database_
  asio::io_context loop_{1};                // the event loop; run by the test's thread
};

TEST_F(LoopQueryTest, AnswersOnTheLoopWhileTheLoopGoesOnWorking) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  PgLease lease = Lease(deadline);
  std::optional<std::string> answer;
  int ticks_before_answer = 0;
  std::thread::id answered_on;
  // A timer ticking every 10 ms on the same loop while PostgreSQL sleeps 300 ms: the loop is free.
  asio::steady_timer ticker(loop_);
  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(10));
    ticker.async_wait([&](const boost::system::error_code& error) {
      if (error || answer.has_value()) return;
      ++ticks_before_answer;
      tick();
    });
  };
  asio::post(loop_, [&] {
    tick();
    StartLoopQuery(loop_, std::move(lease), "testing", kSleepThenEcho, {"0.3", "echo"}, deadline,
                   [&](absl::StatusOr<PgRows> rows) {
                     ASSERT_TRUE(rows.ok()) << rows.status();
                     ASSERT_EQ(rows->size(), 1);
                     answer = std::string(rows->Text(0, 0));
                     answered_on = std::this_thread::get_id();
                     ticker.cancel();
                   });
  });
  loop_.run();
  EXPECT_EQ(answer, "echo");
  EXPECT_EQ(answered_on, std::this_thread::get_id());
  EXPECT_GE(ticks_before_answer, 10);
  // The connection went back to the pool, healthy.
  EXPECT_EQ(pool_->stats().in_use, 0);
  EXPECT_EQ(pool_->stats().broken, 0);
}

TEST_F(LoopQueryTest, ASqlErrorIsTheBlockingPathsStatusAndTheConnectionStaysPooled) {
  const Outcome divided = Run(kDivide, {"0"}, absl::Now() + absl::Seconds(10));
  EXPECT_EQ(divided.first.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(divided.first.status().message(), HasSubstr("testing: division by zero"));
  EXPECT_EQ(pool_->stats().broken, 0);
  // The same connection answers the next statement, blocking or not.
  EXPECT_EQ(Run(kDivide, {"4"}, absl::Now() + absl::Seconds(10)).first.value_or("?"), "25");
  auto lease = pool_->Acquire(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(lease.ok());
  pqxx::nontransaction tx(lease->connection());
  EXPECT_EQ(tx.exec_prepared(kDivide, 5)[0][0].as<int>(), 20);
}

TEST_F(LoopQueryTest, PostgreSQLStopsAStatementPastTheDeadline) {
  const absl::Time start = absl::Now();
  const Outcome slept = Run(kSleepThenEcho, {"5", "late"}, start + absl::Milliseconds(500));
  EXPECT_EQ(slept.first.status().code(), absl::StatusCode::kDeadlineExceeded)
      << slept.first.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // statement_timeout cancelled it: the connection is fine and pooled.
  EXPECT_EQ(pool_->stats().broken, 0);
  EXPECT_EQ(Run(kDivide, {"2"}, absl::Now() + absl::Seconds(10)).first.value_or("?"), "50");
}

TEST_F(LoopQueryTest, ALostConnectionIsUnavailableAndNeverPooled) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  PgLease lease = Lease(deadline);
  const int pid = lease.connection().backendpid();
  std::optional<absl::Status> status;
  asio::post(loop_, [&] {
    StartLoopQuery(loop_, std::move(lease), "testing", kSleepThenEcho, {"5", "never"}, deadline,
                   [&](absl::StatusOr<PgRows> rows) { status = rows.status(); });
  });
  // Killed mid-statement by someone else.
  std::thread killer([&] {
    absl::SleepFor(absl::Milliseconds(200));
    database_->Query(absl::StrCat("SELECT pg_terminate_backend(", pid, ")"));
  });
  loop_.run();
  killer.join();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable) << *status;
  EXPECT_EQ(pool_->stats().broken, 1);
  EXPECT_EQ(pool_->stats().in_use, 0);
  EXPECT_FALSE(pool_->OwnsBackend(pid));
}

TEST_F(LoopQueryTest, ALoopStoppedMidStatementAnswersAndDiscardsTheConnection) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  PgLease lease = Lease(deadline);
  std::optional<absl::Status> status;
  {
    asio::io_context loop(1);
    asio::post(loop, [&] {
      StartLoopQuery(loop, std::move(lease), "testing", kSleepThenEcho, {"5", "never"}, deadline,
                     [&](absl::StatusOr<PgRows> rows) { status = rows.status(); });
      loop.stop();
    });
    loop.run();
    EXPECT_FALSE(status.has_value());
  }  // destroying the loop destroys the statement's handlers
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status->message(), HasSubstr("event loop stopped"));
  EXPECT_EQ(pool_->stats().broken, 1);
  EXPECT_EQ(pool_->stats().in_use, 0);
}

TEST_F(LoopQueryTest, TryAcquireLendsOnlyAnIdleConnectionWhoseTimeoutFits) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  // min_size 1: one idle connection, max 2; its statement_timeout not set yet.
  EXPECT_FALSE(pool_->TryAcquire(deadline).has_value());
  { PgLease set = Lease(deadline); }
  std::optional<PgLease> first = pool_->TryAcquire(deadline);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(pool_->TryAcquire(deadline).has_value());  // none idle; a second is not opened
  EXPECT_EQ(pool_->stats().opened, 1);
  first.reset();
  EXPECT_FALSE(pool_->TryAcquire(absl::Now() + absl::Seconds(1)).has_value());  // runs past it
  EXPECT_TRUE(pool_->TryAcquire(deadline).has_value());
  EXPECT_EQ(pool_->stats().idle_leases, 2);
  pool_->Close();
  EXPECT_FALSE(pool_->TryAcquire(deadline).has_value());
}

// A readiness check (every /readyz and every /metrics scrape) bounds its SELECT 1 by its own
// short deadline for that query alone: the connection it used still fits the reads' deadlines.
TEST_F(LoopQueryTest, AReadinessCheckLeavesTheConnectionsTimeoutAsTheReadsSetIt) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  { PgLease set = Lease(deadline); }  // min_size 1: the one idle connection, its timeout set
  ASSERT_TRUE(pool_->CheckReady(absl::Now() + absl::Seconds(1)).ok());
  EXPECT_EQ(pool_->stats().opened, 1);
  EXPECT_TRUE(pool_->TryAcquire(absl::Now() + absl::Seconds(10)).has_value());
  // Still bounded: a check whose deadline has passed does not run.
  EXPECT_EQ(pool_->CheckReady(absl::Now() - absl::Seconds(1)).code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(pool_->stats().broken, 0);
}

TEST_F(LoopQueryTest, ATimeoutFitsOnlyWhenItStopsTheStatementByTheDeadline) {
  auto lease = pool_->Acquire(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(lease.ok());
  // A fresh connection's statement_timeout is not known.
  EXPECT_FALSE(lease->TimeoutFits(absl::Now() + absl::Seconds(10)));
  ASSERT_TRUE(lease->LimitTo(absl::Now() + absl::Seconds(10)).ok());
  EXPECT_TRUE(lease->TimeoutFits(absl::Now() + absl::Seconds(10)));
  EXPECT_FALSE(lease->TimeoutFits(absl::Now() + absl::Seconds(1)));   // would run past it
  EXPECT_FALSE(lease->TimeoutFits(absl::Now() + absl::Seconds(60)));  // would stop far too soon
  EXPECT_FALSE(lease->TimeoutFits(absl::Now() - absl::Seconds(1)));
}

// hotpathd with the cache off: GetItem's batches started by HTTP requests run on the event loops.
class LoopReadsTest : public ::hotpath::testing::ServerTest {
 protected:
  void StartWithoutCache(bool loop_reads) {
    server_.reset();
    ::hotpath::testing::ServerOptions options = Options();
    options.catalog.cache.enabled = false;
    options.catalog.cache.item_reads_on_loops = loop_reads;
    StartServer(options);
  }
  double IdleLeases() const {
    return ::hotpath::testing::Metric(server_->http_port(), "hotpath_db_pool_idle_leases_total");
  }
  ::hotpath::testing::HttpReply Get(std::int64_t id) const {
    return ::hotpath::testing::Http(server_->http_port(), "GET", absl::StrCat("/v1/items/", id));
  }
};

TEST_F(LoopReadsTest, ConcurrentHttpReadsEachGetTheirOwnItemFromTheLoops) {
  StartWithoutCache(/*loop_reads=*/true);
  std::vector<::hotpath::testing::v1::Item> items;
  for (int i = 1; i <= 20; ++i) items.push_back(CreateDemo(i));
  const double before = IdleLeases();
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const auto& item = items[(t * 7 + i) % items.size()];
        const auto reply = Get(item.id());
        if (reply.status != 200 ||
            reply.body.find(absl::StrCat("\"sku\":\"", item.sku(), "\"")) == std::string::npos) {
          ++wrong;
        }
        if (Get(item.id() + 100000).status != 404) ++wrong;  // missing: its own NOT_FOUND
      }
    });
  }
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(wrong.load(), 0);
  // Batches went out on the loops; gRPC's calls, on no loop, do not.
  const double after = IdleLeases();
  EXPECT_GT(after, before);
  ::hotpath::testing::v1::GetItemRequest get;
  get.set_id(items[0].id());
  ::hotpath::testing::v1::Item read;
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  EXPECT_EQ(read.sku(), items[0].sku());
  EXPECT_EQ(IdleLeases(), after);
}

TEST_F(LoopReadsTest, ALoopReadAnswersWhatTheExecutorsReadAnswers) {
  // Every field at its edges, tags that need quoting in an array: decoded from libpq's text by
  // the loop's path and by libpqxx's, byte for byte the same JSON.
  StartWithoutCache(/*loop_reads=*/true);
  ::hotpath::testing::v1::CreateItemRequest create;
  auto* item = create.mutable_item();
  item->set_sku("EDGE-1");
  item->set_name("Ünïcødé \"quoted\" \\ back");
  item->set_description("line\nbreak, comma; {braces}");
  item->set_category("edge");
  item->set_price_cents(1000000000000);
  item->set_stock(2147483647);
  for (const char* tag :
       {"plain", "with space", "com,ma", "qu\"ote", "back\\slash", "{brace}", "NULL", "日本"}) {
    item->add_tags(tag);
  }
  ::hotpath::testing::v1::Item created;
  const grpc::Status made = stub_->CreateItem(Context().get(), create, &created);
  ASSERT_TRUE(made.ok()) << made.error_message();
  // The first read may set a connection's statement_timeout on the executor (so may the
  // readiness check, with its own 1 s deadline, behind a scrape of /metrics); the later ones find
  // it set.
  ::hotpath::testing::HttpReply on_loop;
  for (int i = 0; i < 5; ++i) on_loop = Get(created.id());
  ASSERT_GE(IdleLeases(), 4);  // the last read was the loop's
  ASSERT_EQ(on_loop.status, 200) << on_loop.body;
  StartWithoutCache(/*loop_reads=*/false);
  ::hotpath::testing::HttpReply on_executor;
  for (int i = 0; i < 5; ++i) on_executor = Get(created.id());
  ASSERT_EQ(on_executor.status, 200);
  EXPECT_EQ(IdleLeases(), 0);
  EXPECT_EQ(on_loop.body, on_executor.body);
}

TEST_F(LoopReadsTest, AReadWhoseConnectionWasLostIsAnsweredFromAFreshOne) {
  StartWithoutCache(/*loop_reads=*/true);
  const auto item = CreateDemo(1);
  // (The pool's own counters, not /metrics: a scrape runs the readiness check, whose 1 s deadline
  // would leave the warmest connection a statement_timeout no batch's deadline fits.)
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Get(item.id()).status, 200);
  const std::int64_t leases = server_->pool().stats().idle_leases;
  ASSERT_GE(leases, 1);
  // Every backend of the server's pool goes away (a failover, a restart), unknown to the pool.
  database_->Query(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  const auto reply = Get(item.id());
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_NE(reply.body.find(item.sku()), std::string::npos);
  EXPECT_GT(server_->pool().stats().idle_leases, leases);  // the loop tried first
  EXPECT_GE(server_->pool().stats().broken, 1);
}

}  // namespace
}  // namespace hotpath::db
