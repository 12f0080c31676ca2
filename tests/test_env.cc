#include "tests/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "client/demo_items.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/catalog/catalog_module.h"
#include "server/db/migrations.h"

namespace hotpath::testing {

namespace {

// A database with the catalog's migrations applied, made once per cluster (and per content of the
// migrations, which name it) and copied for every test: CREATE DATABASE ... TEMPLATE copies files,
// where migrating each test's database ran every statement of every migration again.
std::string CatalogTemplate(const std::string& admin_url) {
  static const std::string name = [&admin_url] {
    std::string migrations;
    for (const db::Migration& m : catalog::Migrations())
      absl::StrAppend(&migrations, m.version, m.sql);
    const std::string name =
        absl::StrCat("hotpath_template_", absl::Hex(std::hash<std::string>{}(migrations)));
    pqxx::connection admin(admin_url + " dbname=postgres");
    pqxx::nontransaction tx(admin);
    // One process builds it; the others wait here, then find it.
    tx.exec("SELECT pg_advisory_lock(7242)");
    if (tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", name).empty()) {
      const std::string building = name + "_building";
      tx.exec(absl::StrCat("DROP DATABASE IF EXISTS ", building));
      tx.exec(absl::StrCat("CREATE DATABASE ", building));
      const absl::Status migrated =
          db::Migrate(absl::StrCat(admin_url, " dbname=", building), catalog::Migrations());
      if (!migrated.ok()) {
        ADD_FAILURE() << "migrating the template: " << migrated;
        std::abort();
      }
      // Published whole, by name: a half-built template is never copied.
      tx.exec(absl::StrCat("ALTER DATABASE ", building, " RENAME TO ", name));
    }
    tx.exec("SELECT pg_advisory_unlock(7242)");
    return name;
  }();
  return name;
}

}  // namespace

TestDatabase::TestDatabase(Schema schema) {
  const char* url = std::getenv("HOTPATH_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    ADD_FAILURE() << "HOTPATH_TEST_DATABASE_URL is not set: run the tests with scripts/test";
    std::abort();
  }
  admin_url_ = url;
  std::random_device random;
  name_ = absl::StrCat("hotpath_test_", random(), random());
  // FILE_COPY: a checkpoint and a file copy, cheaper here than WAL-logging every block of the
  // template (bench/test_databases).
  // HOTPATH_TEST_TEMPLATE=0: empty databases, migrated by each test's server (what the suite did
  // before the template; bench/test_suite times both).
  const char* use_template = std::getenv("HOTPATH_TEST_TEMPLATE");
  if (use_template != nullptr && std::string_view(use_template) == "0") schema = Schema::kEmpty;
  const std::string from =
      schema == Schema::kCatalog
          ? absl::StrCat(" TEMPLATE ", CatalogTemplate(admin_url_), " STRATEGY FILE_COPY")
          : "";
  pqxx::connection admin(admin_url_ + " dbname=postgres");
  pqxx::nontransaction tx(admin);
  tx.exec(absl::StrCat("CREATE DATABASE ", name_, from));
  url_ = absl::StrCat(admin_url_, " dbname=", name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(admin_url_ + " dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec(absl::StrCat("DROP DATABASE IF EXISTS ", name_, " WITH (FORCE)"));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "dropping " << name_ << ": " << e.what();
  }
}

std::string TestDatabase::Query(const std::string& sql) const {
  pqxx::connection connection(url_);
  pqxx::nontransaction tx(connection);
  const pqxx::result result = tx.exec(sql);
  if (result.empty() || result[0].empty() || result[0][0].is_null()) return "";
  return result[0][0].c_str();
}

void ServerTest::SetUp() { database_ = std::make_unique<TestDatabase>(); }

void ServerTest::TearDown() {
  stub_.reset();
  channel_.reset();
  server_.reset();
  catalog_ = nullptr;
  database_.reset();
}

absl::StatusOr<std::unique_ptr<Hotpathd>> StartCatalogServer(ServerOptions options) {
  module::ServiceModules modules;
  modules.push_back(std::make_unique<catalog::CatalogModule>(std::move(options.catalog)));
  return Hotpathd::Start(std::move(options), std::move(modules));
}

ServerOptions ServerTest::Options() const {
  ServerOptions options;
  options.grpc_address = "127.0.0.1:0";
  options.database.database_url = database_->url();
  options.database.min_size = 1;
  options.database.max_size = 8;
  options.completion_queues = 2;
  options.calls.pending_calls = 4;
  options.http.host = "127.0.0.1";
  options.http.port = 0;
  options.catalog.page_token_secret = "test-secret";
  return options;
}

void ServerTest::StartServer(ServerOptions options) {
  module::ServiceModules modules;
  auto catalog = std::make_unique<catalog::CatalogModule>(std::move(options.catalog));
  catalog::CatalogModule* module = catalog.get();
  modules.push_back(std::move(catalog));
  auto server = Hotpathd::Start(std::move(options), std::move(modules));
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  catalog_ = module;
  channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                                 grpc::InsecureChannelCredentials());
  stub_ = v1::CatalogService::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> ServerTest::Context(absl::Duration deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return context;
}

v1::Item ServerTest::CreateDemo(int n) {
  v1::CreateItemRequest request;
  *request.mutable_item() = client::DemoItem(n);
  v1::Item item;
  const grpc::Status status = stub_->CreateItem(Context().get(), request, &item);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return item;
}

void ServerTest::ImportDemo(int first, int count) {
  auto context = Context(absl::Seconds(120));
  v1::ImportItemsResponse imported;
  auto writer = stub_->ImportItems(context.get(), &imported);
  for (int n = first; n < first + count; ++n) {
    v1::CreateItemRequest request;
    *request.mutable_item() = client::DemoItem(n);
    if (!writer->Write(request)) break;  // Finish says why
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(imported.imported_count(), count);
}

int ServerTest::LeasesLeftAfterSettling() const {
  const absl::Time end = absl::Now() + absl::Seconds(2);
  while (server_->pool().stats().in_use > 0 && absl::Now() < end)
    absl::SleepFor(absl::Milliseconds(10));
  return server_->pool().stats().in_use;
}

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return fields;
  for (const auto& any : details.details()) {
    google::rpc::BadRequest bad_request;
    if (!any.UnpackTo(&bad_request)) continue;
    for (const auto& v : bad_request.field_violations()) fields.push_back(v.field());
  }
  return fields;
}

HttpReply Http(int port, const std::string& method, const std::string& target,
               const std::string& body,
               const std::vector<std::pair<std::string, std::string>>& headers) {
  namespace bhttp = boost::beast::http;
  using tcp = boost::asio::ip::tcp;
  boost::asio::io_context io;
  tcp::socket socket(io);
  socket.connect(
      tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  bhttp::request<bhttp::string_body> request;
  request.method_string(method);
  request.target(target);
  request.version(11);
  request.set(bhttp::field::host, "127.0.0.1");
  // Each header as a line of its own, so a test can send one twice; Host replaces the default.
  for (const auto& [k, v] : headers) {
    if (absl::EqualsIgnoreCase(k, "Host")) {
      request.set(k, v);
    } else {
      request.insert(k, v);
    }
  }
  request.body() = body;
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT")
    request.prepare_payload();
  bhttp::write(socket, request);
  boost::beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 << 20);
  parser.skip(method == "HEAD");
  bhttp::read(socket, buffer, parser);
  HttpReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  for (const auto& field : parser.get()) {
    reply.headers[absl::AsciiStrToLower(std::string(field.name_string()))] =
        std::string(field.value());
  }
  reply.body = parser.get().body();
  return reply;
}

int SmallWindowConnection(int port, const char* source) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  inet_pton(AF_INET, source, &address.sin_addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << source;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

int StalledGet(int port, const std::string& target, const char* source) {
  const int fd = SmallWindowConnection(port, source);
  const std::string request = absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: hotpath\r\n\r\n");
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  return fd;
}

std::string StatusLine(int fd) {
  std::string line;
  char c;
  while (recv(fd, &c, 1, 0) == 1 && c != '\r') line += c;
  return line;
}

RawClientStream::RawClientStream(const std::shared_ptr<grpc::Channel>& channel,
                                 grpc::ClientContext* context, const std::string& method)
    : stub_(channel), stream_(stub_.PrepareCall(context, method, &cq_)) {
  stream_->StartCall(nullptr);
  started_ = Await();
}

bool RawClientStream::Await() {
  void* tag;
  bool ok = false;
  cq_.Next(&tag, &ok);
  return ok;
}

bool RawClientStream::Write(const grpc::ByteBuffer& message) {
  stream_->Write(message, nullptr);
  return Await();
}

grpc::Status RawClientStream::Finish(grpc::ByteBuffer* reply) {
  stream_->WritesDone(nullptr);
  Await();
  stream_->Read(reply, nullptr);
  Await();
  grpc::Status status;
  stream_->Finish(&status, nullptr);
  Await();
  return status;
}

void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

long ProcStatusKib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  const std::string prefix = field + ":";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stol(line.substr(prefix.size()));
  }
  return 0;
}

DatabaseProxy::DatabaseProxy(const std::string& conninfo, bool silent)
    : conninfo_(conninfo), silent_(silent) {
  upstream_host_ = ConninfoValue(conninfo, "host");
  upstream_port_ = ConninfoValue(conninfo, "port");
  listener_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  if (bind(listener_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      listen(listener_, 64) != 0 ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    return;
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Run(); });
}

DatabaseProxy::~DatabaseProxy() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  for (const Pair& pair : pairs_) {
    close(pair.client);
    if (pair.upstream >= 0) close(pair.upstream);
  }
  close(listener_);
}

std::string DatabaseProxy::Conninfo() const {
  std::vector<std::string> words = {"host=127.0.0.1", absl::StrCat("port=", port_)};
  for (const absl::string_view word : absl::StrSplit(conninfo_, ' ', absl::SkipEmpty())) {
    if (!absl::StartsWith(word, "host=") && !absl::StartsWith(word, "port=")) {
      words.emplace_back(word);
    }
  }
  return absl::StrJoin(words, " ");
}

void DatabaseProxy::Run() {
  while (!stop_.load()) {
    const bool silent = silent_.load();
    if (!silent) {
      for (Pair& pair : pairs_) {
        if (pair.upstream >= 0) continue;
        if (absl::StartsWith(upstream_host_, "/")) {  // a socket directory
          pair.upstream = socket(AF_UNIX, SOCK_STREAM, 0);
          sockaddr_un address{};
          address.sun_family = AF_UNIX;
          std::snprintf(address.sun_path, sizeof(address.sun_path), "%s/.s.PGSQL.%s",
                        upstream_host_.c_str(), upstream_port_.c_str());
          connect(pair.upstream, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        } else {  // an IPv4 address (bench/reliability's cluster listens on 127.0.0.1)
          pair.upstream = socket(AF_INET, SOCK_STREAM, 0);
          sockaddr_in address{};
          address.sin_family = AF_INET;
          address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(upstream_port_)));
          inet_pton(AF_INET, upstream_host_.c_str(), &address.sin_addr);
          connect(pair.upstream, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        }
      }
    }
    // The listener, then (unless silent) each pair's two ends.
    std::vector<pollfd> waiting = {{listener_, POLLIN, 0}};
    if (!silent) {
      for (const Pair& pair : pairs_) {
        waiting.push_back({pair.client, POLLIN, 0});
        waiting.push_back({pair.upstream, POLLIN, 0});
      }
    }
    if (poll(waiting.data(), waiting.size(), 20) <= 0) continue;
    if (waiting[0].revents != 0) {
      if (const int client = accept(listener_, nullptr, nullptr); client >= 0) {
        pairs_.push_back({client, -1});
        ++accepted_;
      }
    }
    if (silent || silent_.load()) continue;
    std::vector<std::size_t> ended;
    for (std::size_t i = 0; i + 1 < waiting.size(); ++i) {
      if (waiting[i + 1].revents == 0) continue;
      const Pair& pair = pairs_[i / 2];
      const int from = i % 2 == 0 ? pair.client : pair.upstream;
      const int to = i % 2 == 0 ? pair.upstream : pair.client;
      char buffer[16384];
      const ssize_t got = recv(from, buffer, sizeof(buffer), 0);
      const bool dropped = from == pair.upstream && dropping_.load();
      if (got <= 0 || dropped || send(to, buffer, got, MSG_NOSIGNAL) != got) ended.push_back(i / 2);
    }
    for (auto it = ended.rbegin(); it != ended.rend(); ++it) {
      if (it + 1 != ended.rend() && *(it + 1) == *it) continue;  // both ends of one pair
      close(pairs_[*it].client);
      close(pairs_[*it].upstream);
      pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
}

int FreePort() {
  // bind() to port 0 may hand out a port again once its socket is closed, and a test that asks
  // for several ports (nginx's four listeners) needs them distinct: no port this process has
  // returned is returned again. A repeat's socket stays open until a new port is found, so the
  // kernel moves on rather than offering it once more.
  static std::mutex mutex;
  static std::set<int> returned;
  const std::lock_guard lock(mutex);
  std::vector<int> repeats;
  int port = 0;
  for (int attempt = 0; attempt < 64 && port == 0; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      close(fd);
      break;
    }
    const int candidate = ntohs(address.sin_port);
    if (returned.insert(candidate).second) {
      port = candidate;
      close(fd);
    } else {
      repeats.push_back(fd);
    }
  }
  for (const int fd : repeats) close(fd);
  return port;
}

std::string ConninfoValue(const std::string& conninfo, absl::string_view keyword) {
  for (absl::string_view pair : absl::StrSplit(conninfo, ' ', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&pair, keyword) && absl::ConsumePrefix(&pair, "=")) {
      return std::string(pair);
    }
  }
  return "";
}

std::string RunCommand(const std::string& command, int* exit_code) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  std::array<char, 4096> buffer;
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    output.append(buffer.data(), n);
  const int rc = pclose(pipe);
  if (exit_code != nullptr) *exit_code = rc;
  return output;
}

std::string ThreadStacks() {
  // Into a file: gdb stops every thread here, the one that would read a pipe too.
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / absl::StrCat("hotpath-stacks-", getpid());
  const int exit_code =
      std::system(absl::StrCat("gdb -p ", getpid(), " -batch -nx -ex 'thread apply all bt 16' >",
                               file.string(), " 2>&1")
                      .c_str());
  const std::string printed = ReadFile(file);
  std::filesystem::remove(file);
  // Thread 3 (Thread 0x7f... (LWP 12) "hotpath-cq"):
  // #0  0x00007f... in epoll_wait (epfd=...) at ...   or   #1  grpc::Foo::Bar (this=...) at ...
  std::map<std::string, int> stacks;  // "name: f0 < f1 < ..." -> threads
  std::string current;
  auto flush = [&] {
    if (!current.empty()) ++stacks[current];
    current.clear();
  };
  for (absl::string_view line : absl::StrSplit(printed, '\n')) {
    if (absl::StartsWith(line, "Thread ")) {
      flush();
      const std::size_t open = line.rfind(" \"");
      const std::size_t close = line.rfind("\")");
      current = open != absl::string_view::npos && close > open
                    ? std::string(line.substr(open + 2, close - open - 2))
                    : std::string("?");
      absl::StrAppend(&current, ":");
    } else if (absl::StartsWith(line, "#") && !current.empty()) {
      // The function's name alone: no frame number, address, template arguments or parameters.
      absl::string_view frame = line.substr(std::min(line.find(' '), line.size()));
      frame = absl::StripLeadingAsciiWhitespace(frame);
      if (absl::StartsWith(frame, "0x")) {
        const std::size_t in = frame.find(" in ");
        frame = in == absl::string_view::npos ? "" : frame.substr(in + 4);
      }
      frame = frame.substr(0, std::min(frame.find(" ("), frame.size()));
      std::string name;
      int depth = 0;
      for (std::size_t i = 0; i < frame.size(); ++i) {
        const char c = frame[i];
        if (c == '(' && depth == 0 && !absl::StartsWith(frame.substr(i), "(anonymous") &&
            !absl::EndsWith(name, "operator")) {
          break;  // the parameters
        }
        if (c == '<' && !absl::EndsWith(name, "operator")) ++depth;
        if (depth == 0) name += c;
        if (c == '>' && depth > 0) --depth;
      }
      absl::StrAppend(&current, absl::EndsWith(current, ":") ? " " : " < ", name);
    }
  }
  flush();
  if (stacks.empty()) {
    return absl::StrCat("no thread stacks (gdb exit status ", exit_code,
                        "): ", printed.substr(0, 2000));
  }
  std::string text;
  for (const auto& [stack, threads] : stacks) absl::StrAppend(&text, "\n", threads, "x ", stack);
  return text;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int TestCluster(const std::string& command) {
  const char* script = std::getenv("HOTPATH_TEST_PG_SCRIPT");
  const char* base = std::getenv("HOTPATH_TEST_PG_BASE");
  if (script == nullptr || base == nullptr) return -1;
  return std::system(absl::StrCat(script, " ", command, " ", base).c_str());
}

GrpcLoad::GrpcLoad(const std::shared_ptr<grpc::Channel>& channel, int threads,
                   absl::Duration deadline, OnCall on_call) {
  for (int t = 0; t < threads; ++t) {
    threads_.emplace_back([this, channel, deadline, on_call, create = t % 2 == 0] {
      auto stub = v1::CatalogService::NewStub(channel);
      while (!stop_.load()) {
        const absl::Time start = absl::Now();
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(start + deadline));
        grpc::Status status;
        std::int64_t created = 0;
        if (create) {
          v1::CreateItemRequest request;
          *request.mutable_item() = client::DemoItem(next_item_.fetch_add(1));
          v1::Item item;
          status = stub->CreateItem(&context, request, &item);
          created = item.id();
        } else {
          v1::SearchItemsRequest request;
          request.set_query("demo");
          v1::SearchItemsResponse response;
          status = stub->SearchItems(&context, request, &response);
        }
        on_call(status, created, start, absl::Now());
        if (!status.ok()) absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }
}

GrpcLoad::~GrpcLoad() { Stop(); }

void GrpcLoad::Stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

namespace {
std::string StandbyScript() {
  const char* script = std::getenv("HOTPATH_TEST_PG_SCRIPT");
  return script == nullptr ? "" : script;
}
}  // namespace

TestStandby& TestStandby::Get(int n) {
  static std::array<TestStandby*, kMax> standbys{};
  static const bool removed_at_exit = [] {
    return std::atexit([] {
             for (TestStandby* standby : standbys) {
               if (standby != nullptr) standby->Remove();
             }
           }) == 0;
  }();
  (void)removed_at_exit;
  if (standbys[n] == nullptr) standbys[n] = new TestStandby(n);
  return *standbys[n];
}

TestStandby::TestStandby(int n)
    : base_(absl::StrCat("/tmp/hotpath-standby-", getpid(), n == 0 ? "" : absl::StrCat("-", n))),
      port_(FreePort()) {
  const char* primary = std::getenv("HOTPATH_TEST_PG_BASE");
  if (primary == nullptr || StandbyScript().empty()) {
    error_ = "HOTPATH_TEST_PG_BASE / HOTPATH_TEST_PG_SCRIPT not set: run with scripts/test";
    return;
  }
  Remove();
  int exit_code = 0;
  error_ = RunCommand(absl::StrCat(StandbyScript(), " standby ", primary, " ", base_, " ", port_),
                      &exit_code);
  ok_ = exit_code == 0;
}

std::string TestStandby::Url(const std::string& dbname) const {
  return absl::StrCat("host=", base_, "/socket port=", port_, " user=postgres dbname=", dbname);
}

std::string TestStandby::Query(const std::string& sql, const std::string& dbname) const {
  return RunCommand(absl::StrCat("psql -qAt \"", Url(dbname), "\" -c \"", sql, "\""));
}

std::string TestStandby::StreamFrom(const std::string& conninfo) const {
  const std::string set =
      Query(absl::StrCat("ALTER SYSTEM SET primary_conninfo = '", conninfo, "'"));
  if (!set.empty()) return set;
  // The startup process does not always act on the first reload after ALTER SYSTEM (seen with
  // PostgreSQL 15): reloads until its WAL receiver is gone, or streaming again.
  const std::string check = conninfo.empty() ? "SELECT count(*) = 0 FROM pg_stat_wal_receiver"
                                             : "SELECT count(*) = 1 FROM pg_stat_wal_receiver "
                                               "WHERE status = 'streaming'";
  for (int i = 0; i < 200; ++i) {
    Query("SELECT pg_reload_conf()");
    absl::SleepFor(absl::Milliseconds(50));
    if (Query(check) == "t\n") return "";
  }
  return absl::StrCat("the standby in ", base_, " did not ",
                      conninfo.empty() ? "stop streaming" : "stream from ", conninfo);
}

std::string TestStandby::Promote() const {
  int exit_code = 0;
  std::string output = RunCommand(absl::StrCat(StandbyScript(), " promote ", base_), &exit_code);
  return exit_code == 0 ? "" : absl::StrCat("scripts/pg promote failed: ", output);
}

void TestStandby::Remove() { RunCommand(absl::StrCat(StandbyScript(), " remove ", base_)); }

bool AnswersWithin(int http_port, const std::string& target, int status, absl::Duration within) {
  const absl::Time end = absl::Now() + within;
  while (true) {
    try {
      if (Http(http_port, "GET", target).status == status) return true;
    } catch (const std::exception&) {
      // not listening yet
    }
    if (absl::Now() >= end) return false;
    absl::SleepFor(absl::Milliseconds(25));
  }
}

double Metric(int http_port, const std::string& name, const std::vector<std::string>& labels) {
  const HttpReply reply = Http(http_port, "GET", "/metrics");
  double sum = -1;
  std::size_t at = 0;
  while (at < reply.body.size()) {
    std::size_t end = reply.body.find('\n', at);
    if (end == std::string::npos) end = reply.body.size();
    const std::string_view line(reply.body.data() + at, end - at);
    at = end + 1;
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    if (line[name.size()] != ' ' && line[name.size()] != '{') continue;
    bool matches = true;
    for (const std::string& label : labels) matches = matches && line.find(label) != line.npos;
    if (!matches) continue;
    sum = std::max(sum, 0.0) + std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return sum;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_GT(pid_, 0) << "could not start " << absl::StrJoin(argv, " ");
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0 || reaped_) return;
  kill(pid_, SIGKILL);
  Wait(absl::Seconds(10));
}

void ChildProcess::Signal(int signal) const {
  if (pid_ > 0 && !reaped_) kill(pid_, signal);
}

std::optional<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      reaped_ = true;
      return status;
    }
    if (done < 0 || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return std::nullopt;
}

HotpathdProcess::HotpathdProcess(const std::string& binary, const std::string& database_url,
                                 const std::vector<std::string>& flags, const std::string& log_file)
    : grpc_port_(FreePort()), http_port_(FreePort()) {
  std::vector<std::string> argv = {binary,
                                   "--database_url=" + database_url,
                                   "--grpc_host=127.0.0.1",
                                   absl::StrCat("--grpc_port=", grpc_port_),
                                   "--http_host=127.0.0.1",
                                   absl::StrCat("--http_port=", http_port_),
                                   "--page_token_secret=test-secret",
                                   "--pool_min=1",
                                   "--pool_max=4",
                                   "--http_threads=1",
                                   "--cq_threads=1",
                                   "--executor_threads=2",
                                   "--memory_trim_interval_s=0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  process_ = std::make_unique<ChildProcess>(argv, log_file);
}

bool HotpathdProcess::WaitReady(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    try {
      if (Http(http_port_, "GET", "/readyz").status == 200) return true;
    } catch (const std::exception&) {
      // not listening yet
    }
    absl::SleepFor(absl::Milliseconds(25));
  } while (absl::Now() < deadline);
  return false;
}

namespace {

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string ServerLines(const std::vector<std::string>& addresses) {
  std::string lines;
  for (const std::string& address : addresses) absl::StrAppend(&lines, "server ", address, ";\n");
  return lines;
}

}  // namespace

Nginx::Site Nginx::InFrontOf(const Hotpathd& server, int grpc_port, int http_port) {
  Site site;
  site.grpc_replicas = {absl::StrCat("127.0.0.1:", server.grpc_port())};
  site.http_replicas = {absl::StrCat("127.0.0.1:", server.http_port())};
  site.grpc_listen = absl::StrCat("listen 127.0.0.1:", grpc_port, " http2;\n");
  site.http_listen = absl::StrCat("listen 127.0.0.1:", http_port, ";\n");
  return site;
}

absl::StatusOr<std::unique_ptr<Nginx>> Nginx::Start(const std::string& source_dir,
                                                    const Site& site) {
  static std::atomic<int> started{0};
  std::unique_ptr<Nginx> nginx(new Nginx(std::filesystem::temp_directory_path() /
                                         absl::StrCat("hotpath-nginx-", getpid(), "-", ++started)));
  const std::filesystem::path& dir = nginx->dir_;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  nginx->WriteSite(site);
  const std::string d = dir.string();
  WriteFile(dir / "hotpath-cache.conf",
            absl::StrCat("proxy_cache_path ", d,
                         "/cache keys_zone=hotpath_items:1m max_size=64m inactive=10m "
                         "use_temp_path=off;\n"));
  WriteFile(dir / "nginx.conf",
            absl::StrCat("worker_processes 1;\npid ", d, "/nginx.pid;\nerror_log ", d,
                         "/error.log error;\nevents { worker_connections 4096; }\nhttp {\n",
                         "  access_log off;\n  client_body_temp_path ", d, "/body;\n",
                         "  proxy_temp_path ", d, "/proxy;\n  fastcgi_temp_path ", d,
                         "/fastcgi;\n  uwsgi_temp_path ", d, "/uwsgi;\n  scgi_temp_path ", d,
                         "/scgi;\n  include ", source_dir, "/deploy/nginx/hotpath.conf;\n}\n"));
  int exit_code = 0;
  const std::string out = RunCommand(nginx->Command(""), &exit_code);
  if (exit_code != 0) return absl::InternalError(absl::StrCat("nginx did not start: ", out));
  return nginx;
}

void Nginx::WriteSite(const Site& site) const {
  WriteFile(dir_ / "hotpath-grpc-replicas.conf", ServerLines(site.grpc_replicas));
  WriteFile(dir_ / "hotpath-http-replicas.conf", ServerLines(site.http_replicas));
  WriteFile(dir_ / "hotpath-grpc-listen.conf", site.grpc_listen);
  WriteFile(dir_ / "hotpath-http-listen.conf", site.http_listen);
}

std::string Nginx::Command(const std::string& args) const {
  const std::string d = dir_.string();
  return absl::StrCat("nginx -p ", d, " -e ", d, "/error.log -c ", d, "/nginx.conf", args);
}

absl::Status Nginx::Reload(const Site& site) {
  WriteSite(site);
  int exit_code = 0;
  const std::string out = RunCommand(Command(" -s reload"), &exit_code);
  if (exit_code != 0) return absl::InternalError(absl::StrCat("nginx did not reload: ", out));
  return absl::OkStatus();
}

Nginx::~Nginx() {
  std::ifstream pid_file(dir_ / "nginx.pid");
  if (pid_t pid = 0; pid_file >> pid && pid > 0) {
    kill(pid, SIGQUIT);
    for (int i = 0; i < 250 && kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::filesystem::remove_all(dir_);
}

bool WriteSelfSignedCertificate(const std::filesystem::path& dir) {
  int exit_code = 0;
  RunCommand(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes -days 2 -subj /CN=localhost -addext "
                          "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout ",
                          (dir / "key.pem").string(), " -out ", (dir / "cert.pem").string()),
             &exit_code);
  return exit_code == 0;
}

}  // namespace hotpath::testing
