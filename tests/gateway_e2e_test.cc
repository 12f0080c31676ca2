// The HTTP/JSON gateway over real HTTP: every catalog route, every error class, headers, gzip both
// ways, keep-alive with pipelining, NDJSON export, and the standalone hotpath-gateway in front of a
// separate server.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "server/http/gzip.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
using Headers = std::vector<std::pair<std::string, std::string>>;
const Headers kJson = {{"Content-Type", "application/json"}};
namespace bhttp = boost::beast::http;

// A raw connection, for requests that the Http() helper would not send as they are.
boost::asio::ip::tcp::socket Connect(boost::asio::io_context& io, int port) {
  boost::asio::ip::tcp::socket socket(io);
  socket.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                static_cast<unsigned short>(port)));
  return socket;
}

class GatewayTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
    port_ = server_->http_port();
  }

  void Seed(int count) {
    auto context = Context(absl::Seconds(60));
    v1::ImportItemsResponse response;
    auto writer = stub_->ImportItems(context.get(), &response);
    for (int n = 1; n <= count; ++n) {
      v1::CreateItemRequest request;
      *request.mutable_item() = client::DemoItem(n);
      writer->Write(request);
    }
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
  }

  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 const Headers& headers = kJson) {
    return Http(port_, method, target, body, headers);
  }

  int port_ = 0;
};

TEST_F(GatewayTest, EveryCatalogRoute) {
  // POST /v1/items, body "item"
  HttpReply created =
      Call("POST", "/v1/items",
           R"({"sku":"G-1","name":"Gadget","category":"tools","priceCents":"150","tags":["a"]})");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(created.headers["content-type"], "application/json");
  EXPECT_THAT(created.body, HasSubstr(R"("sku":"G-1")"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(created.body, m, std::regex(R"re("id":"(\d+)")re")));
  const std::string id = m[1];

  // GET /v1/items/{id}
  HttpReply got = Call("GET", "/v1/items/" + id);
  ASSERT_EQ(got.status, 200);
  EXPECT_THAT(got.body, HasSubstr(R"("name":"Gadget")"));
  EXPECT_THAT(got.body, HasSubstr(R"("stock":0)"));  // zero values emitted

  // PATCH /v1/items/{item.id}, body "item", update_mask from the query
  HttpReply patched = Call("PATCH", "/v1/items/" + id + "?updateMask=name,priceCents",
                           R"({"name":"Gizmo","priceCents":"175","stock":99,"etag":"1"})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_THAT(patched.body, HasSubstr(R"("name":"Gizmo")"));
  EXPECT_THAT(patched.body, HasSubstr(R"("stock":0)"));  // not in the mask
  EXPECT_THAT(patched.body, HasSubstr(R"("etag":"2")"));

  Seed(30);
  // GET /v1/items with filters and pages
  HttpReply listed = Call("GET", "/v1/items?category=cat-3&pageSize=1&minPriceCents=0");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_THAT(listed.body, HasSubstr(R"("sku":"SKU-3")"));
  ASSERT_TRUE(std::regex_search(listed.body, m, std::regex(R"re("nextPageToken":"([^"]+)")re")));
  HttpReply page2 = Call(
      "GET", "/v1/items?category=cat-3&pageSize=1&minPriceCents=0&pageToken=" + std::string(m[1]));
  ASSERT_EQ(page2.status, 200) << page2.body;
  EXPECT_THAT(page2.body, HasSubstr(R"("sku":"SKU-23")"));

  // GET /v1/items:batchGet with repeated ids
  HttpReply batch = Call("GET", "/v1/items:batchGet?ids=3&ids=" + id + "&ids=2");
  ASSERT_EQ(batch.status, 200) << batch.body;
  const std::size_t third = batch.body.find("\"id\":\"3\""), gizmo = batch.body.find("G-1"),
                    second = batch.body.find("\"id\":\"2\"");
  ASSERT_NE(third, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(third, gizmo);
  EXPECT_LT(gizmo, second);

  // GET /v1/items:search
  HttpReply search = Call("GET", "/v1/items:search?query=gizmo");
  ASSERT_EQ(search.status, 200) << search.body;
  EXPECT_THAT(search.body, HasSubstr("G-1"));

  // GET /v1/categories/{category}/stats
  HttpReply stats = Call("GET", "/v1/categories/tools/stats");
  ASSERT_EQ(stats.status, 200) << stats.body;
  EXPECT_THAT(stats.body, HasSubstr(R"("itemCount":"1")"));

  // DELETE /v1/items/{id} with an etag precondition from the query
  EXPECT_EQ(Call("DELETE", "/v1/items/" + id + "?etag=1").status, 409);
  HttpReply deleted = Call("DELETE", "/v1/items/" + id + "?etag=2");
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(deleted.body, "{}");
  EXPECT_EQ(Call("GET", "/v1/items/" + id).status, 404);
}

struct ErrorCase {
  const char* name;
  const char* method;
  const char* target;
  const char* body;
  Headers headers;
  int status;
  const char* body_has;
};

class GatewayErrorTest : public GatewayTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(GatewayErrorTest, AnswersWithTheRightStatusAndAJsonError) {
  CreateDemo(1);  // SKU-1, id 1
  const ErrorCase& c = GetParam();
  HttpReply reply = Call(c.method, c.target, c.body, c.headers);
  EXPECT_EQ(reply.status, c.status) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr(c.body_has));
  // Every answer carries these, errors and unknown paths included.
  EXPECT_FALSE(reply.headers["x-request-id"].empty());
  EXPECT_FALSE(reply.headers["x-process-time"].empty());
  EXPECT_EQ(reply.headers["vary"], "Accept-Encoding");
  EXPECT_THAT(reply.body, HasSubstr("\"code\":"));
  EXPECT_THAT(reply.body, HasSubstr("\"message\":"));
  EXPECT_EQ(reply.headers["content-type"], "application/json");
  EXPECT_EQ(Call("GET", "/v1/items/1").status, 200) << "the server must keep serving";
}

INSTANTIATE_TEST_SUITE_P(
    Errors, GatewayErrorTest,
    ::testing::Values(
        ErrorCase{"InvalidField", "POST", "/v1/items",
                  R"({"sku":"bad sku","name":"x","category":"c"})", kJson, 400,
                  "\"field\":\"item.sku\""},
        ErrorCase{"MissingItem", "GET", "/v1/items/999", "", kJson, 404, "item 999 not found"},
        ErrorCase{"UnknownPath", "GET", "/v1/nothing", "", kJson, 404, "no route"},
        ErrorCase{"WrongMethod", "PUT", "/v1/items/1", "", kJson, 405, "not allowed"},
        ErrorCase{"DuplicateSku", "POST", "/v1/items",
                  R"({"sku":"SKU-1","name":"x","category":"c"})", kJson, 409, "already exists"},
        ErrorCase{"EtagMismatch", "PATCH", "/v1/items/1", R"({"stock":5,"etag":"9"})", kJson, 409,
                  "etag mismatch"},
        ErrorCase{"MalformedJson", "POST", "/v1/items", R"({"sku": "x",)", kJson, 400,
                  "invalid JSON body"},
        ErrorCase{"UnknownJsonField", "POST", "/v1/items", R"({"sku":"x","colour":"red"})", kJson,
                  400, "colour"},
        ErrorCase{"FieldTwiceInJson", "POST", "/v1/items",
                  R"({"sku":"D-1","name":"x","category":"c","sku":"D-2"})", kJson, 400,
                  "sets field sku of hotpath.catalog.v1.Item a second time"},
        ErrorCase{"JsonThatIsNotStrict", "POST", "/v1/items",
                  R"({sku:"D-1",'name':'x',"category":"c",})", kJson, 400, "not RFC 8259 JSON"},
        ErrorCase{"WrongType", "POST", "/v1/items", R"({"stock":"many"})", kJson, 400,
                  "invalid JSON body"},
        ErrorCase{"WrongContentType",
                  "POST",
                  "/v1/items",
                  R"({"sku":"x"})",
                  {{"Content-Type", "text/plain"}},
                  415,
                  "Content-Type"},
        ErrorCase{"UnknownContentEncoding",
                  "POST",
                  "/v1/items",
                  R"({})",
                  {{"Content-Type", "application/json"}, {"Content-Encoding", "br"}},
                  415,
                  "Content-Encoding"},
        ErrorCase{"BadGzipBody",
                  "POST",
                  "/v1/items",
                  "not gzip",
                  {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}},
                  400,
                  "gzip"},
        ErrorCase{"BadPathValue", "GET", "/v1/items/abc", "", kJson, 400, "\\\"id\\\""},
        ErrorCase{"BrokenEscapeInPath", "GET", "/v1/items/%", "", kJson, 400, "percent-encoding"},
        ErrorCase{"BadQueryValue", "GET", "/v1/items?pageSize=ten", "", kJson, 400, "pageSize"},
        ErrorCase{"OneFieldTwoValues", "GET", "/v1/items?category=cat-1&category=cat-2", "", kJson,
                  400, "is given more than once"},
        ErrorCase{"OneFieldTwoNames", "GET", "/v1/items:search?query=a&pageSize=1&page_size=2", "",
                  kJson, 400, "\\\"page_size\\\": is given more than once"},
        ErrorCase{"MisnamedNestedQueryParameter", "GET", "/v1/items?category.colour=red", "", kJson,
                  400, "category.colour"},
        ErrorCase{"PathTraversalInCapture", "GET", "/v1/categories/..%2F..%2Fetc/stats", "", kJson,
                  400, "category"},
        ErrorCase{"SqlInCapture", "GET", "/v1/categories/x';DROP%20TABLE%20items;--/stats", "",
                  kJson, 400, "category"},
        ErrorCase{"DeadlinePassed",
                  "GET",
                  "/v1/items:search?query=item",
                  "",
                  {{"Grpc-Timeout", "1n"}},
                  504,
                  "eadline"},
        ErrorCase{"BadTimeout",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"Grpc-Timeout", "soon"}},
                  400,
                  "Grpc-Timeout"},
        ErrorCase{"BodyOnGet", "GET", "/v1/items/1", R"({"x":1})", kJson, 400,
                  "takes no request body"},
        // A field that takes one value, given on two lines: a proxy in front may read either.
        ErrorCase{"TwoAuthorizations",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"Authorization", "Bearer a"}, {"Authorization", "Bearer b"}},
                  400,
                  "header Authorization is given twice"},
        ErrorCase{"TwoContentTypes",
                  "POST",
                  "/v1/items",
                  R"({"sku":"T-1","name":"x","category":"c"})",
                  {{"Content-Type", "application/json"}, {"content-type", "text/plain"}},
                  400,
                  "header Content-Type is given twice"},
        ErrorCase{"TwoTimeouts",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"X-Timeout-Ms", "1000"}, {"X-Timeout-Ms", "1"}},
                  400,
                  "header X-Timeout-Ms is given twice"},
        ErrorCase{"TwoReadPositions",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"X-Hotpath-Lsn", "0/1"}, {"X-Hotpath-Lsn", "0/2"}},
                  400,
                  "header X-Hotpath-Lsn is given twice"},
        // Metadata the gateway sets itself cannot be given a second value beside it.
        ErrorCase{"GatewaysOwnMetadata",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"Grpc-Metadata-X-Forwarded-For", "198.51.100.9"}},
                  400,
                  "the gateway sets x-forwarded-for itself; send the X-Forwarded-For header"},
        ErrorCase{"GatewaysOwnAuthorization",
                  "GET",
                  "/v1/items/1",
                  "",
                  {{"grpc-metadata-authorization", "Bearer a"}},
                  400,
                  "the gateway sets authorization itself; send the Authorization header"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) { return std::string(info.param.name); });

// Cache busters and tracking parameters name no field: ignored, as grpc-gateway does; with
// --strict_query_parameters they are a 400 naming the parameter.
TEST_F(GatewayTest, QueryParametersThatNameNoFieldAreIgnoredUnlessStrict) {
  CreateDemo(1);
  const HttpReply item = Call("GET", "/v1/items/1?_=1700000000&utm_source=mail");
  EXPECT_EQ(item.status, 200) << item.body;
  EXPECT_THAT(item.body, HasSubstr("SKU-1"));
  const HttpReply page = Call("GET", "/v1/items?pageSize=1&_=1");
  EXPECT_EQ(page.status, 200) << page.body;

  ServerOptions options = Options();
  options.strict_query_parameters = true;
  server_.reset();
  StartServer(options);
  const HttpReply strict = Http(server_->http_port(), "GET", "/v1/items/1?_=1700000000");
  EXPECT_EQ(strict.status, 400);
  EXPECT_THAT(strict.body, HasSubstr("no field"));
}

TEST_F(GatewayTest, OversizedBodyIs413) {
  // The server answers as soon as it reads the Content-Length, without reading the body.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket = Connect(io, port_);
  const std::string head =
      absl::StrCat("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
                   "Content-Length: ", 2 << 20, "\r\n\r\n{\"sku\":");
  boost::asio::write(socket, boost::asio::buffer(head));
  boost::beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(socket, buffer, response);
  EXPECT_EQ(response.result_int(), 413u);
  EXPECT_THAT(response.body(), HasSubstr("exceeds"));
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(GatewayTest, HeadersInAndOut) {
  CreateDemo(1);
  HttpReply reply =
      Call("GET", "/v1/items/1", "", {{"X-Request-Id", "req-42"}, {"Grpc-Metadata-Tenant", "t1"}});
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["x-request-id"], "req-42");
  double seconds = -1;
  EXPECT_TRUE(absl::SimpleAtod(reply.headers["x-process-time"], &seconds));
  EXPECT_GE(seconds, 0);
  // In hotpathd the gateway calls the service's code directly: there is no gRPC metadata to
  // forward (the standalone gateway's forwarding is tested in generic_gateway_test).
  EXPECT_EQ(reply.headers["vary"], "Accept-Encoding");
  EXPECT_FALSE(reply.headers["date"].empty());
  HttpReply generated = Call("GET", "/v1/items/1");
  EXPECT_EQ(generated.headers["x-request-id"].size(), 32u);
  HttpReply head = Call("HEAD", "/v1/items/1");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers["content-length"], generated.headers["content-length"]);
  HttpReply timeout_ms = Call("GET", "/v1/items/1", "", {{"X-Timeout-Ms", "5000"}});
  EXPECT_EQ(timeout_ms.status, 200);
}

TEST(AcceptsGzipTest, ReadsCodingsAndQualities) {
  EXPECT_TRUE(http::AcceptsGzip("gzip"));
  EXPECT_TRUE(http::AcceptsGzip("deflate, GZIP ;q=0.5"));
  EXPECT_TRUE(http::AcceptsGzip("br;q=1, *"));
  EXPECT_TRUE(http::AcceptsGzip("gzip;level=1;q=0.1"));
  EXPECT_FALSE(http::AcceptsGzip(""));
  EXPECT_FALSE(http::AcceptsGzip("identity, br"));
  EXPECT_FALSE(http::AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(http::AcceptsGzip("gzip; q=0.0, deflate"));
  EXPECT_FALSE(http::AcceptsGzip("gzip;q=nope"));
  EXPECT_FALSE(http::AcceptsGzip("x-gzip"));
}

TEST_F(GatewayTest, GzipBothWays) {
  Seed(60);
  HttpReply plain = Call("GET", "/v1/items?pageSize=50");
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.headers.count("content-encoding"), 0u);
  HttpReply zipped =
      Call("GET", "/v1/items?pageSize=50", "", {{"Accept-Encoding", "gzip, deflate"}});
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
  EXPECT_LT(zipped.body.size(), plain.body.size() / 3);
  auto unzipped = http::GzipDecompress(zipped.body, 1 << 24);
  ASSERT_TRUE(unzipped.ok());
  EXPECT_EQ(unzipped->size(), plain.body.size());
  HttpReply refused = Call("GET", "/v1/items?pageSize=50", "", {{"Accept-Encoding", "gzip;q=0"}});
  EXPECT_EQ(refused.headers.count("content-encoding"), 0u);
  HttpReply small = Call("GET", "/v1/items/1", "", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(small.headers.count("content-encoding"), 0u);  // under 1000 bytes

  const std::string body = http::GzipCompress(R"({"sku":"Z-1","name":"Zipped","category":"z"})");
  HttpReply created = Call("POST", "/v1/items", body,
                           {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_THAT(created.body, HasSubstr("Zipped"));
}

// Cached answers are kept rendered (gateway::AnswerMemo): a write must show in the very next read,
// plain or gzip, item or page.
TEST_F(GatewayTest, RenderedCacheHitsFollowWrites) {
  Seed(60);
  const Headers gzip = {{"Accept-Encoding", "gzip"}};
  auto page_with_gzip = [&] {
    HttpReply page = Call("GET", "/v1/items?pageSize=50", "", gzip);
    EXPECT_EQ(page.headers["content-encoding"], "gzip");
    auto unzipped = http::GzipDecompress(page.body, 1 << 24);
    return unzipped.ok() ? *unzipped : "undecodable";
  };
  for (int round = 1; round <= 3; ++round) {
    const std::string name = absl::StrCat("Renamed ", round);
    for (int i = 0; i < 3; ++i) {  // hits, rendered once
      Call("GET", "/v1/items/7");
      Call("GET", "/v1/items/7", "", gzip);
      page_with_gzip();
    }
    HttpReply patched =
        Call("PATCH", "/v1/items/7?updateMask=name", absl::StrCat(R"({"name":")", name, R"("})"));
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_THAT(Call("GET", "/v1/items/7").body, HasSubstr(name));
    EXPECT_THAT(Call("GET", "/v1/items/7", "", gzip).body, HasSubstr(name));
    EXPECT_THAT(page_with_gzip(), HasSubstr(name));
  }
  EXPECT_EQ(Call("DELETE", "/v1/items/7").status, 200);
  EXPECT_EQ(Call("GET", "/v1/items/7").status, 404);
  EXPECT_THAT(page_with_gzip(), ::testing::Not(HasSubstr(R"("id":"7")")));
}

// Conditional requests over the item's etag (RFC 9110 13): ETag on every answer that carries one,
// If-None-Match -> 304 on GET and HEAD, If-Match on PATCH and DELETE -> 412 when it is stale.
TEST_F(GatewayTest, ConditionalRequestsFollowTheEtag) {
  Seed(3);
  HttpReply got = Call("GET", "/v1/items/2");
  ASSERT_EQ(got.status, 200);
  const std::string tag = got.headers["etag"];
  ASSERT_THAT(tag, ::testing::MatchesRegex("\"[0-9]+\""));
  EXPECT_THAT(got.body, HasSubstr(absl::StrCat("\"etag\":", tag)));
  EXPECT_EQ(got.headers.count("cache-control"), 0u);  // none unless configured

  for (const char* method : {"GET", "HEAD"}) {
    HttpReply same = Call(method, "/v1/items/2", "", {{"If-None-Match", tag}});
    EXPECT_EQ(same.status, 304) << method;
    EXPECT_EQ(same.body, "");
    EXPECT_EQ(same.headers["etag"], tag);
    EXPECT_EQ(same.headers["vary"], "Accept-Encoding");
    EXPECT_FALSE(same.headers["x-request-id"].empty());
    EXPECT_FALSE(same.headers["x-process-time"].empty());
  }
  EXPECT_EQ(Call("GET", "/v1/items/2", "", {{"If-None-Match", "\"1\", W/" + tag}}).status, 304);
  EXPECT_EQ(Call("GET", "/v1/items/2", "", {{"If-None-Match", "*"}}).status, 304);
  EXPECT_EQ(Call("GET", "/v1/items/2", "", {{"If-None-Match", "\"0\""}}).status, 200);

  const std::string patch = R"({"stock":41})";
  HttpReply weak = Call("PATCH", "/v1/items/2?updateMask=stock", patch,
                        {{"Content-Type", "application/json"}, {"If-Match", "W/" + tag}});
  EXPECT_EQ(weak.status, 412) << weak.body;
  HttpReply patched = Call("PATCH", "/v1/items/2?updateMask=stock", patch,
                           {{"Content-Type", "application/json"}, {"If-Match", tag}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  const std::string new_tag = patched.headers["etag"];
  EXPECT_NE(new_tag, tag);
  HttpReply stale = Call("PATCH", "/v1/items/2?updateMask=stock", patch,
                         {{"Content-Type", "application/json"}, {"If-Match", tag}});
  EXPECT_EQ(stale.status, 412) << stale.body;
  EXPECT_EQ(Call("GET", "/v1/items/2", "", {{"If-None-Match", tag}}).status, 200);  // changed
  EXPECT_EQ(Call("GET", "/v1/items/2", "", {{"If-None-Match", new_tag}}).status, 304);

  EXPECT_EQ(Call("DELETE", "/v1/items/2", "", {{"If-Match", tag}}).status, 412);
  EXPECT_EQ(Call("DELETE", "/v1/items/2", "", {{"If-Match", "\"1\", \"2\""}}).status, 400);
  // The same list on two lines (RFC 9110 5.3), as a proxy in front reads it: before, the first
  // line alone was read, and it matched.
  EXPECT_EQ(
      Call("DELETE", "/v1/items/2", "", {{"If-Match", new_tag}, {"If-Match", "\"0\""}}).status,
      400);
  EXPECT_EQ(Call("DELETE", "/v1/items/2", "", {{"If-Match", new_tag}}).status, 200);
  EXPECT_EQ(Call("GET", "/v1/items/2").status, 404);
  // A method whose request has no etag refuses If-Match rather than ignore it.
  EXPECT_EQ(Call("POST", "/v1/items", R"({"sku":"IFM-1","name":"n","category":"c"})",
                 {{"Content-Type", "application/json"}, {"If-Match", tag}})
                .status,
            412);
}

TEST_F(GatewayTest, CacheControlAndAccelExpiresAreSetOnReadsWhenConfigured) {
  ServerOptions options = Options();
  options.gateway_cache_control = "no-cache";
  options.gateway_accel_expires = "@1";
  server_.reset();
  StartServer(options);
  port_ = server_->http_port();
  Seed(1);
  HttpReply got = Call("GET", "/v1/items/1");
  EXPECT_EQ(got.headers["cache-control"], "no-cache");
  EXPECT_EQ(got.headers["x-accel-expires"], "@1");
  // A kept answer must not serve a read that asks for a later write (X-Hotpath-Lsn).
  EXPECT_EQ(got.headers["vary"], "Accept-Encoding, X-Hotpath-Lsn");
  HttpReply not_modified = Call("GET", "/v1/items/1", "", {{"If-None-Match", got.headers["etag"]}});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.headers["cache-control"], "no-cache");
  EXPECT_EQ(not_modified.headers["x-accel-expires"], "@1");
  EXPECT_EQ(not_modified.headers["vary"], "Accept-Encoding, X-Hotpath-Lsn");
  HttpReply written = Call("PATCH", "/v1/items/1?updateMask=stock", R"({"stock":2})");
  EXPECT_EQ(written.headers.count("cache-control"), 0u);
  EXPECT_EQ(written.headers.count("x-accel-expires"), 0u);
  EXPECT_EQ(written.headers["vary"], "Accept-Encoding");
}

TEST_F(GatewayTest, AnAccelExpiresThatIsNoTimeFailsTheStart) {
  for (const char* bad : {"@", "soon", "@1s", "-1", "1 "}) {
    ServerOptions options = Options();
    options.gateway_accel_expires = bad;
    module::ServiceModules modules;
    modules.push_back(std::make_unique<catalog::CatalogModule>(options.catalog));
    auto server = Hotpathd::Start(std::move(options), std::move(modules));
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_THAT(server.status().message(), HasSubstr("X-Accel-Expires")) << bad;
  }
}

TEST_F(GatewayTest, KeepAliveAndPipeliningAnswerInOrder) {
  Seed(5);
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket = Connect(io, port_);
  // Five requests in one write, before reading anything; a slow one (a database read) first.
  std::string batch;
  for (int id : {5, 1, 4, 2, 3}) {
    batch += absl::StrCat("GET /v1/items/", id, " HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  boost::asio::write(socket, boost::asio::buffer(batch));
  boost::beast::flat_buffer buffer;
  for (int id : {5, 1, 4, 2, 3}) {
    bhttp::response<bhttp::string_body> response;
    bhttp::read(socket, buffer, response);
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_THAT(response.body(), HasSubstr(absl::StrCat("\"sku\":\"SKU-", id, "\"")));
    EXPECT_TRUE(response.keep_alive());
  }
  // The connection stays open for more.
  boost::asio::write(socket, boost::asio::buffer(std::string(
                                 "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  bhttp::response<bhttp::string_body> last;
  bhttp::read(socket, buffer, last);
  EXPECT_EQ(last.result_int(), 200u);
  EXPECT_FALSE(last.keep_alive());
}

// Reads until the server closes the connection; false if it is still open after `wait`.
bool ClosedWithin(boost::asio::ip::tcp::socket& socket, absl::Duration wait) {
  socket.non_blocking(true);
  const absl::Time until = absl::Now() + wait;
  char buffer[4096];
  while (absl::Now() < until) {
    boost::system::error_code ec;
    socket.read_some(boost::asio::buffer(buffer), ec);
    if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) return true;
    if (ec && ec != boost::asio::error::would_block) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST_F(GatewayTest, IdleAndHeaderTimeoutsCloseConnections) {
  server_.reset();
  ServerOptions options = Options();
  options.http.idle_timeout = absl::Milliseconds(1500);
  options.http.header_timeout = absl::Milliseconds(200);
  StartServer(options);
  port_ = server_->http_port();
  boost::asio::io_context io;
  // Idle keep-alive connection: one request, then silence.
  boost::asio::ip::tcp::socket idle = Connect(io, port_);
  boost::asio::write(idle,
                     boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
  boost::beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> response;
  bhttp::read(idle, buffer, response);
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_TRUE(ClosedWithin(idle, absl::Seconds(4)));
  // A header that never ends is cut by the (shorter) request timeout, not the idle one.
  boost::asio::ip::tcp::socket slow = Connect(io, port_);
  const absl::Time start = absl::Now();
  boost::asio::write(
      slow, boost::asio::buffer(std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")));
  EXPECT_TRUE(ClosedWithin(slow, absl::Seconds(3)));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1200));
  // So is a body that never ends: the same timeout counts from the request's first byte.
  boost::asio::ip::tcp::socket unfinished = Connect(io, port_);
  const absl::Time body_start = absl::Now();
  boost::asio::write(unfinished, boost::asio::buffer(std::string(
                                     "POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                     "application/json\r\nContent-Length: 100\r\n\r\n{\"sku\":")));
  EXPECT_TRUE(ClosedWithin(unfinished, absl::Seconds(3)));
  EXPECT_LT(absl::Now() - body_start, absl::Milliseconds(1200));
  // The server still serves.
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(GatewayTest, ExportStreamsNdjson) {
  Seed(3000);
  HttpReply reply = Call("GET", "/v1/items:export");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "application/x-ndjson");
  EXPECT_EQ(reply.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(reply.headers["vary"], "Accept-Encoding");
  EXPECT_EQ(reply.headers.count("content-encoding"), 0u);
  std::vector<std::string> lines = absl::StrSplit(reply.body, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3000u);
  std::int64_t previous = 0;
  for (const auto& line : lines) {
    ASSERT_EQ(line.rfind("{\"result\":{", 0), 0u) << line;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, std::regex(R"re("id":"(\d+)")re")));
    const std::int64_t id = std::stoll(m[1]);
    EXPECT_GT(id, previous);
    previous = id;
  }
  HttpReply filtered = Call("GET", "/v1/items:export?category=cat-7");
  EXPECT_EQ(std::count(filtered.body.begin(), filtered.body.end(), '\n'), 150);
  HttpReply invalid = Call("GET", "/v1/items:export?minPriceCents=-1");
  EXPECT_EQ(invalid.status, 400);  // failed before the first item: a proper status, not a stream
  HttpReply empty = Call("GET", "/v1/items:export?category=none");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "");
  EXPECT_EQ(empty.headers["vary"], "Accept-Encoding");
}

// An export is an answer like any other: gzipped when accepted and at least 1000 bytes, one gzip
// member over the whole stream, the same lines once unpacked; smaller ones go as they are.
TEST_F(GatewayTest, ExportIsGzippedWhenAcceptedAndLargeEnough) {
  Seed(3000);
  const HttpReply plain = Call("GET", "/v1/items:export");
  const Headers gzip = {{"Accept-Encoding", "gzip"}};
  HttpReply zipped = Call("GET", "/v1/items:export", "", gzip);
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
  EXPECT_EQ(zipped.headers["vary"], "Accept-Encoding");
  EXPECT_EQ(zipped.headers["transfer-encoding"], "chunked");
  EXPECT_LT(zipped.body.size() * 4, plain.body.size());
  auto unzipped = http::GzipDecompress(zipped.body, 1 << 26);
  ASSERT_TRUE(unzipped.ok()) << unzipped.status();
  EXPECT_EQ(*unzipped, plain.body);
  // One item, under 1000 bytes: as it is.
  ASSERT_EQ(Call("POST", "/v1/items", R"({"sku":"ONE-1","name":"One","category":"single"})", kJson)
                .status,
            200);
  HttpReply one = Call("GET", "/v1/items:export?category=single", "", gzip);
  EXPECT_EQ(one.status, 200);
  EXPECT_EQ(one.headers.count("content-encoding"), 0u);
  EXPECT_EQ(one.headers["vary"], "Accept-Encoding");
  EXPECT_THAT(one.body, HasSubstr("ONE-1"));
  EXPECT_EQ(std::count(one.body.begin(), one.body.end(), '\n'), 1);
  // A failure before the first item is still a proper status, gzip or not.
  EXPECT_EQ(Call("GET", "/v1/items:export?minPriceCents=-1", "", gzip).status, 400);
}

TEST_F(GatewayTest, MetricsAndOpenApi) {
  CreateDemo(1);
  for (int i = 0; i < 3; ++i) Call("GET", "/v1/items/1");
  Call("GET", "/v1/items/424242");
  const std::string metrics = Call("GET", "/metrics").body;
  // The status as promhttp names it (code), and the RPC the route calls, as gRPC's series do.
  constexpr char kRpc[] =
      R"(grpc_method="GetItem",grpc_service="hotpath.catalog.v1.CatalogService",method="GET",)"
      R"(route="/v1/items/{id}")";
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(R"(http_requests_total{code="200",)", kRpc, "} 3")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(R"(http_requests_total{code="404",)", kRpc, "} 1")));
  EXPECT_THAT(metrics,
              HasSubstr(absl::StrCat("http_request_duration_seconds_count{", kRpc, "} 4")));
  // From 10 µs: a cached read's duration is measured, not lumped under 0.5 ms.
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("http_request_duration_seconds_bucket{", kRpc,
                                              R"(,le="1e-05"})")));
  EXPECT_THAT(metrics, HasSubstr(R"(grpc_server_handling_seconds_bucket{grpc_method="GetItem",)"
                                 R"(grpc_service="hotpath.catalog.v1.CatalogService",)"
                                 R"(grpc_type="unary",le="1e-05"})"));
  // Prometheus asks for gzip: the text comes compressed, about a tenth of its size.
  HttpReply zipped = Call("GET", "/metrics", "", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(zipped.headers["content-encoding"], "gzip");
  EXPECT_EQ(zipped.headers["vary"], "Accept-Encoding");
  auto unzipped = http::GzipDecompress(zipped.body, 1 << 24);
  ASSERT_TRUE(unzipped.ok()) << unzipped.status();
  EXPECT_THAT(*unzipped, HasSubstr("# TYPE http_requests_total counter"));
  EXPECT_LT(zipped.body.size() * 5, unzipped->size());
  // Runtime routes call no RPC (the scrapes above are counted by now).
  EXPECT_THAT(
      Call("GET", "/metrics").body,
      HasSubstr(R"(http_requests_total{code="200",grpc_method="",grpc_service="",method="GET",)"));
  HttpReply openapi = Call("GET", "/openapi.json");
  EXPECT_EQ(openapi.status, 200);
  EXPECT_THAT(openapi.body, HasSubstr("\"swagger\": \"2.0\""));
  EXPECT_THAT(openapi.body, HasSubstr("/v1/items:search"));
}

// hotpath-gateway as its own process in front of this test's server.
TEST_F(GatewayTest, StandaloneGatewayInFrontOfAServer) {
  Seed(100);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    const std::string upstream = absl::StrCat("--upstream=127.0.0.1:", server_->grpc_port());
    execl(HOTPATH_GATEWAY_BINARY, "hotpath-gateway", upstream.c_str(), "--http_host=127.0.0.1",
          "--http_port=0", "--cors_allowed_origins=https://shop.example", "--max_body_bytes=65536",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  // "hotpath-gateway: serving HTTP on port N for ..."
  std::string banner, line;
  std::smatch m;
  char c;
  while (read(out[0], &c, 1) == 1) {
    if (c != '\n') {
      line += c;
      continue;
    }
    banner += line + "\n";
    if (std::regex_search(line, m, std::regex(R"(serving HTTP on port (\d+))"))) break;
    line.clear();
  }
  ASSERT_FALSE(m.empty()) << banner;
  const int port = std::stoi(m[1]);

  HttpReply got = Http(port, "GET", "/v1/items/1");
  EXPECT_EQ(got.status, 200) << got.body;
  EXPECT_THAT(got.body, HasSubstr("SKU-1"));
  HttpReply created =
      Http(port, "POST", "/v1/items", R"({"sku":"R-1","name":"Remote","category":"r"})", kJson);
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(Http(port, "GET", "/v1/items/999").status, 404);
  const HttpReply unknown = Http(port, "GET", "/v1/nope", "", {{"X-Request-Id", "r-404"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.headers.count("x-request-id") ? unknown.headers.at("x-request-id") : "",
            "r-404");
  // With CORS on (a list of origins), answers vary on Origin too.
  EXPECT_EQ(unknown.headers.count("vary") ? unknown.headers.at("vary") : "",
            "Accept-Encoding, Origin");
  EXPECT_EQ(unknown.headers.count("x-process-time"), 1u);
  EXPECT_EQ(Http(port, "GET", "/readyz").status, 200);
  // CORS as hotpathd's.
  const HttpReply preflight = Http(port, "OPTIONS", "/v1/items", "",
                                   {{"Origin", "https://shop.example"},
                                    {"Access-Control-Request-Method", "POST"},
                                    {"Access-Control-Request-Headers", "content-type"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.headers.count("access-control-allow-origin")
                ? preflight.headers.at("access-control-allow-origin")
                : "",
            "https://shop.example");
  EXPECT_EQ(
      Http(port, "OPTIONS", "/v1/items", "",
           {{"Origin", "https://elsewhere.example"}, {"Access-Control-Request-Method", "POST"}})
          .status,
      403);
  // And on what its HTTP server refuses by itself, so a page reads why.
  const HttpReply too_large = Http(port, "POST", "/v1/items", std::string(65537, 'x'),
                                   {{"Origin", "https://shop.example"}});
  EXPECT_EQ(too_large.status, 413);
  EXPECT_EQ(too_large.headers.count("access-control-allow-origin")
                ? too_large.headers.at("access-control-allow-origin")
                : "",
            "https://shop.example");
  // Its exports are gzipped like hotpathd's.
  const HttpReply exported =
      Http(port, "GET", "/v1/items:export", "", {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(exported.status, 200);
  EXPECT_EQ(
      exported.headers.count("content-encoding") ? exported.headers.at("content-encoding") : "",
      "gzip");
  EXPECT_EQ(exported.headers.count("vary") ? exported.headers.at("vary") : "",
            "Accept-Encoding, Origin");
  auto lines = http::GzipDecompress(exported.body, 1 << 24);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(std::count(lines->begin(), lines->end(), '\n'), 101);
  const std::string metrics = Http(port, "GET", "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("http_requests_total"));
  // The answers its HTTP server gave by itself, each reason there from the start.
  EXPECT_THAT(metrics, HasSubstr("hotpath_http_refusals_total{reason=\"answers_budget\"} 0"));
  // Its calls to the upstream, with the code each ended with: GetItem once OK and once NotFound.
  const std::string upstream = absl::StrCat("upstream=\"127.0.0.1:", server_->grpc_port(), "\"");
  const auto client_series = [&](const std::string& name, const std::string& labels) {
    for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
      if (absl::StartsWith(line, name + "{") && absl::StrContains(line, labels) &&
          absl::StrContains(line, upstream)) {
        return std::string(line.substr(line.rfind(' ') + 1));
      }
    }
    return std::string("none");
  };
  EXPECT_EQ(client_series("grpc_client_handled_total", "grpc_code=\"OK\",grpc_method=\"GetItem\""),
            "1")
      << metrics;
  EXPECT_EQ(
      client_series("grpc_client_handled_total", "grpc_code=\"NotFound\",grpc_method=\"GetItem\""),
      "1");
  EXPECT_EQ(
      client_series("grpc_client_handled_total", "grpc_code=\"OK\",grpc_method=\"CreateItem\""),
      "1");
  EXPECT_EQ(client_series("grpc_client_handling_seconds_count", "grpc_method=\"GetItem\""), "2");

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  close(out[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Header bytes gRPC metadata cannot carry: gRPC 1.51 aborts the process on a call started with
// them (found by gateway_request_fuzzer on an export, which goes through gRPC). Refused with 400
// instead, or (a request id) replaced; the server keeps serving.
TEST_F(GatewayTest, HeadersGrpcMetadataCannotCarryAreRefused) {
  CreateDemo(1);
  for (const std::string target : {"/v1/items:export", "/v1/items/1"}) {
    SCOPED_TRACE(target);
    HttpReply reply = Call("GET", target, "", {{"Authorization", "Bearer \xff\xfe"}});
    EXPECT_EQ(reply.status, 400) << reply.body;
    EXPECT_THAT(reply.body, HasSubstr("Authorization"));
    reply = Call("GET", target, "", {{"Grpc-Metadata-Trace-Bin", "AAAA"}});
    EXPECT_EQ(reply.status, 400) << reply.body;
    reply = Call("GET", target, "", {{"Grpc-Metadata-Note", "caf\xc3\xa9"}});
    EXPECT_EQ(reply.status, 400) << reply.body;
    reply = Call("GET", target, "", {{"X-Request-Id", "id-\xff"}});
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_NE(reply.headers["x-request-id"], "id-\xff");
  }
  EXPECT_EQ(Call("GET", "/v1/items/1").status, 200);
}

// The standalone gateway serves again within a second of its upstream coming back, however long
// the upstream was away (gRPC's default reconnect backoff had grown to about 5 s).
TEST_F(GatewayTest, StandaloneGatewayServesWithinASecondOfItsUpstreamComingBack) {
  CreateDemo(1);
  const int grpc_port = FreePort();
  ServerOptions options = Options();
  options.grpc_address = absl::StrCat("127.0.0.1:", grpc_port);
  server_.reset();
  StartServer(options);
  const int http_port = FreePort();
  const std::string log =
      (std::filesystem::temp_directory_path() / absl::StrCat("gateway-", getpid(), ".log"))
          .string();
  ChildProcess gateway({HOTPATH_GATEWAY_BINARY, absl::StrCat("--upstream=127.0.0.1:", grpc_port),
                        "--http_host=127.0.0.1", absl::StrCat("--http_port=", http_port)},
                       log);
  const auto serves = [&] {
    try {
      return Http(http_port, "GET", "/v1/items/1").status == 200;
    } catch (const std::exception&) {
      return false;
    }
  };
  ASSERT_TRUE(AnswersWithin(http_port, "/v1/items/1", 200));
  // Away for 6 s, asked all along (each failure makes gRPC back off further by default).
  stub_.reset();
  channel_.reset();
  server_.reset();
  const absl::Time away = absl::Now();
  while (absl::Now() - away < absl::Seconds(6)) {
    EXPECT_FALSE(serves());
    absl::SleepFor(absl::Milliseconds(100));
  }
  StartServer(options);  // same database, same port
  const absl::Time back = absl::Now();
  while (!serves() && absl::Now() - back < absl::Seconds(10))
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_LT(absl::Now() - back, absl::Seconds(1));
  gateway.Signal(SIGTERM);
  gateway.Wait(absl::Seconds(10));
  std::filesystem::remove(log);
}

// hotpath-gateway in front of an upstream that stops answering (a relay that passes nothing on,
// as from a hung process, or a machine gone without a reset). Before, every request waited for
// ever. A unary call whose request sets no timeout answers 504 at --upstream_timeout_ms; the
// connection's unanswered keepalive ping closes it, so an export (no deadline) answers 503 instead
// of waiting. Both serve again once the upstream answers.
TEST_F(GatewayTest, StandaloneGatewayAnswersWhenItsUpstreamStopsAnswering) {
  // The pinging gateway pings every 0.5 s: a server refusing pings that often would end its
  // connection (too_many_pings) before the test silences it.
  ServerOptions options = Options();
  options.connections.min_client_ping_interval = absl::Milliseconds(100);
  stub_.reset();
  channel_.reset();
  server_.reset();
  StartServer(options);
  CreateDemo(3);
  DatabaseProxy relay(absl::StrCat("host=127.0.0.1 port=", server_->grpc_port()));
  ASSERT_NE(relay.port(), 0);
  const std::string upstream = absl::StrCat("--upstream=127.0.0.1:", relay.port());
  const auto log = [](const char* name) {
    return (std::filesystem::temp_directory_path() / absl::StrCat(name, "-", getpid(), ".log"))
        .string();
  };
  // One gateway bounds its calls, the other pings (its calls' own bound left at 30 s): each
  // measured alone.
  const int timed_port = FreePort();
  const int pinged_port = FreePort();
  ChildProcess timed({HOTPATH_GATEWAY_BINARY, upstream, "--http_host=127.0.0.1",
                      absl::StrCat("--http_port=", timed_port), "--upstream_timeout_ms=1000"},
                     log("gateway-timed"));
  ChildProcess pinged({HOTPATH_GATEWAY_BINARY, upstream, "--http_host=127.0.0.1",
                       absl::StrCat("--http_port=", pinged_port), "--upstream_keepalive_ms=500",
                       "--upstream_keepalive_timeout_ms=1000"},
                      log("gateway-pinged"));
  ASSERT_TRUE(AnswersWithin(timed_port, "/v1/items/1", 200));
  ASSERT_TRUE(AnswersWithin(pinged_port, "/v1/items/1", 200));

  relay.Silence();
  absl::Time start = absl::Now();
  HttpReply reply = Http(timed_port, "GET", "/v1/items/2");
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(reply.status, 504) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("\"code\""));
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(3));
  start = absl::Now();
  reply = Http(pinged_port, "GET", "/v1/items:export");
  took = absl::Now() - start;
  EXPECT_EQ(reply.status, 503) << reply.body;
  EXPECT_LT(took, absl::Seconds(5)) << "a ping every 0.5 s, unanswered after 1 s";

  relay.Resume();
  EXPECT_TRUE(AnswersWithin(timed_port, "/v1/items/1", 200));
  EXPECT_TRUE(AnswersWithin(pinged_port, "/v1/items/1", 200));
  for (ChildProcess* gateway : {&timed, &pinged}) {
    gateway->Signal(SIGTERM);
    EXPECT_TRUE(gateway->Wait(absl::Seconds(10)).has_value());
  }
  std::filesystem::remove(log("gateway-timed"));
  std::filesystem::remove(log("gateway-pinged"));
}

// hotpath-gateway whose upstream takes connections and never answers (a hung process: the kernel
// accepts, no HTTP/2 settings come; a machine gone is the same wait, for an answer to the SYN).
// Each connection attempt ends at --upstream_connect_timeout_ms (2 s), and requests waiting for
// one answer 503 (with Retry-After) then: before, gRPC's own 20 s. It serves once the upstream
// answers.
TEST_F(GatewayTest, StandaloneGatewayAnswers503SoonWhenItsUpstreamCannotBeReached) {
  CreateDemo(1);
  DatabaseProxy relay(absl::StrCat("host=127.0.0.1 port=", server_->grpc_port()), true);
  ASSERT_NE(relay.port(), 0);
  const int http_port = FreePort();
  const std::string log = (std::filesystem::temp_directory_path() /
                           absl::StrCat("gateway-unreached-", getpid(), ".log"))
                              .string();
  ChildProcess gateway({HOTPATH_GATEWAY_BINARY, absl::StrCat("--upstream=127.0.0.1:", relay.port()),
                        "--http_host=127.0.0.1", absl::StrCat("--http_port=", http_port)},
                       log);
  ASSERT_TRUE(AnswersWithin(http_port, "/healthz", 200));
  // The first attempt, then whatever state the next request finds (backing off, or another
  // attempt under way).
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    const HttpReply reply = Http(http_port, "GET", "/v1/items/1");
    const absl::Duration took = absl::Now() - start;
    EXPECT_EQ(reply.status, 503) << reply.body;
    EXPECT_THAT(reply.body, HasSubstr("\"code\""));
    // Worth asking again soon, as every 503 of the gateway's mapping says.
    EXPECT_THAT(reply.headers, ::testing::Contains(::testing::Pair("retry-after", "1")))
        << "request " << i;
    EXPECT_LT(took, absl::Seconds(5)) << "request " << i;
  }
  EXPECT_GE(relay.accepted(), 1);
  relay.Resume();
  EXPECT_TRUE(AnswersWithin(http_port, "/v1/items/1", 200)) << "not serving 5 s after it returned";
  gateway.Signal(SIGTERM);
  EXPECT_TRUE(gateway.Wait(absl::Seconds(10)).has_value());
  std::filesystem::remove(log);
}

// hotpath-gateway in front of two servers named by one target: calls reach both (before, gRPC's
// default pick_first policy sent every call to the first).
TEST_F(GatewayTest, StandaloneGatewaySpreadsCallsOverEveryServerItsUpstreamNames) {
  CreateDemo(1);
  auto other = StartCatalogServer(Options());
  ASSERT_TRUE(other.ok()) << other.status();
  const int http_port = FreePort();
  const std::string log =
      (std::filesystem::temp_directory_path() / absl::StrCat("gateway-rr-", getpid(), ".log"))
          .string();
  ChildProcess gateway({HOTPATH_GATEWAY_BINARY,
                        absl::StrCat("--upstream=ipv4:127.0.0.1:", server_->grpc_port(),
                                     ",127.0.0.1:", (*other)->grpc_port()),
                        "--http_host=127.0.0.1", absl::StrCat("--http_port=", http_port)},
                       log);
  const auto handled = [](const Hotpathd& server) {
    return Metric(server.http_port(), "grpc_server_handled_total");
  };
  const double before[] = {handled(*server_), handled(**other)};
  // Round robin uses a server once its connection is ready: on a loaded machine the second may
  // be ready a few calls after the first, so calls go on (up to 400) until each has 10.
  int answered = 0;
  const auto each_has_ten = [&] {
    return handled(*server_) - before[0] >= 10 && handled(**other) - before[1] >= 10;
  };
  for (int i = 0; i < 600 && answered < 400 && (answered % 20 != 0 || !each_has_ten()); ++i) {
    try {
      if (Http(http_port, "GET", "/v1/items/1").status == 200) ++answered;
    } catch (const std::exception&) {
      absl::SleepFor(absl::Milliseconds(25));  // not listening yet
    }
  }
  EXPECT_GE(handled(*server_) - before[0], 10) << answered << " calls";
  EXPECT_GE(handled(**other) - before[1], 10) << answered << " calls";
  gateway.Signal(SIGTERM);
  gateway.Wait(absl::Seconds(10));
  std::filesystem::remove(log);
}

// A gateway is a proxy: a call it sends on names the client in X-Forwarded-For (after what the
// proxies before it said), so the server's access log names the client, not the gateway. Before,
// hotpath-gateway passed the request id only and every line's client was the gateway's address.
TEST_F(GatewayTest, AGatewayNamesTheClientToTheServerBehindIt) {
  CreateDemo(1);
  ServerOptions options = Options();
  options.access_log = true;
  server_.reset();
  StartServer(options);
  const int http_port = FreePort();
  const std::string log =
      (std::filesystem::temp_directory_path() / absl::StrCat("gateway-xff-", getpid(), ".log"))
          .string();
  ChildProcess gateway(
      {HOTPATH_GATEWAY_BINARY, absl::StrCat("--upstream=127.0.0.1:", server_->grpc_port()),
       "--http_host=127.0.0.1", absl::StrCat("--http_port=", http_port), "--access_log"},
      log);
  ASSERT_TRUE(AnswersWithin(http_port, "/v1/items/1", 200));
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Http(http_port, "GET", "/v1/items/1", "",
                 {{"X-Request-Id", "xff-1"}, {"X-Forwarded-For", "203.0.113.7"}})
                .status,
            200);
  EXPECT_EQ(Http(http_port, "GET", "/v1/items/1", "", {{"X-Request-Id", "xff-2"}}).status, 200);
  // Not printable ASCII: what the earlier proxies said is left out, the client is still named.
  EXPECT_EQ(Http(http_port, "GET", "/v1/items/1", "",
                 {{"X-Request-Id", "xff-3"}, {"X-Forwarded-For", "203.0.113.7\xc3\xa9"}})
                .status,
            200);
  // X-Forwarded-For on two lines is one list (RFC 9110 5.3), as a proxy in front reads it.
  EXPECT_EQ(Http(http_port, "GET", "/v1/items/1", "",
                 {{"X-Request-Id", "xff-5"},
                  {"X-Forwarded-For", "203.0.113.7"},
                  {"X-Forwarded-For", "192.0.2.1"}})
                .status,
            200);
  // Nor can a client name itself where the server reads the client.
  EXPECT_EQ(Http(http_port, "GET", "/v1/items/1", "",
                 {{"X-Request-Id", "xff-6"}, {"Grpc-Metadata-X-Forwarded-For", "192.0.2.2"}})
                .status,
            400);
  // hotpathd's own gateway too, for the calls it sends over its in-process channel (exports).
  EXPECT_EQ(Http(server_->http_port(), "GET", "/v1/items:export", "",
                 {{"X-Request-Id", "xff-4"}, {"X-Forwarded-For", "198.51.100.2"}})
                .status,
            200);
  const std::string lines = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(lines, HasSubstr(R"("request_id":"xff-1","forwarded_for":"203.0.113.7, 127.0.0.1")"));
  EXPECT_THAT(lines, HasSubstr(R"("request_id":"xff-2","forwarded_for":"127.0.0.1")"));
  EXPECT_THAT(lines, HasSubstr(R"("request_id":"xff-3","forwarded_for":"127.0.0.1")"));
  EXPECT_THAT(lines,
              HasSubstr(R"("request_id":"xff-4","forwarded_for":"198.51.100.2, 127.0.0.1")"));
  EXPECT_THAT(lines, HasSubstr(R"("request_id":"xff-5","forwarded_for":"203.0.113.7, 192.0.2.1, )"
                               R"(127.0.0.1")"));
  EXPECT_THAT(lines, ::testing::Not(HasSubstr("192.0.2.2")));
  gateway.Signal(SIGTERM);
  gateway.Wait(absl::Seconds(10));
  // The gateway's own --access_log: a line per HTTP request, with what its client sent.
  std::ifstream gateway_log(log);
  const std::string gateway_lines((std::istreambuf_iterator<char>(gateway_log)),
                                  std::istreambuf_iterator<char>());
  EXPECT_THAT(gateway_lines,
              HasSubstr(R"("http_method":"GET","target":"/v1/items/1","request_id":"xff-1",)"
                        R"("forwarded_for":"203.0.113.7","route":"/v1/items/{id}",)"
                        R"("peer":"127.0.0.1","status":200,)"));
  EXPECT_THAT(gateway_lines,
              HasSubstr(R"("request_id":"xff-5","forwarded_for":"203.0.113.7, 192.0.2.1",)"));
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace hotpath::testing
