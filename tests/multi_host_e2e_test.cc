// A database URL naming several hosts (libpq's multi-host form, as README's "Failover" says to
// deploy it) whose first host does not answer at all: a machine gone, its address still listed.
// libpq waits connect_timeout for it on every connection it opens with the hosts in the order
// given; hotpathd tries the host its last connection reached first (server/db/host_order.h), so it
// waits for the silent one once, not once per connection.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

// A TCP listener on 127.0.0.1 that accepts connections and never says a word, like a PostgreSQL
// whose machine froze: libpq's startup packet is never answered. Counts what it accepted.
class SilentHost final {
 public:
  SilentHost() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 || listen(fd_, 64) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      pollfd waiting{.fd = fd_, .events = POLLIN, .revents = 0};
      while (!stop_.load()) {
        if (poll(&waiting, 1, 20) != 1) continue;
        const int accepted = accept(fd_, nullptr, nullptr);
        if (accepted < 0) continue;
        std::lock_guard lock(mu_);
        held_.push_back(accepted);
      }
    });
  }
  ~SilentHost() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    for (const int fd : held_) close(fd);
    close(fd_);
  }
  int port() const { return port_; }
  int accepted() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(held_.size());
  }

 private:
  int fd_ = -1;                    // the listening socket
  int port_ = 0;                   // its port (0: it could not listen)
  std::atomic<bool> stop_{false};  // tells thread_ to end
  mutable std::mutex mu_;          // guards held_
  std::vector<int> held_;          // every connection accepted, held open unanswered
  std::thread thread_;             // accepts
};

using MultiHostTest = ServerTest;

TEST_F(MultiHostTest, AHostThatDoesNotAnswerIsWaitedForOnceNotOncePerConnection) {
  SilentHost silent;
  ASSERT_NE(silent.port(), 0);
  const std::string database = database_->url();
  ServerOptions options = Options();
  options.database.database_url =
      absl::StrCat("host=127.0.0.1,", ConninfoValue(database, "host"), " port=", silent.port(), ",",
                   ConninfoValue(database, "port"), " user=postgres dbname=", database_->name(),
                   " target_session_attrs=read-write");
  options.database.connect_timeout = absl::Seconds(2);  // libpq's least
  options.database.max_size = 8;
  StartServer(options);
  // Before its first connection it asked each host whether it takes writes: the silent one once.
  EXPECT_EQ(silent.accepted(), 1);
  const double opened = Metric(server_->http_port(), "hotpath_db_pool_opened_total");

  // Eight threads creating and searching need more connections than were open: each goes
  // straight to the host the others reached.
  std::atomic<int> ok{0};
  {
    GrpcLoad load(channel_, 8, absl::Seconds(10),
                  [&](const grpc::Status& status, std::int64_t, absl::Time, absl::Time) {
                    if (status.ok()) ++ok;
                  });
    for (int i = 0; i < 200 && ok.load() < 400; ++i) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(ok.load(), 1);
  EXPECT_GT(Metric(server_->http_port(), "hotpath_db_pool_opened_total"), opened)
      << "the load opened no connection";
  EXPECT_EQ(silent.accepted(), 1) << "new connections tried the silent host first again";
}

}  // namespace
}  // namespace hotpath::testing
