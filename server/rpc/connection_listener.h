// A plaintext gRPC listener the server owns: it accepts TCP connections itself and hands each to
// gRPC (grpc::AddInsecureChannelFromFd), so it can stop taking new connections while the server
// still serves the ones it has. gRPC 1.51 has no other way to stop listening than Server::Shutdown,
// and a call that reaches a server shutting down is cancelled without running: a proxy that put it
// on a pooled connection as the GOAWAY was in flight (nginx's grpc_pass) fails it. With this
// listener closed first, the connections left end by max_connection_age, with a GOAWAY sent while
// every call is still served (see AsyncServer::StopAccepting).
//
// It also keeps accepting after running out of descriptors (it waits and tries again), where
// gRPC 1.51's own listener stops for good (CVE-2023-4785).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hotpath::rpc {

// The host of "host:port" or "[v6]:port", without the brackets.
std::string HostOf(const std::string& address);

class ConnectionListener final {
 public:
  // Binds address ("host:port", "[v6]:port"; 0.0.0.0 or [::]: every address, IPv6 and IPv4;
  // port 0 picks a free one) and listens. Start hands the connections to a server.
  static absl::StatusOr<std::unique_ptr<ConnectionListener>> Bind(const std::string& address);
  ~ConnectionListener();

  int port() const { return port_; }
  // Accepts connections on a thread of its own and gives each to server, until Close. The server
  // must be started, and not shut down before Close returns.
  void Start(grpc::Server* server);
  // Stops accepting and closes the listening socket. New connections are refused; a connection
  // whose handshake the kernel already completed (or completes within app::kHandshakeWait) is
  // accepted and handed to the server first, so none is reset after its client sent a request.
  // Connections already accepted stay with the server.
  void Close();
  // Connections accepted that are still open (gRPC closes them; a descriptor gone, or now another
  // socket, is a connection closed).
  int OpenConnections();
  // The client's address ("ipv4:10.0.0.7:51234", "ipv6:[::1]:51234") for the gRPC peer string of
  // a connection from any listener of the process (gRPC names those "fd:12"); any other peer
  // string comes back as it is.
  static std::string PeerAddress(std::string_view grpc_peer);

 private:
  ConnectionListener(int fd, int port, int wake_fd);
  // The accepting thread's loop.
  void Accept();
  // Accepts every connection queued and hands it to server_; false when out of descriptors.
  bool AcceptQueued();

  int fd_ = -1;                     // the listening socket; -1 once closed
  int port_ = 0;                    // the port bound
  int wake_fd_ = -1;                // eventfd: wakes the accepting thread to stop
  grpc::Server* server_ = nullptr;  // where connections go; set by Start
  bool starved_ = false;            // the last accept failed for want of descriptors or memory
  std::thread acceptor_;            // runs Accept between Start and Close
};

}  // namespace hotpath::rpc
