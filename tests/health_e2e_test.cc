// grpc.health.v1.Health as hotpathd serves it (server/rpc/health.h): Check for the server and each
// service, Watch streams and their end at shutdown, and no gate in front of either.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class HealthTest : public ServerTest {
 protected:
  std::unique_ptr<Health::Stub> Stub() const { return Health::NewStub(channel_); }

  grpc::Status Check(const std::string& service, HealthCheckResponse* response) const {
    HealthCheckRequest request;
    request.set_service(service);
    return Stub()->Check(Context().get(), request, response);
  }
};

TEST_F(HealthTest, ChecksTheServerAndEachServiceAndNotFoundForOthers) {
  StartServer(Options());
  HealthCheckResponse response;
  ASSERT_TRUE(Check("", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(Check("hotpath.catalog.v1.CatalogService", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  const grpc::Status unknown = Check("no.such.Service", &response);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), HasSubstr("no.such.Service"));
}

// Health is served by its own state machines (not UnaryCall's), which must still time and count
// their calls like every other (server/rpc/call_base.h CallObservation).
TEST_F(HealthTest, CheckAndWatchCarryXProcessTimeAndAreCounted) {
  StartServer(Options());
  HealthCheckRequest request;
  HealthCheckResponse response;
  {
    auto context = Context();
    ASSERT_TRUE(Stub()->Check(context.get(), request, &response).ok());
    EXPECT_EQ(context->GetServerInitialMetadata().count("x-process-time"), 1u);
    EXPECT_EQ(context->GetServerTrailingMetadata().count("x-process-time"), 1u);
  }
  {
    auto context = Context();
    auto watch = Stub()->Watch(context.get(), request);
    ASSERT_TRUE(watch->Read(&response));
    EXPECT_EQ(context->GetServerInitialMetadata().count("x-process-time"), 1u);
    context->TryCancel();
    watch->Finish();
  }
  const int http = server_->http_port();
  EXPECT_EQ(
      Metric(http, "grpc_server_handled_total", {"grpc_method=\"Check\"", "grpc_code=\"OK\""}), 1);
  EXPECT_EQ(Metric(http, "grpc_server_started_total", {"grpc_method=\"Watch\""}), 1);
  EXPECT_EQ(Metric(http, "grpc_server_msg_received_total", {"grpc_method=\"Watch\""}), 1);
  EXPECT_GE(Metric(http, "grpc_server_msg_sent_total", {"grpc_method=\"Watch\""}), 1);
}

TEST_F(HealthTest, ProbesNeedNoTokenEvenWhenReadsDo) {
  ServerOptions options = Options();
  options.admission.tokens = {"a-token-probes-do-not-have"};
  options.admission.tokens_for_reads = true;
  StartServer(options);
  HealthCheckResponse response;
  ASSERT_TRUE(Check("", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  v1::GetItemRequest get;
  get.set_id(1);
  v1::Item item;
  EXPECT_EQ(stub_->GetItem(Context().get(), get, &item).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);  // the gate is there for the catalog
}

TEST_F(HealthTest, MalformedRequestIsInvalidArgument) {
  StartServer(Options());
  grpc::GenericStub generic(channel_);
  const std::string garbage = "\x0a\xff\xff";  // field 1, length beyond the message
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::ClientContext context;
  std::promise<grpc::Status> done;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&done](grpc::Status status) { done.set_value(status); });
  EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(HealthTest, WatchSendsTheStatusThenItsChangesAndEndsAtShutdownWithoutHoldingIt) {
  ServerOptions options = Options();
  options.drain_delay = absl::Milliseconds(300);  // NOT_SERVING is visible before calls stop
  StartServer(options);
  auto stub = Stub();
  grpc::ClientContext context;
  HealthCheckRequest request;
  auto reader = stub->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(30)); });
  // EXPECT, not ASSERT, until stopper is joined: returning early would leave it joinable, and the
  // process would abort instead of reporting the failure.
  EXPECT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&response));
  const grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  stopper.join();
  // Far less than the 30 s grace: an open watch does not hold the shutdown.
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST_F(HealthTest, WatchOfAnUnknownServiceSaysSoAndWatchersMayComeAndGo) {
  StartServer(Options());
  auto stub = Stub();
  {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service("no.such.Service");
    auto reader = stub->Watch(&context, request);
    HealthCheckResponse response;
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVICE_UNKNOWN);
    context.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // Many watchers at once, half cancelled at once, the rest left open when the server stops: every
  // stream ends, nothing is leaked or touched after it is gone (the sanitizer builds check that).
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<HealthCheckResponse>>> readers;
  for (int i = 0; i < 40; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    HealthCheckRequest request;
    request.set_service(i % 2 == 0 ? "" : "hotpath.catalog.v1.CatalogService");
    readers.push_back(stub->Watch(contexts.back().get(), request));
    if (i % 2 == 1) contexts.back()->TryCancel();
  }
  HealthCheckResponse response;
  ASSERT_TRUE(Check("", &response).ok());  // still serving
  for (int i = 0; i < 40; i += 2) {
    ASSERT_TRUE(readers[i]->Read(&response));
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
  server_->Shutdown(absl::Seconds(30));
  for (auto& reader : readers) {
    while (reader->Read(&response)) {
    }
    EXPECT_NE(reader->Finish().error_code(), grpc::StatusCode::OK);
  }
}

}  // namespace
}  // namespace hotpath::testing
