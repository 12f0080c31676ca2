#include "server/interceptors/interceptors.h"

#include <grpcpp/server_context.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/http/access_log.h"
#include "server/http/json_quote.h"
#include "server/http/process_time.h"
#include "server/rpc/connection_listener.h"

namespace hotpath::interceptors {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::Interceptor;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerRpcInfo;

using Clock = std::chrono::steady_clock;

Clock::duration Since(Clock::time_point start) { return Clock::now() - start; }

// grpc_server_* of one method, as go-grpc-prometheus counts them.
class MethodSeries final : public rpc::CallObserver::Method {
 public:
  explicit MethodSeries(metrics::MethodMetrics* metrics) : metrics_(metrics) {}
  void Started() override { metrics_->started->Increment(); }
  void Received() override { metrics_->msg_received->Increment(); }
  void Sent() override { metrics_->msg_sent->Increment(); }
  void Finished(grpc::StatusCode code, Clock::duration elapsed) override {
    const auto index = static_cast<std::size_t>(code);
    metrics_->handled[index < metrics_->handled.size() ? index : 2]->Increment();  // 2: Unknown
    metrics_->handling_seconds->Observe(std::chrono::duration<double>(elapsed).count());
  }

 private:
  metrics::MethodMetrics* metrics_;  // the method's series
};

class MetricsObserver final : public rpc::CallObserver {
 public:
  explicit MetricsObserver(metrics::GrpcMetrics* metrics) : metrics_(metrics) {}

  Method* ForMethod(std::string_view name, RpcType type) override {
    const absl::string_view full_name(name.data(), name.size());  // Debian's absl has its own
    {
      std::shared_lock lock(mu_);
      if (auto it = methods_.find(full_name); it != methods_.end()) return it->second.get();
    }
    // "pkg.Service.Method" -> gRPC's "/pkg.Service/Method".
    std::string path = absl::StrCat("/", full_name);
    if (const std::size_t dot = path.rfind('.'); dot != std::string::npos) path[dot] = '/';
    metrics::MethodMetrics* series = &metrics_->For(path.c_str(), type);
    std::lock_guard lock(mu_);
    auto& slot = methods_[full_name];
    if (slot == nullptr) slot = std::make_unique<MethodSeries>(series);
    return slot.get();
  }

 private:
  metrics::GrpcMetrics* metrics_;  // shared series
  std::shared_mutex mu_;           // guards methods_; exclusive only to add a method
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> methods_;  // by full name
};

class AccessLogInterceptor final : public Interceptor {
 public:
  explicit AccessLogInterceptor(ServerRpcInfo* info) : info_(info) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      std::string line = absl::StrCat(
          "{\"time\":\"", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()),
          "\",\"method\":", http::JsonQuote(info_->method()), ",\"peer\":",
          http::JsonQuote(rpc::ConnectionListener::PeerAddress(info_->server_context()->peer())));
      // Behind a proxy the peer is the proxy: the request id and the client's address it passes
      // on (deploy/nginx and the gateways set both).
      const auto& metadata = info_->server_context()->client_metadata();
      for (const auto& [key, field] : http::kForwardedFields) {
        if (auto it = metadata.find(key); it != metadata.end()) {
          absl::StrAppend(&line, ",\"", field, "\":",
                          http::JsonQuote(http::LoggedValue(
                              absl::string_view(it->second.data(), it->second.size()))));
        }
      }
      absl::StrAppend(&line, ",\"code\":\"",
                      metrics::GrpcCodeNames()[static_cast<std::size_t>(status.error_code()) % 17],
                      "\",\"duration_seconds\":", http::FormatProcessTime(Since(start_)), "}\n");
      http::WriteAccessLine(line);
    }
    methods->Proceed();
  }

 private:
  ServerRpcInfo* info_;                           // the call
  const Clock::time_point start_ = Clock::now();  // when the call was matched
};

class AccessLogFactory final : public Factory {
 public:
  Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new AccessLogInterceptor(info);
  }
};

}  // namespace

std::unique_ptr<rpc::CallObserver> MakeMetricsObserver(metrics::GrpcMetrics* metrics) {
  return std::make_unique<MetricsObserver>(metrics);
}
std::unique_ptr<Factory> MakeAccessLogInterceptorFactory() {
  return std::make_unique<AccessLogFactory>();
}

}  // namespace hotpath::interceptors
