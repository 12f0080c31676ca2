// Malformed and hostile requests over both protocols: every case is answered with a 4xx or a
// non-OK status other than INTERNAL and UNKNOWN, the server keeps serving, and the table is
// unchanged unless the request was valid (then it holds exactly what was sent).
#include <sys/socket.h>

// Debian's Boost.Asio uses std::exchange without including <utility>.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <climits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "server/http/gzip.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::Ge;
using ::testing::Lt;

const std::vector<std::pair<std::string, std::string>> kJson = {
    {"Content-Type", "application/json"}};
constexpr char kSql[] = "x'); DROP TABLE items; --";

class HostileInputTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
    for (int n = 1; n <= 3; ++n) CreateDemo(n);
  }

  // Every row, as text: what "unchanged" compares.
  std::string Fingerprint() const {
    return database_->Query("SELECT md5(string_agg(items::text, '|' ORDER BY id)) FROM items");
  }

  bool Serving() {
    v1::GetItemRequest request;
    request.set_id(1);
    v1::Item item;
    return stub_->GetItem(Context().get(), request, &item).ok() &&
           Http(server_->http_port(), "GET", "/v1/items/1").status == 200;
  }

  // Sends raw bytes, half-closes, and returns what came back (empty if the server just closed).
  std::string Raw(const std::string& bytes) {
    namespace net = boost::asio;
    net::io_context io;
    net::ip::tcp::socket socket(io);
    socket.connect(
        {net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->http_port())});
    boost::system::error_code ec;
    net::write(socket, net::buffer(bytes), ec);  // the server may answer and close mid-way
    socket.shutdown(net::ip::tcp::socket::shutdown_send, ec);
    std::string answer;
    char buffer[4096];
    for (;;) {
      const std::size_t n = socket.read_some(net::buffer(buffer), ec);
      if (ec) break;
      answer.append(buffer, n);
    }
    return answer;
  }

  void ExpectGrpcRefusal(const grpc::Status& status, const std::string& what) {
    EXPECT_FALSE(status.ok()) << what;
    EXPECT_NE(status.error_code(), grpc::StatusCode::INTERNAL)
        << what << ": " << status.error_message();
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNKNOWN)
        << what << ": " << status.error_message();
  }
};

struct HttpCase {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

TEST_F(HostileInputTest, HttpRequestsThatMustBeRefused) {
  std::string deep_array(100000, '[');
  std::string many_headers;
  std::vector<std::pair<std::string, std::string>> flood = kJson;
  for (int i = 0; i < 1000; ++i)
    flood.emplace_back(absl::StrCat("X-Flood-", i), "yyyyyyyyyyyyyyyy");
  const std::string item = R"({"sku":"NEW-1","name":"n","category":"c","priceCents":"1")";
  const std::vector<HttpCase> cases = {
      {"oversized body", "POST", "/v1/items", std::string(2 << 20, ' '), kJson},
      {"gzip bomb",
       "POST",
       "/v1/items",
       http::GzipCompress(std::string(64 << 20, ' ')),
       {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}}},
      {"invalid UTF-8", "POST", "/v1/items",
       "{\"sku\":\"U-1\",\"name\":\"\xff\xfe\xc3\x28\",\"category\":\"c\"}", kJson},
      {"NUL in a string", "POST", "/v1/items", R"({"sku":"N-1","name":"a\u0000b","category":"c"})",
       kJson},
      {"huge float", "POST", "/v1/items", item + R"(,"stock":1e400})", kJson},
      {"huge integer", "POST", "/v1/items",
       R"({"sku":"H-1","name":"n","category":"c","priceCents":"99999999999999999999999"})", kJson},
      {"int32 overflow", "POST", "/v1/items", item + R"(,"stock":4294967296})", kJson},
      {"price above the maximum", "POST", "/v1/items",
       R"({"sku":"H-2","name":"n","category":"c","priceCents":"9223372036854775807"})", kJson},
      {"negative stock", "POST", "/v1/items", item + R"(,"stock":-1})", kJson},
      {"deep nesting", "POST", "/v1/items", deep_array, kJson},
      {"deep object nesting", "POST", "/v1/items",
       [] {
         std::string s;
         for (int i = 0; i < 5000; ++i) s += R"({"item":)";
         return s;
       }(),
       kJson},
      {"string for number", "POST", "/v1/items", item + R"(,"stock":"many"})", kJson},
      {"number for string", "POST", "/v1/items", R"({"sku":7,"name":"n","category":"c"})", kJson},
      {"object for array", "POST", "/v1/items", item + R"(,"tags":{"a":1}})", kJson},
      {"array for object", "PATCH", "/v1/items/1", R"([1,2,3])", kJson},
      {"null body", "POST", "/v1/items", "null", kJson},
      {"truncated JSON", "POST", "/v1/items", R"({"sku":"T-1","name":)", kJson},
      {"SQL in sku", "POST", "/v1/items",
       absl::StrCat(R"({"sku":")", kSql, R"(","name":"n","category":"c"})"), kJson},
      {"SQL in category", "POST", "/v1/items",
       absl::StrCat(R"({"sku":"S-1","name":"n","category":")", kSql, R"("})"), kJson},
      {"SQL in category filter",
       "GET",
       "/v1/items?category=x%27%3B%20DROP%20TABLE%20items",
       "",
       {}},
      {"SQL in the id", "GET", "/v1/items/1%20OR%201=1", "", {}},
      {"SQL in the etag", "DELETE", "/v1/items/1?etag=1%27%20OR%20%271%27=%271", "", {}},
      {"SQL in a page token", "GET", "/v1/items?pageToken=%27%20OR%201=1--", "", {}},
      {"path traversal", "GET", "/v1/items/..%2F..%2Fetc%2Fpasswd", "", {}},
      {"dot segments", "GET", "/v1/categories/%2e%2e/stats", "", {}},
      {"header flood", "POST", "/v1/items", item + "}", flood},
      {"page size overflow", "GET", "/v1/items?pageSize=99999999999", "", {}},
      {"too many batch ids",
       "GET",
       [] {
         std::string t = "/v1/items:batchGet?ids=1";
         for (int i = 2; i <= 1500; ++i) absl::StrAppend(&t, "&ids=", i);
         return t;
       }(),
       "",
       {}},
      {"unknown update path", "PATCH", "/v1/items/1", R"({"name":"x","updateMask":"name,id;DROP"})",
       kJson},
  };
  const std::string before = Fingerprint();
  for (const HttpCase& c : cases) {
    HttpReply reply;
    try {
      reply = Http(server_->http_port(), c.method, c.target, c.body, c.headers);
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": no HTTP answer (" << e.what() << ")";
      continue;
    }
    EXPECT_THAT(reply.status, AllOf(Ge(400), Lt(500))) << c.name << ": " << reply.body;
    EXPECT_EQ(Fingerprint(), before) << c.name << " changed the table";
    ASSERT_TRUE(Serving()) << "not serving after " << c.name;
  }
}

TEST_F(HostileInputTest, TruncatedAndGarbledHttpIsRefusedAndStoresNothing) {
  const std::string before = Fingerprint();
  // A body shorter than its Content-Length, then the client stops sending.
  std::string answer =
      Raw("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          "Content-Length: 100\r\n\r\n{\"sku\":\"TR-1\",\"name\":\"n\"");
  EXPECT_THAT(answer, AnyOf(::testing::IsEmpty(), ::testing::StartsWith("HTTP/1.1 400")));
  // Not HTTP at all; a bad Content-Length; a header line without a colon.
  for (const std::string& bytes :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
        std::string("POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        std::string("GET /v1/items/1 HTTP/1.1\r\nHost x\r\n\r\n")}) {
    answer = Raw(bytes);
    EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 400")) << answer;
  }
  // One header bigger than the whole header block may be.
  answer = Raw(absl::StrCat(
      "GET /v1/items/1 HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(64 << 10, 'a'), "\r\n\r\n"));
  // (431 and close; the client may see the reset before the answer, as it was still sending.)
  EXPECT_THAT(answer, AnyOf(::testing::IsEmpty(), ::testing::StartsWith("HTTP/1.1 431")))
      << answer.substr(0, 200);
  EXPECT_EQ(Fingerprint(), before);
  EXPECT_TRUE(Serving());
}

TEST_F(HostileInputTest, SqlMetacharactersInFreeTextAreStoredLiterally) {
  const std::string name = "Robert'); DROP TABLE items; --";
  const std::string description = "\"; DELETE FROM items WHERE 1=1; -- \\ $1 %s \\x00";
  // Over gRPC.
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(50);
  request.mutable_item()->set_name(name);
  request.mutable_item()->set_description(description);
  v1::Item created;
  ASSERT_TRUE(stub_->CreateItem(Context().get(), request, &created).ok());
  EXPECT_EQ(created.name(), name);
  EXPECT_EQ(created.description(), description);
  // Over the gateway.
  const HttpReply reply =
      Http(server_->http_port(), "POST", "/v1/items",
           R"({"sku":"SQL-2","name":"1' OR '1'='1","description":"';--","category":"c"})", kJson);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items"), "5");
  EXPECT_EQ(database_->Query("SELECT name FROM items WHERE sku = 'SQL-2'"), "1' OR '1'='1");
  // Searches with SQL and tsquery syntax are just text to search for.
  for (const std::string& query : {std::string("' OR 1=1; --"), std::string("!&|():*<->"),
                                   std::string("DROP TABLE items"), std::string("\\'\"")}) {
    v1::SearchItemsRequest search;
    search.set_query(query);
    v1::SearchItemsResponse found;
    const grpc::Status status = stub_->SearchItems(Context().get(), search, &found);
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
        << query << ": " << status.error_message();
  }
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items"), "5");
}

TEST_F(HostileInputTest, GrpcRequestsThatMustBeRefused) {
  const std::string before = Fingerprint();
  auto create = [&](auto mutate, const std::string& what) {
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(99);
    mutate(*request.mutable_item());
    v1::Item created;
    ExpectGrpcRefusal(stub_->CreateItem(Context().get(), request, &created), what);
  };
  create([](v1::Item& i) { i.set_name(std::string(5 << 20, 'n')); }, "message over 4 MiB");
  create([](v1::Item& i) { i.set_name(std::string(1000, 'n')); }, "name too long");
  create([](v1::Item& i) { i.set_name(std::string("a\0b", 3)); }, "NUL in name");
  create([](v1::Item& i) { i.set_price_cents(LLONG_MAX); }, "huge price");
  create([](v1::Item& i) { i.set_stock(INT_MIN); }, "negative stock");
  create([](v1::Item& i) { i.set_sku(kSql); }, "SQL in sku");
  create([](v1::Item& i) { i.set_category(kSql); }, "SQL in category");
  create([](v1::Item& i) { i.add_tags(std::string(10000, 't')); }, "huge tag");

  {
    auto context = Context();
    context->AddMetadata("x-flood", std::string(64 << 10, 'a'));  // over the 16 KiB metadata cap
    v1::GetItemRequest get;
    get.set_id(1);
    v1::Item item;
    ExpectGrpcRefusal(stub_->GetItem(context.get(), get, &item), "metadata flood");
  }
  {
    // (A page size above the maximum is coerced to it, as AIP-158 says; not an error.)
    v1::ListItemsRequest list;
    v1::ListItemsResponse page;
    list.set_page_size(-1);
    ExpectGrpcRefusal(stub_->ListItems(Context().get(), list, &page), "negative page size");
    list.set_page_size(10);
    list.set_page_token("' OR 1=1 --");
    ExpectGrpcRefusal(stub_->ListItems(Context().get(), list, &page), "SQL page token");
  }
  {
    v1::BatchGetItemsRequest batch;
    for (int i = 1; i <= 100000; ++i) batch.add_ids(i);
    v1::BatchGetItemsResponse items;
    ExpectGrpcRefusal(stub_->BatchGetItems(Context().get(), batch, &items), "100,000 ids");
  }
  {
    v1::UpdateItemRequest update;
    update.mutable_item()->set_id(1);
    update.mutable_item()->set_name("x");
    update.mutable_update_mask()->add_paths("name; DROP TABLE items");
    v1::Item item;
    ExpectGrpcRefusal(stub_->UpdateItem(Context().get(), update, &item), "SQL in the mask");
    update.mutable_update_mask()->Clear();
    update.mutable_item()->set_etag("1' OR '1'='1");
    ExpectGrpcRefusal(stub_->UpdateItem(Context().get(), update, &item), "SQL in the etag");
  }
  {
    v1::DeleteItemRequest remove;
    remove.set_id(-1);
    v1::DeleteItemResponse removed;
    ExpectGrpcRefusal(stub_->DeleteItem(Context().get(), remove, &removed), "negative id");
  }
  EXPECT_EQ(Fingerprint(), before);
  EXPECT_TRUE(Serving());
}

}  // namespace
}  // namespace hotpath::testing
