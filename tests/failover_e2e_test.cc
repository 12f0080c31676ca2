// Failover under a running hotpathd: the primary crashes and one of its streaming standbys is
// promoted, with the database URL naming both (libpq's multi-host form with
// target_session_attrs=read-write, as README's "Failover" says to deploy it). Writes reach the new
// primary without a restart; a write the failover lost (the standbys had not streamed it) is served
// by no cache once the change feed listens on the new primary; the promoted standby is no longer
// read as a standby, and the other one, following it, has its lag measured against the new
// primary although the new primary's positions start behind the old one's last. Crashes the
// shared test cluster, so ctest runs it alone; the cluster is started again at the end. A primary
// that stops answering (hung, or cut off by the network) is left the same way once its calls'
// deadlines pass.
#include <atomic>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "server/rpc/consistency.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FailoverTest : public ServerTest {
 protected:
  void SetUp() override {
    if (std::getenv("HOTPATH_TEST_PG_SCRIPT") == nullptr ||
        std::getenv("HOTPATH_TEST_PG_BASE") == nullptr) {
      GTEST_SKIP() << "needs HOTPATH_TEST_PG_SCRIPT and HOTPATH_TEST_PG_BASE (set by scripts/test)";
    }
    for (int n = 0; n < 2; ++n) {
      ASSERT_TRUE(TestStandby::Get(n).ok()) << TestStandby::Get(n).error();
    }
    ServerTest::SetUp();
  }
  void TearDown() override {
    // The server first: started again, the old primary is a primary too.
    stub_.reset();
    channel_.reset();
    server_.reset();
    if (crashed_) {
      EXPECT_EQ(TestCluster("start"), 0);
    }
    ServerTest::TearDown();
  }

  // The test database on the primary, then on standby 0, for writes: libpq connects to the first
  // that accepts writes.
  std::string PrimaryThenStandby() const {
    const std::string primary = database_->url();
    const TestStandby& standby = TestStandby::Get(0);
    return absl::StrCat("host=", ConninfoValue(primary, "host"), ",", standby.host(),
                        " port=", ConninfoValue(primary, "port"), ",", standby.port(),
                        " user=postgres dbname=", database_->name(),
                        " target_session_attrs=read-write");
  }
  // Runs sql on the test database on standby n: its first column, one line per row.
  std::string On(int n, const std::string& sql) const {
    return TestStandby::Get(n).Query(sql, database_->name());
  }
  // Waits until sql on standby n prints want (and the replica's monitor, sampling every 20 ms,
  // has seen what made it so).
  bool Until(int n, const std::string& sql, const std::string& want) const {
    for (int i = 0; i < 1000; ++i) {
      if (On(n, sql) == want) {
        absl::SleepFor(absl::Milliseconds(100));
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  double Gauge(const std::string& name, int standby) const {
    return Metric(server_->http_port(), name, {absl::StrCat("standby=\"", standby, "\"")});
  }
  grpc::Status Get(std::int64_t id, v1::Item* item, const std::string& after = "") const {
    v1::GetItemRequest request;
    request.set_id(id);
    auto context = Context(absl::Seconds(2));
    if (!after.empty()) context->AddMetadata(rpc::Consistency::kMetadataKey, after);
    return stub_->GetItem(context.get(), request, item);
  }

  // Creates items (sku prefix, then a number), each with deadline, 20 ms apart, until one is
  // acknowledged and accept holds for it, or end has come: the last answer, the item in *created.
  // Each refusal on the way goes in *refused when given.
  grpc::Status CreateUntil(const std::string& prefix, absl::Duration deadline, absl::Time end,
                           v1::Item* created, std::vector<grpc::Status>* refused = nullptr,
                           const std::function<bool(const v1::Item&)>& accept = nullptr) const {
    grpc::Status status;
    for (int n = 2; absl::Now() < end; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      request.mutable_item()->set_sku(absl::StrCat(prefix, n));
      status = stub_->CreateItem(Context(deadline).get(), request, created);
      if (status.ok() && (accept == nullptr || accept(*created))) break;
      if (!status.ok() && refused != nullptr) refused->push_back(status);
      absl::SleepFor(absl::Milliseconds(20));
    }
    return status;
  }

  bool crashed_ = false;  // the shared cluster is down and must be started again
};

TEST_F(FailoverTest, WritesReachThePromotedStandbyAndNothingTheFailoverLostIsServed) {
  TestStandby& promoted = TestStandby::Get(0);
  TestStandby& follower = TestStandby::Get(1);
  ServerOptions options = Options();
  options.database.database_url = PrimaryThenStandby();
  options.database_read_urls = {promoted.Url(database_->name()), follower.Url(database_->name())};
  StartServer(options);

  // An item both standbys have replayed; then they stop streaming, and an update reaches the
  // primary alone, answered with its position and cached by the replica. Standby 1 stops first:
  // to follow standby 0 once promoted it must not have replayed past where standby 0's own
  // timeline begins (WAL the primary writes meanwhile, a checkpoint say, would put it there).
  const v1::Item item = CreateDemo(1);
  for (int n = 1; n >= 0; --n) {
    ASSERT_TRUE(Until(n, absl::StrCat("SELECT count(*) FROM items WHERE id = ", item.id()), "1\n"));
    ASSERT_EQ(TestStandby::Get(n).StreamFrom(""), "");
  }
  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(item.id());
  update.mutable_item()->set_stock(item.stock() + 1000);
  update.mutable_update_mask()->add_paths("stock");
  v1::Item updated;
  auto update_context = Context();
  ASSERT_TRUE(stub_->UpdateItem(update_context.get(), update, &updated).ok());
  const auto& answered = update_context->GetServerInitialMetadata();
  const auto lost_at = answered.find(rpc::Consistency::kMetadataKey);
  ASSERT_NE(lost_at, answered.end());
  const std::string lost_position(lost_at->second.data(), lost_at->second.size());
  v1::Item read;
  ASSERT_TRUE(Get(item.id(), &read).ok());
  ASSERT_EQ(read.stock(), updated.stock());
  // The old primary's position moves to its next WAL segment: the new primary's first positions
  // are far behind its last (up to 16 MiB of WAL).
  database_->Query("SELECT pg_switch_wal()");
  absl::SleepFor(absl::Milliseconds(100));

  // The primary crashes; standby 0 is promoted, standby 1 streams from it.
  ASSERT_EQ(TestCluster("crash"), 0);
  crashed_ = true;
  ASSERT_EQ(promoted.Promote(), "");
  const absl::Time promoted_at = absl::Now();
  ASSERT_EQ(follower.StreamFrom(absl::StrCat("host=", promoted.host(), " port=", promoted.port(),
                                             " user=postgres")),
            "");

  // Writes reach the new primary through the same replica, with no restart.
  v1::Item created;
  grpc::Status status =
      CreateUntil("AFTER-FAILOVER-", absl::Seconds(2), promoted_at + absl::Seconds(20), &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::cout << "first write after the promotion: " << absl::Now() - promoted_at << "\n";
  EXPECT_EQ(On(0, absl::StrCat("SELECT sku FROM items WHERE id = ", created.id())),
            absl::StrCat(created.sku(), "\n"));

  // The update the failover lost is served by no cache once the change feed is back (on the new
  // primary), nor with its position: nothing has it any more.
  bool original = false;
  for (int i = 0; i < 500 && !original; ++i) {
    original = Get(item.id(), &read).ok() && read.stock() == item.stock();
    if (!original) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(original) << "the lost update is still served: stock " << read.stock();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Get(item.id(), &read).ok());
    EXPECT_EQ(read.stock(), item.stock());
  }
  status = Get(item.id(), &read, lost_position);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(read.stock(), item.stock());

  // The promoted standby is not read as a standby any more. The follower is measured against
  // the new primary: paused behind its latest write, it lags by the time since the new primary
  // wrote past it. Against the old primary's history it would lag by the time since the old one's
  // last sample, or by an unknown amount once that sample was the oldest kept, until the new
  // primary's position passed the old one's last.
  EXPECT_GE(Metric(server_->http_port(), "hotpath_read_primary_changes_total"), 1);
  for (int i = 0; i < 250 && Gauge("hotpath_read_standby_usable", 0) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Gauge("hotpath_read_standby_usable", 0), 0);
  // Nothing the new primary wrote before this is past what the follower replays before pausing.
  const absl::Time caught_up = absl::Now();
  const std::string written = On(0, "SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(Until(1,
                    absl::StrCat("SELECT pg_last_wal_replay_lsn() >= '",
                                 absl::StripAsciiWhitespace(written), "'"),
                    "t\n"));
  ASSERT_THAT(follower.Query("SELECT pg_wal_replay_pause()"), Not(HasSubstr("ERROR")));
  CreateDemo(3);
  double lag = -1;
  for (int i = 0; i < 100 && lag <= 0; ++i) {
    lag = Gauge("hotpath_read_standby_lag_seconds", 1);
    if (lag <= 0) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GT(lag, 0) << "the follower's lag is unknown after the failover";
  EXPECT_LE(lag, absl::ToDoubleSeconds(absl::Now() - caught_up))
      << "the follower's lag counts from before the new primary wrote past it";
  follower.Query("SELECT pg_wal_replay_resume()");
}

// After the failover the old primary is started again, as a primary (nobody fenced it), and
// every connection the replica holds on the new primary breaks. The ones it opens instead go back
// to the new primary, though the URL names the old one first and it accepts writes again: the
// pool's (every create is on the new primary, none on the old) and the change feed's (a change
// another client makes on the new primary reaches the cache). A replica started then goes to the
// new primary too.
TEST_F(FailoverTest, AnOldPrimaryStartedAgainTakesNoConnectionFromAReplicaThatFollowedTheFailover) {
  TestStandby& promoted = TestStandby::Get(0);
  ServerOptions options = Options();
  options.database.database_url = PrimaryThenStandby();
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(Until(0, absl::StrCat("SELECT count(*) FROM items WHERE id = ", item.id()), "1\n"));

  ASSERT_EQ(TestCluster("crash"), 0);
  crashed_ = true;
  ASSERT_EQ(promoted.Promote(), "");
  v1::Item created;
  grpc::Status status;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    v1::CreateItemRequest create;
    *create.mutable_item() = client::DemoItem(2);
    create.mutable_item()->set_sku(absl::StrCat("AFTER-FAILOVER-", attempt));
    if ((status = stub_->CreateItem(Context(absl::Seconds(2)).get(), create, &created)).ok()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(status.ok()) << status.error_message();

  ASSERT_EQ(TestCluster("start"), 0);
  crashed_ = false;
  ASSERT_EQ(database_->Query("SELECT pg_is_in_recovery()"), "f");
  const std::string cut = On(0,
                             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  ASSERT_NE(cut, "0\n") << "the replica held no connection on the new primary";

  std::vector<std::string> skus;
  for (int attempt = 0; attempt < 1000 && skus.size() < 20; ++attempt) {
    v1::CreateItemRequest create;
    *create.mutable_item() = client::DemoItem(3);
    create.mutable_item()->set_sku(absl::StrCat("AFTER-RESTART-", attempt));
    if (stub_->CreateItem(Context(absl::Seconds(2)).get(), create, &created).ok()) {
      skus.push_back(absl::StrCat("'", created.sku(), "'"));
    } else {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ASSERT_EQ(skus.size(), 20u);
  const std::string listed = absl::StrJoin(skus, ",");
  EXPECT_EQ(On(0, absl::StrCat("SELECT count(*) FROM items WHERE sku IN (", listed, ")")), "20\n");
  EXPECT_EQ(
      database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE sku IN (", listed, ")")), "0")
      << "creates went to the old primary";

  // Cached, then changed on the new primary by another client: the change feed hears it.
  v1::Item read;
  ASSERT_TRUE(Get(item.id(), &read).ok());
  ASSERT_TRUE(Get(item.id(), &read).ok());
  On(0, absl::StrCat("UPDATE items SET stock = stock + 1000 WHERE id = ", item.id()));
  bool heard = false;
  for (int i = 0; i < 250 && !heard; ++i) {
    heard = Get(item.id(), &read).ok() && read.stock() == item.stock() + 1000;
    if (!heard) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(heard) << "a change on the new primary did not reach the cache: stock "
                     << read.stock();

  // A replica started now, its URL listing the old primary first (a string of its own: no
  // connection to it has reached a host yet), goes to the new primary, on the later timeline.
  ServerOptions fresh = Options();
  fresh.database.database_url = PrimaryThenStandby() + " application_name=started-after";
  auto started = StartCatalogServer(fresh);
  ASSERT_TRUE(started.ok()) << started.status();
  const auto stub = v1::CatalogService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*started)->grpc_port()), grpc::InsecureChannelCredentials()));
  skus.clear();
  for (int n = 0; n < 5; ++n) {
    v1::CreateItemRequest create;
    *create.mutable_item() = client::DemoItem(4);
    create.mutable_item()->set_sku(absl::StrCat("STARTED-AFTER-", n));
    ASSERT_TRUE(stub->CreateItem(Context(absl::Seconds(5)).get(), create, &created).ok());
    skus.push_back(absl::StrCat("'", created.sku(), "'"));
  }
  const std::string listed_later = absl::StrJoin(skus, ",");
  EXPECT_EQ(On(0, absl::StrCat("SELECT count(*) FROM items WHERE sku IN (", listed_later, ")")),
            "5\n");
  EXPECT_EQ(database_->Query(
                absl::StrCat("SELECT count(*) FROM items WHERE sku IN (", listed_later, ")")),
            "0")
      << "a replica started after the failover writes to the old primary";
}

// The primary stops answering without closing its connections (hung, or cut off by the network:
// a relay in front of it is silenced) and standby 0 is promoted. The connections to the old
// primary are cut at their calls' deadlines, the pool reconnects, passing the silent host after
// connect_timeout, and writes reach the new primary with no restart.
TEST_F(FailoverTest, APrimaryThatStopsAnsweringIsLeftForThePromotedStandby) {
  TestStandby& promoted = TestStandby::Get(0);
  DatabaseProxy primary(database_->url());
  ASSERT_NE(primary.port(), 0);
  ServerOptions options = Options();
  options.database.database_url = absl::StrCat(
      "host=127.0.0.1,", promoted.host(), " port=", primary.port(), ",", promoted.port(),
      " user=postgres dbname=", database_->name(), " target_session_attrs=read-write");
  options.database.connect_timeout = absl::Seconds(2);  // libpq's least
  StartServer(options);
  const v1::Item before = CreateDemo(1);
  ASSERT_NE(before.id(), 0);
  ASSERT_TRUE(Until(0, absl::StrCat("SELECT count(*) FROM items WHERE id = ", before.id()), "1\n"));

  primary.Silence();
  ASSERT_EQ(promoted.Promote(), "");
  const absl::Time promoted_at = absl::Now();
  v1::Item created;
  const grpc::Status status = CreateUntil("AFTER-HUNG-PRIMARY-", absl::Seconds(1),
                                          promoted_at + absl::Seconds(15), &created);
  const absl::Duration took = absl::Now() - promoted_at;
  const std::string& sku = created.sku();
  ASSERT_TRUE(status.ok()) << "no write acknowledged 15 s after the promotion: "
                           << status.error_message();
  std::cerr << "a hung primary left: first write acknowledged " << took << " after the promotion\n";
  EXPECT_EQ(On(0, absl::StrCat("SELECT count(*) FROM items WHERE sku = '", sku, "'")), "1\n");
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE sku = '", sku, "'")),
            "0");
  // The connect_timeout spent on the silent host is spent once: the writes that follow are
  // answered at once.
  for (int n = 100; n < 105; ++n) {
    const absl::Time start = absl::Now();
    EXPECT_NE(CreateDemo(n).id(), 0);
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // no connect_timeout (2 s) waited
  }
}

// A switchover: the primary is fenced (ALTER SYSTEM SET default_transaction_read_only = on, then
// a reload) with hotpathd's connections open, the next host takes writes. Writes refused by the
// fenced primary answer UNAVAILABLE, never INTERNAL; the pool, the change feed, the announcer and
// the replica monitor leave it, and writes land on the host that takes them, with no restart.
// Here the primary is standby 0, promoted at the start; the shared cluster's primary is the host
// that takes over.
TEST_F(FailoverTest, AFencedPrimaryIsLeftForTheHostThatTakesWrites) {
  TestStandby& fenced = TestStandby::Get(0);
  ASSERT_TRUE(Until(0, "SELECT 1", "1\n"));  // it has the test database
  ASSERT_EQ(fenced.Promote(), "");
  ServerOptions options = Options();
  options.database.database_url =
      absl::StrCat("host=", fenced.host(), ",", ConninfoValue(database_->url(), "host"),
                   " port=", fenced.port(), ",", ConninfoValue(database_->url(), "port"),
                   " user=postgres dbname=", database_->name(), " target_session_attrs=read-write");
  // Standby 1 is read: the replica monitor samples the primary too.
  options.database_read_urls = {TestStandby::Get(1).Url(database_->name())};
  StartServer(options);
  const v1::Item before = CreateDemo(1);
  ASSERT_EQ(On(0, absl::StrCat("SELECT count(*) FROM items WHERE id = ", before.id())), "1\n");
  // hotpathd's sessions on a server: its pool's (no application_name) and its own named ones.
  const std::string sessions =
      absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND ",
                   "pid <> pg_backend_pid() AND application_name IN ('', 'hotpath-change-feed', ",
                   "'hotpath-announcer', 'hotpath-read-monitor')");
  ASSERT_NE(On(0, sessions), "0\n");

  ASSERT_EQ(On(0, "ALTER SYSTEM SET default_transaction_read_only = on"), "");
  ASSERT_EQ(On(0, "SELECT pg_reload_conf()"), "t\n");
  const absl::Time fenced_at = absl::Now();
  const auto on_next_host = [&](const v1::Item& item) {
    return database_->Query(
               absl::StrCat("SELECT count(*) FROM items WHERE sku = '", item.sku(), "'")) == "1";
  };
  v1::Item created;
  std::vector<grpc::Status> refused;
  const grpc::Status status =
      CreateUntil("AFTER-FENCE-", absl::Seconds(2), fenced_at + absl::Seconds(10), &created,
                  &refused, on_next_host);
  for (const grpc::Status& refusal : refused) {
    EXPECT_EQ(refusal.error_code(), grpc::StatusCode::UNAVAILABLE) << refusal.error_message();
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string& sku = created.sku();
  EXPECT_EQ(database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE sku = '", sku, "'")),
            "1")
      << "no write reached the host that takes them 10 s after the fence";
  std::cerr << "fenced: writes on the next host " << absl::Now() - fenced_at << " after the fence, "
            << refused.size() << " refused on the way\n";

  // Nothing of hotpathd stays on the fenced primary; its change feed, announcer and replica
  // monitor are where the writes are (each once it has reconnected).
  const std::string named = absl::StrCat(
      "SELECT count(DISTINCT application_name) FROM pg_stat_activity WHERE datname = ",
      "current_database() AND application_name IN ('hotpath-change-feed', 'hotpath-announcer', ",
      "'hotpath-read-monitor')");
  const absl::Time end = absl::Now() + absl::Seconds(10);
  for (int n = 100;
       (On(0, sessions) != "0\n" || database_->Query(named) != "3") && absl::Now() < end; ++n) {
    CreateDemo(n);  // each write's announcement makes the announcer look where it is
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(On(0, sessions), "0\n") << "hotpathd still has sessions on the fenced primary";
  EXPECT_EQ(database_->Query(named), "3")
      << "the change feed, announcer and replica monitor are not all on the host that takes writes";
}

// The failover under steady load, both standbys streaming as usual: creates and searches (a
// database read every call) from four threads with a 1 s deadline; the primary crashes, standby 0
// is promoted a second later. No call outlives its deadline; every create acknowledged after the
// promotion is on the new primary; what the crash took of those acknowledged before it is counted
// (asynchronous replication). Prints its figures (bench/reliability, part failover).
TEST_F(FailoverTest, UnderLoadNoCallHangsAndWritesComeBackAfterThePromotion) {
  TestStandby& promoted = TestStandby::Get(0);
  ServerOptions options = Options();
  options.database.database_url = PrimaryThenStandby();
  options.database_read_urls = {promoted.Url(database_->name())};
  StartServer(options);
  constexpr absl::Duration kDeadline = absl::Seconds(1);

  std::mutex mutex;
  std::map<grpc::StatusCode, int> codes;                          // every answer, by code
  absl::Duration slowest;                                         // the longest call, any outcome
  std::vector<std::pair<std::int64_t, absl::Time>> acknowledged;  // creates answered OK, when
  absl::Time crashed_at = absl::InfiniteFuture();
  absl::Time promoted_at = absl::InfiniteFuture();
  GrpcLoad load(
      channel_, 4, kDeadline,
      [&](const grpc::Status& status, std::int64_t created, absl::Time start, absl::Time end) {
        std::lock_guard lock(mutex);
        slowest = std::max(slowest, end - start);
        ++codes[status.error_code()];
        if (status.ok() && created != 0) acknowledged.emplace_back(created, end);
      });

  absl::SleepFor(absl::Seconds(1));
  ASSERT_EQ(TestCluster("crash"), 0);
  crashed_ = true;
  {
    std::lock_guard lock(mutex);
    crashed_at = absl::Now();
  }
  absl::SleepFor(absl::Seconds(1));
  {
    std::lock_guard lock(mutex);
    promoted_at = absl::Now();
  }
  ASSERT_EQ(promoted.Promote(), "");
  const absl::Duration promotion = absl::Now() - promoted_at;
  absl::SleepFor(absl::Seconds(3));
  load.Stop();

  // What the new primary has of every acknowledged create.
  std::vector<std::string> ids;
  for (const auto& [id, when] : acknowledged) ids.push_back(absl::StrCat(id));
  const std::string kept =
      On(0, absl::StrCat("SELECT id FROM items WHERE id IN (", absl::StrJoin(ids, ","), ")"));
  std::set<std::int64_t> on_new_primary;
  for (absl::string_view line : absl::StrSplit(kept, '\n', absl::SkipEmpty())) {
    std::int64_t id = 0;
    if (absl::SimpleAtoi(line, &id)) on_new_primary.insert(id);
  }
  int before = 0, lost_before = 0, after = 0, lost_after = 0;
  absl::Time first_after = absl::InfiniteFuture();
  for (const auto& [id, when] : acknowledged) {
    const bool kept_it = on_new_primary.count(id) > 0;
    if (when < crashed_at) {
      ++before;
      lost_before += kept_it ? 0 : 1;
    } else {
      ++after;
      lost_after += kept_it ? 0 : 1;
      first_after = std::min(first_after, when);
    }
  }
  std::vector<std::string> by_code;
  for (const auto& [code, count] : codes) by_code.push_back(absl::StrCat(code, ": ", count));
  std::cerr << "under failover: first write acknowledged " << first_after - promoted_at
            << " after the promotion was asked (pg_ctl promote took " << promotion << "), "
            << first_after - crashed_at << " after the crash; "
            << "calls by code {" << absl::StrJoin(by_code, ", ") << "} (0 OK, 14 UNAVAILABLE); "
            << "slowest call " << slowest << "; creates acknowledged before the crash " << before
            << ", lost by it " << lost_before << "; after it " << after << ", lost " << lost_after
            << "\n";

  EXPECT_GT(after, 0) << "no write was acknowledged after the promotion";
  EXPECT_EQ(lost_after, 0) << "creates acknowledged after the crash are not on the new primary";
  EXPECT_LT(slowest, kDeadline + absl::Seconds(1)) << "a call outlived its deadline";
  for (const auto& [code, count] : codes) {
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::UNAVAILABLE ||
                code == grpc::StatusCode::DEADLINE_EXCEEDED)
        << count << " calls answered " << code;
  }
}

}  // namespace
}  // namespace hotpath::testing
