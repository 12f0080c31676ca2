// Who may call what, how much at once, and what malformed input gets: bearer tokens on writes
// (gRPC and the gateway alike), the in-flight cap, and protobuf bytes that do not parse.
#include <grpcpp/generic/generic_stub.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "s3cret-token-1";
constexpr char kMethodPrefix[] = "/hotpath.catalog.v1.CatalogService/";

grpc::ByteBuffer Bytes(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// One unary call with raw request bytes, as a client with a broken encoder would send.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes) {
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::CompletionQueue cq;
  grpc::ByteBuffer request = Bytes(bytes), response;
  auto call = generic.PrepareUnaryCall(&context, kMethodPrefix + method, request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, nullptr);
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  return status;
}

class SecurityTest : public ServerTest {
 protected:
  std::int64_t CountItems() const {
    return std::stoll(database_->Query("SELECT count(*) FROM items"));
  }
  std::unique_ptr<grpc::ClientContext> Authorized(const std::string& token = kToken) const {
    auto context = Context();
    context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
    return context;
  }
  grpc::Status Create(grpc::ClientContext* context, int n) {
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    v1::Item item;
    return stub_->CreateItem(context, request, &item);
  }
  grpc::Status Get(grpc::ClientContext* context, std::int64_t id) {
    v1::GetItemRequest request;
    request.set_id(id);
    v1::Item item;
    return stub_->GetItem(context, request, &item);
  }
  grpc::Status Import(grpc::ClientContext* context, int count) {
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context, &response);
    for (int n = 100; n < 100 + count; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      if (!writer->Write(request)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
};

TEST_F(SecurityTest, WritesNeedAnAcceptedTokenOverGrpcAndReadsDoNot) {
  ServerOptions options = Options();
  options.admission.tokens = {"other-token", kToken};
  StartServer(options);

  grpc::Status status = Create(Context().get(), 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("authorization: Bearer"));
  status = Create(Authorized("s3cret-token-2").get(), 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), Not(HasSubstr("s3cret")));  // tokens are never echoed
  auto lowercase = Context();
  lowercase->AddMetadata("authorization", absl::StrCat("bearer ", kToken));
  EXPECT_TRUE(Create(lowercase.get(), 1).ok());
  EXPECT_TRUE(Create(Authorized("other-token").get(), 2).ok());
  EXPECT_EQ(CountItems(), 2);

  EXPECT_TRUE(Get(Context().get(), 1).ok());  // reads stay open

  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(1);
  update.mutable_item()->set_stock(9);
  update.mutable_update_mask()->add_paths("stock");
  v1::Item item;
  EXPECT_EQ(stub_->UpdateItem(Context().get(), update, &item).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::DeleteItemRequest remove;
  remove.set_id(1);
  v1::DeleteItemResponse removed;
  EXPECT_EQ(stub_->DeleteItem(Context().get(), remove, &removed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Import(Context().get(), 50).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CountItems(), 2);
  EXPECT_EQ(database_->Query("SELECT stock FROM items WHERE id = 1"),
            std::to_string(client::DemoItem(1).stock()));

  EXPECT_TRUE(stub_->UpdateItem(Authorized().get(), update, &item).ok());
  EXPECT_TRUE(Import(Authorized().get(), 50).ok());
  EXPECT_EQ(CountItems(), 52);
}

TEST_F(SecurityTest, TheGatewayAppliesTheSameRuleWithA401) {
  ServerOptions options = Options();
  options.admission.tokens = {kToken};
  StartServer(options);
  const int port = server_->http_port();
  const std::string body = R"({"sku":"SKU-A","name":"A","category":"c","priceCents":100})";

  HttpReply reply = Http(port, "POST", "/v1/items", body, {{"Content-Type", "application/json"}});
  EXPECT_EQ(reply.status, 401);
  EXPECT_THAT(reply.headers["www-authenticate"], HasSubstr("Bearer"));
  EXPECT_THAT(reply.body, HasSubstr("\"code\":16"));
  reply = Http(port, "POST", "/v1/items", body,
               {{"Content-Type", "application/json"}, {"Authorization", "Bearer wrong"}});
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(CountItems(), 0);

  reply = Http(
      port, "POST", "/v1/items", body,
      {{"Content-Type", "application/json"}, {"Authorization", absl::StrCat("Bearer ", kToken)}});
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(CountItems(), 1);
  EXPECT_EQ(Http(port, "GET", "/v1/items/1").status, 200);
  EXPECT_EQ(Http(port, "DELETE", "/v1/items/1").status, 401);
  EXPECT_EQ(CountItems(), 1);
}

TEST_F(SecurityTest, ReadsCanRequireATokenToo) {
  ServerOptions options = Options();
  options.admission.tokens = {kToken};
  options.admission.tokens_for_reads = true;
  StartServer(options);
  ASSERT_TRUE(Create(Authorized().get(), 1).ok());
  EXPECT_EQ(Get(Context().get(), 1).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Get(Authorized().get(), 1).ok());
  EXPECT_EQ(Http(server_->http_port(), "GET", "/v1/items/1").status, 401);
  EXPECT_EQ(Http(server_->http_port(), "GET", "/v1/items/1", "",
                 {{"Authorization", absl::StrCat("Bearer ", kToken)}})
                .status,
            200);
  // The runtime's own routes stay open for probes and scrapers.
  EXPECT_EQ(Http(server_->http_port(), "GET", "/healthz").status, 200);
}

TEST_F(SecurityTest, CallsBeyondTheInFlightCapAreShedAtOnce) {
  ServerOptions options = Options();
  options.admission.max_in_flight = 1;
  StartServer(options);
  ASSERT_TRUE(Create(Context().get(), 1).ok());

  // An import stream left open holds the one slot.
  auto context = Context();
  v1::ImportItemsResponse response;
  auto writer = stub_->ImportItems(context.get(), &response);
  v1::CreateItemRequest row;
  *row.mutable_item() = client::DemoItem(2);
  ASSERT_TRUE(writer->Write(row));
  grpc::Status shed;
  for (int i = 0; i < 200; ++i) {
    shed = Get(Context().get(), 1);
    if (!shed.ok()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(shed.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(shed.error_message(), HasSubstr("in flight"));
  // It says when to ask again: a google.rpc.RetryInfo of 1 s; through the gateway, Retry-After.
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(shed.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  const HttpReply refused = Http(server_->http_port(), "GET", "/v1/items/1");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.headers.count("retry-after") ? refused.headers.at("retry-after") : "", "1");
  EXPECT_THAT(refused.body, HasSubstr("\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\""));

  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_TRUE(Get(Context().get(), 1).ok());  // the slot came back
  EXPECT_EQ(Http(server_->http_port(), "GET", "/v1/items/1").status, 200);
  EXPECT_EQ(CountItems(), 2);
}

TEST_F(SecurityTest, MalformedProtobufIsInvalidArgumentAndStoresNothing) {
  StartServer(Options());
  // Not a message at all: a truncated varint, a field with wire type 7.
  for (const std::string& bytes :
       {std::string("\x08", 1), std::string("\xff\xff\xff", 3), std::string("\x0f\x01", 2)}) {
    const grpc::Status status = RawUnary(channel_, "GetItem", bytes);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("hotpath.catalog.v1.GetItemRequest"));
  }
  // A well-formed CreateItemRequest whose name is not UTF-8.
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(1);
  request.mutable_item()->set_name("QQQQQQ");
  const std::string bad_utf8 =
      absl::StrReplaceAll(request.SerializeAsString(), {{"QQQQQQ", "\xc3\x28\xff\xfe\xa0\xa1"}});
  grpc::Status status = RawUnary(channel_, "CreateItem", bad_utf8);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(CountItems(), 0);

  // One bad message in an import stream: nothing of the stream is stored.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  RawClientStream stream(channel_, &context, absl::StrCat(kMethodPrefix, "ImportItems"));
  v1::CreateItemRequest good;
  *good.mutable_item() = client::DemoItem(2);
  stream.Write(Bytes(good.SerializeAsString()));
  stream.Write(Bytes(bad_utf8));
  grpc::ByteBuffer reply;
  status = stream.Finish(&reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("message 2"));
  EXPECT_EQ(CountItems(), 0);

  // And the server goes on serving.
  EXPECT_TRUE(Create(Context().get(), 3).ok());
  EXPECT_EQ(CountItems(), 1);
}

}  // namespace
}  // namespace hotpath::testing
