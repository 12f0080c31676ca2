// The standard health-checking service, grpc.health.v1.Health (Check and Watch), on the async
// completion-queue API.
//
// gRPC's built-in one (EnableDefaultHealthCheckService) is a callback service, and one callback
// service is enough for gRPC to start a callback queue with polling threads of its own. Those
// threads picked up a quarter of the transport work under load and handed every call over to the
// completion-queue threads: a futex wake-up per call, 70k instead of 89k cached GetItem calls/s
// (bench/NOTES.md). This one runs on the server's own queues.
//
// Health calls bypass the CallGate: probes need no token and are never shed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "grpc/health/v1/health.grpc.pb.h"
#include "server/rpc/async_server.h"
#include "server/rpc/unary_call.h"

namespace hotpath::rpc {

class HealthService final : public RpcModule {
 public:
  HealthService();
  ~HealthService() override;

  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  grpc::Service* service() override { return raw_.service(); }
  std::string name() const override { return "grpc.health.v1.Health"; }
  void Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) override;

  // service: a full service name, or "" for the server as a whole. Check answers NOT_FOUND for a
  // service never set; Watch streams SERVICE_UNKNOWN until it is.
  void SetServingStatus(const std::string& service, bool serving);
  // Every service set so far, "" included.
  void SetServingStatus(bool serving);
  // Every service to NOT_SERVING, told to each Watch stream, which then ends (UNAVAILABLE); later
  // Watch calls end at once. Before the server's Shutdown: a watch would otherwise hold it for the
  // whole grace period.
  void Shutdown();

 private:
  using Response = ::grpc::health::v1::HealthCheckResponse;
  using Request = ::grpc::health::v1::HealthCheckRequest;
  class WatchCall;

  void Check(const Request& request, UnaryResponder<Response> responder);
  Response::ServingStatus StatusOfLocked(const std::string& service) const;
  // Tells every open Watch stream its service's status; end: and then to finish.
  void NotifyWatchersLocked(bool end);
  // Registers call and tells it the current status of its service; false after Shutdown.
  bool AddWatcher(WatchCall* call);
  void RemoveWatcher(WatchCall* call);

  RawServiceOf<::grpc::health::v1::Health::Service> raw_;  // Check and Watch, served raw
  const google::protobuf::MethodDescriptor* watch_;        // Watch, for its method index
  CallOptions options_;                                    // the server's, without the gate
  UnaryCall<Request, Response>::Method check_;             // Check's registration
  mutable std::mutex mu_;                                  // guards the three below
  std::unordered_map<std::string, bool> serving_;          // service -> serving
  std::unordered_set<WatchCall*> watchers_;                // open Watch streams
  bool shut_down_ = false;                                 // Shutdown ran
};

}  // namespace hotpath::rpc
