// The runtime's own HTTP routes, shared by hotpathd and hotpath-gateway:
// GET /metrics (Prometheus text), GET /healthz (the process is up), GET /readyz (the probe says
// the backend answers, and the process is not shutting down).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "server/http/coalesced_probe.h"
#include "server/http/http_server.h"

namespace hotpath::http {

class RuntimeRoutes final {
 public:
  // A /metrics rendering walks every series (1-3 ms of CPU for the catalog's): renderings run on a
  // thread of their own, never on an event loop, one at a time and at most one per this gap, each
  // answering every scrape that came in before it began. A flood of scrapes from a client costs
  // at most one rendering a gap; a scrape still never gets figures older than itself.
  static constexpr absl::Duration kMetricsMinGap = absl::Milliseconds(100);

  // render_metrics: the /metrics body. probe: checks readiness, answering through its callback
  // (possibly on another thread; must not block the caller).
  RuntimeRoutes(std::function<std::string()> render_metrics,
                std::function<void(std::function<void(absl::Status)>)> probe)
      : render_metrics_(std::move(render_metrics)), probe_(std::move(probe)) {}

  // True when request's path is one of these routes (then it is answered); *route names it.
  bool Handle(const Request& request, const Responder& respond, std::string* route);
  // Readiness off for good (shutdown has begun).
  void SetShuttingDown() { shutting_down_ = true; }

 private:
  void AnswerMetrics(const Request& request, const Responder& respond);

  std::function<std::string()> render_metrics_;                   // /metrics body
  std::function<void(std::function<void(absl::Status)>)> probe_;  // /readyz check
  std::atomic<bool> shutting_down_{false};                        // /readyz answers 503
  // Used on renderings_'s thread only: the last rendering, and its gzip once a scrape asked.
  std::string rendered_;
  std::string rendered_gzip_;
  // Declared last: its thread stops before the members it uses go.
  CoalescedProbe renderings_{[this] {
                               rendered_ = render_metrics_();
                               rendered_gzip_.clear();
                               return absl::OkStatus();
                             },
                             kMetricsMinGap};
};

// The path part of a request target ("/a/b?x=1" -> "/a/b").
absl::string_view PathOf(const Request& request);

}  // namespace hotpath::http
