// hotpathd behind Debian's nginx with the project's config (deploy/nginx/hotpath.conf) as it is:
// gRPC and REST pass through, and the HTTP/2 floods gRPC 1.51 cannot stop by itself (Rapid
// Reset, a CONTINUATION flood, a message declared at 2 GiB, messages left unfinished) end at
// nginx, while a well-behaved client keeps being served and hotpathd's memory stays bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class NginxTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
    CreateDemo(1);
    grpc_port_ = FreePort();
    http_port_ = FreePort();
    auto nginx =
        Nginx::Start(HOTPATH_SOURCE_DIR, Nginx::InFrontOf(*server_, grpc_port_, http_port_));
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    channel_via_nginx_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port_),
                                             grpc::InsecureChannelCredentials());
    via_nginx_ = v1::CatalogService::NewStub(channel_via_nginx_);
    for (int i = 0; i < 100 && !Serves(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(Serves()) << "no answer through nginx";
  }

  void TearDown() override {
    nginx_.reset();
    ServerTest::TearDown();
  }

  // A GetItem through nginx, with 2 s to answer.
  grpc::Status Call() {
    v1::GetItemRequest request;
    request.set_id(1);
    v1::Item item;
    return via_nginx_->GetItem(Context(absl::Seconds(2)).get(), request, &item);
  }
  bool Serves() { return Call().ok(); }

  // The last lines of nginx's error log, for a failure's message, without those about the floods'
  // client (h2_flood.py connects from 127.0.0.2): a line for each body refused past the limit.
  std::string ErrorLogTail() const {
    std::vector<absl::string_view> kept;
    const std::string log = ReadFile(nginx_->dir() / "error.log");
    for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
      if (!absl::StrContains(line, "client: 127.0.0.2,")) kept.push_back(line);
    }
    if (kept.size() > 40) kept.erase(kept.begin(), kept.end() - 40);
    return absl::StrCat("nginx's error log, last lines:\n", absl::StrJoin(kept, "\n"));
  }

  // What hotpathd saw of GetItem: calls started, and answered OK.
  std::string GetItemsSeen() const {
    const int port = server_->http_port();
    return absl::StrCat(
        "hotpathd: GetItem started ",
        Metric(port, "grpc_server_started_total", {"grpc_method=\"GetItem\""}), ", answered OK ",
        Metric(port, "grpc_server_handled_total", {"grpc_method=\"GetItem\"", "grpc_code=\"OK\""}));
  }

  std::unique_ptr<Nginx> nginx_;                         // in front of server_
  int grpc_port_ = 0;                                    // nginx's gRPC port
  int http_port_ = 0;                                    // nginx's REST port
  std::shared_ptr<grpc::Channel> channel_via_nginx_;     // to grpc_port_
  std::unique_ptr<v1::CatalogService::Stub> via_nginx_;  // catalog calls through nginx
};

TEST_F(NginxTest, GrpcAndRestPassThrough) {
  v1::GetItemRequest request;
  request.set_id(1);
  v1::Item item;
  ASSERT_TRUE(via_nginx_->GetItem(Context().get(), request, &item).ok());
  EXPECT_EQ(item.sku(), "SKU-1");
  // Errors keep their status and message.
  request.set_id(424242);
  const grpc::Status missing = via_nginx_->GetItem(Context().get(), request, &item);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), HasSubstr("424242"));
  const HttpReply rest = Http(http_port_, "GET", "/v1/items/1");
  EXPECT_EQ(rest.status, 200);
  EXPECT_THAT(rest.body, HasSubstr("SKU-1"));
}

// A replica's /metrics is not served to clients through nginx, in any spelling nginx
// normalises; Prometheus scrapes the replica itself.
TEST_F(NginxTest, MetricsAreNotServedThroughNginx) {
  for (const char* target :
       {"/metrics", "//metrics", "/%6Detrics", "/metrics?x=1", "/./metrics", "/v1/../metrics"}) {
    const HttpReply reply = Http(http_port_, "GET", target);
    EXPECT_EQ(reply.status, 404) << target;
    EXPECT_THAT(reply.body, Not(HasSubstr("grpc_server_handled_total"))) << target;
  }
  EXPECT_THAT(Http(server_->http_port(), "GET", "/metrics").body,
              HasSubstr("grpc_server_handled_total"));
}

// What nginx answers itself on the REST port has the shape of a replica's own errors (JSON with
// the gRPC code of the status), not nginx's HTML page; a replica's own errors pass unchanged.
TEST_F(NginxTest, ErrorsNginxAnswersItselfAreJsonLikeAReplicas) {
  auto expect_json_error = [](const HttpReply& reply, int status, const std::string& code) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_EQ(reply.headers.count("content-type") ? reply.headers.at("content-type") : "",
              "application/json")
        << reply.body;
    EXPECT_THAT(reply.body, StartsWith(absl::StrCat("{\"code\":", code, ",\"message\":\"")));
    EXPECT_THAT(reply.body, HasSubstr("\"details\":[]}"));
  };
  expect_json_error(Http(http_port_, "GET", "/metrics"), 404, "5");
  const HttpReply too_large = Http(http_port_, "POST", "/v1/items", std::string(2 << 20, ' '),
                                   {{"Content-Type", "application/json"}});
  expect_json_error(too_large, 413, "3");
  EXPECT_THAT(too_large.body, HasSubstr("client_max_body_size"));
  const HttpReply replicas_own = Http(http_port_, "GET", "/v1/nothing");
  expect_json_error(replicas_own, 404, "5");
  EXPECT_THAT(replicas_own.body, HasSubstr("no route for /v1/nothing"));
  // A header block past nginx's 4 x 16 KiB is its own 400 too.
  expect_json_error(
      Http(http_port_, "GET", "/v1/items/1", "", {{"X-Big", std::string(20000, 'a')}}), 400, "3");
  // gRPC too: with no replica, nginx's own status says so.
  server_.reset();  // no replica left to answer: refused (502) or silent (504)
  v1::GetItemRequest request;
  request.set_id(1);
  v1::Item item;
  const grpc::Status no_replica =
      via_nginx_->GetItem(Context(absl::Seconds(20)).get(), request, &item);
  EXPECT_EQ(no_replica.error_code(), grpc::StatusCode::UNAVAILABLE) << no_replica.error_message();
  EXPECT_EQ(no_replica.error_message(), "no replica answered");
  const HttpReply gone = Http(http_port_, "GET", "/v1/items/1");
  expect_json_error(gone, gone.status == 504 ? 504 : 502, gone.status == 504 ? "4" : "14");
}

// An HTTP export whose client reads nothing holds a call in the replica until the stall timeout
// ends it, and a replica's gateway holds at most 256 at once: nginx lets one client address hold
// 4, while another address is still served.
TEST_F(NginxTest, OneAddressHoldsAFewExportsAtOnce) {
  ImportDemo(10, 30000);  // an export outlasts the sockets' buffers (~10 MB of NDJSON)
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(StalledGet(http_port_, "/v1/items:export"));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int fifth = StalledGet(http_port_, "/v1/items:export");
  EXPECT_EQ(StatusLine(fifth), "HTTP/1.1 429 Too Many Requests");
  const timeval wait{5, 0};
  setsockopt(fifth, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  std::string rest;
  char chunk[4096];
  while (rest.find('}') == std::string::npos) {
    const ssize_t got = recv(fifth, chunk, sizeof chunk, 0);
    if (got <= 0) break;
    rest.append(chunk, static_cast<std::size_t>(got));
  }
  EXPECT_THAT(rest, HasSubstr("{\"code\":8,")) << rest;  // JSON, as a replica's 429 is
  close(fifth);
  const int other = StalledGet(http_port_, "/v1/items:export", "127.0.0.2");
  EXPECT_EQ(StatusLine(other), "HTTP/1.1 200 OK");
  close(other);
  for (int fd : held) {
    EXPECT_EQ(StatusLine(fd), "HTTP/1.1 200 OK");
    close(fd);
  }
}

// What 127.0.0.1 reads on one connection that sends count GETs of target at once (pipelined, the
// last asking to close).
std::string PipelinedGets(int port, const std::string& target, int count) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const timeval wait{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  std::string requests;
  for (int i = 1; i <= count; ++i) {
    absl::StrAppend(&requests, "GET ", target, " HTTP/1.1\r\nHost: hotpath\r\n",
                    i == count ? "Connection: close\r\n" : "", "\r\n");
  }
  EXPECT_EQ(send(fd, requests.data(), requests.size(), 0), static_cast<ssize_t>(requests.size()));
  std::string answers;
  char chunk[65536];
  for (ssize_t got; (got = recv(fd, chunk, sizeof chunk, 0)) > 0;) answers.append(chunk, got);
  close(fd);
  return answers;
}

// The status of each answer in what PipelinedGets read, in order (each has a Content-Length).
std::vector<int> Statuses(const std::string& answers) {
  std::vector<int> statuses;
  std::size_t at = 0;
  while (answers.compare(at, 9, "HTTP/1.1 ") == 0) {
    statuses.push_back(std::stoi(answers.substr(at + 9, 3)));
    const std::size_t end = answers.find("\r\n\r\n", at);
    const std::size_t length = answers.find("\r\nContent-Length: ", at);
    if (end == std::string::npos || length == std::string::npos || length > end) break;
    at = end + 4 + std::stoul(answers.substr(length + 18));
  }
  return statuses;
}

// One client address may send 500 requests a second with a burst of 1000 (limit_req, as on the
// gRPC port); past that it is answered 429 with a JSON error, while another address is served.
TEST_F(NginxTest, OneAddressIsRefusedPastItsRequestRate) {
  constexpr int kConnections = 3;
  constexpr int kEach = 900;  // under keepalive_requests (1000): nginx answers them all
  std::vector<std::string> answers(kConnections);
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> clients;
    for (int c = 0; c < kConnections; ++c) {
      clients.emplace_back(
          [&, c] { answers[c] = PipelinedGets(http_port_, "/v1/items/1", kEach); });
    }
    for (std::thread& client : clients) client.join();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int served = 0, refused = 0;
  for (const std::string& each : answers) {
    const std::vector<int> statuses = Statuses(each);
    EXPECT_EQ(statuses.size(), static_cast<std::size_t>(kEach)) << each.substr(0, 1500);
    for (int status : statuses) {
      if (status == 200) ++served;
      if (status == 429) ++refused;
    }
  }
  EXPECT_EQ(served + refused, kConnections * kEach);
  // The burst, and at most what the rate adds while the requests are answered.
  EXPECT_GE(served, 1000);
  EXPECT_LE(served, 1001 + static_cast<int>(500 * seconds) + 5) << seconds << " s";
  EXPECT_GT(refused, 0) << "all " << served << " served in " << seconds << " s";
  // A refusal says why, in JSON as a replica's own 429 does, and when to ask again.
  const std::string all = absl::StrJoin(answers, "");
  EXPECT_THAT(all, HasSubstr("{\"code\":8,\"message\":\"too many requests from this address"));
  const std::size_t refusal = all.find("HTTP/1.1 429");
  ASSERT_NE(refusal, std::string::npos);
  EXPECT_THAT(all.substr(refusal, all.find("\r\n\r\n", refusal) + 2 - refusal),
              HasSubstr("\r\nRetry-After: 1\r\n"));
  // The limit is this address's alone.
  const int other = StalledGet(http_port_, "/v1/items/1", "127.0.0.2");
  EXPECT_EQ(StatusLine(other), "HTTP/1.1 200 OK");
  close(other);
}

// nginx reads a REST body whole before it passes it on (proxy_request_buffering, on by default;
// past 16 KiB into a file of its own), so bodies left unfinished stay there: 100 requests, each
// sent all but the last byte of a body of about 1 MiB, hold 64 MiB in hotpathd when sent to it
// directly (its --max_receiving_body_bytes; ~100 MiB before it), until its request timeout (10 s)
// drops them.
TEST_F(NginxTest, UnfinishedRestBodiesStayInNginx) {
  const long rss_before = ProcStatusKib("VmRSS");
  const std::size_t size = 1000 * 1000;
  const std::string request = absl::StrCat(
      "POST /v1/items HTTP/1.1\r\nHost: hotpath\r\nContent-Type: application/json\r\n"
      "Content-Length: ",
      size, "\r\n\r\n", std::string(size - 1, ' '));
  std::vector<int> held;
  for (int i = 0; i < 100; ++i) {
    const int fd = SmallWindowConnection(http_port_);
    held.push_back(fd);
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long grown_kib = ProcStatusKib("VmRSS") - rss_before;
  for (int fd : held) close(fd);
  if (!kSanitizerHoldsMemory) {
    EXPECT_LT(grown_kib, 30 * 1024);
  }
  EXPECT_TRUE(Serves());
}

// An import holds up to a message (4 MiB) unfinished in a replica: one client address gets 4 at
// once, a fifth is refused by nginx (RESOURCE_EXHAUSTED, as a replica's own admission answers),
// and the four go on.
TEST_F(NginxTest, OneAddressHoldsAFewImportsAtOnce) {
  // The writer keeps the address of the response: each import stays where it was made.
  struct Import {
    std::unique_ptr<grpc::ClientContext> context;
    v1::ImportItemsResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::CreateItemRequest>> writer;
  };
  auto start = [&](int n) {
    auto import = std::make_unique<Import>();
    import->context = Context(absl::Seconds(20));
    import->writer = via_nginx_->ImportItems(import->context.get(), &import->response);
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    import->writer->Write(request);
    return import;
  };
  std::vector<std::unique_ptr<Import>> held;
  for (int n = 101; n <= 104; ++n) held.push_back(start(n));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // nginx has counted them
  const std::unique_ptr<Import> fifth = start(105);
  fifth->writer->WritesDone();
  const grpc::Status refused = fifth->writer->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("this address"));
  for (const std::unique_ptr<Import>& import : held) {
    import->writer->WritesDone();
    const grpc::Status done = import->writer->Finish();
    EXPECT_TRUE(done.ok()) << done.error_message();
    EXPECT_EQ(import->response.imported_count(), 1);
  }
}

// nginx passes on at most 64 KiB of a call (client_max_body_size; the catalog's largest valid
// request is about 26 KB): past it, RESOURCE_EXHAUSTED naming the limit, not HTTP's 413 (UNKNOWN
// to a gRPC client); below it, hotpathd's own answer.
TEST_F(NginxTest, ARequestLargerThanTheProxyPassesOnIsResourceExhausted) {
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(200);
  request.mutable_item()->set_description(std::string(100000, 'd'));
  v1::Item item;
  const grpc::Status too_large = via_nginx_->CreateItem(Context().get(), request, &item);
  EXPECT_EQ(too_large.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << too_large.error_message();
  EXPECT_THAT(too_large.error_message(), HasSubstr("client_max_body_size"));
  request.mutable_item()->set_description(std::string(30000, 'd'));
  const grpc::Status invalid = via_nginx_->CreateItem(Context().get(), request, &item);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << invalid.error_message();
  EXPECT_THAT(invalid.error_message(), HasSubstr("item.description"));
}

// Each flood for a few seconds against nginx's gRPC port, while a client calls GetItem through
// nginx all along: every one of its calls must succeed, and the server's memory (this process)
// must not grow with the flood, at its peak (VmHWM, started over at each flood). "unfinished" is
// 128 streams (nginx's limit on one connection) each sent all of a 4 MiB message but its last
// byte: at client_max_body_size 5m nginx passed them on as they came and gRPC 1.51 held them,
// over 500 MiB.
TEST_F(NginxTest, FloodsEndAtNginxWhileAWellBehavedClientIsServed) {
  for (const std::string attack : {"rapid_reset", "continuation", "big_message", "unfinished"}) {
    SCOPED_TRACE(attack);
    ResetPeakRss();
    const long rss_before = ProcStatusKib("VmRSS");
    const std::uintmax_t log_before = std::filesystem::file_size(nginx_->dir() / "error.log");
    std::atomic<bool> stop{false};
    const auto started = std::chrono::steady_clock::now();
    std::atomic<int> calls{0};
    std::atomic<int> failures{0};
    std::atomic<std::int64_t> slowest_ms{0};
    std::string last_error;
    std::thread client([&] {
      while (!stop) {
        v1::GetItemRequest request;
        request.set_id(1);
        v1::Item item;
        const auto sent = std::chrono::steady_clock::now();
        const grpc::Status status =
            via_nginx_->GetItem(Context(absl::Seconds(5)).get(), request, &item);
        ++calls;
        const std::int64_t took = Millis(std::chrono::steady_clock::now() - sent);
        if (took > slowest_ms) slowest_ms = took;
        if (!status.ok()) {
          ++failures;
          last_error = absl::StrCat("a call sent ", Millis(sent - started),
                                    " ms into the flood failed after ", took,
                                    " ms: ", status.error_message());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    int exit_code = 0;
    const std::string report =
        RunCommand(absl::StrCat("FLOOD_STREAMS=128 /usr/bin/python3 ", HOTPATH_SOURCE_DIR,
                                "/tests/floods/h2_flood.py ", attack, " ", grpc_port_, " 4"),
                   &exit_code);
    // The client goes on for the flood's whole time even if the attacker gave up early.
    std::this_thread::sleep_until(started + std::chrono::seconds(4));
    stop = true;
    client.join();
    const long grown_kib = ProcStatusKib("VmHWM") - rss_before;
    std::cerr << attack << ": " << calls << " calls, the slowest " << slowest_ms
              << " ms; flood and calls " << Millis(std::chrono::steady_clock::now() - started)
              << " ms\n";
    RecordProperty(attack + "_report", report);
    RecordProperty(attack + "_rss_growth_kib", std::to_string(grown_kib));
    ASSERT_EQ(exit_code, 0) << report;
    EXPECT_GT(calls.load(), 0);
    EXPECT_EQ(failures.load(), 0) << last_error << " (" << calls << " calls)\n"
                                  << GetItemsSeen() << "\n"
                                  << report << "\n"
                                  << ErrorLogTail();
    if (!kSanitizerHoldsMemory) {
      EXPECT_LT(grown_kib, 100 * 1024) << report;
    }
    // At nginx's default error_log level a refusal writes no line of its own (limit_req_log_level
    // warn): a line per refused stream was 55,000 lines, 12 MB, in one Rapid Reset flood.
    const std::uintmax_t logged =
        std::filesystem::file_size(nginx_->dir() / "error.log") - log_before;
    if (logged >= 64u * 1024) {
      const std::string log = ReadFile(nginx_->dir() / "error.log");
      ADD_FAILURE() << "nginx logged " << logged << " bytes in this flood, ending:\n"
                    << log.substr(log.size() - 2000);
    }
    if (attack == "rapid_reset") {
      EXPECT_THAT(report, Not(HasSubstr("\"goaways\": 0,"))) << report;
    }
    if (attack == "continuation") {
      EXPECT_THAT(report, Not(HasSubstr("\"closed_by_server\": 0"))) << report;
    }
    if (attack == "big_message") {
      // nginx refuses the body past client_max_body_size (64 KiB) instead of passing 2 GiB on.
      EXPECT_THAT(report, ::testing::AnyOf(HasSubstr("\"reset\": true"),
                                           HasSubstr("\"closed_by_server\": true")))
          << report;
    }
    if (attack == "unfinished") {
      // Each stream refused at 64 KiB.
      EXPECT_THAT(report, Not(HasSubstr("\"resets\": 0,"))) << report;
    }
    const grpc::Status after = Call();
    EXPECT_TRUE(after.ok()) << after.error_message() << "\n"
                            << GetItemsSeen() << "\n"
                            << ErrorLogTail();
  }
}

}  // namespace
}  // namespace hotpath::testing
