// The runtime's own HTTP routes, shared by hotpathd and hotpath-gateway:
// GET /metrics (Prometheus text), GET /healthz (the process is up), GET /readyz (the probe says
// the backend answers, and the process is not shutting down).
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "server/http/http_server.h"

namespace hotpath::http {

class RuntimeRoutes final {
 public:
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
  std::function<std::string()> render_metrics_;                   // /metrics body
  std::function<void(std::function<void(absl::Status)>)> probe_;  // /readyz check
  std::atomic<bool> shutting_down_{false};                        // /readyz answers 503
};

// The path part of a request target ("/a/b?x=1" -> "/a/b").
absl::string_view PathOf(const Request& request);

}  // namespace hotpath::http
