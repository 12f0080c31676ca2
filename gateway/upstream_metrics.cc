#include "gateway/upstream_metrics.h"

#include <chrono>

namespace hotpath::gateway {
namespace {

using grpc::experimental::ClientRpcInfo;
using grpc::experimental::InterceptionHookPoints;
using Clock = std::chrono::steady_clock;

grpc::internal::RpcMethod::RpcType TypeOf(ClientRpcInfo::Type type) {
  switch (type) {
    case ClientRpcInfo::Type::CLIENT_STREAMING:
      return grpc::internal::RpcMethod::CLIENT_STREAMING;
    case ClientRpcInfo::Type::SERVER_STREAMING:
      return grpc::internal::RpcMethod::SERVER_STREAMING;
    case ClientRpcInfo::Type::BIDI_STREAMING:
      return grpc::internal::RpcMethod::BIDI_STREAMING;
    default:
      return grpc::internal::RpcMethod::NORMAL_RPC;
  }
}

class UpstreamMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit UpstreamMetricsInterceptor(metrics::MethodMetrics* metrics) : metrics_(metrics) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      start_ = Clock::now();
      metrics_->started->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      metrics_->msg_sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      metrics_->msg_received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      const auto code = static_cast<std::size_t>(methods->GetRecvStatus()->error_code());
      metrics_->handled[code < metrics_->handled.size() ? code : 2]->Increment();  // 2: Unknown
      metrics_->handling_seconds->Observe(
          std::chrono::duration<double>(Clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  metrics::MethodMetrics* metrics_;         // this method's series
  Clock::time_point start_ = Clock::now();  // when the call was sent
};

class UpstreamMetricsFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit UpstreamMetricsFactory(metrics::GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(ClientRpcInfo* info) override {
    return new UpstreamMetricsInterceptor(&metrics_->For(info->method(), TypeOf(info->type())));
  }

 private:
  metrics::GrpcMetrics* metrics_;  // shared series
};

}  // namespace

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeUpstreamMetricsInterceptorFactory(metrics::GrpcMetrics* metrics) {
  return std::make_unique<UpstreamMetricsFactory>(metrics);
}

}  // namespace hotpath::gateway
