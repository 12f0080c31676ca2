#include "server/rpc/connection_listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grpcpp/server_posix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/app/listening_socket.h"
#include "server/app/named_thread.h"

namespace hotpath::rpc {
namespace {

// A listening socket on address, or -1 (errno set).
int ListenOn(const sockaddr* address, socklen_t length) {
  const int fd = socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  const int on = 1;
  const int off = 0;
  // Accepted sockets inherit TCP_NODELAY: small answers leave at once, as with gRPC's listener.
  bool ok = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0;
  if (ok && address->sa_family == AF_INET6) {
    ok = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0;
  }
  if (ok && bind(fd, address, length) == 0 && listen(fd, SOMAXCONN) == 0) return fd;
  const int error = errno;
  close(fd);
  errno = error;
  return -1;
}

// What gRPC's peer string says of an address: "ipv4:10.0.0.7:51234", "ipv6:[::1]:51234".
std::string PeerString(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    return absl::StrCat("ipv4:", text, ":", ntohs(v4.sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      inet_ntop(AF_INET, &v6.sin6_addr.s6_addr[12], text, sizeof text);
      return absl::StrCat("ipv4:", text, ":", ntohs(v6.sin6_port));
    }
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    return absl::StrCat("ipv6:[", text, "]:", ntohs(v6.sin6_port));
  }
  return "unknown";
}

// The socket's cookie, unique to it for the life of the system; 0 when fd is no socket.
std::uint64_t CookieOf(int fd) {
  std::uint64_t cookie = 0;
  socklen_t length = sizeof cookie;
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &length) != 0) return 0;
  return cookie;
}

// The connections every listener of the process accepted, by descriptor: descriptors are the
// process's, so one table serves them all. An entry stays after gRPC closes its descriptor (until
// the number is accepted again or its listener counts what is open); its cookie tells.
struct Accepted {
  std::uint64_t cookie = 0;                      // the socket's SO_COOKIE when accepted
  std::string peer;                              // the client's address, as gRPC would write it
  const ConnectionListener* listener = nullptr;  // which accepted it
};
struct AcceptedTable {
  std::mutex mu;                             // guards by_fd
  absl::flat_hash_map<int, Accepted> by_fd;  // see above
};
AcceptedTable& Table() {
  static auto* table = new AcceptedTable;  // never destroyed: listeners may outlive statics
  return *table;
}

}  // namespace

std::string HostOf(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

absl::StatusOr<std::unique_ptr<ConnectionListener>> ConnectionListener::Bind(
    const std::string& address) {
  const std::size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("not host:port: ", address));
  }
  const std::string host = HostOf(address);
  int fd = -1;
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "*") {
    // Every address: one IPv6 socket that takes IPv4 too, or IPv4 alone without IPv6.
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_any;
    any6.sin6_port = htons(static_cast<std::uint16_t>(port));
    fd = ListenOn(reinterpret_cast<sockaddr*>(&any6), sizeof any6);
    if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
      sockaddr_in any4{};
      any4.sin_family = AF_INET;
      any4.sin_addr.s_addr = htonl(INADDR_ANY);
      any4.sin_port = htons(static_cast<std::uint16_t>(port));
      fd = ListenOn(reinterpret_cast<sockaddr*>(&any4), sizeof any4);
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int error = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
        error != 0) {
      return absl::InvalidArgumentError(absl::StrCat(host, ": ", gai_strerror(error)));
    }
    for (addrinfo* each = found; each != nullptr && fd < 0; each = each->ai_next) {
      fd = ListenOn(each->ai_addr, each->ai_addrlen);
    }
    freeaddrinfo(found);
  }
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", address, ": ", strerror(errno)));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                        : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  return std::unique_ptr<ConnectionListener>(new ConnectionListener(fd, bound_port, wake_fd));
}

ConnectionListener::ConnectionListener(int fd, int port, int wake_fd)
    : fd_(fd), port_(port), wake_fd_(wake_fd) {}

ConnectionListener::~ConnectionListener() {
  Close();
  if (wake_fd_ >= 0) close(wake_fd_);
  AcceptedTable& table = Table();
  std::lock_guard lock(table.mu);
  absl::erase_if(table.by_fd, [this](const auto& entry) { return entry.second.listener == this; });
}

void ConnectionListener::Start(grpc::Server* server) {
  server_ = server;
  acceptor_ = app::NamedThread("hotpath-accept", [this] { Accept(); });
}

void ConnectionListener::Close() {
  if (fd_ < 0) return;
  if (acceptor_.joinable()) {
    const std::uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
    acceptor_.join();
  }
  if (server_ != nullptr) {
    // Closing resets the connections queued for accept (nginx may have sent a request on one):
    // new SYNs are dropped first, and what is queued or completes meanwhile is accepted and served.
    if (app::DropNewConnections(fd_)) {
      const absl::Time until = absl::Now() + app::kHandshakeWait;
      do {
        AcceptQueued();
        absl::SleepFor(absl::Milliseconds(1));
      } while (absl::Now() < until);
    }
    AcceptQueued();
  }
  close(fd_);
  fd_ = -1;
}

bool ConnectionListener::AcceptQueued() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t length = sizeof peer;
    const int fd =
        accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays queued until a descriptor or
      // memory is free. Said once, not at every try.
      if (!starved_) {
        std::cerr << "hotpathd: gRPC listener: accept: " << strerror(errno)
                  << "; trying again every 100 ms\n";
      }
      starved_ = true;
      return false;
    }
    starved_ = false;
    {
      AcceptedTable& table = Table();
      std::lock_guard lock(table.mu);
      table.by_fd[fd] = Accepted{CookieOf(fd), PeerString(peer), this};
    }
    grpc::AddInsecureChannelFromFd(server_, fd);
  }
}

void ConnectionListener::Accept() {
  pollfd waits[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  // After running out of descriptors, only the wake-up is watched for a while: the connection
  // waiting in the backlog would wake poll at once, again and again.
  int backoff_ms = -1;
  for (;;) {
    waits[0].revents = waits[1].revents = 0;
    const int ready = poll(backoff_ms < 0 ? waits : waits + 1, backoff_ms < 0 ? 2 : 1, backoff_ms);
    if (ready < 0 && errno != EINTR) {
      std::cerr << "hotpathd: gRPC listener: poll: " << strerror(errno) << "\n";
      return;
    }
    if (waits[1].revents != 0) return;
    // Out of descriptors: try again in a moment.
    backoff_ms = AcceptQueued() ? -1 : 100;
  }
}

int ConnectionListener::OpenConnections() {
  AcceptedTable& table = Table();
  std::lock_guard lock(table.mu);
  absl::erase_if(table.by_fd, [this](const auto& entry) {
    return entry.second.listener == this && CookieOf(entry.first) != entry.second.cookie;
  });
  int open = 0;
  for (const auto& [fd, accepted] : table.by_fd) open += accepted.listener == this;
  return open;
}

std::string ConnectionListener::PeerAddress(std::string_view grpc_peer) {
  int fd = -1;
  if (!grpc_peer.starts_with("fd:") ||
      !absl::SimpleAtoi(absl::string_view(grpc_peer.data() + 3, grpc_peer.size() - 3), &fd)) {
    return std::string(grpc_peer);
  }
  AcceptedTable& table = Table();
  std::lock_guard lock(table.mu);
  const auto found = table.by_fd.find(fd);
  if (found == table.by_fd.end()) return std::string(grpc_peer);
  return found->second.peer;
}

}  // namespace hotpath::rpc
