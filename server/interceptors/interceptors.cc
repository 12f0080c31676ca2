#include "server/interceptors/interceptors.h"

#include <grpcpp/server_context.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/http/json_quote.h"
#include "server/http/process_time.h"

namespace hotpath::interceptors {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::Interceptor;
using grpc::experimental::InterceptorBatchMethods;
using grpc::experimental::ServerRpcInfo;

constexpr char kProcessTimeKey[] = "x-process-time";

using Clock = std::chrono::steady_clock;

Clock::duration Since(Clock::time_point start) { return Clock::now() - start; }

grpc::internal::RpcMethod::RpcType RpcTypeOf(const ServerRpcInfo& info) {
  return static_cast<grpc::internal::RpcMethod::RpcType>(info.type());
}

class TimingInterceptor final : public Interceptor {
 public:
  explicit TimingInterceptor(metrics::MethodMetrics* metrics) : metrics_(metrics) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kProcessTimeKey,
                                                 http::FormatProcessTime(Since(start_)));
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const Clock::duration elapsed = Since(start_);
      methods->GetSendTrailingMetadata()->emplace(kProcessTimeKey,
                                                  http::FormatProcessTime(elapsed));
      metrics_->handling_seconds->Observe(std::chrono::duration<double>(elapsed).count());
    }
    methods->Proceed();
  }

 private:
  const Clock::time_point start_ = Clock::now();  // when the call was matched
  metrics::MethodMetrics* metrics_;               // where the duration goes
};

class TimingFactory final : public Factory {
 public:
  explicit TimingFactory(metrics::GrpcMetrics* metrics) : metrics_(metrics) {}
  Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new TimingInterceptor(&metrics_->For(info->method(), RpcTypeOf(*info)));
  }

 private:
  metrics::GrpcMetrics* metrics_;  // shared series
};

class MetricsInterceptor final : public Interceptor {
 public:
  explicit MetricsInterceptor(metrics::MethodMetrics* metrics) : metrics_(metrics) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      metrics_->started->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      metrics_->msg_received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      metrics_->msg_sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto code = static_cast<std::size_t>(methods->GetSendStatus().error_code());
      metrics_->handled[code < metrics_->handled.size() ? code : 2]->Increment();  // 2: Unknown
    }
    methods->Proceed();
  }

 private:
  metrics::MethodMetrics* metrics_;  // this method's series
};

class MetricsFactory final : public Factory {
 public:
  explicit MetricsFactory(metrics::GrpcMetrics* metrics) : metrics_(metrics) {}
  Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    return new MetricsInterceptor(&metrics_->For(info->method(), RpcTypeOf(*info)));
  }

 private:
  metrics::GrpcMetrics* metrics_;  // shared series
};

class AccessLogInterceptor final : public Interceptor {
 public:
  explicit AccessLogInterceptor(ServerRpcInfo* info) : info_(info) {}

  void Intercept(InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const std::string line = absl::StrCat(
          "{\"time\":\"", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()),
          "\",\"method\":", http::JsonQuote(info_->method()),
          ",\"peer\":", http::JsonQuote(info_->server_context()->peer()), ",\"code\":\"",
          metrics::GrpcCodeNames()[static_cast<std::size_t>(status.error_code()) % 17],
          "\",\"duration_seconds\":", http::FormatProcessTime(Since(start_)), "}\n");
      static std::mutex mu;
      std::lock_guard lock(mu);
      std::cerr << line << std::flush;
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

std::unique_ptr<Factory> MakeTimingInterceptorFactory(metrics::GrpcMetrics* metrics) {
  return std::make_unique<TimingFactory>(metrics);
}
std::unique_ptr<Factory> MakeMetricsInterceptorFactory(metrics::GrpcMetrics* metrics) {
  return std::make_unique<MetricsFactory>(metrics);
}
std::unique_ptr<Factory> MakeAccessLogInterceptorFactory() {
  return std::make_unique<AccessLogFactory>();
}

}  // namespace hotpath::interceptors
