// The standalone gateway's calls to its upstream as go-grpc-prometheus counts a client's:
// grpc_client_started_total, grpc_client_handled_total{grpc_code}, grpc_client_msg_received_total,
// grpc_client_msg_sent_total and grpc_client_handling_seconds, beside its HTTP series. A client
// interceptor on the upstream channel, so every call is counted with the code it ended with.
#pragma once

#include <grpcpp/support/client_interceptor.h>

#include <memory>

#include "server/metrics/grpc_metrics.h"

namespace hotpath::gateway {

// metrics: a client-side GrpcMetrics (its constant labels name the upstream); must outlive the
// channel.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
MakeUpstreamMetricsInterceptorFactory(metrics::GrpcMetrics* metrics);

}  // namespace hotpath::gateway
