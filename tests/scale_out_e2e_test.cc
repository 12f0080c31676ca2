// The production topology, on one machine: three hotpathd processes on one PostgreSQL behind
// Debian's nginx with deploy/nginx/hotpath.conf as it is (plain and TLS ports). Calls spread over
// every replica; a replica sent SIGTERM under load fails no call, told to nginx first or not, nor
// do connections reaching their age; one killed with SIGKILL fails at most the calls it held and
// loses no acknowledged write; TLS at nginx works with curl and the CLI; nginx's item cache
// revalidates with the etag every use, so it follows a write through another replica within the
// coherence bound.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr int kReplicas = 3;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration deadline = absl::Seconds(10)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return context;
}

// Calls through nginx from several threads, each with one call in flight at a time: gRPC reads
// and creates, REST reads and creates. Records every failure and every acknowledged create. Paced
// below the config's 500 gRPC calls/s per client address (all of them come from 127.0.0.1).
class Load {
 public:
  Load(int grpc_port, int http_port) : grpc_port_(grpc_port), http_port_(http_port) {
    for (int kind = 0; kind < 4; ++kind) threads_.emplace_back([this, kind] { Run(kind); });
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  static constexpr int kThreads = 4;
  int calls() const { return calls_; }
  // What the calls so far came to.
  struct Outcome {
    std::vector<std::string> failures;        // what each failed call got
    std::vector<absl::Time> failure_times;    // when each failed
    std::vector<std::string> acknowledged;    // skus of the creates answered OK
    std::vector<std::string> failed_creates;  // skus of the creates that failed
  };
  Outcome outcome() {
    std::lock_guard lock(mu_);
    return outcome_;
  }

 private:
  void Run(int kind) {
    auto stub = v1::CatalogService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", grpc_port_), grpc::InsecureChannelCredentials()));
    for (int n = 0; !stop_; ++n) {
      const std::string sku = absl::StrCat("LOAD-", kind, "-", n);
      std::string failure;
      bool created = false;
      if (kind == 0) {
        v1::GetItemRequest request;
        request.set_id(1 + n % 20);
        v1::Item item;
        const grpc::Status status = stub->GetItem(Context().get(), request, &item);
        if (!status.ok()) failure = absl::StrCat("gRPC GetItem: ", status.error_message());
      } else if (kind == 1) {
        v1::CreateItemRequest request;
        *request.mutable_item() = client::DemoItem(100000 + n);
        request.mutable_item()->set_sku(sku);
        v1::Item item;
        const grpc::Status status = stub->CreateItem(Context().get(), request, &item);
        if (!status.ok()) failure = absl::StrCat("gRPC CreateItem: ", status.error_message());
        created = status.ok();
      } else {
        try {
          const HttpReply reply =
              kind == 2 ? Http(http_port_, "GET", absl::StrCat("/v1/items?page_size=5"))
                        : Http(http_port_, "POST", "/v1/items",
                               absl::StrCat(R"({"sku":")", sku,
                                            R"(","name":"n","category":"c","priceCents":1})"),
                               {{"Content-Type", "application/json"}});
          if (reply.status != 200) {
            failure = absl::StrCat("REST ", kind == 2 ? "GET" : "POST", " ", reply.status, ": ",
                                   reply.body);
          }
          created = kind == 3 && reply.status == 200;
        } catch (const std::exception& e) {
          failure = absl::StrCat("REST ", kind == 2 ? "GET" : "POST", ": ", e.what());
        }
      }
      ++calls_;
      absl::SleepFor(absl::Milliseconds(4));
      std::lock_guard lock(mu_);
      if (created) outcome_.acknowledged.push_back(sku);
      if (!failure.empty() && (kind == 1 || kind == 3)) outcome_.failed_creates.push_back(sku);
      if (!failure.empty()) {
        outcome_.failures.push_back(failure);
        outcome_.failure_times.push_back(absl::Now());
      }
    }
  }

  const int grpc_port_;
  const int http_port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0};
  std::mutex mu_;  // guards outcome_
  Outcome outcome_;
  std::vector<std::thread> threads_;
};

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    database_ = std::make_unique<TestDatabase>();
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("hotpath-scale-out-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(WriteSelfSignedCertificate(dir_));
    // bench/reliability's sigterm part sets a longer age, to count what it costs.
    const char* age = std::getenv("HOTPATH_TEST_REPLICA_MAX_CONNECTION_AGE_S");
    const std::string age_flag =
        absl::StrCat("--max_connection_age_s=", age != nullptr ? age : "2");
    for (int i = 0; i < kReplicas; ++i) {
      // As a deployment behind nginx sets them (deploy/nginx/README.md): a drain delay, so calls
      // keep being served while nginx still sends them; then the listener closes (nginx moves on
      // to the next replica) and the connections nginx holds end by their age, which fits in the
      // grace period, each with a GOAWAY while the replica still serves. And nginx's item cache
      // revalidates every use.
      replicas_.push_back(std::make_unique<HotpathdProcess>(
          HOTPATH_HOTPATHD_BINARY, database_->url(),
          std::vector<std::string>{"--drain_delay_ms=1000", "--shutdown_grace_ms=8000", age_flag,
                                   "--gateway_accel_expires=@1"},
          Log(i).string()));
    }
    for (int i = 0; i < kReplicas; ++i) {
      ASSERT_TRUE(replicas_[i]->WaitReady(absl::Seconds(60))) << ReadFile(Log(i));
    }
    grpc_port_ = FreePort();
    grpcs_port_ = FreePort();
    http_port_ = FreePort();
    https_port_ = FreePort();
    const std::string tls =
        absl::StrCat("ssl_certificate ", (dir_ / "cert.pem").string(), ";\nssl_certificate_key ",
                     (dir_ / "key.pem").string(), ";\n");
    Nginx::Site& site = site_;
    for (const auto& replica : replicas_) {
      site.grpc_replicas.push_back(absl::StrCat("127.0.0.1:", replica->grpc_port()));
      site.http_replicas.push_back(absl::StrCat("127.0.0.1:", replica->http_port()));
    }
    site.grpc_listen =
        absl::StrCat("listen 127.0.0.1:", grpc_port_, " http2;\nlisten 127.0.0.1:", grpcs_port_,
                     " ssl http2;\n", tls);
    site.http_listen = absl::StrCat("listen 127.0.0.1:", http_port_,
                                    ";\nlisten 127.0.0.1:", https_port_, " ssl;\n", tls);
    auto nginx = Nginx::Start(HOTPATH_SOURCE_DIR, site);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    stub_ = v1::CatalogService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port_),
                                                            grpc::InsecureChannelCredentials()));
    for (int n = 1; n <= 20; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      v1::Item item;
      const grpc::Status status = stub_->CreateItem(Context().get(), request, &item);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  void TearDown() override {
    stub_.reset();
    nginx_.reset();
    replicas_.clear();
    std::filesystem::remove_all(dir_);
    database_.reset();
  }

  std::filesystem::path Log(int replica) const {
    return dir_ / absl::StrCat("hotpathd-", replica, ".log");
  }

  // Calls each replica has answered: gRPC and REST, every method and route.
  std::vector<double> AnsweredByEach() const {
    std::vector<double> answered;
    for (const auto& replica : replicas_) {
      answered.push_back(Metric(replica->http_port(), "grpc_server_handled_total") +
                         Metric(replica->http_port(), "http_requests_total"));
    }
    return answered;
  }

  // How many items the database holds with sku ("0" or "1").
  std::string Stored(const std::string& sku) const {
    return database_->Query(absl::StrCat("SELECT count(*) FROM items WHERE sku = '", sku, "'"));
  }
  // Skus of those given that are not in the database.
  std::vector<std::string> Missing(const std::vector<std::string>& skus) const {
    std::vector<std::string> missing;
    for (const std::string& sku : skus) {
      if (Stored(sku) != "1") missing.push_back(sku);
    }
    return missing;
  }

  // Sends replica 0 SIGTERM under load and waits for it to exit (0), then half a second more of
  // load on the others.
  void StopFirstReplica(Load& load) {
    replicas_[0]->process().Signal(SIGTERM);
    const std::optional<int> status = replicas_[0]->process().Wait(absl::Seconds(15));
    absl::SleepFor(absl::Milliseconds(500));
    load.Stop();
    ASSERT_TRUE(status.has_value()) << "still running";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << ReadFile(Log(0));
  }

  std::unique_ptr<TestDatabase> database_;
  std::filesystem::path dir_;  // logs, the certificate
  std::vector<std::unique_ptr<HotpathdProcess>> replicas_;
  Nginx::Site site_;  // nginx's view of the replicas
  std::unique_ptr<Nginx> nginx_;
  int grpc_port_ = 0;                               // nginx, gRPC
  int grpcs_port_ = 0;                              // nginx, gRPC over TLS
  int http_port_ = 0;                               // nginx, REST
  int https_port_ = 0;                              // nginx, REST over TLS
  std::unique_ptr<v1::CatalogService::Stub> stub_;  // through nginx
};

TEST_F(ScaleOutTest, CallsSpreadOverEveryReplica) {
  const std::vector<double> before = AnsweredByEach();
  for (int i = 0; i < 60; ++i) {
    v1::GetItemRequest request;
    request.set_id(1 + i % 20);
    v1::Item item;
    ASSERT_TRUE(stub_->GetItem(Context().get(), request, &item).ok());
    ASSERT_EQ(Http(http_port_, "GET", "/v1/items?page_size=3").status, 200);
  }
  const std::vector<double> after = AnsweredByEach();
  for (int i = 0; i < kReplicas; ++i) {
    // Each of the 120 calls went to one replica; round robin gives each about 40.
    EXPECT_GE(after[i] - before[i], 20) << "replica " << i;
  }
  // A request id chosen by the client reaches the replica and comes back; else nginx gives one.
  HttpReply reply = Http(http_port_, "GET", "/v1/items/1", "", {{"X-Request-Id", "client-id-7"}});
  EXPECT_EQ(reply.headers["x-request-id"], "client-id-7");
  reply = Http(http_port_, "GET", "/v1/items?page_size=1");
  EXPECT_THAT(reply.headers["x-request-id"], MatchesRegex("[0-9a-f]{32}"));
}

// How a replica leaves nginx without failing a call: marked down and nginx reloaded (its old
// workers finish their calls), then sent SIGTERM; hotpathd drains what it still holds.
TEST_F(ScaleOutTest, AReplicaTakenOutOfNginxThenSentSigtermFailsNoCall) {
  Load load(grpc_port_, http_port_);
  absl::SleepFor(absl::Seconds(1));
  const double answered = AnsweredByEach()[0];
  site_.grpc_replicas[0] += " down";
  site_.http_replicas[0] += " down";
  ASSERT_TRUE(nginx_->Reload(site_).ok());
  StopFirstReplica(load);
  EXPECT_GT(answered, 50) << "the replica stopped had served calls";
  EXPECT_GT(load.calls(), 200);
  const Load::Outcome outcome = load.outcome();
  EXPECT_TRUE(outcome.failures.empty()) << outcome.failures.size() << " failed:\n"
                                        << absl::StrJoin(outcome.failures, "\n");
  EXPECT_THAT(Missing(outcome.acknowledged), ::testing::IsEmpty());
}

// SIGTERM alone, nginx not told: nginx keeps its connections to the replica until they end.
// hotpathd serves for the drain delay, then stops listening (nginx moves new calls on to the next
// replica) and waits for the connections nginx pooled to reach their age: each gets a GOAWAY while
// every call is still served, so a call nginx puts on one as the GOAWAY is in flight runs, and
// nginx drops the connection after it. Only then does gRPC shut down. No call fails. (With gRPC's
// own Shutdown first, a call that met it was cancelled without running: ~1 in 10 runs failed one.)
TEST_F(ScaleOutTest, AReplicaSentSigtermAloneFailsNoCall) {
  Load load(grpc_port_, http_port_);
  absl::SleepFor(absl::Seconds(1));
  const double answered = AnsweredByEach()[0];
  StopFirstReplica(load);
  EXPECT_GT(answered, 50) << "the replica stopped had served calls";
  EXPECT_GT(load.calls(), 200);
  const Load::Outcome outcome = load.outcome();
  RecordProperty("calls", load.calls());
  EXPECT_TRUE(outcome.failures.empty())
      << outcome.failures.size() << " failed:\n"
      << absl::StrJoin(outcome.failures, "\n") << "\nnginx's error log:\n"
      << ReadFile(nginx_->dir() / "error.log");
  EXPECT_THAT(Missing(outcome.acknowledged), ::testing::IsEmpty());
}

// Connections that reach their age under load (every 2 s here, on every replica) end without
// failing a call: the GOAWAY comes while the replica serves, and nginx opens another.
TEST_F(ScaleOutTest, ConnectionsThatReachTheirAgeFailNoCall) {
  Load load(grpc_port_, http_port_);
  absl::SleepFor(absl::Seconds(5));
  load.Stop();
  EXPECT_GT(load.calls(), 500);
  const Load::Outcome outcome = load.outcome();
  EXPECT_TRUE(outcome.failures.empty()) << outcome.failures.size() << " failed:\n"
                                        << absl::StrJoin(outcome.failures, "\n");
}

TEST_F(ScaleOutTest, AReplicaKilledFailsOnlyTheCallsItHeld) {
  Load load(grpc_port_, http_port_);
  absl::SleepFor(absl::Seconds(1));
  const absl::Time killed = absl::Now();
  replicas_[0]->process().Signal(SIGKILL);
  ASSERT_TRUE(replicas_[0]->process().Wait(absl::Seconds(10)).has_value());
  absl::SleepFor(absl::Seconds(2));
  const int calls_after = load.calls();
  absl::SleepFor(absl::Seconds(1));
  load.Stop();
  EXPECT_GT(load.calls() - calls_after, 50) << "calls go on on the other replicas";
  // Each load thread has one call in flight at a time: at most that many were held by the
  // replica, and every failure happened as it died.
  const Load::Outcome outcome = load.outcome();
  EXPECT_LE(outcome.failures.size(), Load::kThreads) << absl::StrJoin(outcome.failures, "\n");
  for (const absl::Time at : outcome.failure_times) EXPECT_LT(at - killed, absl::Seconds(1));
  EXPECT_THAT(Missing(outcome.acknowledged), ::testing::IsEmpty());
}

// A replica that stops answering (SIGSTOP, as a hung process: its kernel takes what nginx sends,
// nothing answers) holds a call through nginx for the config's read timeout (60 s), no longer: a
// REST read then goes to another replica and answers 200, a gRPC call (never resent) fails; and
// nginx leaves the replica for the calls after. Before, each call it took waited an hour.
TEST_F(ScaleOutTest, AReplicaThatStopsAnsweringHoldsACallOnlyUntilNginxsReadTimeout) {
  replicas_[0]->process().Signal(SIGSTOP);
  const absl::Cleanup resume = [&] { replicas_[0]->process().Signal(SIGCONT); };
  // Three of each at once, none with a deadline of its own: round robin gives the stopped
  // replica one of each.
  struct Call {
    bool ok = false;
    std::string what;
    absl::Duration took;
  };
  std::vector<Call> rest(3), grpc_calls(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      const absl::Time start = absl::Now();
      try {
        const HttpReply reply = Http(http_port_, "GET", "/v1/items?page_size=5");
        rest[i].ok = reply.status == 200;
        rest[i].what = absl::StrCat(reply.status, " ", reply.body);
      } catch (const std::exception& e) {
        rest[i].what = e.what();
      }
      rest[i].took = absl::Now() - start;
    });
    threads.emplace_back([&, i] {
      const absl::Time start = absl::Now();
      grpc::ClientContext context;
      v1::GetItemRequest request;
      request.set_id(1);
      v1::Item item;
      const grpc::Status status = stub_->GetItem(&context, request, &item);
      grpc_calls[i].ok = status.ok();
      grpc_calls[i].what = status.error_message();
      grpc_calls[i].took = absl::Now() - start;
    });
  }
  for (std::thread& thread : threads) thread.join();
  const auto longest = [](const std::vector<Call>& calls) {
    return std::max_element(calls.begin(), calls.end(),
                            [](const Call& a, const Call& b) { return a.took < b.took; });
  };
  for (const auto* calls : {&rest, &grpc_calls}) {
    const auto held = longest(*calls);
    EXPECT_GE(held->took, absl::Seconds(59)) << "a call went to the stopped replica";
    EXPECT_LT(held->took, absl::Seconds(70)) << "no call is held past nginx's read timeout";
    for (const Call& call : *calls) {
      if (&call == &*held) continue;
      EXPECT_TRUE(call.ok) << call.what;
      EXPECT_LT(call.took, absl::Seconds(5)) << call.what;
    }
  }
  EXPECT_TRUE(longest(rest)->ok) << "the read goes to another replica: " << longest(rest)->what;
  EXPECT_FALSE(longest(grpc_calls)->ok);
  // nginx leaves the replica now (for fail_timeout, 10 s by default): every call answers at once.
  for (int i = 0; i < 6; ++i) {
    const absl::Time start = absl::Now();
    EXPECT_EQ(Http(http_port_, "GET", "/v1/items?page_size=5").status, 200);
    v1::GetItemRequest request;
    request.set_id(1);
    v1::Item item;
    EXPECT_TRUE(stub_->GetItem(Context().get(), request, &item).ok());
    EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "call " << i;
  }
}

TEST_F(ScaleOutTest, TlsAtNginxWorksWithCurlAndTheCli) {
  const std::string ca = (dir_ / "cert.pem").string();
  int exit_code = 0;
  std::string out = RunCommand(
      absl::StrCat("curl -sS --cacert ", ca, " https://127.0.0.1:", https_port_, "/v1/items/1"),
      &exit_code);
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("\"sku\":\"SKU-1\""));
  out = RunCommand(absl::StrCat("curl -sS https://127.0.0.1:", https_port_, "/v1/items/1"),
                   &exit_code);
  EXPECT_NE(exit_code, 0) << "an untrusted certificate is refused: " << out;
  out = RunCommand(absl::StrCat(HOTPATH_CLI_BINARY, " --addr=127.0.0.1:", grpcs_port_,
                                " --tls_ca_file=", ca, " get 1"),
                   &exit_code);
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("SKU-1"));
}

TEST_F(ScaleOutTest, NginxCachesAnItemRevalidatesItAndFollowsWritesThroughAnyReplica) {
  const std::string path = "/v1/items/3";
  EXPECT_EQ(Http(http_port_, "GET", path).headers["x-cache-status"], "MISS");
  // Every later use asks a replica with the etag first; the item is unchanged, so the replica
  // answers 304 without a body and nginx serves its copy.
  HttpReply reply;
  for (int i = 0; i < 3; ++i) {
    reply = Http(http_port_, "GET", path);
    EXPECT_EQ(reply.headers["x-cache-status"], "REVALIDATED");
    EXPECT_EQ(reply.status, 200);
    EXPECT_THAT(reply.body, HasSubstr("\"sku\":\"SKU-3\""));
  }
  EXPECT_EQ(reply.headers.count("x-accel-expires"), 0u) << "nginx keeps it to itself";
  double not_modified = 0;
  for (const auto& replica : replicas_) {
    not_modified +=
        std::max(0.0, Metric(replica->http_port(), "http_requests_total", {"code=\"304\""}));
  }
  EXPECT_GE(not_modified, 3);
  // Calls with credentials are neither served from nor stored in the cache.
  EXPECT_EQ(
      Http(http_port_, "GET", path, "", {{"Authorization", "Bearer x"}}).headers["x-cache-status"],
      "BYPASS");

  // Writes through one replica, straight to it: nginx's answer follows within the coherence bound
  // (at most 1 s; nginx adds nothing, as it asks a replica every time).
  auto replica = v1::CatalogService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", replicas_[1]->grpc_port()), grpc::InsecureChannelCredentials()));
  std::vector<absl::Duration> staleness;
  for (int stock = 4321; stock < 4321 + 20; ++stock) {
    v1::UpdateItemRequest update;
    update.mutable_item()->set_id(3);
    update.mutable_item()->set_stock(stock);
    update.mutable_update_mask()->add_paths("stock");
    v1::Item updated;
    const absl::Time written = absl::Now();
    ASSERT_TRUE(replica->UpdateItem(Context().get(), update, &updated).ok());
    absl::Time seen = absl::InfiniteFuture();
    while (absl::Now() - written < absl::Seconds(3)) {
      reply = Http(http_port_, "GET", path);
      if (reply.body.find(absl::StrCat("\"stock\":", stock)) != std::string::npos) {
        seen = absl::Now();
        break;
      }
      absl::SleepFor(absl::Milliseconds(2));
    }
    staleness.push_back(seen - written);
    EXPECT_LE(seen - written, absl::Seconds(1)) << "stock " << stock;
    EXPECT_EQ(reply.headers["etag"], absl::StrCat("\"", updated.etag(), "\""));
  }
  std::sort(staleness.begin(), staleness.end());
  RecordProperty("staleness_through_nginx",
                 absl::StrCat("median ", absl::FormatDuration(staleness[staleness.size() / 2]),
                              ", max ", absl::FormatDuration(staleness.back())));
}

}  // namespace
}  // namespace hotpath::testing
