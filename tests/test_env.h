// What the end-to-end tests share: a fresh database per test, and a hotpathd serving it in-process.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "hotpath/catalog/v1/catalog.grpc.pb.h"
#include "server/catalog/catalog_module.h"
#include "server/hotpathd.h"

namespace hotpath::testing {

namespace v1 = ::hotpath::catalog::v1;

// A database created for one test from HOTPATH_TEST_DATABASE_URL (a libpq keyword/value string
// without dbname) and dropped afterwards: a copy of a template with the catalog's migrations
// applied (kCatalog), or empty (kEmpty, for the tests of migrating).
class TestDatabase final {
 public:
  enum class Schema { kEmpty, kCatalog };
  explicit TestDatabase(Schema schema = Schema::kCatalog);
  ~TestDatabase();
  const std::string& url() const { return url_; }
  // Its database name (a standby of the cluster has it too, under the same name).
  const std::string& name() const { return name_; }
  // Runs sql on the test database, returning the first column of the first row ("" if none).
  std::string Query(const std::string& sql) const;

 private:
  std::string admin_url_;  // the server's maintenance database
  std::string name_;       // this test's database
  std::string url_;        // connection string for it
};

// hotpathd's options and the catalog module's, as the tests start them.
struct ServerOptions : HotpathdOptions {
  catalog::CatalogModuleOptions catalog;  // the one module the tests serve
};

// hotpathd serving the catalog module built from options.catalog.
absl::StatusOr<std::unique_ptr<Hotpathd>> StartCatalogServer(ServerOptions options);

// A fresh database with hotpathd serving it on a free port, and a stub to call it.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Options for the server; tests may change them before StartServer.
  ServerOptions Options() const;
  void StartServer(ServerOptions options);

  std::unique_ptr<grpc::ClientContext> Context(absl::Duration deadline = absl::Seconds(10)) const;
  // Creates an item from DemoItem(n) with a sku unique to n.
  v1::Item CreateDemo(int n);
  // Imports DemoItem(first)... DemoItem(first + count - 1) in one ImportItems call.
  void ImportDemo(int first, int count);
  // The server's pool connections still leased once all came back or 2 s passed. A call the
  // client cancelled or timed out returns its connection asynchronously: after its worker has
  // rolled back, possibly after the client already holds its status.
  int LeasesLeftAfterSettling() const;

  std::unique_ptr<TestDatabase> database_;          // this test's database
  std::unique_ptr<Hotpathd> server_;                // the server under test
  catalog::CatalogModule* catalog_ = nullptr;       // its catalog module, owned by server_
  std::shared_ptr<grpc::Channel> channel_;          // to server_
  std::unique_ptr<v1::CatalogService::Stub> stub_;  // catalog calls over channel_
};

// The field paths of the google.rpc.BadRequest in status's details.
std::vector<std::string> ViolatedFields(const grpc::Status& status);

struct HttpReply {
  int status = 0;                              // HTTP status
  std::map<std::string, std::string> headers;  // by lower-case name (last value wins)
  std::string body;                            // as received (not unzipped)
};

// One HTTP/1.1 request to 127.0.0.1:port on a fresh connection.
HttpReply Http(int port, const std::string& method, const std::string& target,
               const std::string& body = "",
               const std::vector<std::pair<std::string, std::string>>& headers = {});

// A TCP connection from source (an address of 127.0.0.0/8) to 127.0.0.1:port with a 4 KiB
// receive buffer: its socket, to close.
int SmallWindowConnection(int port, const char* source = "127.0.0.1");
// A raw HTTP/1.1 client (SmallWindowConnection) that sends `GET target` and reads nothing:
// its socket.
int StalledGet(int port, const std::string& target, const char* source = "127.0.0.1");
// The status line the server sent on fd ("HTTP/1.1 200 OK"), read byte by byte.
std::string StatusLine(int fd);

// Built with a sanitizer that holds memory of its own in RSS (ASan's quarantine keeps 256 MiB of
// freed memory, TSan keeps shadow and history): bounds on memory growth mean nothing then.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerHoldsMemory = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizerHoldsMemory = true;
#else
inline constexpr bool kSanitizerHoldsMemory = false;
#endif
#else
inline constexpr bool kSanitizerHoldsMemory = false;
#endif
// Built with a sanitizer, hotpath's own code runs several times slower (TSan: ten times, on the
// cancellation path): bounds on how soon something happens are checked in the release build.
inline constexpr bool kSanitizerSlowsCode = kSanitizerHoldsMemory;

// A client-streaming call through the generic stub, for messages the typed stubs will not send
// (bytes that are no valid message, precompressed ones), driven one step at a time on its own
// completion queue. context outlives it.
class RawClientStream final {
 public:
  RawClientStream(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context,
                  const std::string& method);
  // Whether the call started.
  bool started() const { return started_; }
  // False once the server has ended the call (Finish says why).
  bool Write(const grpc::ByteBuffer& message);
  // Half-closes, then the answer into *reply and the call's status.
  grpc::Status Finish(grpc::ByteBuffer* reply);

 private:
  bool Await();  // the next completion's ok

  grpc::GenericStub stub_;                                        // makes the call
  grpc::CompletionQueue cq_;                                      // the call's completions
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;  // the call (destroyed before cq_)
  bool started_ = false;                                          // StartCall completed ok
};

// A duration in whole milliseconds, for a test's message.
inline std::int64_t Millis(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// A figure of this process's /proc/self/status in KiB ("VmRSS", "VmHWM"); 0 if absent.
long ProcStatusKib(const std::string& field);
// Starts this process's peak RSS ("VmHWM") over from its RSS now (/proc/self/clear_refs).
void ResetPeakRss();

// A TCP port free on 127.0.0.1 right now (for a process the test starts), never one this process
// has returned before; 0 if none could be found.
int FreePort();

// The value of keyword in a libpq keyword/value string of unquoted values ("" when absent).
std::string ConninfoValue(const std::string& conninfo, absl::string_view keyword);

// A TCP relay on 127.0.0.1 in front of the test cluster (the Unix socket a conninfo's host and
// port name) that can stop answering, as a database whose process or storage hung does: once
// silent, whatever reaches it (on connections open already, new ones, cancel requests) is taken
// by the kernel and neither passed on nor answered, and every connection stays open. Resume
// passes bytes on again (new upstream connections for those accepted meanwhile). The destructor
// closes every connection, so whatever still waits on one learns it ended.
class DatabaseProxy final {
 public:
  explicit DatabaseProxy(const std::string& conninfo, bool silent = false);
  ~DatabaseProxy();
  DatabaseProxy(const DatabaseProxy&) = delete;
  DatabaseProxy& operator=(const DatabaseProxy&) = delete;

  int port() const { return port_; }  // 0: it could not listen
  // conninfo's, with the host and port of this relay instead.
  std::string Conninfo() const;
  void Silence() { silent_.store(true); }
  // Each connection is closed, without a word, by the next bytes its server sends instead of
  // passing them on: the server dies under whatever it was sent (a statement, a new session's
  // start-up), as when its process or machine is killed. Until Resume.
  void DropAnswers() { dropping_.store(true); }
  void Resume() {
    silent_.store(false);
    dropping_.store(false);
  }
  // Connections accepted since start.
  int accepted() const { return accepted_.load(); }

 private:
  struct Pair {
    int client;    // accepted
    int upstream;  // to the cluster; -1 until bytes may flow
  };
  void Run();

  std::string conninfo_;               // as given
  std::string upstream_host_;          // the cluster's socket directory, or IPv4 address
  std::string upstream_port_;          // and port
  int listener_ = -1;                  // on 127.0.0.1
  int port_ = 0;                       // listener_'s
  std::atomic<bool> silent_;           // pass nothing on
  std::atomic<bool> dropping_{false};  // close a connection instead of passing its answer on
  std::atomic<bool> stop_{false};      // ends thread_
  std::atomic<int> accepted_{0};       // connections accepted
  std::vector<Pair> pairs_;            // open; thread_'s alone
  std::thread thread_;                 // accepts and relays
};

// Runs a shell command, returning what it printed (stdout and stderr); *exit_code if given.
std::string RunCommand(const std::string& command, int* exit_code = nullptr);

// Where every thread of this process is, for a test's message when something hangs: one line per
// distinct stack (how many threads share it, their name, its innermost functions), as gdb sees
// them; what went wrong instead when gdb cannot attach.
std::string ThreadStacks();

// The whole text of a file; empty if it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// scripts/pg command (start, stop, crash...) on the shared test cluster (HOTPATH_TEST_PG_SCRIPT,
// HOTPATH_TEST_PG_BASE): its exit status.
int TestCluster(const std::string& command);

// The outage tests' gRPC load: threads calling through channel until stopped, the even ones
// creating DemoItem(1), DemoItem(2)... and the odd ones searching (a database read every call),
// each call with deadline, pausing 20 ms after a failure. Every call's outcome goes to on_call
// (status, the created id or 0, when the call started and ended), on the calling thread.
class GrpcLoad final {
 public:
  using OnCall = std::function<void(const grpc::Status& status, std::int64_t created,
                                    absl::Time start, absl::Time end)>;
  GrpcLoad(const std::shared_ptr<grpc::Channel>& channel, int threads, absl::Duration deadline,
           OnCall on_call);
  ~GrpcLoad();  // Stop()
  GrpcLoad(const GrpcLoad&) = delete;
  GrpcLoad& operator=(const GrpcLoad&) = delete;
  // Ends every thread's loop after its call in flight, and joins them.
  void Stop();

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> next_item_{1};
  std::vector<std::thread> threads_;
};

// A streaming standby of the test cluster, made by pg_basebackup -R from HOTPATH_TEST_PG_BASE
// (scripts/pg standby, HOTPATH_TEST_PG_SCRIPT) on a socket and port of its own: up to two per
// test process (each test case runs in a process of its own under ctest), removed when it exits.
class TestStandby final {
 public:
  static constexpr int kMax = 2;
  // The test process's standby number n (0 <= n < kMax), made on first use.
  static TestStandby& Get(int n = 0);
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // Its socket directory and port.
  std::string host() const { return base_ + "/socket"; }
  int port() const { return port_; }
  // libpq keyword/value string for database dbname on the standby.
  std::string Url(const std::string& dbname) const;
  // Runs sql on its database dbname: what psql printed (the first column, one line per row).
  std::string Query(const std::string& sql, const std::string& dbname = "postgres") const;
  // Streams from the server conninfo names from now on ("": from none, replaying only what it
  // has), once this returns ""; otherwise what went wrong.
  std::string StreamFrom(const std::string& conninfo) const;
  // Makes it a primary (scripts/pg promote); what the script printed, "" when it succeeded.
  std::string Promote() const;

 private:
  explicit TestStandby(int n);
  void Remove();

  const std::string base_;  // its data, socket and log
  const int port_;          // its port (on its own socket)
  bool ok_ = false;
  std::string error_;  // what scripts/pg said when it failed
};

// Whether GET target on http_port answers status within `within`, asked every 25 ms (a port that
// does not listen yet is one that does not answer yet): for a process just started.
bool AnswersWithin(int http_port, const std::string& target, int status,
                   absl::Duration within = absl::Seconds(5));

// The sum of a metric's samples on a server's /metrics whose line starts with name and contains
// every one of labels (e.g. {"grpc_method=\"GetItem\""}); -1 if there is none.
double Metric(int http_port, const std::string& name, const std::vector<std::string>& labels = {});

// A program run as a child of this process (argv[0] is its path), its output in log_file. Killed
// (SIGKILL) when destroyed if it is still running.
class ChildProcess final {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // Waits for the process to end: its wait status, or nullopt if it is still running at timeout.
  std::optional<int> Wait(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// hotpathd's binary as a process of its own on free ports (for what only a process shows:
// signals, a kill), serving database_url with flags added to the test defaults.
class HotpathdProcess final {
 public:
  HotpathdProcess(const std::string& binary, const std::string& database_url,
                  const std::vector<std::string>& flags, const std::string& log_file);
  // Polls /readyz until it answers 200.
  bool WaitReady(absl::Duration timeout) const;
  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  ChildProcess& process() { return *process_; }

 private:
  int grpc_port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// Debian's nginx with deploy/nginx/hotpath.conf as it is, in front of some replicas, its prefix
// (configuration, logs, cache, temporary files) in a directory of its own.
class Nginx final {
 public:
  struct Site {
    std::vector<std::string> grpc_replicas;  // host:port of each replica's gRPC port [down]
    std::vector<std::string> http_replicas;  // host:port of each replica's HTTP port [down]
    std::string grpc_listen;                 // contents of hotpath-grpc-listen.conf
    std::string http_listen;                 // contents of hotpath-http-listen.conf
  };
  // One replica, server, behind nginx listening on 127.0.0.1: gRPC (h2c) on grpc_port, HTTP on
  // http_port.
  static Site InFrontOf(const Hotpathd& server, int grpc_port, int http_port);
  // Starts it; an error if nginx refuses the configuration.
  static absl::StatusOr<std::unique_ptr<Nginx>> Start(const std::string& source_dir,
                                                      const Site& site);
  ~Nginx();  // stops it (SIGQUIT) and removes its directory
  // Writes the site's files again and reloads nginx (new workers; the old ones finish their
  // calls); an error if nginx refuses the new configuration.
  absl::Status Reload(const Site& site);

  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit Nginx(std::filesystem::path dir) : dir_(std::move(dir)) {}
  void WriteSite(const Site& site) const;
  std::string Command(const std::string& args) const;  // nginx with this prefix, then args
  std::filesystem::path dir_;
};

// A self-signed certificate for 127.0.0.1 and localhost with its key (PEM), written into dir as
// cert.pem and key.pem; false if openssl failed.
bool WriteSelfSignedCertificate(const std::filesystem::path& dir);

}  // namespace hotpath::testing
