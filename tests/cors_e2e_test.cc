// CORS, as a browser does it: Debian's headless Chromium loads a page from one origin (a small
// HTTP server of the test's, on its own port) whose script fetches GET, POST and PATCH from the
// gateway on another port; the test reads what the script saw from the page. A page from an
// origin not allowed is refused by the browser. The protocol's answers are also checked directly.
#include <filesystem>
#include <mutex>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "server/http/http_server.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;
namespace bhttp = boost::beast::http;

// What the page's script does against the gateway at API, written into <pre id="out"> as JSON.
constexpr char kPage[] = R"(<!doctype html>
<html><body><pre id="out">pending</pre><script>
(async () => {
  const api = "API";
  const out = {};
  try {
    let r = await fetch(api + "/v1/items", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Request-Id": "from-a-page"},
      body: JSON.stringify({sku: "CORS-1", name: "From a page", category: "web",
                            priceCents: "250", stock: 1})});
    const created = await r.json();
    out.post = r.status;
    out.requestId = r.headers.get("X-Request-Id");
    out.hasProcessTime = r.headers.get("X-Process-Time") !== null;
    r = await fetch(api + "/v1/items/" + created.id);
    out.get = r.status;
    out.etag = r.headers.get("ETag");
    out.name = (await r.json()).name;
    r = await fetch(api + "/v1/items/" + created.id + "?updateMask=stock", {
      method: "PATCH",
      headers: {"Content-Type": "application/json", "If-Match": out.etag},
      body: JSON.stringify({stock: 7})});
    out.patch = r.status;
    out.stock = (await r.json()).stock;
    // Past --max_body_bytes: the HTTP server refuses it before the gateway sees it.
    r = await fetch(api + "/v1/items", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({sku: "CORS-2", name: "x".repeat(BODY_LIMIT)})});
    out.tooLarge = r.status;
    out.tooLargeMessage = (await r.json()).message;
  } catch (e) {
    out.error = String(e);
  }
  document.getElementById("out").textContent = JSON.stringify(out);
})();
</script></body></html>
)";

// The gateway's --max_body_bytes in these tests.
constexpr std::size_t kMaxBodyBytes = 16 << 10;

// Serves kPage at every path, from 127.0.0.1 on a port of its own (its origin), with API the
// gateway's origin, told once the gateway started (it must know this server's origin first).
class PageServer {
 public:
  PageServer() {
    server_ = std::make_unique<http::HttpServer>(
        http::HttpServerOptions{.host = "127.0.0.1", .port = 0, .threads = 1},
        [this](const http::Request& request, http::Responder respond) {
          http::Response response(bhttp::status::ok, request.version());
          response.set(bhttp::field::content_type, "text/html; charset=utf-8");
          std::lock_guard lock(mu_);
          response.body() = absl::StrReplaceAll(
              kPage, {{"API", api_}, {"BODY_LIMIT", absl::StrCat(kMaxBodyBytes)}});
          respond(std::move(response));
        });
    EXPECT_TRUE(server_->Start().ok());
  }
  ~PageServer() { server_->Stop(); }

  std::string origin() const { return absl::StrCat("http://127.0.0.1:", server_->port()); }
  void set_api(const std::string& api) {
    std::lock_guard lock(mu_);
    api_ = api;
  }

 private:
  std::mutex mu_;
  std::string api_;                           // the gateway's origin; guarded by mu_
  std::unique_ptr<http::HttpServer> server_;  // serves the page
};

// What the page's script wrote, once Chromium ran it: the text of <pre id="out">.
std::string RunInChromium(const std::string& url) {
  const std::filesystem::path profile =
      std::filesystem::temp_directory_path() / absl::StrCat("hotpath-chromium-", getpid());
  int exit_code = 0;
  // --virtual-time-budget: the page's clock runs until its work (the fetches) is done.
  const std::string dom =
      RunCommand(absl::StrCat("timeout 60 chromium --headless=new --no-sandbox --disable-gpu ",
                              "--no-first-run --user-data-dir=", profile.string(),
                              " --virtual-time-budget=20000 --dump-dom '", url, "' 2>/dev/null"),
                 &exit_code);
  std::filesystem::remove_all(profile);
  EXPECT_EQ(exit_code, 0) << "chromium failed or is missing (scripts/test installs it)";
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex(R"(<pre id="out">([^<]*)</pre>)"))) return dom;
  return absl::StrReplaceAll(m[1].str(), {{"&quot;", "\""}, {"&amp;", "&"}});
}

// The gateway allows allowed_.origin() only; other_ is a page on an origin it does not allow.
class CorsTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    ServerOptions options = Options();
    options.cors.allowed_origins = {allowed_.origin()};
    options.http.max_body_bytes = kMaxBodyBytes;
    StartServer(options);
    api_ = absl::StrCat("http://127.0.0.1:", server_->http_port());
    allowed_.set_api(api_);
    other_.set_api(api_);
  }

  HttpReply Preflight(const std::string& origin, const std::string& method,
                      const std::string& headers) {
    return Http(server_->http_port(), "OPTIONS", "/v1/items", "",
                {{"Origin", origin},
                 {"Access-Control-Request-Method", method},
                 {"Access-Control-Request-Headers", headers}});
  }

  PageServer allowed_;  // a page the gateway lets call it
  PageServer other_;    // a page it does not
  std::string api_;     // the gateway's origin
};

TEST_F(CorsTest, APageFromAnAllowedOriginCallsGetPostAndPatchInChromium) {
  const std::string seen = RunInChromium(allowed_.origin() + "/page.html");
  EXPECT_THAT(seen, HasSubstr(R"("post":200)"));
  EXPECT_THAT(seen, HasSubstr(R"("requestId":"from-a-page")"));  // exposed to the page
  EXPECT_THAT(seen, HasSubstr(R"("hasProcessTime":true)"));
  EXPECT_THAT(seen, HasSubstr(R"("get":200)"));
  EXPECT_THAT(seen, HasSubstr(R"("etag":"\"1\"")"));  // ETag exposed, then sent as If-Match
  EXPECT_THAT(seen, HasSubstr(R"("name":"From a page")"));
  EXPECT_THAT(seen, HasSubstr(R"("patch":200)"));
  EXPECT_THAT(seen, HasSubstr(R"("stock":7)"));
  // The HTTP server's own refusal is readable too: its status and why, not a network error.
  EXPECT_THAT(seen, HasSubstr(R"("tooLarge":413)"));
  EXPECT_THAT(seen, HasSubstr(R"("tooLargeMessage":"request body exceeds 16384 bytes")"));
  EXPECT_THAT(seen, ::testing::Not(HasSubstr("error"))) << seen;
  // The browser asked first (a JSON POST is not a simple request).
  EXPECT_GE(Metric(server_->http_port(), "http_requests_total", {"method=\"OPTIONS\""}), 1);
  EXPECT_EQ(database_->Query("SELECT stock FROM items WHERE sku = 'CORS-1'"), "7");
}

TEST_F(CorsTest, APageFromAnotherOriginIsRefusedByTheBrowser) {
  const std::string seen = RunInChromium(other_.origin() + "/page.html");
  EXPECT_THAT(seen, HasSubstr(R"("error":"TypeError: Failed to fetch")")) << seen;
  // Its preflight was refused, so its POST never reached the service.
  EXPECT_EQ(database_->Query("SELECT count(*) FROM items"), "0");
}

TEST_F(CorsTest, PreflightsNameTheRoutesMethodsTheAllowedHeadersAndTheirLifetime) {
  const HttpReply ok = Preflight(allowed_.origin(), "POST", "content-type, x-request-id, x-evil");
  EXPECT_EQ(ok.status, 204);
  EXPECT_EQ(ok.headers.at("access-control-allow-origin"), allowed_.origin());
  EXPECT_EQ(ok.headers.at("access-control-allow-methods"), "GET, HEAD, POST");
  EXPECT_EQ(ok.headers.at("access-control-allow-headers"), "content-type, x-request-id");
  EXPECT_EQ(ok.headers.at("access-control-max-age"), "600");
  EXPECT_EQ(ok.headers.count("access-control-allow-credentials"), 0u);  // off by default
  EXPECT_THAT(ok.headers.at("vary"), HasSubstr("Origin"));
  EXPECT_FALSE(ok.headers.at("x-request-id").empty());

  const HttpReply refused = Preflight(other_.origin(), "POST", "content-type");
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.headers.count("access-control-allow-origin"), 0u);
  EXPECT_THAT(refused.body, HasSubstr("--cors_allowed_origins"));

  // An answer to an allowed origin names it and what the page may read; to another, nothing.
  const HttpReply get =
      Http(server_->http_port(), "GET", "/v1/items", "", {{"Origin", allowed_.origin()}});
  EXPECT_EQ(get.headers.at("access-control-allow-origin"), allowed_.origin());
  EXPECT_THAT(get.headers.at("access-control-expose-headers"), HasSubstr("X-Request-Id"));
  EXPECT_EQ(get.headers.at("vary"), "Accept-Encoding, Origin");
  const HttpReply other =
      Http(server_->http_port(), "GET", "/v1/items", "", {{"Origin", other_.origin()}});
  EXPECT_EQ(other.status, 200);
  EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u);
  EXPECT_EQ(other.headers.at("vary"), "Accept-Encoding, Origin");
  // Errors and unknown paths carry them too, so a page can read why it failed.
  const HttpReply missing =
      Http(server_->http_port(), "GET", "/v1/nope", "", {{"Origin", allowed_.origin()}});
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.headers.at("access-control-allow-origin"), allowed_.origin());
}

// What the HTTP server answers by itself, before the gateway sees a request (here a body past
// --max_body_bytes), names an allowed origin as the gateway's answers do, so a page reads it; to
// another origin, nothing. (http_server_test.cc checks the hook on each kind of refusal.)
TEST_F(CorsTest, TheHttpServersOwnRefusalsNameAnAllowedOrigin) {
  const std::string body(kMaxBodyBytes + 1, 'x');
  const HttpReply large =
      Http(server_->http_port(), "POST", "/v1/items", body, {{"Origin", allowed_.origin()}});
  EXPECT_EQ(large.status, 413);
  EXPECT_EQ(large.headers.at("access-control-allow-origin"), allowed_.origin());
  EXPECT_THAT(large.headers.at("access-control-expose-headers"), HasSubstr("X-Request-Id"));
  EXPECT_THAT(large.headers.at("vary"), HasSubstr("Origin"));
  const HttpReply other =
      Http(server_->http_port(), "POST", "/v1/items", body, {{"Origin", other_.origin()}});
  EXPECT_EQ(other.status, 413);
  EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u);
}

// OPTIONS outside CORS says what the path allows, as RFC 9110 has it (it was a 405).
TEST_F(CorsTest, OptionsWithoutAPreflightAnswersAllow) {
  const HttpReply options = Http(server_->http_port(), "OPTIONS", "/v1/items/1");
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.headers.at("allow"), "DELETE, GET, HEAD, OPTIONS, PATCH");
  EXPECT_EQ(Http(server_->http_port(), "OPTIONS", "/v1/nope").status, 404);
}

}  // namespace
}  // namespace hotpath::testing
