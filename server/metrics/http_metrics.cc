#include "server/metrics/http_metrics.h"

#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "server/metrics/metrics_registry.h"

namespace hotpath::metrics {
namespace {

class InstrumentedSink final : public http::ObservingSink {
 public:
  InstrumentedSink(HttpMetrics* metrics, http::Responder inner, std::string method,
                   std::shared_ptr<const std::string> route)
      : ObservingSink(std::move(inner), std::move(route)),
        metrics_(metrics),
        method_(std::move(method)) {}

 private:
  void Answered(int status, const std::string& route, Clock::duration elapsed) override {
    metrics_->Record(method_, route, status, std::chrono::duration<double>(elapsed).count());
  }

  HttpMetrics* metrics_;  // where to record
  std::string method_;    // GET, POST, ...
};

}  // namespace

HttpMetrics::HttpMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("http_requests_total")
                    .Help("HTTP requests answered, by method, route template, status (code) and "
                          "the RPC the route calls.")
                    .Register(registry)),
      durations_(
          prometheus::BuildHistogram()
              .Name("http_request_duration_seconds")
              .Help("Time from an HTTP request's arrival to its answer (or the end of its stream).")
              .Register(registry)),
      refusals_(prometheus::BuildCounter()
                    .Name("hotpath_http_refusals_total")
                    .Help("Answers the HTTP server gave by itself instead of a handler's, by why: "
                          "malformed, framing, host, body_too_large, header_too_large, "
                          "bodies_budget, answers_budget (a 503 in place of a read's answer, "
                          "in http_requests_total too, or before a write's handler), "
                          "connections.")
                    .Register(registry)) {
  for (std::size_t why = 0; why < http::kRefusals; ++why) {
    refusal_series_[why] = &refusals_.Add(
        {{"reason", std::string(http::RefusalName(static_cast<http::Refusal>(why)))}});
  }
}

http::Responder HttpMetrics::Instrument(http::Responder inner, const http::Request& request,
                                        std::shared_ptr<const std::string> route) {
  // A method Beast does not know is any token a client sends: one label for all of them keeps
  // the series bounded.
  std::string method = request.method() == boost::beast::http::verb::unknown
                           ? "OTHER"
                           : std::string(request.method_string());
  return http::Responder(std::make_shared<InstrumentedSink>(this, std::move(inner),
                                                            std::move(method), std::move(route)));
}

HttpMetrics::Series HttpMetrics::Find(const std::string& method, const std::string& route,
                                      int status) {
  thread_local std::string key;  // reused: no allocation once it has grown
  key.clear();
  absl::StrAppend(&key, method, " ", route, " ", status);
  {
    std::shared_lock lock(mu_);
    if (auto it = series_.find(key); it != series_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  if (auto it = series_.find(key); it != series_.end()) return it->second;
  std::pair<std::string, std::string> rpc;
  if (auto it = rpcs_.find(absl::StrCat(method == "HEAD" ? "GET" : method, " ", route));
      it != rpcs_.end()) {
    rpc = it->second;
  }
  const Series series{&requests_.Add({{"method", method},
                                      {"route", route},
                                      {"code", absl::StrCat(status)},
                                      {"grpc_service", rpc.first},
                                      {"grpc_method", rpc.second}}),
                      &durations_.Add({{"method", method},
                                       {"route", route},
                                       {"grpc_service", rpc.first},
                                       {"grpc_method", rpc.second}},
                                      LatencyBuckets())};
  series_.try_emplace(key, series);
  return series;
}

void HttpMetrics::NameRoutes(const std::vector<http::RouteRpc>& routes) {
  std::unique_lock lock(mu_);
  for (const http::RouteRpc& r : routes) {
    rpcs_[absl::StrCat(r.http_method, " ", r.route)] = {r.grpc_service, r.grpc_method};
  }
}

void HttpMetrics::Refused(http::Refusal why) {
  refusal_series_[static_cast<std::size_t>(why)]->Increment();
}

std::function<void(http::Refusal)> HttpMetrics::OnRefusal() {
  return [this](http::Refusal why) { Refused(why); };
}

void HttpMetrics::Record(const std::string& method, const std::string& route, int status,
                         double seconds) {
  const auto [requests, duration] = Find(method, route, status);
  requests->Increment();
  duration->Observe(seconds);
}

}  // namespace hotpath::metrics
