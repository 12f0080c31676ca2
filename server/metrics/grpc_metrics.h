// gRPC metrics under go-grpc-prometheus's names, so existing dashboards and alerts work: for a
// server grpc_server_started_total, grpc_server_handled_total (with grpc_code names such as OK,
// NotFound), grpc_server_msg_received_total, grpc_server_msg_sent_total,
// grpc_server_handling_seconds; for a client (the standalone gateway's calls to its upstream) the
// same as grpc_client_*.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <shared_mutex>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace hotpath::metrics {

// grpc_code label values, indexed by grpc::StatusCode (go-grpc-prometheus uses these names).
const std::array<const char*, 17>& GrpcCodeNames();

// One method's series, resolved once so a call only touches atomics.
struct MethodMetrics {
  prometheus::Counter* started;                  // grpc_<side>_started_total
  std::array<prometheus::Counter*, 17> handled;  // grpc_<side>_handled_total by code
  prometheus::Counter* msg_received;             // grpc_<side>_msg_received_total
  prometheus::Counter* msg_sent;                 // grpc_<side>_msg_sent_total
  prometheus::Histogram* handling_seconds;       // grpc_<side>_handling_seconds
};

class GrpcMetrics final {
 public:
  enum class Side { kServer, kClient };
  // constant: labels every series carries (a client's upstream, say).
  explicit GrpcMetrics(prometheus::Registry& registry, Side side = Side::kServer,
                       const prometheus::Labels& constant = {});

  // Creates every series of one method at zero ("/pkg.Service/Method").
  void InitializeMethod(const std::string& full_method, grpc::internal::RpcMethod::RpcType type);
  // Every method of the services named (looked up in the generated descriptor pool).
  void InitializeServices(const std::vector<std::string>& service_names);

  // The method's series, created on first use for methods not initialised (health, reflection).
  // Called twice per call (timing and metrics interceptors): a shared lock, no allocation.
  MethodMetrics& For(const char* full_method, grpc::internal::RpcMethod::RpcType type);

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& msg_received_;
  prometheus::Family<prometheus::Counter>& msg_sent_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  std::shared_mutex mu_;  // guards methods_; exclusive only to add a method
  absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>> methods_;  // by full name
};

}  // namespace hotpath::metrics
