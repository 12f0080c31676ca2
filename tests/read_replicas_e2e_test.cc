// Read replicas against a real streaming standby, made by pg_basebackup -R from the test's
// primary (scripts/pg standby): reads go to it and writes to the primary; a writer reads its own
// write through any replica even while the standby's replay is paused; a cache refilled after an
// invalidation never reads a standby that has not replayed the write; a standby past the lag
// bound, or one that cannot be reached, is not read; streams (an import, an export) keep the
// same read-your-writes promise, as do the CLI and nginx in front (deploy/nginx/hotpath.conf).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "server/rpc/consistency.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;

class ReadReplicasTest : public ServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(TestStandby::Get().ok()) << TestStandby::Get().error();
    ServerTest::SetUp();
  }
  void TearDown() override {
    TestStandby::Get().Query("SELECT pg_wal_replay_resume()");
    other_stub_.reset();
    other_.reset();
    ServerTest::TearDown();
  }

  ServerOptions WithStandby(bool caches) const {
    ServerOptions options = Options();
    options.database_read_urls = {TestStandby::Get().Url(database_->name())};
    if (!caches) options.catalog.cache.enabled = false;
    return options;
  }
  // A second replica on the same primary and standby, for reading another replica's writes.
  void StartOther(ServerOptions options) {
    auto other = StartCatalogServer(std::move(options));
    ASSERT_TRUE(other.ok()) << other.status();
    other_ = *std::move(other);
    other_stub_ = v1::CatalogService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", other_->grpc_port()), grpc::InsecureChannelCredentials()));
  }
  // Waits until the replica's monitor reads the standby (the test database has reached it).
  bool StandbyUsable(const Hotpathd& server) {
    for (int i = 0; i < 500; ++i) {
      if (Metric(server.http_port(), "hotpath_read_standby_usable", {"standby=\"0\""}) == 1) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  double StandbyReads(const Hotpathd& server) {
    return Metric(server.http_port(), "hotpath_read_standby_reads_total", {"standby=\"0\""});
  }
  double PrimaryReads(const Hotpathd& server) {
    return Metric(server.http_port(), "hotpath_read_primary_reads_total");
  }
  // Runs sql on the test database on the standby: its first column, one line per row.
  std::string OnStandby(const std::string& sql) const {
    return TestStandby::Get().Query(sql, database_->name());
  }
  // Waits until the standby has replayed item as it is (and the replicas' monitors, sampling
  // every 20 ms, have seen it).
  bool Replayed(const v1::Item& item) const {
    const std::string sql = absl::StrCat("SELECT version FROM items WHERE id = ", item.id());
    for (int i = 0; i < 500; ++i) {
      if (OnStandby(sql) == absl::StrCat(item.etag(), "\n")) {
        absl::SleepFor(absl::Milliseconds(60));
        return true;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }
  void PauseReplay() {
    ASSERT_THAT(TestStandby::Get().Query("SELECT pg_wal_replay_pause()"),
                ::testing::Not(HasSubstr("ERROR")));
  }
  // Replicas A (server_) and B (other_) on the primary and the standby, B with a 60 s lag bound so
  // the paused standby stays usable (floors, not the bound, must keep B's reads right); an item
  // created, cached on B and replayed by the standby; then replay paused. Check HasFailure().
  v1::Item CachedOnOtherThenPaused() {
    StartServer(WithStandby(/*caches=*/true));
    ServerOptions other = WithStandby(/*caches=*/true);
    other.read_max_lag = absl::Seconds(60);
    StartOther(other);
    const v1::Item item = CreateDemo(1);
    EXPECT_TRUE(StandbyUsable(*other_));
    EXPECT_TRUE(SeenOn(*other_stub_, item));
    EXPECT_TRUE(Replayed(item));
    PauseReplay();
    return item;
  }
  // A call's context sending after as the position its reads must include (none when empty).
  std::unique_ptr<grpc::ClientContext> ContextAfter(const std::string& after) const {
    auto context = Context();
    if (!after.empty()) context->AddMetadata(rpc::Consistency::kMetadataKey, after);
    return context;
  }
  // The position a finished call's writes answered with (x-hotpath-lsn); "" when none.
  static std::string PositionOf(const grpc::ClientContext& context) {
    const auto& metadata = context.GetServerInitialMetadata();
    const auto it = metadata.find(rpc::Consistency::kMetadataKey);
    return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
  }
  // Sets the stock through stub; the write's position (x-hotpath-lsn) in *position.
  v1::Item SetStock(v1::CatalogService::Stub& stub, std::int64_t id, int stock,
                    std::string* position = nullptr) {
    v1::UpdateItemRequest request;
    request.mutable_item()->set_id(id);
    request.mutable_item()->set_stock(stock);
    request.mutable_update_mask()->add_paths("stock");
    v1::Item item;
    auto context = Context();
    const grpc::Status status = stub.UpdateItem(context.get(), request, &item);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (position != nullptr) *position = PositionOf(*context);
    return item;
  }
  // Whether stub answers item as it is within a second (another replica hears of a write within
  // the coherence bound; until then it may answer from a standby that has not replayed it).
  bool SeenOn(v1::CatalogService::Stub& stub, const v1::Item& item) {
    for (int i = 0; i < 500; ++i) {
      if (GetOn(stub, item.id()).etag() == item.etag()) return true;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return false;
  }
  v1::Item GetOn(v1::CatalogService::Stub& stub, std::int64_t id, const std::string& after = "",
                 grpc::Status* status = nullptr) {
    v1::GetItemRequest request;
    request.set_id(id);
    v1::Item item;
    auto context = ContextAfter(after);
    const grpc::Status s = stub.GetItem(context.get(), request, &item);
    if (status != nullptr) *status = s;
    return item;
  }

  // Imports DemoItem(first..last) through stub; the import's position (x-hotpath-lsn) in
  // *position. after: sent as the position the import's reads must include.
  grpc::Status Import(v1::CatalogService::Stub& stub, int first, int last, std::string* position,
                      const std::string& after = "") {
    auto context = ContextAfter(after);
    v1::ImportItemsResponse response;
    auto writer = stub.ImportItems(context.get(), &response);
    for (int n = first; n <= last; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    *position = PositionOf(*context);
    return status;
  }
  // The ids ExportItems streams through stub, sending after as the position to include.
  std::vector<std::int64_t> ExportOn(v1::CatalogService::Stub& stub, const std::string& after,
                                     grpc::Status* status) {
    auto context = ContextAfter(after);
    auto reader = stub.ExportItems(context.get(), v1::ExportItemsRequest());
    std::vector<std::int64_t> ids;
    v1::Item item;
    while (reader->Read(&item)) ids.push_back(item.id());
    *status = reader->Finish();
    return ids;
  }

  std::unique_ptr<Hotpathd> other_;
  std::unique_ptr<v1::CatalogService::Stub> other_stub_;
};

TEST_F(ReadReplicasTest, ReadsGoToTheStandbyAndWritesToThePrimary) {
  ServerOptions options = WithStandby(/*caches=*/false);
  // A second standby that cannot be reached is never read; the first one still is.
  options.database_read_urls.push_back("host=/nonexistent port=1 user=postgres dbname=x");
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*server_));
  ASSERT_TRUE(Replayed(item));
  // Rounds of 20 reads until most of one go to the standby: under ctest -j2, with other
  // read-replica tests making their standbys of the same primary, all 20 reads right after the
  // standby was seen usable once went to the primary (a standby that falls past the lag bound
  // for a moment is left alone meanwhile, as it should be).
  bool standby_read = false;
  for (int round = 0; round < 50 && !standby_read; ++round) {
    const double before = StandbyReads(*server_);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(GetOn(*stub_, item.id()).sku(), item.sku());
    standby_read = StandbyReads(*server_) - before >= 10;
    if (!standby_read) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(standby_read) << "no round of 20 reads went mostly to the standby in 5 s and more";
  EXPECT_EQ(Metric(server_->http_port(), "hotpath_read_standby_usable", {"standby=\"1\""}), 0);
  // Each standby's pool has series of its own once it is open, beside the primary's (whose series
  // carry no standby label, so the primary's alerts and panels see the primary alone); the
  // standby never reached has none.
  const int port = server_->http_port();
  const std::vector<std::string> standby0 = {"standby=\"0\""};
  EXPECT_GE(Metric(port, "hotpath_read_standby_pool_opened_total", standby0), 1);
  EXPECT_EQ(Metric(port, "hotpath_read_standby_pool_max_connections", standby0),
            options.database.max_size);
  EXPECT_GE(Metric(port, "hotpath_read_standby_pool_connections", {"standby=\"0\"", "idle"}), 1);
  EXPECT_EQ(Metric(port, "hotpath_read_standby_pool_down", standby0), 0);
  EXPECT_EQ(Metric(port, "hotpath_read_standby_pool_opened_total", {"standby=\"1\""}), -1);
  EXPECT_EQ(Metric(port, "hotpath_db_pool_opened_total", {"standby="}), -1);
  EXPECT_GE(Metric(port, "hotpath_db_pool_opened_total"), 1);
  // The standby's own view: it has the row (it replays the primary), and it is in recovery.
  EXPECT_EQ(TestStandby::Get().Query("SELECT pg_is_in_recovery()"), "t\n");
}

// HTTP reads with the cache off start their batches on the event loops: they go to the standby
// too, and each is counted once, on the standby or the primary, whichever way it went (a loop
// that finds no connection free at once leaves the read to the executor, which chooses again).
TEST_F(ReadReplicasTest, LoopReadsGoToTheStandbyAndEachIsCountedOnce) {
  StartServer(WithStandby(/*caches=*/false));
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*server_));
  ASSERT_TRUE(Replayed(item));
  const std::string path = absl::StrCat("/v1/items/", item.id());
  bool standby_read = false;
  for (int round = 0; round < 50 && !standby_read; ++round) {
    const double standby_before = StandbyReads(*server_);
    const double primary_before = PrimaryReads(*server_);
    for (int i = 0; i < 20; ++i) {
      const HttpReply read = Http(server_->http_port(), "GET", path);
      ASSERT_EQ(read.status, 200) << read.body;
      EXPECT_THAT(read.body, HasSubstr(item.sku()));
    }
    const double standby = StandbyReads(*server_) - standby_before;
    EXPECT_EQ(standby + PrimaryReads(*server_) - primary_before, 20);
    standby_read = standby >= 10;
    if (!standby_read) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(standby_read) << "no round of 20 reads went mostly to the standby in 5 s and more";
  // The loops' reads of the standby borrowed its pool's idle connections, counted there.
  EXPECT_GE(Metric(server_->http_port(), "hotpath_read_standby_pool_idle_leases_total",
                   {"standby=\"0\""}),
            1);
}

// The issue's scenario: the write answers with its position; a read through another replica
// that sends it back gets the write, though the standby has not replayed it (replay paused).
TEST_F(ReadReplicasTest, AWriterReadsItsWriteThroughAnyReplicaWhileReplayIsPaused) {
  const v1::Item item = CachedOnOtherThenPaused();
  ASSERT_FALSE(HasFailure());
  std::string position;
  const v1::Item updated = SetStock(*stub_, item.id(), item.stock() + 5, &position);
  ASSERT_NE(rpc::Consistency::Parse(position), 0u) << "no x-hotpath-lsn on the write: " << position;
  // At once, without waiting for B's caches to hear of it: past B's cache, not from the standby.
  EXPECT_EQ(GetOn(*other_stub_, item.id(), position).stock(), updated.stock());
  EXPECT_EQ(GetOn(*stub_, item.id(), position).stock(), updated.stock());
  // The standby itself still has the old row.
  EXPECT_EQ(OnStandby(absl::StrCat("SELECT stock FROM items WHERE id = ", item.id())),
            absl::StrCat(item.stock(), "\n"));
  // A position that is not one is refused.
  grpc::Status status;
  GetOn(*other_stub_, item.id(), "not-a-position", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-hotpath-lsn"));
}

// A create answers its position too (the store asked for it while the insert's transaction was
// still open, which libpqxx refuses: creates answered none, and every read went to the primary
// until the next sample). Another replica reads the new item through it at once, replay paused.
TEST_F(ReadReplicasTest, ACreateAnswersItsPositionAndAnotherReplicaReadsTheItemThroughIt) {
  CachedOnOtherThenPaused();
  ASSERT_FALSE(HasFailure());
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(2);
  v1::Item created;
  auto context = Context();
  const grpc::Status status = stub_->CreateItem(context.get(), request, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string position = PositionOf(*context);
  ASSERT_NE(rpc::Consistency::Parse(position), 0u) << "no x-hotpath-lsn on the create";
  EXPECT_EQ(GetOn(*other_stub_, created.id(), position).sku(), created.sku());
}

// The stale refill race with a standby: B caches an item, the standby stops replaying, A writes.
// B's cache drops the item on the notification; the refill must not read the standby (which still
// has the old row and, with a 60 s bound, is still usable): B shows the write within the bound
// and keeps showing it.
TEST_F(ReadReplicasTest, ARefillAfterAnInvalidationNeverReadsAStandbyBehindTheWrite) {
  const v1::Item item = CachedOnOtherThenPaused();
  ASSERT_FALSE(HasFailure());
  const v1::Item updated = SetStock(*stub_, item.id(), item.stock() + 7);
  const absl::Time written = absl::Now();
  while (GetOn(*other_stub_, item.id()).stock() != updated.stock() &&
         absl::Now() - written < absl::Seconds(2)) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_LT(absl::Now() - written, absl::Seconds(1));
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(GetOn(*other_stub_, item.id()).stock(), updated.stock()) << "read " << i;
  }
  // It was the floor, not the lag bound: the paused standby is still read for other items.
  EXPECT_EQ(Metric(other_->http_port(), "hotpath_read_standby_usable", {"standby=\"0\""}), 1);
}

TEST_F(ReadReplicasTest, AStandbyPastTheLagBoundIsNotRead) {
  ServerOptions options = WithStandby(/*caches=*/false);
  options.read_max_lag = absl::Milliseconds(300);
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*server_));
  PauseReplay();
  // The primary moves on; the standby does not.
  bool unusable = false;
  for (int i = 0; i < 200 && !unusable; ++i) {
    SetStock(*stub_, item.id(), i);
    unusable = Metric(server_->http_port(), "hotpath_read_standby_usable", {"standby=\"0\""}) == 0;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(unusable) << "the paused standby is still read after 2 s";
  // The bound counts the age of the primary's last sample too, so the standby may be left a
  // little before its own lag passes 300 ms; the lag gauge passes it soon after, and the standby
  // stays unread all the while.
  double lag = 0;
  for (int i = 0; i < 200 && lag <= 0.3; ++i) {
    lag = Metric(server_->http_port(), "hotpath_read_standby_lag_seconds", {"standby=\"0\""});
    ASSERT_EQ(Metric(server_->http_port(), "hotpath_read_standby_usable", {"standby=\"0\""}), 0);
    if (lag <= 0.3) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GT(lag, 0.3);
  const double primary = PrimaryReads(*server_);
  const double standby = StandbyReads(*server_);
  for (int i = 0; i < 10; ++i) GetOn(*stub_, item.id());
  EXPECT_GE(PrimaryReads(*server_) - primary, 10);
  EXPECT_EQ(StandbyReads(*server_), standby);
  // Replay resumes: the standby catches up and is read again.
  TestStandby::Get().Query("SELECT pg_wal_replay_resume()");
  EXPECT_TRUE(StandbyUsable(*server_));
}

TEST_F(ReadReplicasTest, RestWritesAnswerTheirPositionAndReadsSendItBack) {
  StartServer(WithStandby(/*caches=*/true));
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*server_));
  const std::string path = absl::StrCat("/v1/items/", item.id());
  ASSERT_EQ(Http(server_->http_port(), "GET", path).status, 200);  // cached
  PauseReplay();
  HttpReply patched = Http(server_->http_port(), "PATCH", path, R"({"stock": 4242})",
                           {{"Content-Type", "application/json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  const std::string position = patched.headers["x-hotpath-lsn"];
  ASSERT_NE(rpc::Consistency::Parse(position), 0u) << position;
  HttpReply read = Http(server_->http_port(), "GET", path, "", {{"X-Hotpath-Lsn", position}});
  EXPECT_EQ(read.status, 200);
  EXPECT_THAT(read.body, HasSubstr("\"stock\":4242"));
  read = Http(server_->http_port(), "GET", path, "", {{"X-Hotpath-Lsn", "12"}});
  EXPECT_EQ(read.status, 400);
  EXPECT_THAT(read.body, HasSubstr("X-Hotpath-Lsn"));
}

// Streams keep the promise of unary calls: an import answers the position of its commit, and an
// export that sends it back, through a replica that has heard nothing of the import (its change
// feed off), streams the imported rows though the standby it reads has not replayed them; over
// gRPC and as NDJSON through that replica's gateway.
TEST_F(ReadReplicasTest, AnExportsLaterBatchesAreNeverOlderThanItsFirst) {
  TestStandby& second = TestStandby::Get(1);
  ASSERT_TRUE(second.ok()) << second.error();
  ServerOptions options = WithStandby(/*caches=*/false);
  options.database_read_urls.push_back(second.Url(database_->name()));
  options.read_max_lag = absl::Seconds(60);  // the paused standby stays usable
  options.change_feed = false;               // a write straight on the primary raises no floor
  StartServer(options);
  // Two full batches of 500 (and an empty third read), on both standbys.
  std::string position;
  const grpc::Status imported = Import(*stub_, 1, 1000, &position);
  ASSERT_TRUE(imported.ok()) << imported.error_message();
  bool replayed = false;
  for (int i = 0; i < 500 && !replayed; ++i) {
    replayed = OnStandby("SELECT count(*) FROM items") == "1000\n" &&
               second.Query("SELECT count(*) FROM items", database_->name()) == "1000\n" &&
               Metric(server_->http_port(), "hotpath_read_standby_usable") == 2;
    if (!replayed) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(replayed);
  ASSERT_THAT(second.Query("SELECT pg_wal_replay_pause()"), ::testing::Not(HasSubstr("ERROR")));
  absl::Cleanup resume = [&] { second.Query("SELECT pg_wal_replay_resume()"); };
  // One transaction changes the first item and the last, on the primary: the first standby
  // replays it, the second (paused) does not.
  database_->Query(
      "UPDATE items SET stock = 424242 WHERE id IN "
      "(SELECT min(id) FROM items UNION SELECT max(id) FROM items)");
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = OnStandby("SELECT count(*) FROM items WHERE stock = 424242") == "2\n";
    if (!seen) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(seen);
  absl::SleepFor(absl::Milliseconds(100));  // the monitor's samples

  // Every export reads all its batches from one source (a standby, or the primary for good):
  // none shows the first item changed and the last one not. Exports start on either standby.
  int changed = 0;
  int unchanged = 0;
  for (int round = 0; round < 6; ++round) {
    auto context = Context();
    auto reader = stub_->ExportItems(context.get(), v1::ExportItemsRequest());
    std::vector<v1::Item> items;
    v1::Item item;
    while (reader->Read(&item)) items.push_back(item);
    const grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(items.size(), 1000u);
    const bool first = items.front().stock() == 424242;
    const bool last = items.back().stock() == 424242;
    EXPECT_FALSE(first && !last) << "export " << round
                                 << ": a later batch read older data than the first";
    (first ? changed : unchanged) += 1;
  }
  EXPECT_GT(changed, 0);
  EXPECT_GT(unchanged, 0);
}

TEST_F(ReadReplicasTest, AnImportAnswersItsPositionAndAnExportSendingItBackStreamsItsRows) {
  StartServer(WithStandby(/*caches=*/true));
  ServerOptions other = WithStandby(/*caches=*/true);
  other.read_max_lag = absl::Seconds(60);  // the paused standby stays usable
  other.change_feed = false;               // so only the position can send B's reads elsewhere
  StartOther(other);
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*other_));
  ASSERT_TRUE(Replayed(item));
  PauseReplay();
  std::string position;
  const grpc::Status imported = Import(*stub_, 2, 4, &position);
  ASSERT_TRUE(imported.ok()) << imported.error_message();
  ASSERT_NE(rpc::Consistency::Parse(position), 0u)
      << "no x-hotpath-lsn on the import: " << position;

  grpc::Status status;
  EXPECT_EQ(ExportOn(*other_stub_, position, &status).size(), 4u);
  EXPECT_TRUE(status.ok()) << status.error_message();
  // Without it B reads the standby, which still has the one item.
  EXPECT_EQ(ExportOn(*other_stub_, "", &status).size(), 1u);
  EXPECT_EQ(OnStandby("SELECT count(*) FROM items"), "1\n");
  const HttpReply exported =
      Http(other_->http_port(), "GET", "/v1/items:export", "", {{"X-Hotpath-Lsn", position}});
  EXPECT_EQ(exported.status, 200) << exported.body;
  EXPECT_EQ(std::count(exported.body.begin(), exported.body.end(), '\n'), 4) << exported.body;

  // A position that is not one is refused by either stream, and nothing is imported.
  ExportOn(*other_stub_, "not-a-position", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-hotpath-lsn"));
  status = Import(*stub_, 5, 5, &position, "not-a-position");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-hotpath-lsn"));
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items"), "4");
}

// The CLI carries it too: a write prints its position on stderr, and a read given it back with
// --after gets the write through another replica, past that replica's cache and the paused
// standby.
TEST_F(ReadReplicasTest, TheCliPrintsAWritesPositionAndReadsAfterIt) {
  const v1::Item item = CachedOnOtherThenPaused();
  ASSERT_FALSE(HasFailure());
  const std::string cli = absl::StrCat(HOTPATH_CLI_BINARY, " --addr=127.0.0.1:");
  const std::string updated =
      RunCommand(absl::StrCat(cli, server_->grpc_port(), " update ", item.id(), " --stock=4242"));
  const std::string key = absl::StrCat(rpc::Consistency::kMetadataKey, ": ");
  const std::size_t at = updated.find(key);
  ASSERT_NE(at, std::string::npos) << updated;
  const std::string position =
      updated.substr(at + key.size(), updated.find('\n', at) - at - key.size());
  ASSERT_NE(rpc::Consistency::Parse(position), 0u) << updated;

  EXPECT_THAT(
      RunCommand(absl::StrCat(cli, other_->grpc_port(), " --after=", position, " get ", item.id())),
      HasSubstr("\"stock\": 4242"));
  int exit_code = 0;
  const std::string refused =
      RunCommand(absl::StrCat(cli, other_->grpc_port(), " --after=12 get ", item.id()), &exit_code);
  EXPECT_NE(exit_code, 0);
  EXPECT_THAT(refused, HasSubstr("x-hotpath-lsn"));
}

// Behind deploy/nginx/hotpath.conf, whose item cache keeps an answer for a second when the replica
// does not make every use revalidate (no --gateway_accel_expires): a read that sends a write's
// position back is not answered from that copy.
TEST_F(ReadReplicasTest, ThroughNginxAReadSendingAPositionSkipsNginxsItemCache) {
  StartServer(WithStandby(/*caches=*/true));
  const v1::Item item = CreateDemo(1);
  ASSERT_TRUE(StandbyUsable(*server_));
  const int http_port = FreePort();
  auto nginx = Nginx::Start(HOTPATH_SOURCE_DIR, Nginx::InFrontOf(*server_, FreePort(), http_port));
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  const std::string path = absl::StrCat("/v1/items/", item.id());
  ASSERT_EQ(Http(http_port, "GET", path).headers["x-cache-status"], "MISS");
  ASSERT_EQ(Http(http_port, "GET", path).headers["x-cache-status"], "HIT");  // kept for 1 s
  HttpReply patched =
      Http(http_port, "PATCH", path, R"({"stock": 4242})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  const std::string position = patched.headers["x-hotpath-lsn"];
  ASSERT_NE(rpc::Consistency::Parse(position), 0u) << position;
  HttpReply read = Http(http_port, "GET", path, "", {{"X-Hotpath-Lsn", position}});
  EXPECT_EQ(read.headers["x-cache-status"], "BYPASS");
  EXPECT_THAT(read.body, HasSubstr("\"stock\":4242"));
  // Nor did that read fill the cache (an entry per position would): the copy kept before serves
  // reads without a position until its second is up.
  const HttpReply plain = Http(http_port, "GET", path);
  EXPECT_EQ(plain.headers.at("x-cache-status"), "HIT");
  EXPECT_THAT(plain.body, ::testing::Not(HasSubstr("\"stock\":4242")));
}

}  // namespace
}  // namespace hotpath::testing
