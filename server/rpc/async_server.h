// A gRPC server on the async completion-queue API: one completion queue and polling thread per
// core, services plugged in as RpcModules, health checking (server/rpc/health.h) and reflection
// (server/rpc/reflection.h) built in.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/rpc/call_base.h"

namespace hotpath::rpc {

class ConnectionListener;
class HealthService;
class ReflectionService;

// One service's async bindings.
class RpcModule {
 public:
  virtual ~RpcModule() = default;
  // The generated AsyncService to register.
  virtual grpc::Service* service() = 0;
  // Its full name, e.g. "hotpath.catalog.v1.CatalogService", for health checking.
  virtual std::string name() const = 0;
  // Registers options.pending_calls pending calls of each of its methods on cq.
  virtual void Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) = 0;
};

// How the server keeps connections healthy and bounded (gRPC channel arguments).
struct ConnectionOptions {
  // Ping an idle connection this often, and drop it when the ping is not answered in time.
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Fewest time between client pings the server tolerates (more often: GOAWAY).
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  // Close connections older than this (after letting their calls finish for
  // max_connection_age_grace), so clients rebalance across replicas. InfiniteDuration: never.
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // Close connections without calls for this long.
  absl::Duration max_connection_idle = absl::Minutes(10);
  // Concurrent streams per connection.
  int max_concurrent_streams = 256;
  // Largest request metadata (headers), in bytes; beyond it the call fails RESOURCE_EXHAUSTED.
  int max_metadata_bytes = 16 * 1024;
};

struct AsyncServerOptions {
  // host:port to listen on; port 0 picks a free one (see AsyncServer::port). Plaintext: hotpath's
  // own listener hands connections to gRPC (connection_listener.h); TLS: gRPC's.
  std::string address = "0.0.0.0:50051";
  // Completion queues, each with one polling thread. 0: one per usable core (app::UsableCores:
  // the affinity mask and the cgroup's CPU quota; the best balance measured, and many streams on
  // few connections gain from more, see bench/NOTES.md).
  int completion_queues = 0;
  // Pending calls per method and queue, stream compression threshold.
  CallOptions calls;
  // Largest message accepted or sent, in bytes. Default 4 MiB.
  int max_message_bytes = 4 * 1024 * 1024;
  // Keepalive, connection age and stream limits.
  ConnectionOptions connections;
  // TLS: PEM certificate chain and private key files; empty: plaintext. With tls_client_ca_file,
  // clients must also present a certificate signed by that CA (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

// The deadline of a call; InfiniteFuture when the client set none.
absl::Time DeadlineOf(const grpc::ServerContext& context);

class AsyncServer final {
 public:
  using InterceptorFactories =
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>;

  // interceptors run on every call of every module, in this order.
  AsyncServer(AsyncServerOptions options, std::vector<RpcModule*> modules,
              InterceptorFactories interceptors = {});
  ~AsyncServer();

  // Binds, arms every module's methods and starts the polling threads. Health: SERVING.
  absl::Status Start();
  int port() const { return port_; }
  // A channel to this server that never leaves the process (after Start).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Whether the listener still takes new connections: a fresh TCP connection to it must be
  // answered (gRPC's HTTP/2 settings, or a TLS alert) or closed within timeout. gRPC 1.51's own
  // listener (TLS) stops accepting for good after an accept fails for want of descriptors
  // (CVE-2023-4785), while the connections it has keep working; readiness asks this. Ours
  // (plaintext) waits and accepts again.
  absl::Status CheckListener(absl::Duration timeout) const;

  // Health to NOT_SERVING (every service), still serving calls.
  void SetNotServing();
  // Stops taking new connections and waits, until `until` at most, for the open ones to close by
  // max_connection_age: each gets its GOAWAY while the server still serves every call, so a call a
  // client (or a proxy's pooled connection) sends as the GOAWAY is in flight still runs. Shutdown
  // instead refuses such a call (gRPC 1.51 cancels calls that reach a server shutting down).
  // Returns at once when the connections cannot all age out by `until` (max_connection_age too
  // long for it), and with TLS, where gRPC keeps its own listener (it stops at Shutdown).
  void StopAccepting(absl::Time until);
  // Health to NOT_SERVING, stop accepting, give in-flight calls until grace to finish, then cancel
  // the rest. Polling goes on (work still on executors may finish calls); see StopPolling.
  void Shutdown(absl::Duration grace);
  // Waits (a few seconds at most) until no call is in progress, then shuts the completion queues
  // down, drains them and joins the polling threads. Call after Shutdown and after every executor
  // that may finish calls has stopped.
  void StopPolling();

 private:
  const AsyncServerOptions options_;               // as given
  LiveCalls live_calls_;                           // calls in progress, for StopPolling
  CallOptions calls_;                              // options_.calls, counting into live_calls_
  std::unique_ptr<HealthService> health_;          // grpc.health.v1.Health; outlives every call
  std::unique_ptr<ReflectionService> reflection_;  // grpc.reflection.v1 and v1alpha; likewise
  std::vector<RpcModule*> modules_;    // the services, not owned, health_ and reflection_
  InterceptorFactories interceptors_;  // handed to the builder at Start
  // Queues before the server: the server must be destroyed first.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;  // one per polling thread
  std::unique_ptr<ConnectionListener> listener_;  // plaintext: ours, see connection_listener.h
  std::unique_ptr<grpc::Server> server_;          // null until Start
  std::vector<std::thread> pollers_;              // one per queue
  int port_ = 0;                                  // the bound port
  bool shut_down_ = false;                        // Shutdown ran
};

}  // namespace hotpath::rpc
