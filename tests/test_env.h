// What the end-to-end tests share: a fresh database per test, and a hotpathd serving it in-process.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
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

// A figure of this process's /proc/self/status in KiB ("VmRSS", "VmHWM"); 0 if absent.
long ProcStatusKib(const std::string& field);

// A TCP port free on 127.0.0.1 right now (for a process the test starts).
int FreePort();

// Runs a shell command, returning what it printed (stdout and stderr); *exit_code if given.
std::string RunCommand(const std::string& command, int* exit_code = nullptr);

}  // namespace hotpath::testing
