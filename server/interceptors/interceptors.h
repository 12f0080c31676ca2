// The server's interceptors, each small and independent, on every call of every service:
//
// - timing and metrics: the call runtime's own interceptor (rpc::CallObserver, see
//   server/rpc/call_observer.h for why not gRPC's): every answer carries x-process-time (the
//   runtime stamps it), and the metrics observer counts go-grpc-prometheus's series (started,
//   handled by code, messages in and out) and feeds the call's duration to
//   grpc_server_handling_seconds;
// - access log (off by default): a gRPC server interceptor
//   (grpc::experimental::ServerInterceptorFactoryInterface), one JSON line per call on stderr;
//   with it every call pays gRPC's interception round trips.
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
#include "server/rpc/call_observer.h"

namespace hotpath::interceptors {

using Factory = grpc::experimental::ServerInterceptorFactoryInterface;

std::unique_ptr<rpc::CallObserver> MakeMetricsObserver(metrics::GrpcMetrics* metrics);
std::unique_ptr<Factory> MakeAccessLogInterceptorFactory();

}  // namespace hotpath::interceptors
