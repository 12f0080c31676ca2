// The runtime around the catalog, end to end: x-process-time on every RPC, gzip by size and by what
// the client accepts, exact metric movements on /metrics (checked by promtool), the read-through
// cache, and the HTTP endpoints of the runtime.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <regex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

HttpReply HttpCall(int port, bhttp::verb method, const std::string& target) {
  return Http(port, std::string(bhttp::to_string(method)), target);
}

// The value of one series in a /metrics text ("name{labels}" exactly as exposed), or -1.
double Sample(const std::string& text, const std::string& series) {
  const std::size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  const std::size_t start = at + series.size() + 2;
  double value = -1;
  (void)absl::SimpleAtod(text.substr(start, text.find('\n', start) - start), &value);
  return value;
}

// Labels as exposed: sorted by name, grpc_code (when given) first.
std::string Labels(const char* type, const char* method, const char* code = nullptr) {
  return absl::StrCat(
      code == nullptr ? "" : absl::StrCat("grpc_code=\"", code, "\","), "grpc_method=\"", method,
      "\",grpc_service=\"hotpath.catalog.v1.CatalogService\",grpc_type=\"", type, "\"");
}

class ObservabilityTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
  }
  std::string Metrics() {
    return HttpCall(server_->http_port(), bhttp::verb::get, "/metrics").body;
  }

  std::multimap<grpc::string_ref, grpc::string_ref> last_initial_, last_trailing_;
};

// x-process-time as a non-negative number of seconds in metadata map m.
bool HasProcessTime(const std::multimap<grpc::string_ref, grpc::string_ref>& m) {
  auto it = m.find("x-process-time");
  if (it == m.end()) return false;
  double seconds = -1;
  return absl::SimpleAtod(std::string(it->second.data(), it->second.size()), &seconds) &&
         seconds >= 0 && seconds < 60;
}

TEST_F(ObservabilityTest, EveryRpcCarriesXProcessTime) {
  const v1::Item item = CreateDemo(1);
  auto check = [](grpc::ClientContext& context, const char* what) {
    EXPECT_TRUE(HasProcessTime(context.GetServerTrailingMetadata())) << what << " trailers";
    EXPECT_TRUE(HasProcessTime(context.GetServerInitialMetadata())) << what << " headers";
  };
  {
    v1::GetItemRequest request;
    request.set_id(item.id());
    v1::Item response;
    auto context = Context();
    ASSERT_TRUE(stub_->GetItem(context.get(), request, &response).ok());
    check(*context, "GetItem");
  }
  {
    v1::GetItemRequest request;
    request.set_id(424242);
    v1::Item response;
    auto context = Context();
    EXPECT_EQ(stub_->GetItem(context.get(), request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
    check(*context, "GetItem NOT_FOUND");
  }
  {
    v1::CreateItemRequest request;  // invalid
    v1::Item response;
    auto context = Context();
    EXPECT_EQ(stub_->CreateItem(context.get(), request, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    check(*context, "CreateItem INVALID_ARGUMENT");
  }
  {
    auto context = Context();
    auto reader = stub_->ExportItems(context.get(), v1::ExportItemsRequest());
    v1::Item read;
    while (reader->Read(&read)) {
    }
    ASSERT_TRUE(reader->Finish().ok());
    check(*context, "ExportItems");
  }
  {
    auto context = Context();
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(2);
    writer->Write(request);
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    check(*context, "ImportItems");
  }
}

// --access_log: one JSON line per call on stderr, from a gRPC server interceptor, beside the
// runtime's own timing and metrics (server/rpc/call_observer.h), which it leaves as they are.
TEST_F(ServerTest, TheAccessLogWritesALinePerCallBesideTheRuntimesTiming) {
  ServerOptions options = Options();
  options.access_log = true;
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  v1::GetItemRequest request;
  request.set_id(item.id());
  v1::Item response;
  auto context = Context();
  ::testing::internal::CaptureStderr();
  const grpc::Status found = stub_->GetItem(context.get(), request, &response);
  request.set_id(424242);
  const grpc::Status missing = stub_->GetItem(Context().get(), request, &response);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(found.ok()) << found.error_message();
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(log,
              ::testing::HasSubstr(R"("method":"/hotpath.catalog.v1.CatalogService/GetItem")"));
  EXPECT_THAT(log, ::testing::HasSubstr(R"("code":"OK")"));
  EXPECT_THAT(log, ::testing::HasSubstr(R"("code":"NotFound")"));
  // The client's address, though hotpathd accepts connections itself (gRPC calls them "fd:N").
  EXPECT_THAT(log, ::testing::ContainsRegex(R"re("peer":"ipv4:127\.0\.0\.1:[0-9]+")re"));
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("request_id")));
  // Behind a proxy (deploy/nginx passes both on): the request id and the client's address, cut
  // at 256 bytes, anything but printable ASCII a '?'.
  ::testing::internal::CaptureStderr();
  auto proxied = Context();
  proxied->AddMetadata("x-request-id", "req-42");
  proxied->AddMetadata("x-forwarded-for", "203.0.113.7, 10.0.0.2");
  request.set_id(item.id());
  EXPECT_TRUE(stub_->GetItem(proxied.get(), request, &response).ok());
  auto hostile = Context();
  hostile->AddMetadata("x-request-id", std::string(10000, 'r'));
  EXPECT_TRUE(stub_->GetItem(hostile.get(), request, &response).ok());
  const std::string proxied_log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(proxied_log, ::testing::HasSubstr(
                               R"("request_id":"req-42","forwarded_for":"203.0.113.7, 10.0.0.2")"));
  EXPECT_THAT(proxied_log,
              ::testing::HasSubstr(absl::StrCat(R"("request_id":")", std::string(256, 'r'), "\"")));
  EXPECT_LT(proxied_log.size(), 1500u);
  EXPECT_TRUE(HasProcessTime(context->GetServerInitialMetadata()));
  EXPECT_TRUE(HasProcessTime(context->GetServerTrailingMetadata()));
  EXPECT_EQ(Metric(server_->http_port(), "grpc_server_handled_total",
                   {"grpc_method=\"GetItem\"", "grpc_code=\"NotFound\""}),
            1);
}

// --access_log writes a line for every HTTP request too: before, the REST calls the embedded
// gateway answers in process (every one but exports) reached no line, only the HTTP metrics.
TEST_F(ServerTest, TheAccessLogWritesALinePerHttpRequest) {
  ServerOptions options = Options();
  options.access_log = true;
  StartServer(options);
  const v1::Item item = CreateDemo(1);
  const std::string target = absl::StrCat("/v1/items/", item.id());
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Http(server_->http_port(), "GET", target, "",
                 {{"X-Request-Id", "rest-1"}, {"X-Forwarded-For", "203.0.113.9"}})
                .status,
            200);
  EXPECT_EQ(Http(server_->http_port(), "GET", "/v1/items/424242").status, 404);
  EXPECT_EQ(Http(server_->http_port(), "DELETE", "/nowhere").status, 404);
  // A client's values are cut at 256 bytes, anything but printable ASCII a '?'.
  EXPECT_EQ(Http(server_->http_port(), "GET", absl::StrCat(target, "?x=", std::string(5000, 't')),
                 "", {{"X-Request-Id", std::string(10000, 'r')}, {"X-Forwarded-For", "\xc3\xa9"}})
                .status,
            200);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, ::testing::ContainsRegex(absl::StrCat(
                       R"re(\{"time":"[0-9T:.+-]+","http_method":"GET","target":")re", target,
                       R"re(","request_id":"rest-1","forwarded_for":"203\.0\.113\.9",)re",
                       R"re("route":"/v1/items/\{id\}","peer":"127\.0\.0\.1","status":200,)re",
                       R"re("duration_seconds":[0-9.e-]+\})re")));
  EXPECT_THAT(
      log,
      ::testing::HasSubstr(
          R"("target":"/v1/items/424242","route":"/v1/items/{id}","peer":"127.0.0.1","status":404)"));
  EXPECT_THAT(log, ::testing::HasSubstr(
                       R"("http_method":"DELETE","target":"/nowhere","route":"unmatched")"));
  EXPECT_THAT(log, ::testing::HasSubstr(absl::StrCat(
                       R"("target":")", (target + "?x=" + std::string(5000, 't')).substr(0, 256),
                       R"(","request_id":")", std::string(256, 'r'), R"(","forwarded_for":"??")")));
  EXPECT_LT(log.size(), 3000u);
}

// The response headers of one gRPC call made by nghttp (a plain HTTP/2 client, so the
// grpc-encoding header is visible: gRPC libraries consume it), with the given accept-encoding.
std::string RawGrpcHeaders(int port, const std::string& method,
                           const google::protobuf::Message& request,
                           const std::string& accept_encoding) {
  const std::string body = request.SerializeAsString();
  std::string frame(5, '\0');
  frame[1] = static_cast<char>(body.size() >> 24);
  frame[2] = static_cast<char>(body.size() >> 16);
  frame[3] = static_cast<char>(body.size() >> 8);
  frame[4] = static_cast<char>(body.size());
  // Of this process and call: tests of this binary run in parallel processes.
  static std::atomic<int> calls{0};
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/hotpath_grpc_request.", getpid(), ".", calls++, ".bin");
  std::ofstream(path, std::ios::binary) << frame << body;
  std::string headers = RunCommand(
      absl::StrCat("nghttp -v -H ':method: POST' -H 'content-type: application/grpc' ",
                   "-H 'te: trailers' -H 'grpc-accept-encoding: ", accept_encoding, "' -d ", path,
                   " http://127.0.0.1:", port, "/hotpath.catalog.v1.CatalogService/", method,
                   " | grep -a -E 'recv \\(stream_id=[0-9]+\\) [a-z:-]+:'"));
  std::remove(path.c_str());
  return headers;
}

TEST_F(ObservabilityTest, LargeResponsesAreGzipForClientsThatAcceptIt) {
  {
    auto context = Context();
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    for (int n = 1; n <= 60; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      writer->Write(request);
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  v1::ListItemsRequest list;
  list.set_page_size(50);  // ~12 KB of items
  const int port = server_->grpc_port();

  const std::string gzip = RawGrpcHeaders(port, "ListItems", list, "identity,gzip");
  EXPECT_THAT(gzip, ::testing::HasSubstr("grpc-encoding: gzip")) << gzip;
  EXPECT_THAT(gzip, ::testing::HasSubstr("grpc-status: 0"));
  const std::string plain = RawGrpcHeaders(port, "ListItems", list, "identity");
  EXPECT_THAT(plain, ::testing::Not(::testing::HasSubstr("grpc-encoding: gzip"))) << plain;
  EXPECT_THAT(plain, ::testing::HasSubstr("grpc-status: 0"));

  v1::GetItemRequest get;  // ~250 bytes: never compressed
  get.set_id(1);
  const std::string small = RawGrpcHeaders(port, "GetItem", get, "identity,gzip");
  EXPECT_THAT(small, ::testing::Not(::testing::HasSubstr("grpc-encoding: gzip"))) << small;
  EXPECT_THAT(small, ::testing::HasSubstr("grpc-status: 0"));

  // gRPC clients of both kinds read the same 50 items.
  v1::ListItemsResponse listed;
  ASSERT_TRUE(stub_->ListItems(Context().get(), list, &listed).ok());
  EXPECT_EQ(listed.items_size(), 50);
  grpc::ChannelArguments identity_only;
  identity_only.SetInt(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1 << GRPC_COMPRESS_NONE);
  auto plain_stub = v1::CatalogService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), identity_only));
  ASSERT_TRUE(plain_stub->ListItems(Context().get(), list, &listed).ok());
  EXPECT_EQ(listed.items_size(), 50);
}

TEST_F(ObservabilityTest, StreamsCompressBigMessagesOnly) {
  v1::CreateItemRequest create;
  *create.mutable_item() = client::DemoItem(1);
  create.mutable_item()->set_description(std::string(3000, 'x'));  // one big item among small ones
  v1::Item big;
  ASSERT_TRUE(stub_->CreateItem(Context().get(), create, &big).ok());
  CreateDemo(2);
  // nghttp shows each DATA frame; a compressed gRPC message has flag byte 1. Count via the C++
  // client instead: both kinds of client read every message intact.
  grpc::ChannelArguments identity_only;
  identity_only.SetInt(GRPC_COMPRESSION_CHANNEL_ENABLED_ALGORITHMS_BITSET, 1 << GRPC_COMPRESS_NONE);
  for (auto channel :
       {channel_, grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                            grpc::InsecureChannelCredentials(), identity_only)}) {
    auto stub = v1::CatalogService::NewStub(channel);
    auto context = Context();
    auto reader = stub->ExportItems(context.get(), v1::ExportItemsRequest());
    std::vector<v1::Item> items;
    v1::Item item;
    while (reader->Read(&item)) items.push_back(item);
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].description().size(), 3000u);
  }
  v1::ExportItemsRequest request;
  const std::string headers =
      RawGrpcHeaders(server_->grpc_port(), "ExportItems", request, "identity,gzip");
  EXPECT_THAT(headers, ::testing::HasSubstr("grpc-encoding: gzip")) << headers;
}

TEST_F(ObservabilityTest, MetricsMoveByExactlyTheCallsMade) {
  const v1::Item item = CreateDemo(1);
  const std::string before = Metrics();
  ASSERT_NE(Sample(before, "grpc_server_started_total{" + Labels("unary", "GetItem") + "}"), -1)
      << before;
  const std::string ok = Labels("unary", "GetItem", "OK");
  const std::string not_found = Labels("unary", "GetItem", "NotFound");
  // Every method's series exist at zero before any call.
  EXPECT_EQ(
      Sample(before, "grpc_server_started_total{" + Labels("server_stream", "ExportItems") + "}"),
      0);
  EXPECT_EQ(Sample(before, "grpc_server_handled_total{" +
                               Labels("unary", "SearchItems", "Unavailable") + "}"),
            0);

  for (int i = 0; i < 7; ++i) {
    v1::GetItemRequest request;
    request.set_id(i < 5 ? item.id() : 999999);
    v1::Item response;
    stub_->GetItem(Context().get(), request, &response);
  }
  {
    auto context = Context();
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    for (int n = 10; n < 13; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      writer->Write(request);
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }
  const std::string after = Metrics();
  auto delta = [&](const std::string& series) {
    return Sample(after, series) - Sample(before, series);
  };
  EXPECT_EQ(delta("grpc_server_started_total{" + Labels("unary", "GetItem") + "}"), 7);
  EXPECT_EQ(delta("grpc_server_handled_total{" + ok + "}"), 5);
  EXPECT_EQ(delta("grpc_server_handled_total{" + not_found + "}"), 2);
  EXPECT_EQ(delta("grpc_server_msg_received_total{" + Labels("unary", "GetItem") + "}"), 7);
  EXPECT_EQ(delta("grpc_server_msg_sent_total{" + Labels("unary", "GetItem") + "}"), 5);
  EXPECT_EQ(delta("grpc_server_handling_seconds_count{" + Labels("unary", "GetItem") + "}"), 7);
  EXPECT_EQ(delta("grpc_server_msg_received_total{" + Labels("client_stream", "ImportItems") + "}"),
            3);
  EXPECT_EQ(delta("grpc_server_msg_sent_total{" + Labels("client_stream", "ImportItems") + "}"), 1);
  EXPECT_EQ(
      delta("grpc_server_handled_total{" + Labels("client_stream", "ImportItems", "OK") + "}"), 1);
  // The item cache: one load, four hits; the two NOT_FOUNDs: one load, one negative hit.
  EXPECT_EQ(delta("hotpath_cache_hits_total{cache=\"items\"}"), 5);
  EXPECT_EQ(delta("hotpath_cache_loads_total{cache=\"items\"}"), 2);
  EXPECT_GT(Sample(after, "hotpath_db_pool_max_connections"), 0);
  EXPECT_GT(Sample(after, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(Sample(after, "process_open_fds"), 3);
}

TEST_F(ObservabilityTest, PromtoolFindsNothingToReport) {
  CreateDemo(1);
  const std::string path = ::testing::TempDir() + "/hotpath_metrics.txt";
  {
    std::ofstream out(path);
    out << Metrics();
  }
  int rc = -1;
  const std::string output = RunCommand("promtool check metrics < " + path, &rc);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "");
}

TEST_F(ObservabilityTest, ConcurrentColdReadsCauseOneDatabaseRead) {
  const v1::Item item = CreateDemo(1);  // the create invalidated the id: the cache is cold
  const auto before = catalog_->service().item_cache()->stats();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&] {
      v1::GetItemRequest request;
      request.set_id(item.id());
      v1::Item response;
      if (stub_->GetItem(Context().get(), request, &response).ok() && response.sku() == item.sku())
        ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(catalog_->service().item_cache()->stats().loads - before.loads, 1);
}

TEST_F(ObservabilityTest, AnUpdateIsVisibleToTheNextRead) {
  const v1::Item item = CreateDemo(1);
  v1::GetItemRequest get;
  get.set_id(item.id());
  v1::Item read;
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());  // now cached
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(item.id());
  update.mutable_item()->set_name("Renamed");
  v1::Item updated;
  ASSERT_TRUE(stub_->UpdateItem(Context().get(), update, &updated).ok());
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  EXPECT_EQ(read.name(), "Renamed");
  EXPECT_EQ(read.etag(), updated.etag());

  v1::DeleteItemRequest del;
  del.set_id(item.id());
  v1::DeleteItemResponse deleted;
  ASSERT_TRUE(stub_->DeleteItem(Context().get(), del, &deleted).ok());
  EXPECT_EQ(stub_->GetItem(Context().get(), get, &read).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::BatchGetItemsRequest batch;  // the batch path sees the delete too
  batch.add_ids(item.id());
  v1::BatchGetItemsResponse batched;
  EXPECT_EQ(stub_->BatchGetItems(Context().get(), batch, &batched).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// An item read all through its TTL never expires under its readers: by default, once past 3/4 of
// its TTL a read is still a hit and reloads the item in the background. With refresh off, each
// expiry costs a read that waits for the database (what the first half checks the counters can
// see).
TEST_F(ObservabilityTest, AnItemInUseIsReloadedBeforeItExpiresAndNoReadWaitsForIt) {
  const v1::Item item = CreateDemo(1);
  // A TTL of 2 s and reads every 10 ms for two TTLs and a half after the first: with refresh-ahead
  // off the item expires at least twice under its readers; with the default (reloaded from 0.75 of
  // the TTL, spread over its last quarter: 1.125-1.5 s) it never does, with half a second to spare
  // for a slow reload on a loaded machine.
  const auto read_for_two_ttls = [&](double refresh_at) {
    server_.reset();
    ServerOptions options = Options();
    options.catalog.cache.items.ttl = absl::Seconds(2);
    if (refresh_at >= 0) options.catalog.cache.item_refresh_at = refresh_at;
    StartServer(options);
    v1::GetItemRequest get;
    get.set_id(item.id());
    const std::string path = absl::StrCat("/v1/items/", item.id());
    const auto read = [&] {
      v1::Item answer;
      EXPECT_TRUE(stub_->GetItem(Context().get(), get, &answer).ok());
      EXPECT_EQ(answer.sku(), item.sku());
      EXPECT_EQ(HttpCall(server_->http_port(), bhttp::verb::get, path).status, 200);
    };
    read();  // the first: a miss that loads the item
    for (const absl::Time end = absl::Now() + absl::Milliseconds(4500); absl::Now() < end;) {
      absl::SleepFor(absl::Milliseconds(10));
      read();
    }
    return catalog_->service().item_cache()->stats();
  };
  const cache::CacheStats expiring = read_for_two_ttls(0);  // refresh off
  EXPECT_GE(expiring.misses, 1 + 2);  // the first read and one after each expiry (2 s, 4 s)
  const cache::CacheStats refreshed = read_for_two_ttls(-1);  // the default
  EXPECT_EQ(refreshed.misses, 1);                             // the first read only
  EXPECT_GE(refreshed.loads, 1 + 2);  // reloaded at least every 1.5 s after it
}

// List pages are cached by request, and every kind of write through the service clears them.
TEST_F(ObservabilityTest, ListPagesAreCachedAndEveryWriteIsVisibleToTheNextList) {
  auto* lists = catalog_->service().list_cache();
  ASSERT_NE(lists, nullptr);
  const v1::Item first = CreateDemo(1);
  auto list = [&](const std::string& category) {
    v1::ListItemsRequest request;
    request.set_category(category);
    v1::ListItemsResponse response;
    EXPECT_TRUE(stub_->ListItems(Context().get(), request, &response).ok());
    std::vector<std::string> names;
    for (const auto& item : response.items()) names.push_back(item.name());
    return names;
  };
  const auto before = lists->stats();
  const std::vector<std::string> page = list(first.category());
  EXPECT_EQ(list(first.category()), page);
  EXPECT_EQ(lists->stats().loads - before.loads, 1);  // the second came from the cache
  EXPECT_EQ(lists->stats().hits - before.hits, 1);
  list("no-such-category");  // another filter, another page
  EXPECT_EQ(lists->stats().loads - before.loads, 2);

  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(first.id());
  update.mutable_item()->set_name("Renamed for the list");
  v1::Item updated;
  ASSERT_TRUE(stub_->UpdateItem(Context().get(), update, &updated).ok());
  EXPECT_THAT(list(first.category()), ::testing::Contains("Renamed for the list"));

  const v1::Item second = CreateDemo(2);
  v1::ListItemsRequest all;
  all.set_page_size(1000);
  v1::ListItemsResponse listed;
  ASSERT_TRUE(stub_->ListItems(Context().get(), all, &listed).ok());
  auto has = [&](std::int64_t id) {
    return std::any_of(listed.items().begin(), listed.items().end(),
                       [id](const v1::Item& item) { return item.id() == id; });
  };
  EXPECT_TRUE(has(second.id()));

  v1::DeleteItemRequest del;
  del.set_id(second.id());
  v1::DeleteItemResponse deleted;
  ASSERT_TRUE(stub_->DeleteItem(Context().get(), del, &deleted).ok());
  ASSERT_TRUE(stub_->ListItems(Context().get(), all, &listed).ok());
  EXPECT_FALSE(has(second.id()));
}

TEST_F(ObservabilityTest, CacheOffSendsEveryReadToTheDatabase) {
  server_.reset();
  ServerOptions options = Options();
  options.catalog.cache.enabled = false;
  StartServer(options);
  EXPECT_EQ(catalog_->service().item_cache(), nullptr);
  const v1::Item item = CreateDemo(1);
  v1::GetItemRequest get;
  get.set_id(item.id());
  v1::Item read;
  EXPECT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  v1::GetCategoryStatsRequest stats;
  stats.set_category(item.category());
  v1::CategoryStats got;
  EXPECT_TRUE(stub_->GetCategoryStats(Context().get(), stats, &got).ok());
  EXPECT_EQ(got.item_count(), 1);
}

// A page larger than max_list_page_bytes is answered but not kept.
TEST_F(ObservabilityTest, ListPagesTooLargeToKeepAreReadEachTime) {
  server_.reset();
  ServerOptions options = Options();
  options.catalog.cache.max_list_page_bytes = 200;
  StartServer(options);
  for (int i = 1; i <= 3; ++i) CreateDemo(i);  // three items: well over 200 bytes
  auto* lists = catalog_->service().list_cache();
  const auto before = lists->stats();
  for (int i = 0; i < 2; ++i) {
    v1::ListItemsResponse response;
    ASSERT_TRUE(stub_->ListItems(Context().get(), v1::ListItemsRequest(), &response).ok());
    EXPECT_EQ(response.items_size(), 3);
  }
  EXPECT_EQ(lists->stats().loads - before.loads, 2);
  EXPECT_EQ(lists->stats().size, 0);
}

// With the cache off, concurrent reads share queries, and each still gets its own item or NOT_FOUND
// and sees writes made before it was asked.
TEST_F(ObservabilityTest, CacheOffReadsAreBatchedAndEachGetsItsOwnAnswer) {
  server_.reset();
  ServerOptions options = Options();
  options.catalog.cache.enabled = false;
  options.catalog.cache.item_reads.max_in_flight = 1;
  StartServer(options);
  auto* reads = catalog_->service().item_reads();
  ASSERT_NE(reads, nullptr);
  std::vector<v1::Item> items;
  for (int i = 1; i <= 20; ++i) items.push_back(CreateDemo(i));
  const std::int64_t before = reads->loads();
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::size_t k = static_cast<std::size_t>(t * 50 + i) % (items.size() + 1);
        v1::GetItemRequest get;
        get.set_id(k < items.size() ? items[k].id() : items.back().id() + 1000);  // one missing
        v1::Item read;
        const grpc::Status status = stub_->GetItem(Context().get(), get, &read);
        if (k < items.size() ? status.ok() && read.sku() == items[k].sku()
                             : status.error_code() == grpc::StatusCode::NOT_FOUND) {
          ++right;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), 400);
  EXPECT_LT(reads->loads() - before, 400);  // shared queries

  v1::UpdateItemRequest update;
  update.mutable_item()->set_id(items[0].id());
  update.mutable_item()->set_name("Renamed while batched");
  v1::Item updated;
  ASSERT_TRUE(stub_->UpdateItem(Context().get(), update, &updated).ok());
  v1::GetItemRequest get;
  get.set_id(items[0].id());
  v1::Item read;
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  EXPECT_EQ(read.name(), "Renamed while batched");
}

// With the cache on, misses that come together share queries too (the batch loader loads the
// cache), and each is stored and answered as its own item.
TEST_F(ObservabilityTest, CacheMissesThatComeTogetherShareQueries) {
  server_.reset();
  ServerOptions options = Options();
  options.catalog.cache.item_reads.max_in_flight = 1;
  StartServer(options);
  auto* reads = catalog_->service().item_reads();
  auto* cache = catalog_->service().item_cache();
  ASSERT_NE(reads, nullptr);
  ASSERT_NE(cache, nullptr);
  std::vector<v1::Item> items;
  for (int i = 1; i <= 200; ++i) items.push_back(CreateDemo(i));
  cache->Clear();
  const std::int64_t queries_before = reads->loads();
  const std::int64_t loads_before = cache->stats().loads;
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {  // every id once: all misses
        const v1::Item& item = items[static_cast<std::size_t>(t * 25 + i)];
        v1::GetItemRequest get;
        get.set_id(item.id());
        v1::Item read;
        if (stub_->GetItem(Context().get(), get, &read).ok() && read.sku() == item.sku()) ++right;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), 200);
  EXPECT_EQ(cache->stats().loads - loads_before, 200);  // one load per item
  const std::int64_t queries = reads->loads() - queries_before;
  EXPECT_GT(queries, 0);    // the cache loaded through the batch loader
  EXPECT_LT(queries, 200);  // in fewer queries than items: shared
  const std::int64_t hits_before = cache->stats().hits;
  v1::GetItemRequest get;
  get.set_id(items[7].id());
  v1::Item read;
  ASSERT_TRUE(stub_->GetItem(Context().get(), get, &read).ok());
  EXPECT_EQ(read.sku(), items[7].sku());
  EXPECT_EQ(cache->stats().hits - hits_before, 1);  // stored
}

TEST_F(ObservabilityTest, HttpEndpoints) {
  const int port = server_->http_port();
  HttpReply health = HttpCall(port, bhttp::verb::get, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_FALSE(health.headers["date"].empty());
  EXPECT_EQ(health.headers["server"], "hotpath");
  EXPECT_EQ(HttpCall(port, bhttp::verb::get, "/readyz").status, 200);

  HttpReply metrics = HttpCall(port, bhttp::verb::get, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.headers["content-type"], ::testing::StartsWith("text/plain; version=0.0.4"));
  HttpReply head = HttpCall(port, bhttp::verb::head, "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_FALSE(head.headers["content-length"].empty());

  HttpReply missing = HttpCall(port, bhttp::verb::get, "/nowhere");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, ::testing::HasSubstr("\"code\":5"));
  HttpReply post = HttpCall(port, bhttp::verb::post, "/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
}

TEST_F(ObservabilityTest, ReadyzFailsWhileTheDatabaseIsUnreachable) {
  // The database refuses new connections and ends the pool's: unreachable for this server.
  const std::string name = database_->Query("SELECT current_database()");
  pqxx::connection admin(std::string(std::getenv("HOTPATH_TEST_DATABASE_URL")) +
                         " dbname=postgres");
  pqxx::nontransaction sql(admin);
  sql.exec("ALTER DATABASE \"" + name + "\" ALLOW_CONNECTIONS false");
  sql.exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '" +
           name + "'");
  int status = 0;
  for (int i = 0; i < 100 && status != 503; ++i) {
    status = HttpCall(server_->http_port(), bhttp::verb::get, "/readyz").status;
    if (status != 503) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 503);
  sql.exec("ALTER DATABASE \"" + name + "\" ALLOW_CONNECTIONS true");
  for (int i = 0; i < 100 && status != 200; ++i) {
    status = HttpCall(server_->http_port(), bhttp::verb::get, "/readyz").status;
    if (status != 200) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 200);
}

// Busy is not down: with every pooled connection leased, readiness stays 200 (a load balancer
// that pulled a busy replica would only move its load onto the others).
TEST_F(ObservabilityTest, ReadyzStaysReadyWhileEveryConnectionIsBusy) {
  server_.reset();
  ServerOptions options = Options();
  StartServer(options);
  std::vector<db::PgLease> held;
  for (int i = 0; i < options.database.max_size; ++i) {
    auto lease = server_->pool().Acquire(absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    held.push_back(*std::move(lease));
  }
  EXPECT_EQ(HttpCall(server_->http_port(), bhttp::verb::get, "/readyz").status, 200);
}

}  // namespace
}  // namespace hotpath::testing
