// Two modules on one runtime: the catalog and the library test service
// (tests/library/library_module.h) served by one hotpathd, through gRPC and the gateway, with no
// change to the runtime. Each brings its own migration, statements, cache, methods and OpenAPI
// document, and each shows in health, metrics and admission like the other.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "hotpath/library/v1/library.grpc.pb.h"
#include "tests/library/library_module.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

namespace lib = ::hotpath::library::v1;
using ::testing::HasSubstr;

class ModuleTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    module::ServiceModules modules;
    modules.push_back(std::make_unique<catalog::CatalogModule>(catalog::CatalogModuleOptions{}));
    modules.push_back(std::make_unique<library::LibraryModule>());
    ServerOptions options = Options();
    Adjust(options);
    auto server = Hotpathd::Start(std::move(options), std::move(modules));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
    library_ = lib::LibraryService::NewStub(channel_);
  }

  HttpReply Call(const std::string& method, const std::string& target,
                 const std::string& body = "") {
    return Http(server_->http_port(), method, target, body, {{"Content-Type", "application/json"}});
  }

  // What a test's server does differently.
  virtual void Adjust(ServerOptions&) {}

  std::unique_ptr<lib::LibraryService::Stub> library_;  // the second module's calls
};

class SmallMessageModuleTest : public ModuleTest {
 protected:
  void Adjust(ServerOptions& options) override { options.max_message_bytes = 64 << 10; }
};

// A module that answers more than a message may hold (here, every title at once): the runtime
// ends the call INTERNAL naming the limit, and the metrics count that, not the OK the handler
// returned (gRPC would fail it after the interceptors saw OK).
TEST_F(SmallMessageModuleTest, AnAnswerOverTheMessageLimitFailsAndIsCountedAsItFailed) {
  lib::Book book;
  book.set_shelf("shelves/1");
  book.set_title(std::string(30'000, 't'));
  lib::Book created;
  for (int i = 0; i < 3; ++i) {
    book.set_name(absl::StrCat("shelves/1/books/", i));
    ASSERT_TRUE(library_->CreateBook(Context().get(), book, &created).ok());
  }
  lib::ListTitlesResponse titles;
  const grpc::Status status =
      library_->ListTitles(Context().get(), lib::ListTitlesRequest(), &titles);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("65536"));
  const int http = server_->http_port();
  EXPECT_EQ(Metric(http, "grpc_server_handled_total",
                   {"grpc_method=\"ListTitles\"", "grpc_code=\"Internal\""}),
            1);
  EXPECT_LE(
      Metric(http, "grpc_server_handled_total", {"grpc_method=\"ListTitles\"", "grpc_code=\"OK\""}),
      0);  // none (-1: no such series)
}

TEST_F(ModuleTest, ASecondModuleServesThroughGrpcBesideTheCatalog) {
  lib::Book book;
  book.set_shelf("shelves/1");
  book.set_name("shelves/1/books/dune");
  book.set_title("Dune");
  book.set_pages(412);
  lib::Book created;
  ASSERT_TRUE(library_->CreateBook(Context().get(), book, &created).ok());
  lib::Book bad = book;
  bad.set_name("elsewhere/dune");
  grpc::Status refused = library_->CreateBook(Context().get(), bad, &created);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("<shelf>/books/<id>"));

  lib::GetBookRequest get;
  get.set_name("shelves/1/books/dune");
  for (int i = 0; i < 2; ++i) {  // the second from the module's cache
    lib::Book got;
    ASSERT_TRUE(library_->GetBook(Context().get(), get, &got).ok());
    EXPECT_EQ(got.title(), "Dune");
    EXPECT_EQ(got.pages(), 412);
  }
  get.set_name("shelves/1/books/none");
  lib::Book none;
  EXPECT_EQ(library_->GetBook(Context().get(), get, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);

  lib::ListTitlesResponse titles;
  ASSERT_TRUE(library_->ListTitles(Context().get(), lib::ListTitlesRequest(), &titles).ok());
  ASSERT_EQ(titles.titles_size(), 1);
  EXPECT_EQ(titles.titles(0).text(), "Dune");

  lib::CountTitlesRequest count;
  count.set_n(25);
  auto context = Context();
  auto reader = library_->CountTitles(context.get(), count);
  lib::Title title;
  int received = 0;
  while (reader->Read(&title)) ++received;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, 25);
  count.set_fail(true);
  auto failing_context = Context();
  auto failing = library_->CountTitles(failing_context.get(), count);
  received = 0;
  while (failing->Read(&title)) ++received;
  EXPECT_EQ(received, 25);
  EXPECT_EQ(failing->Finish().error_code(), grpc::StatusCode::ABORTED);

  // The catalog, on the same runtime, is unaffected.
  catalog::v1::CreateItemRequest create;
  *create.mutable_item() = client::DemoItem(1);
  catalog::v1::Item item;
  EXPECT_TRUE(catalog::v1::CatalogService::NewStub(channel_)
                  ->CreateItem(Context().get(), create, &item)
                  .ok());

  // Both are SERVING, each by name.
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service :
       {"hotpath.catalog.v1.CatalogService", "hotpath.library.v1.LibraryService"}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(Context().get(), request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  // Its migration is recorded beside the catalog's.
  EXPECT_EQ(database_->Query("SELECT count(*) FROM schema_migrations WHERE version IN "
                             "('0001_items', '0002_create_request_id', 'library_0001_books')"),
            "3");
}

TEST_F(ModuleTest, ASecondModuleServesThroughTheGatewayWithItsOwnOpenApiAndMetrics) {
  HttpReply created = Call("POST", "/v1/shelves/2/books",
                           R"({"name":"shelves/2/books/emma","title":"Emma","pages":300})");
  ASSERT_EQ(created.status, 200) << created.body;
  HttpReply got = Call("GET", "/v1/shelves/2/books/emma");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_THAT(got.body, HasSubstr(R"("title":"Emma")"));
  EXPECT_EQ(Call("GET", "/v1/books/shelves/2/books/emma").status, 200);  // additional binding
  EXPECT_EQ(Call("GET", "/v1/shelves/2/books/none").status, 404);
  HttpReply counted = Call("GET", "/v1/count/3");
  ASSERT_EQ(counted.status, 200) << counted.body;
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(counted.body, '\n', absl::SkipEmpty())).size(),
            3u);
  HttpReply echoed = Call("SEARCH", "/v1/echo/9", R"({"text":"hi"})");
  ASSERT_EQ(echoed.status, 200) << echoed.body;
  EXPECT_THAT(echoed.body, HasSubstr(R"("id":"9")"));
  EXPECT_THAT(echoed.body, HasSubstr(R"("text":"hi")"));
  EXPECT_EQ(Call("GET", "/v1/items/1").status, 404);  // the catalog's routes, beside

  // One document describes both services.
  HttpReply openapi = Call("GET", "/openapi.json");
  ASSERT_EQ(openapi.status, 200);
  EXPECT_THAT(openapi.body, HasSubstr("/v1/items/{id}"));
  EXPECT_THAT(openapi.body, HasSubstr("/v1/titles"));
  EXPECT_THAT(openapi.body, HasSubstr("hotpath.library.v1.Book"));

  // Its cache and its methods show in /metrics like the catalog's.
  HttpReply metrics = Call("GET", "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr(R"(hotpath_cache_hits_total{cache="books"} 1)"));
  EXPECT_THAT(metrics.body, HasSubstr(R"(hotpath_cache_entries{cache="items"})"));
  EXPECT_THAT(metrics.body,
              HasSubstr(R"(grpc_server_started_total{grpc_method="GetBook",)"
                        R"(grpc_service="hotpath.library.v1.LibraryService",grpc_type="unary"})"));
}

// A module built wrong fails the start, saying what is wrong, instead of leaving callers of an
// undeclared method waiting for their deadline.
class Incomplete final : public module::ServiceModule {
 public:
  absl::Status Start(const module::ModuleContext& context) override {
    bindings_ = rpc::ServiceBindings::For<lib::LibraryService>(context.executor);
    bindings_->Cached("Echo", this, &Incomplete::Echo, rpc::Answers::kBuilt);
    return bindings_->Check();
  }
  rpc::ServiceBindings& bindings() override { return *bindings_; }
  void Echo(const lib::EchoRequest& request, absl::Time, rpc::SharedDone<lib::EchoRequest> done) {
    done(std::make_shared<const lib::EchoRequest>(request));
  }

 private:
  std::unique_ptr<rpc::ServiceBindings> bindings_;
};

TEST_F(ModuleTest, AModuleWithAnUndeclaredMethodFailsTheStart) {
  module::ServiceModules modules;
  modules.push_back(std::make_unique<Incomplete>());
  auto server = Hotpathd::Start(Options(), std::move(modules));
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("hotpath.library.v1.LibraryService.GetBook is not declared"));
}

// The library module, noting the niceness of the threads its context's schedulers run tasks on.
class PriorityProbe final : public module::ServiceModule {
 public:
  struct Seen {
    int database = 0;  // a task on context.scheduler (the database executor)
    int reads = 0;     // a task on context.read_scheduler
  };
  explicit PriorityProbe(Seen* seen) : seen_(seen) {}

  std::vector<db::Migration> Migrations() const override { return library_.Migrations(); }
  std::vector<db::PreparedStatement> Statements() const override { return library_.Statements(); }
  absl::Status Start(const module::ModuleContext& context) override {
    seen_->database = NiceOn(context.scheduler);
    seen_->reads = NiceOn(context.read_scheduler);
    return library_.Start(context);
  }
  rpc::ServiceBindings& bindings() override { return library_.bindings(); }

 private:
  static int NiceOn(const cache::Scheduler& scheduler) {
    std::promise<int> nice;
    EXPECT_TRUE(scheduler([&nice] {
                  nice.set_value(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())));
                }).ok());
    return nice.get_future().get();
  }

  Seen* seen_;
  library::LibraryModule library_;
};

// Database work yields the cores to the threads that read and refuse calls (--worker_nice), but
// the batched reads that callers wait on run at the normal priority: a cold cache's misses under
// load wait for their batch, not for the CPU left over (bench/NOTES.md).
TEST_F(ModuleTest, BatchedReadsRunAtTheNormalPriorityWhileOtherDatabaseWorkYields) {
  PriorityProbe::Seen seen;
  module::ServiceModules modules;
  modules.push_back(std::make_unique<PriorityProbe>(&seen));
  ServerOptions options = Options();
  options.worker_nice = 10;
  auto server = Hotpathd::Start(std::move(options), std::move(modules));
  ASSERT_TRUE(server.ok()) << server.status();
  const int own = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  EXPECT_EQ(seen.reads, own);
  EXPECT_EQ(seen.database, std::min(own + 10, 19));
}

}  // namespace
}  // namespace hotpath::testing
