#include "server/metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include <mutex>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/metrics/metrics_registry.h"

namespace hotpath::metrics {
namespace {

const char* TypeName(grpc::internal::RpcMethod::RpcType type) {
  switch (type) {
    case grpc::internal::RpcMethod::NORMAL_RPC:
      return "unary";
    case grpc::internal::RpcMethod::CLIENT_STREAMING:
      return "client_stream";
    case grpc::internal::RpcMethod::SERVER_STREAMING:
      return "server_stream";
    case grpc::internal::RpcMethod::BIDI_STREAMING:
      return "bidi_stream";
  }
  return "unary";
}

std::string Named(GrpcMetrics::Side side, const char* what) {
  return absl::StrCat(side == GrpcMetrics::Side::kServer ? "grpc_server_" : "grpc_client_", what);
}

std::string Helped(GrpcMetrics::Side side, const char* format) {
  return absl::StrReplaceAll(format,
                             {{"%s", side == GrpcMetrics::Side::kServer ? "server" : "client"}});
}

}  // namespace

const std::array<const char*, 17>& GrpcCodeNames() {
  static const std::array<const char*, 17> names = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return names;
}

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry, Side side,
                         const prometheus::Labels& constant)
    : started_(prometheus::BuildCounter()
                   .Name(Named(side, "started_total"))
                   .Help(Helped(side, "Total number of RPCs started on the %s."))
                   .Labels(constant)
                   .Register(registry)),
      handled_(prometheus::BuildCounter()
                   .Name(Named(side, "handled_total"))
                   .Help(Helped(side,
                                "Total number of RPCs completed on the %s, regardless of "
                                "success or failure."))
                   .Labels(constant)
                   .Register(registry)),
      msg_received_(
          prometheus::BuildCounter()
              .Name(Named(side, "msg_received_total"))
              .Help(Helped(side, "Total number of RPC stream messages received on the %s."))
              .Labels(constant)
              .Register(registry)),
      msg_sent_(prometheus::BuildCounter()
                    .Name(Named(side, "msg_sent_total"))
                    .Help(Helped(side, "Total number of gRPC stream messages sent by the %s."))
                    .Labels(constant)
                    .Register(registry)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name(Named(side, "handling_seconds"))
                            .Help(side == Side::kServer
                                      ? "Histogram of response latency (seconds) of gRPC that had "
                                        "been application-level handled by the server."
                                      : "Histogram of response latency (seconds) of the gRPC "
                                        "until it is finished by the application.")
                            .Labels(constant)
                            .Register(registry)) {}

void GrpcMetrics::InitializeMethod(const std::string& full_method,
                                   grpc::internal::RpcMethod::RpcType type) {
  For(full_method.c_str(), type);
}

void GrpcMetrics::InitializeServices(const std::vector<std::string>& service_names) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : service_names) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      const auto type = m->client_streaming()
                            ? (m->server_streaming() ? grpc::internal::RpcMethod::BIDI_STREAMING
                                                     : grpc::internal::RpcMethod::CLIENT_STREAMING)
                            : (m->server_streaming() ? grpc::internal::RpcMethod::SERVER_STREAMING
                                                     : grpc::internal::RpcMethod::NORMAL_RPC);
      InitializeMethod("/" + name + "/" + m->name(), type);
    }
  }
}

MethodMetrics& GrpcMetrics::For(const char* full_method, grpc::internal::RpcMethod::RpcType type) {
  {
    std::shared_lock lock(mu_);
    auto it = methods_.find(absl::string_view(full_method));
    if (it != methods_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = methods_[full_method];
  if (slot != nullptr) return *slot;  // added meanwhile
  // "/pkg.Service/Method" -> service "pkg.Service", method "Method".
  const std::string full = full_method;
  const std::size_t slash = full.find('/', 1);
  const std::string service = slash == std::string::npos ? "unknown" : full.substr(1, slash - 1);
  const std::string method = slash == std::string::npos ? full : full.substr(slash + 1);
  const prometheus::Labels labels = {
      {"grpc_type", TypeName(type)}, {"grpc_service", service}, {"grpc_method", method}};
  slot = std::make_unique<MethodMetrics>();
  slot->started = &started_.Add(labels);
  for (std::size_t code = 0; code < GrpcCodeNames().size(); ++code) {
    prometheus::Labels with_code = labels;
    with_code["grpc_code"] = GrpcCodeNames()[code];
    slot->handled[code] = &handled_.Add(with_code);
  }
  slot->msg_received = &msg_received_.Add(labels);
  slot->msg_sent = &msg_sent_.Add(labels);
  slot->handling_seconds = &handling_seconds_.Add(labels, LatencyBuckets());
  return *slot;
}

}  // namespace hotpath::metrics
