// The gateway in front of a second, unrelated service
// (tests/proto/hotpath/library/v1/library.proto): every template form, body "*", response_body,
// additional bindings and custom kinds, with no change to the gateway.
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gateway/gateway.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hotpath/library/v1/library.grpc.pb.h"
#include "server/http/http_server.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

namespace lib = ::hotpath::library::v1;
using ::testing::HasSubstr;

// Answers with what it was asked, so the test sees what the gateway built.
class Library final : public lib::LibraryService::Service {
  grpc::Status GetBook(grpc::ServerContext* context, const lib::GetBookRequest* request,
                       lib::Book* book) override {
    if (request->name() == "shelves/1/books/missing") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such book");
    }
    book->set_name(request->name());
    auto it = context->client_metadata().find("tenant");
    if (it != context->client_metadata().end())
      book->set_title(std::string(it->second.data(), it->second.size()));
    it = context->client_metadata().find("authorization");
    if (it != context->client_metadata().end())
      book->add_authors(std::string(it->second.data(), it->second.size()));
    context->AddInitialMetadata("x-shelf-checked", "yes");
    context->AddTrailingMetadata("x-audit", "logged");
    return grpc::Status::OK;
  }
  grpc::Status CreateBook(grpc::ServerContext*, const lib::Book* request,
                          lib::Book* book) override {
    *book = *request;
    return grpc::Status::OK;
  }
  grpc::Status ListTitles(grpc::ServerContext*, const lib::ListTitlesRequest* request,
                          lib::ListTitlesResponse* response) override {
    for (const auto& author : request->authors()) response->add_titles()->set_text("by " + author);
    response->add_titles()->set_text(absl::StrCat("since ", request->since().seconds(), " asc ",
                                                  request->ascending(), " kind ", request->kind()));
    return grpc::Status::OK;
  }
  grpc::Status CountTitles(grpc::ServerContext*, const lib::CountTitlesRequest* request,
                           grpc::ServerWriter<lib::Title>* writer) override {
    for (int i = 0; i < request->n(); ++i) {
      lib::Title title;
      title.set_text(absl::StrCat("title ", i));
      writer->Write(title);
    }
    if (request->fail()) return grpc::Status(grpc::StatusCode::ABORTED, "ran out of titles");
    return grpc::Status::OK;
  }
  grpc::Status Echo(grpc::ServerContext*, const lib::EchoRequest* request,
                    lib::EchoRequest* reply) override {
    *reply = *request;
    return grpc::Status::OK;
  }
};

class GenericGatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&library_);
    server_ = builder.BuildAndStart();
    auto gateway = gateway::Gateway::Create(
        {lib::GetBookRequest::descriptor()
             ->file()
             ->FindServiceByName("LibraryService")
             ->full_name()},
        std::make_unique<gateway::Dispatcher>(server_->InProcessChannel(grpc::ChannelArguments())),
        gateway::GatewayOptions());
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    http::HttpServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    http_ = std::make_unique<http::HttpServer>(
        options, [this](const http::Request& request, http::Responder respond) {
          std::string route;
          if (!gateway_->Handle(request, respond, &route)) {
            respond(http::JsonError(request, boost::beast::http::status::not_found, 5, "no route"));
          }
        });
    ASSERT_TRUE(http_->Start().ok());
  }
  void TearDown() override {
    http_->Stop();
    server_->Shutdown();
    // The gateway's pending calls may hold HTTP sessions: release them while the HTTP server's
    // event loop still exists (ThreadSanitizer caught a session outliving it).
    gateway_.reset();
    http_.reset();
  }

  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 std::vector<std::pair<std::string, std::string>> headers = {
                     {"Content-Type", "application/json"}}) {
    return Http(http_->port(), method, target, body, headers);
  }

  Library library_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<http::HttpServer> http_;
};

TEST_F(GenericGatewayTest, MultiSegmentCaptureAndAdditionalBinding) {
  HttpReply book = Call("GET", "/v1/shelves/7/books/b%2F1", "",
                        {{"Grpc-Metadata-Tenant", "acme"}, {"Authorization", "Bearer t0k"}});
  ASSERT_EQ(book.status, 200) << book.body;
  EXPECT_THAT(book.body, HasSubstr(R"("name":"shelves/7/books/b/1")"));
  EXPECT_THAT(book.body, HasSubstr(R"("title":"acme")"));  // Grpc-Metadata-* reached the service
  EXPECT_THAT(book.body, HasSubstr(R"("authors":["Bearer t0k"])"));  // and Authorization
  EXPECT_EQ(book.headers["grpc-metadata-x-shelf-checked"], "yes");   // and back
  EXPECT_EQ(book.headers["grpc-trailer-x-audit"], "logged");
  HttpReply rest = Call("GET", "/v1/books/a/b/c");
  ASSERT_EQ(rest.status, 200) << rest.body;
  EXPECT_THAT(rest.body, HasSubstr(R"("name":"a/b/c")"));
  EXPECT_EQ(Call("GET", "/v1/shelves/1/books/missing").status, 404);
  EXPECT_EQ(Call("GET", "/v1/shelves/7").status, 404);
}

TEST_F(GenericGatewayTest, WholeBodyWithCapture) {
  HttpReply created = Call(
      "POST", "/v1/shelves/3/books",
      R"({"title":"Dune","pages":412,"authors":["Herbert"],"published":"1965-08-01T00:00:00Z","shelf":"ignored"})");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_THAT(created.body, HasSubstr(R"("shelf":"shelves/3")"));  // the path wins
  EXPECT_THAT(created.body, HasSubstr(R"("published":"1965-08-01T00:00:00Z")"));
  EXPECT_EQ(Call("POST", "/v1/shelves/3/books?title=x", "{}").status, 400);  // body "*": no query
}

TEST_F(GenericGatewayTest, ResponseBodyAndWellKnownQueryTypes) {
  HttpReply titles = Call(
      "GET",
      "/v1/titles?authors=ann&authors=bob&since=1970-01-02T00:00:00Z&ascending=true&kind=POEM");
  ASSERT_EQ(titles.status, 200) << titles.body;
  EXPECT_EQ(titles.body.front(), '[');  // response_body: the titles alone
  EXPECT_THAT(titles.body, HasSubstr(R"({"text":"by ann"})"));
  EXPECT_THAT(titles.body, HasSubstr(R"({"text":"since 86400 asc 1 kind 2"})"));
  EXPECT_EQ(Call("GET", "/v1/titles?kind=SONNET").status, 400);
  EXPECT_EQ(Call("GET", "/v1/titles?since=yesterday").status, 400);
}

TEST_F(GenericGatewayTest, StreamErrorsMidwayEndWithAnErrorLine) {
  HttpReply ok = Call("GET", "/v1/count/3");
  ASSERT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body,
            "{\"result\":{\"text\":\"title 0\"}}\n{\"result\":{\"text\":\"title 1\"}}\n"
            "{\"result\":{\"text\":\"title 2\"}}\n");
  HttpReply failed = Call("GET", "/v1/count/2?fail=true");
  ASSERT_EQ(failed.status, 200);  // the status line went out with the first item
  EXPECT_THAT(failed.body,
              ::testing::EndsWith(
                  "{\"error\":{\"code\":10,\"message\":\"ran out of titles\",\"details\":[]}}\n"));
  HttpReply at_once = Call("GET", "/v1/count/0?fail=true");
  EXPECT_EQ(at_once.status, 409);  // failed before any item: a plain error answer
}

TEST_F(GenericGatewayTest, CustomKindNestedCaptureAndBodyField) {
  HttpReply echo =
      Call("SEARCH", "/v1/echo/42?nested.note=hi&mask=nested.id,payload", R"({"text":"hello"})");
  ASSERT_EQ(echo.status, 200) << echo.body;
  EXPECT_THAT(echo.body, HasSubstr(R"("nested":{"id":"42","note":"hi"})"));
  EXPECT_THAT(echo.body, HasSubstr(R"("payload":{"text":"hello"})"));
  EXPECT_THAT(echo.body, HasSubstr(R"("mask":"nested.id,payload")"));
  EXPECT_EQ(Call("GET", "/v1/echo/42").status, 405);
  EXPECT_EQ(Call("GET", "/v1/echo/42").headers["allow"], "SEARCH");
}

}  // namespace
}  // namespace hotpath::testing
