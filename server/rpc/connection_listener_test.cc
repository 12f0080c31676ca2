// hotpath's own gRPC listener (behind every plaintext AsyncServer): connections reach gRPC, and
// closing it under a stream of new connections resets none that the kernel had let in: each is
// refused, or accepted and served.
#include "server/rpc/connection_listener.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/rpc/async_server.h"

namespace hotpath::rpc {
namespace {

// A plaintext AsyncServer (health and reflection only) on a free loopback port: its connections
// come through a ConnectionListener, which StopAccepting closes.
std::unique_ptr<AsyncServer> StartServer() {
  AsyncServerOptions options;
  options.address = "127.0.0.1:0";
  options.completion_queues = 1;
  auto server = std::make_unique<AsyncServer>(options, std::vector<RpcModule*>{});
  EXPECT_TRUE(server->Start().ok());
  return server;
}

// Under ThreadSanitizer every connection gRPC tears down costs seconds of race reports on gRPC's
// own (suppressed) races: fewer rounds and attempts there, or the test takes many minutes.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
constexpr bool kThreadSanitizer = __has_feature(thread_sanitizer);
#else
constexpr bool kThreadSanitizer = false;
#endif

// What became of one connection attempt.
enum class Outcome { kRefused, kServed, kReset, kSilent };

// Connects to port, sends the HTTP/2 client preface and an empty SETTINGS frame, and waits for
// the server's first bytes (its SETTINGS).
Outcome Attempt(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return Outcome::kRefused;
  }
  static constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  Outcome outcome = Outcome::kSilent;
  if (send(fd, kPreface, sizeof kPreface - 1, MSG_NOSIGNAL) < 0) {
    outcome = Outcome::kReset;
  } else {
    pollfd entry{fd, POLLIN, 0};
    if (poll(&entry, 1, 5000) == 1) {
      char byte;
      outcome = recv(fd, &byte, 1, 0) == 1 ? Outcome::kServed : Outcome::kReset;
    }
  }
  close(fd);
  return outcome;
}

TEST(ConnectionListenerTest, ConnectionsReachGrpcUntilItClosesAndPeersNameTheClient) {
  std::unique_ptr<AsyncServer> server = StartServer();
  EXPECT_EQ(Attempt(server->port()), Outcome::kServed);
  server->StopAccepting(absl::Now());  // closes the listener and returns
  EXPECT_EQ(Attempt(server->port()), Outcome::kRefused);
  EXPECT_EQ(ConnectionListener::PeerAddress("ipv4:10.0.0.7:1234"), "ipv4:10.0.0.7:1234");
  EXPECT_EQ(ConnectionListener::PeerAddress("fd:notanumber"), "fd:notanumber");
}

TEST(ConnectionListenerTest, BindRefusesWhatIsNotHostAndPort) {
  EXPECT_FALSE(ConnectionListener::Bind("127.0.0.1").ok());
  EXPECT_FALSE(ConnectionListener::Bind("127.0.0.1:70000").ok());
  auto wildcard = ConnectionListener::Bind("0.0.0.0:0");
  ASSERT_TRUE(wildcard.ok()) << wildcard.status();
  EXPECT_GT((*wildcard)->port(), 0);
}

// A stream of new connections while the listener closes: each one is refused or served, none is
// accepted by the kernel and then reset (what a proxy that already sent a request on it could not
// retry). Several rounds, closing at different moments.
TEST(ConnectionListenerTest, ClosingUnderNewConnectionsResetsNone) {
  int served = 0;
  int refused = 0;
  const int rounds = kThreadSanitizer ? 1 : 5;
  const int most_attempts = kThreadSanitizer ? 10 : 100000;  // per thread, before the close
  for (int round = 0; round < rounds; ++round) {
    std::unique_ptr<AsyncServer> server = StartServer();
    const int port = server->port();
    std::atomic<bool> closed{false};
    std::vector<std::thread> clients;
    std::vector<std::vector<Outcome>> outcomes(4);
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] {
        // Until one is refused after the close, so attempts straddle it.
        const absl::Time give_up = absl::Now() + absl::Seconds(10);
        bool after = false;
        while (absl::Now() < give_up) {
          if (!closed.load() && static_cast<int>(outcomes[t].size()) >= most_attempts) {
            absl::SleepFor(absl::Milliseconds(1));  // enough before the close: wait for it
            continue;
          }
          const Outcome outcome = Attempt(port);
          outcomes[t].push_back(outcome);
          if (after && outcome == Outcome::kRefused) break;
          after = closed.load();
        }
      });
    }
    absl::SleepFor(absl::Milliseconds(20 + 15 * round));
    server->StopAccepting(absl::Now());
    closed = true;
    for (auto& client : clients) client.join();
    for (const auto& each : outcomes) {
      for (const Outcome outcome : each) {
        EXPECT_NE(outcome, Outcome::kReset) << "round " << round;
        EXPECT_NE(outcome, Outcome::kSilent) << "round " << round;
        served += outcome == Outcome::kServed;
        refused += outcome == Outcome::kRefused;
      }
    }
  }
  EXPECT_GT(served, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace hotpath::rpc
