// The server's interceptors (grpc::experimental::ServerInterceptorFactoryInterface), each small and
// independent, registered on the async server for every service:
//
// - timing: every response carries x-process-time (seconds, like the X-Process-Time header of the
//   FastAPI timing middleware) in its initial and trailing metadata, and the call's duration feeds
//   grpc_server_handling_seconds;
// - metrics: go-grpc-prometheus's counters (started, handled by code, messages in and out);
// - access log: one JSON line per call on stderr (off by default).
//
// Response compression is not an interceptor: gRPC's core consumes grpc-accept-encoding before an
// interceptor could read it, and an interceptor cannot set per-message flags. The call runtime
// (server/rpc/call_base.h) does it instead, by size, through the core's compression levels,
// which pick gzip only for clients that accept it.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <cstddef>
#include <memory>

#include "server/metrics/grpc_metrics.h"

namespace hotpath::interceptors {

using Factory = grpc::experimental::ServerInterceptorFactoryInterface;

std::unique_ptr<Factory> MakeTimingInterceptorFactory(metrics::GrpcMetrics* metrics);
std::unique_ptr<Factory> MakeMetricsInterceptorFactory(metrics::GrpcMetrics* metrics);
std::unique_ptr<Factory> MakeAccessLogInterceptorFactory();

}  // namespace hotpath::interceptors
