// Deadlines and disconnects reach PostgreSQL: a call whose deadline passes while its statement
// runs, or whose client cancels or hangs up, has that statement cancelled in the server (gone
// from pg_stat_activity within 100 ms) and changes nothing.

// Debian's Boost.Asio uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <csignal>
#include <cstdio>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

// How soon a cancelled statement leaves pg_stat_activity (a few ms in the release build; under
// TSan the cancellation path's own code took 117 ms on a loaded two-core machine).
constexpr absl::Duration kGoneWithin =
    kSanitizerSlowsCode ? absl::Milliseconds(1000) : absl::Milliseconds(100);

class CancellationTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(ServerOptionsOfTest());
    item_ = CreateDemo(1);
    observer_ = std::make_unique<pqxx::connection>(database_->url());
    blocker_ = std::make_unique<pqxx::connection>(database_->url());
    lock_ = std::make_unique<pqxx::work>(*blocker_);
    // Every write to items now waits in PostgreSQL until the lock goes.
    lock_->exec("LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
  }
  virtual ServerOptions ServerOptionsOfTest() const { return Options(); }
  void TearDown() override {
    if (lock_ != nullptr) lock_->abort();
    lock_.reset();
    blocker_.reset();
    observer_.reset();
    ServerTest::TearDown();
  }

  // Sends a PATCH of the item's stock over a raw connection to http_port (this server's, by
  // default), waits until its UPDATE runs (queued behind the lock), then hangs up.
  void HangUpDuringAnHttpUpdate(int http_port = 0) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket = Connect(io, http_port);
    boost::asio::write(socket, boost::asio::buffer(StockPatch()));
    ASSERT_TRUE(AwaitRunning(kUpdates, 1, absl::Seconds(5)));
    socket.close();
  }

  // A raw connection to http_port (this server's, by default).
  boost::asio::ip::tcp::socket Connect(boost::asio::io_context& io, int http_port = 0) const {
    boost::asio::ip::tcp::socket socket(io);
    socket.connect(
        {boost::asio::ip::make_address("127.0.0.1"),
         static_cast<unsigned short>(http_port != 0 ? http_port : server_->http_port())});
    return socket;
  }
  // The PATCH of the item's stock to 12345, as sent on a raw connection; close: it says
  // Connection: close.
  std::string StockPatch(bool close = false) const {
    const std::string body = R"({"stock":12345})";
    return absl::StrCat("PATCH /v1/items/", item_.id(), " HTTP/1.1\r\nHost: x\r\n",
                        "Content-Type: application/json\r\nContent-Length: ", body.size(),
                        close ? "\r\nConnection: close" : "", "\r\n\r\n", body);
  }

  // The metric's value on http_port (this server's, by default) once it is at least `least` (or
  // as it is after 5 s): a call's metrics are counted as it ends, just after its client heard.
  double AwaitMetric(const std::string& name, const std::vector<std::string>& labels, double least,
                     int http_port = 0) {
    if (http_port == 0) http_port = server_->http_port();
    const absl::Time end = absl::Now() + absl::Seconds(5);
    double value = Metric(http_port, name, labels);
    while (value < least && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(10));
      value = Metric(http_port, name, labels);
    }
    return value;
  }

  // What Running counts, as ILIKE patterns of the statement's text.
  static constexpr char kUpdates[] = "UPDATE items%";
  static constexpr char kExportReads[] = "%FROM items WHERE id > $1%ORDER BY id LIMIT%";  // batches
  // Statements of this database whose text is like `statement` running (or waiting on a lock) in
  // PostgreSQL now, but the observer's own.
  int Running(const char* statement) {
    pqxx::nontransaction tx(*observer_);
    return tx
        .exec(
            absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         "AND state = 'active' AND pid <> pg_backend_pid() AND query ILIKE ",
                         tx.quote(statement)))[0][0]
        .as<int>();
  }
  bool AwaitRunning(const char* statement, int count, absl::Duration within) {
    const absl::Time end = absl::Now() + within;
    while (Running(statement) != count) {
      if (absl::Now() > end) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }
  // Time from now until no such statement runs any more (or 5 s).
  absl::Duration TimeUntilNoneRuns(const char* statement) {
    const absl::Time start = absl::Now();
    AwaitRunning(statement, 0, absl::Seconds(5));
    return absl::Now() - start;
  }
  v1::UpdateItemRequest StockUpdate() const {
    v1::UpdateItemRequest update;
    update.mutable_item()->set_id(item_.id());
    update.mutable_item()->set_stock(12345);
    update.mutable_update_mask()->add_paths("stock");
    return update;
  }
  std::string StoredStock() {
    lock_->abort();
    lock_.reset();
    return database_->Query(absl::StrCat("SELECT stock FROM items WHERE id = ", item_.id()));
  }

  v1::Item item_;                               // the row the updates aim at
  std::unique_ptr<pqxx::connection> observer_;  // reads pg_stat_activity
  std::unique_ptr<pqxx::connection> blocker_;   // holds the table lock
  std::unique_ptr<pqxx::work> lock_;            // its transaction
};

TEST_F(CancellationTest, ADeadlinePassingCancelsTheStatementOverGrpc) {
  v1::Item updated;
  const grpc::Status status =
      stub_->UpdateItem(Context(absl::Milliseconds(500)).get(), StockUpdate(), &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  EXPECT_LT(gone, kGoneWithin);
  std::cerr << "statement gone " << gone << " after the deadline\n";
  EXPECT_EQ(AwaitMetric("grpc_server_handled_total",
                        {"grpc_method=\"UpdateItem\"", "grpc_code=\"DeadlineExceeded\""}, 1),
            1);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
}

TEST_F(CancellationTest, ADeadlinePassingCancelsTheStatementOverRest) {
  const HttpReply reply =
      Http(server_->http_port(), "PATCH", absl::StrCat("/v1/items/", item_.id()),
           R"({"stock":12345})", {{"Content-Type", "application/json"}, {"X-Timeout-Ms", "500"}});
  EXPECT_EQ(reply.status, 504) << reply.body;
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  EXPECT_LT(gone, kGoneWithin);
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"504\""}, 1), 1);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
}

TEST_F(CancellationTest, AGrpcClientCancellingCancelsTheStatement) {
  auto context = Context(absl::Seconds(30));
  v1::Item updated;
  auto call = std::async(std::launch::async,
                         [&] { return stub_->UpdateItem(context.get(), StockUpdate(), &updated); });
  ASSERT_TRUE(AwaitRunning(kUpdates, 1, absl::Seconds(5)));
  context->TryCancel();
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  EXPECT_EQ(call.get().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(gone, kGoneWithin) << "the statement ran on after the client left";
  std::cerr << "statement gone " << gone << " after the client cancelled\n";
  // Counted as the client saw it, not as the cancelled statement's timeout code.
  EXPECT_EQ(AwaitMetric("grpc_server_handled_total",
                        {"grpc_method=\"UpdateItem\"", "grpc_code=\"Canceled\""}, 1),
            1);
  EXPECT_LE(Metric(server_->http_port(), "grpc_server_handled_total",
                   {"grpc_method=\"UpdateItem\"", "grpc_code=\"DeadlineExceeded\""}),
            0);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);
}

TEST_F(CancellationTest, AnHttpClientHangingUpCancelsTheStatement) {
  HangUpDuringAnHttpUpdate();
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  EXPECT_LT(gone, kGoneWithin) << "the statement ran on after the client left";
  std::cerr << "statement gone " << gone << " after the HTTP client hung up\n";
  // Counted as nginx counts a client that closed first, not as a server error.
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, 1), 1);
  EXPECT_LE(Metric(server_->http_port(), "http_requests_total", {"code=\"504\""}), 0);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);
}

// A client that stops sending while its requests wait is gone as much as one whose connection
// the server is still reading: when its pipeline is full (16 requests unanswered), or when its
// last request said Connection: close. Before, the server read nothing more from such a
// connection, learnt of the departure only when an answer's write failed, and ran every request
// left to its end (here, until the lock went: the updates applied).
struct HangUp {
  const char* name;
  int requests;           // pipelined PATCHes of the item's stock
  bool connection_close;  // the last one says Connection: close
  bool reset;             // the client resets the connection (RST) instead of closing it (FIN)
};

void PrintTo(const HangUp& hang_up, std::ostream* out) { *out << hang_up.name; }

class PipelineHangUpTest : public CancellationTest, public ::testing::WithParamInterface<HangUp> {
 protected:
  // Every connection open (and its statements prepared) before the lock: a connection opened
  // behind it would wait there preparing, before its call's cancellation can reach it.
  ServerOptions ServerOptionsOfTest() const override {
    ServerOptions options = Options();
    options.database.min_size = options.database.max_size;
    return options;
  }
};

TEST_P(PipelineHangUpTest, CancelsEveryRequestLeft) {
  namespace net = boost::asio;
  const HangUp hang_up = GetParam();
  net::io_context io;
  net::ip::tcp::socket socket = Connect(io);
  std::string requests;
  for (int i = 1; i <= hang_up.requests; ++i) {
    absl::StrAppend(&requests, StockPatch(i == hang_up.requests && hang_up.connection_close));
  }
  net::write(socket, net::buffer(requests));
  // The pool's connections (8) each run one, waiting on the lock; the rest wait for a thread.
  const int running = std::min(hang_up.requests, 8);
  ASSERT_TRUE(AwaitRunning(kUpdates, running, absl::Seconds(5)));
  if (hang_up.reset) socket.set_option(net::socket_base::linger(true, 0));
  socket.close();
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  // One cancel request after another, from the one Canceller thread (each a connection to
  // PostgreSQL's postmaster): 53-81 ms for 8 here.
  EXPECT_LT(gone, kGoneWithin * running) << "statements ran on after the client left";
  std::cerr << running << " statements gone " << gone << " after the client left\n";
  // The server handles at most 16 of a pipeline at a time; each is counted 499.
  const int handled = std::min(hang_up.requests, 16);
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, handled), handled);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);
}

INSTANTIATE_TEST_SUITE_P(HangUps, PipelineHangUpTest,
                         ::testing::Values(HangUp{"FullPipelineClosed", 20, false, false},
                                           HangUp{"FullPipelineReset", 20, false, true},
                                           HangUp{"ConnectionCloseClosed", 1, true, false},
                                           HangUp{"ConnectionCloseReset", 1, true, true}),
                         [](const ::testing::TestParamInfo<HangUp>& info) {
                           return std::string(info.param.name);
                         });

// A read shared with another (one load of a list page for both) runs on for the one that stays;
// the client that left is counted 499, its reply not rendered. Before, it was counted 200, and
// its page printed for nobody.
TEST_F(CancellationTest, AReadSharedWithAClientThatStaysIsCounted499ForTheOneThatLeft) {
  namespace net = boost::asio;
  const std::string page = "GET /v1/items?pageSize=7 HTTP/1.1\r\nHost: x\r\n\r\n";
  net::io_context io;
  net::ip::tcp::socket leaving = Connect(io);
  net::write(leaving, net::buffer(page));
  ASSERT_TRUE(AwaitRunning("%FROM items%LIMIT%", 1, absl::Seconds(5)));
  auto staying = std::async(std::launch::async, [this] {
    return Http(server_->http_port(), "GET", "/v1/items?pageSize=7");
  });
  // Both wait on the one load (behind the lock); the first client leaves.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Running("%FROM items%LIMIT%"), 1);
  leaving.close();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_LE(Metric(server_->http_port(), "http_requests_total", {"code=\"499\""}), 0)
      << "answered before the load ended";
  lock_->abort();
  lock_.reset();
  EXPECT_EQ(staying.get().status, 200);
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, 1), 1);
  EXPECT_LE(
      Metric(server_->http_port(), "http_requests_total", {"code=\"200\"", "route=\"/v1/items\""}),
      1);
}

// The same through hotpath-gateway, whose calls go to this server over gRPC: the HTTP client's
// departure cancels the upstream call, which cancels its statement there. Before, the statement
// ran on until its deadline.
TEST_F(CancellationTest, AnHttpClientHangingUpOnHotpathGatewayCancelsTheStatementUpstream) {
  const int port = FreePort();
  const std::string log = absl::StrCat(::testing::TempDir(), "/gateway-hangup-", getpid(), ".log");
  ChildProcess gateway(
      {HOTPATH_GATEWAY_BINARY, absl::StrCat("--upstream=127.0.0.1:", server_->grpc_port()),
       "--http_host=127.0.0.1", absl::StrCat("--http_port=", port)},
      log);
  ASSERT_TRUE(AnswersWithin(port, "/healthz", 200));
  HangUpDuringAnHttpUpdate(port);
  const absl::Duration gone = TimeUntilNoneRuns(kUpdates);
  EXPECT_LT(gone, kGoneWithin) << "the statement ran on after the client left";
  std::cerr << "statement gone " << gone << " after the HTTP client hung up on hotpath-gateway\n";
  EXPECT_EQ(AwaitMetric("grpc_server_handled_total",
                        {"grpc_method=\"UpdateItem\"", "grpc_code=\"Canceled\""}, 1),
            1);
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
  EXPECT_EQ(LeasesLeftAfterSettling(), 0);
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, 1, port), 1);
  gateway.Signal(SIGTERM);
  EXPECT_TRUE(gateway.Wait(absl::Seconds(10)).has_value());
  std::remove(log.c_str());
}

// An export whose client leaves while a batch is being read (here: waiting behind the lock) has
// that batch's statement cancelled, over gRPC and over HTTP. Before, the batch ran to its end (up
// to --statement_timeout_ms) and the stream stopped only at its next write.
TEST_F(CancellationTest, AGrpcClientCancellingAnExportCancelsTheBatchBeingRead) {
  auto context = Context(absl::Seconds(30));
  auto reader = stub_->ExportItems(context.get(), v1::ExportItemsRequest());
  ASSERT_TRUE(AwaitRunning(kExportReads, 1, absl::Seconds(5)));
  context->TryCancel();
  const absl::Duration gone = TimeUntilNoneRuns(kExportReads);
  EXPECT_LT(gone, kGoneWithin) << "the batch's statement ran on after the client left";
  std::cerr << "export's statement gone " << gone << " after the client cancelled\n";
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(AwaitMetric("grpc_server_handled_total",
                        {"grpc_method=\"ExportItems\"", "grpc_code=\"Canceled\""}, 1),
            1);
  // No lease count here: the server's own reads of the fixture's item wait behind the lock too.
}

TEST_F(CancellationTest, AnHttpClientHangingUpOnAnExportCancelsTheBatchBeingRead) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::socket socket = Connect(io);
  net::write(socket, net::buffer(std::string("GET /v1/items:export HTTP/1.1\r\nHost: x\r\n\r\n")));
  ASSERT_TRUE(AwaitRunning(kExportReads, 1, absl::Seconds(5)));
  socket.close();
  const absl::Duration gone = TimeUntilNoneRuns(kExportReads);
  EXPECT_LT(gone, kGoneWithin) << "the batch's statement ran on after the client left";
  std::cerr << "export's statement gone " << gone << " after the HTTP client hung up\n";
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, 1), 1);
}

class AccessLoggedCancellationTest : public CancellationTest {
 protected:
  ServerOptions ServerOptionsOfTest() const override {
    ServerOptions options = Options();
    options.access_log = true;
    return options;
  }
};

// A request whose client left before its answer still gets its access line, with the status
// nginx writes for it (499), once the call it started has ended.
TEST_F(AccessLoggedCancellationTest, AnHttpClientHangingUpIsLoggedWith499) {
  ::testing::internal::CaptureStderr();
  HangUpDuringAnHttpUpdate();
  EXPECT_LT(TimeUntilNoneRuns(kUpdates), kGoneWithin);
  // Counted just after its line is written (the log's sink is outside the metrics' one).
  EXPECT_EQ(AwaitMetric("http_requests_total", {"code=\"499\""}, 1), 1);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, ::testing::ContainsRegex(absl::StrCat(
                       R"re("http_method":"PATCH","target":"/v1/items/)re", item_.id(),
                       R"re(","route":"/v1/items/\{item\.id\}","peer":"127\.0\.0\.1",)re",
                       R"re("status":499,"duration_seconds":[0-9.e-]+\})re")))
      << log;
  EXPECT_EQ(StoredStock(), std::to_string(item_.stock()));
}

}  // namespace
}  // namespace hotpath::testing
