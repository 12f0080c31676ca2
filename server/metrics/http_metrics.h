// HTTP request metrics: http_requests_total{method,route,code,grpc_service,grpc_method} and
// http_request_duration_seconds{method,route,grpc_service,grpc_method}, where route is the matched
// template (never the raw path, so that ids do not explode the series), code the HTTP status (as
// promhttp names it) and grpc_service / grpc_method the RPC the route calls ("" for /metrics and
// the like), so a dashboard has one label for an RPC over gRPC (grpc_server_*) and REST. And
// hotpath_http_refusals_total{reason}: the answers the HTTP server gave by itself
// (HttpServerOptions::on_refusal), every reason's series present from the start.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/http/http_server.h"

namespace hotpath::metrics {

class HttpMetrics final {
 public:
  explicit HttpMetrics(prometheus::Registry& registry);

  // A responder that records the request when the answer (or the stream's end) goes out. route is
  // read then, so the handler may fill it in while handling.
  http::Responder Instrument(http::Responder inner, const http::Request& request,
                             std::shared_ptr<const std::string> route);

  void Record(const std::string& method, const std::string& route, int status, double seconds);

  // Counts an answer the HTTP server gave by itself (HttpServerOptions::on_refusal).
  void Refused(http::Refusal why);
  // What to set as HttpServerOptions::on_refusal: Refused, while this object lives.
  std::function<void(http::Refusal)> OnRefusal();

  // Which RPC each route calls, by HTTP method and route template (HEAD as GET). Before serving.
  void NameRoutes(const std::vector<http::RouteRpc>& routes);

 private:
  // The counter and histogram of one method, route and status. Looking a series up in its
  // prometheus Family builds and compares label maps under the family's lock on every request;
  // this map finds them by one string instead, and they live as long as the families.
  using Series = std::pair<prometheus::Counter*, prometheus::Histogram*>;
  Series Find(const std::string& method, const std::string& route, int status);

  prometheus::Family<prometheus::Counter>& requests_;     // http_requests_total
  prometheus::Family<prometheus::Histogram>& durations_;  // http_request_duration_seconds
  prometheus::Family<prometheus::Counter>& refusals_;     // hotpath_http_refusals_total
  // Each reason's series, by http::Refusal, made at the start.
  std::array<prometheus::Counter*, http::kRefusals> refusal_series_{};
  // Guards series_. A std::shared_mutex (pthread's rwlock), not absl::Mutex: Debian's absl is not
  // built for ThreadSanitizer, which then cannot see absl::Mutex's ordering.
  std::shared_mutex mu_;
  absl::flat_hash_map<std::string, Series> series_;  // "method route status" -> its series
  // "METHOD route" -> grpc_service, grpc_method; guarded by mu_.
  absl::flat_hash_map<std::string, std::pair<std::string, std::string>> rpcs_;
};

}  // namespace hotpath::metrics
