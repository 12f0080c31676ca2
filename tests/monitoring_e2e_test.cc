// deploy/monitoring against a real Prometheus (Debian's): the shipped scrape configuration and
// rules, only the target and the intervals changed, scraping a hotpathd with a streaming standby
// under load (gRPC and REST, hits, misses, writes, errors). Then every expression of the Grafana
// dashboard and every rule is evaluated through Prometheus' HTTP API: each must parse, return
// samples, and none may be NaN. Alerts are evaluated with their comparisons made `bool`, so that
// what they watch must exist even while they do not fire. The rules' own firing logic is promtool's
// (hotpath.rules.test.yml).
#include <sys/wait.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/demo_items.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using Json = nlohmann::json;

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// expr with every comparison operator outside label matchers, strings and `bool` made `bool`: the
// alert's condition as 0/1 over every series it watches.
std::string WithBoolComparisons(const std::string& expr) {
  std::string out;
  int braces = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < expr.size(); ++i) {
    const char c = expr[i];
    out.push_back(c);
    if (quoted) {
      if (c == '\\' && i + 1 < expr.size()) out.push_back(expr[++i]);
      if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '{') ++braces;
    if (c == '}') --braces;
    if (braces > 0) continue;
    const bool two =
        (c == '=' || c == '!' || c == '>' || c == '<') && i + 1 < expr.size() && expr[i + 1] == '=';
    const bool one = (c == '>' || c == '<') && !two;
    if (!one && !two) continue;
    if (two) out.push_back(expr[++i]);
    if (expr.compare(i + 1, 5, " bool") != 0) out += " bool";
  }
  return out;
}

class MonitoringTest : public ServerTest {
 protected:
  // Deployed as on a primary with a read replica (a real streaming standby of the test cluster),
  // so that the read-replica panels and alert have series to evaluate.
  void SetUp() override {
    ASSERT_TRUE(TestStandby::Get().ok()) << TestStandby::Get().error();
    ServerTest::SetUp();
    ServerOptions options = Options();
    options.database_read_urls = {TestStandby::Get().Url(database_->name())};
    StartServer(options);
  }

  // Prometheus with the shipped configuration and rules, scraping this test's server every second.
  void StartPrometheus() {
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("hotpath-prometheus-", getpid());
    std::filesystem::create_directories(dir_);
    const std::filesystem::path shipped =
        std::filesystem::path(HOTPATH_SOURCE_DIR) / "deploy" / "monitoring";
    std::string config = ReadFile(shipped / "prometheus.yml");
    config = absl::StrReplaceAll(
        config, {{"127.0.0.1:8080", absl::StrCat("127.0.0.1:", server_->http_port())},
                 {"scrape_interval: 15s", "scrape_interval: 1s"},
                 {"evaluation_interval: 15s", "evaluation_interval: 1s"}});
    std::ofstream(dir_ / "prometheus.yml") << config;
    std::filesystem::copy_file(shipped / "hotpath.rules.yml", dir_ / "hotpath.rules.yml");
    port_ = FreePort();
    prometheus_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/prometheus",
                                 absl::StrCat("--config.file=", (dir_ / "prometheus.yml").string()),
                                 absl::StrCat("--storage.tsdb.path=", (dir_ / "data").string()),
                                 absl::StrCat("--web.listen-address=127.0.0.1:", port_)},
        (dir_ / "prometheus.log").string());
  }

  void TearDown() override {
    prometheus_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    ServerTest::TearDown();
  }

  // An instant query's answer, or an error's text.
  Json Query(const std::string& expr) {
    const HttpReply reply = Http(port_, "GET", "/api/v1/query?query=" + UrlEncode(expr));
    Json answer = Json::parse(reply.body, nullptr, false);
    if (answer.is_discarded()) return Json{{"status", "error"}, {"error", reply.body}};
    return answer;
  }

  // "" when expr parses, returns samples and none is NaN; else what is wrong.
  std::string Problem(const std::string& expr) {
    const Json answer = Query(expr);
    if (answer.value("status", "") != "success") {
      return absl::StrCat("does not evaluate: ", answer.value("error", answer.dump()));
    }
    const Json& result = answer["data"]["result"];
    if (!result.is_array() || result.empty()) return "returns nothing";
    for (const Json& sample : result) {
      if (sample["value"][1].get<std::string>() == "NaN") {
        return absl::StrCat("NaN for ", sample["metric"].dump());
      }
    }
    return "";
  }

  // Traffic of every kind for a while: hotpath-bench's cached gRPC reads, and beside it gRPC and
  // REST reads (hits and misses), writes, errors.
  void Load(absl::Duration how_long) {
    for (int n = 1; n <= 20; ++n) CreateDemo(n);
    const absl::Time end = absl::Now() + how_long;
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
      int exit_code = -1;
      const std::string output = RunCommand(
          absl::StrCat(HOTPATH_BENCH_BINARY, " --addr=127.0.0.1:", server_->grpc_port(),
                       " --method=get --ids=20 --concurrency=4 --connections=1 --duration=",
                       absl::ToInt64Seconds(how_long) - 2, "s 2>&1"),
          &exit_code);
      EXPECT_EQ(exit_code, 0) << output;
    });
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        int n = 0;
        while (absl::Now() < end) {
          ++n;
          v1::GetItemRequest get;
          v1::Item item;
          v1::ListItemsRequest list;
          list.set_page_size(5);
          v1::ListItemsResponse page;
          stub_->ListItems(Context().get(), list, &page);
          // Every fifth read of an item that does not exist: NOT_FOUND / 404.
          const int id = n % 5 == 0 ? 900000 + n : 1 + n % 20;
          get.set_id(id);
          stub_->GetItem(Context().get(), get, &item);
          Http(server_->http_port(), "GET", absl::StrCat("/v1/items/", id));
          Http(server_->http_port(), "GET", "/v1/items?pageSize=3");
          if (n % 10 == 0) {
            v1::CreateItemRequest create;
            *create.mutable_item() = client::DemoItem(1000 + t * 100000 + n);
            stub_->CreateItem(Context().get(), create, &item);
            Http(server_->http_port(), "POST", "/v1/items",
                 absl::StrCat(R"({"sku":"M-)", t, "-", n, R"(","name":"n","category":"c"})"),
                 {{"Content-Type", "application/json"}});
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }

  std::filesystem::path dir_;                 // Prometheus' configuration and data
  int port_ = 0;                              // its HTTP API
  std::unique_ptr<ChildProcess> prometheus_;  // Debian's prometheus
};

// README: hotpath-bench's --window reports the p99 and max of the calls that started in each
// window, and open loop reports how late the client sent its calls (never more than their latency).
// Open loop at 500 calls/s: every call is due on a fixed schedule, so each whole second holds 500
// of them. The cap on calls in flight is the whole run's 1,500, so that none is dropped when a
// loaded machine stalls the server (at the default cap of 64, a 130 ms stall dropped 25).
class HotpathBenchTest : public ServerTest {};

TEST_F(HotpathBenchTest, WindowsCountTheCallsThatStartedInEach) {
  StartServer(Options());
  for (int n = 1; n <= 20; ++n) CreateDemo(n);
  int exit_code = -1;
  const std::string output = RunCommand(
      absl::StrCat(HOTPATH_BENCH_BINARY, " --addr=127.0.0.1:", server_->grpc_port(),
                   " --method=get --ids=20 --rate=500 --duration=3s --warmup=0s --window=1s"
                   " --concurrency=1500 --json"),
      &exit_code);
  ASSERT_EQ(exit_code, 0) << output;
  const Json report = Json::parse(output, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << output;
  const Json& windows = report["windows"];
  ASSERT_TRUE(windows.is_array()) << output;
  ASSERT_GE(windows.size(), 3u) << output;
  std::int64_t calls = 0;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    const Json& window = windows[i];
    calls += window["calls"].get<std::int64_t>();
    if (i < 3) {
      EXPECT_EQ(window["calls"].get<std::int64_t>(), 500) << "window " << i;
    }
    EXPECT_LE(window["p99"].get<double>(), window["max"].get<double>()) << "window " << i;
    if (window["calls"].get<std::int64_t>() > 0) {
      EXPECT_GT(window["max"].get<double>(), 0) << "window " << i;
    }
  }
  EXPECT_EQ(calls, report["requests"].get<std::int64_t>());
  // How late each call was sent is part of its latency, counted from when it was due.
  const Json& lag = report["send_lag_ms"];
  ASSERT_TRUE(lag.is_object()) << output;
  EXPECT_GE(lag["p50"].get<double>(), 0) << output;
  EXPECT_LE(lag["p50"].get<double>(), lag["p99"].get<double>()) << output;
  EXPECT_LE(lag["p99"].get<double>(), lag["max"].get<double>()) << output;
  EXPECT_LE(lag["max"].get<double>(), report["latency_ms"]["max"].get<double>()) << output;
  EXPECT_EQ(report["errors"].get<std::int64_t>(), 0);
  EXPECT_EQ(report["dropped"].get<std::int64_t>(), 0);

  // A window under 1 ms (or more than 100,000 of them in --duration) is refused up front.
  const std::string refused =
      RunCommand(absl::StrCat(HOTPATH_BENCH_BINARY, " --addr=127.0.0.1:", server_->grpc_port(),
                              " --method=get --duration=10s --window=10us 2>&1"),
                 &exit_code);
  EXPECT_TRUE(WIFEXITED(exit_code) && WEXITSTATUS(exit_code) == 2) << exit_code << ": " << refused;
  EXPECT_THAT(refused, ::testing::HasSubstr("--window must be at least 1ms")) << refused;
}

TEST(BoolComparisons, LeaveMatchersAndStringsAlone) {
  EXPECT_EQ(WithBoolComparisons(R"(a{x!="1",y=~"2|3"} > 0.9 or b >= 1 and c == bool 2)"),
            R"(a{x!="1",y=~"2|3"} > bool 0.9 or b >= bool 1 and c == bool 2)");
  EXPECT_EQ(WithBoolComparisons(R"(up{job="hotpath"} == 0)"), R"(up{job="hotpath"} == bool 0)");
}

TEST_F(MonitoringTest, EveryPanelAndRuleEvaluatesToDataOnARealPrometheus) {
  StartPrometheus();
  Load(absl::Seconds(12));
  // Scraped often enough, and the rules evaluated since the load.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && Problem("count_over_time(up[1m]) > 8") != "") {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ASSERT_EQ(Problem("count_over_time(up[1m]) > 8"), "") << ReadFile(dir_ / "prometheus.log");
  std::this_thread::sleep_for(std::chrono::seconds(3));

  std::vector<std::string> problems;
  // The dashboard's expressions, with Grafana's variables as a user would pick them.
  const Json dashboard = Json::parse(ReadFile(std::filesystem::path(HOTPATH_SOURCE_DIR) / "deploy" /
                                              "monitoring" / "grafana" / "hotpath.json"));
  int panels = 0;
  for (const Json& panel : dashboard["panels"]) {
    if (!panel.contains("targets")) continue;
    ++panels;
    for (const Json& target : panel["targets"]) {
      const std::string expr = absl::StrReplaceAll(
          target["expr"].get<std::string>(),
          {{"$job", "hotpath"}, {"$instance", ".*"}, {"$__rate_interval", "1m"}});
      if (std::string p = Problem(expr); !p.empty()) {
        problems.push_back(
            absl::StrCat("panel \"", panel["title"].get<std::string>(), "\": ", expr, ": ", p));
      }
    }
  }
  EXPECT_GE(panels, 25);
  // The rules as Prometheus loaded them: each healthy; a recording rule's series has data; an
  // alert's condition, made bool, too.
  const Json rules = Json::parse(Http(port_, "GET", "/api/v1/rules").body);
  int recording = 0;
  int alerting = 0;
  for (const Json& group : rules["data"]["groups"]) {
    for (const Json& rule : group["rules"]) {
      const std::string name = rule["name"];
      if (rule.value("health", "") != "ok") {
        problems.push_back(absl::StrCat("rule ", name, ": ", rule.dump()));
      }
      const std::string expr = rule["type"] == "recording"
                                   ? name
                                   : WithBoolComparisons(rule["query"].get<std::string>());
      (rule["type"] == "recording" ? recording : alerting)++;
      if (std::string p = Problem(expr); !p.empty()) {
        problems.push_back(absl::StrCat("rule ", name, ": ", expr, ": ", p));
      }
    }
  }
  EXPECT_GE(recording, 30);
  EXPECT_EQ(alerting, 15);
  EXPECT_THAT(problems, ::testing::IsEmpty());
}

}  // namespace
}  // namespace hotpath::testing
