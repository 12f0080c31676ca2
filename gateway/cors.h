// Cross-origin resource sharing (the Fetch standard's CORS protocol) for the gateway's routes, so
// that a page served from another origin may call the API from a browser.
//
// Off unless origins are configured. Then every gateway answer to an allowed origin carries
// Access-Control-Allow-Origin and the headers a page may read (Access-Control-Expose-Headers); a
// preflight (OPTIONS with Access-Control-Request-Method) is answered 204 with the methods the
// route table has for the path, the request headers asked for that are allowed, and how long the
// browser may keep the answer (Access-Control-Max-Age). A disallowed origin gets no CORS header
// (so its browser refuses the answer) and its preflight is 403. Credentials (cookies, HTTP auth)
// are not allowed unless configured.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/http/http_server.h"

namespace hotpath::gateway {

struct CorsOptions {
  // Origins allowed, each "scheme://host[:port]" as a browser sends it in Origin, or "*" for any.
  // Empty: CORS off (no CORS header on any answer; OPTIONS still answers with Allow).
  std::vector<std::string> allowed_origins;
  // Access-Control-Allow-Credentials: pages may send cookies or HTTP authentication. Off by
  // default; on, the origin is named even when "*" allows it (the standard forbids "*" then).
  bool allow_credentials = false;
  // How long a browser may keep a preflight's answer. Default 10 minutes.
  absl::Duration max_age = absl::Minutes(10);
  // Request headers a page may set beyond the CORS-safelisted ones (case-insensitive).
  std::vector<std::string> allowed_headers = {"Authorization", "Content-Type",  "Content-Encoding",
                                              "If-Match",      "If-None-Match", "X-Request-Id",
                                              "X-Hotpath-Lsn", "Grpc-Timeout"};
  // Answer headers a page may read beyond the CORS-safelisted ones.
  std::vector<std::string> exposed_headers = {"X-Request-Id", "X-Process-Time", "ETag",
                                              "X-Hotpath-Lsn"};
};

// INVALID_ARGUMENT naming the first origin that is neither "*" nor "scheme://host[:port]".
absl::Status ValidateCorsOptions(const CorsOptions& options);
// Options from the binaries' flags: origins comma-separated ("" off), validated.
absl::StatusOr<CorsOptions> CorsOptionsFromFlags(absl::string_view origins, bool allow_credentials,
                                                 int max_age_seconds);

class Cors final {
 public:
  explicit Cors(CorsOptions options);

  bool enabled() const { return !options_.allowed_origins.empty(); }
  // Whether a page of origin (the Origin header's value) may call.
  bool Allows(absl::string_view origin) const;
  // Whether request is a preflight: OPTIONS with Origin and Access-Control-Request-Method.
  static bool IsPreflight(const http::Request& request);
  // The answer to a preflight of an allowed origin, for a path whose routes have methods.
  http::Response Preflight(const http::Request& request,
                           const std::set<std::string>& methods) const;
  // respond, adding to every answer (whole, or a stream's header) the headers for a request from
  // origin ("" when it sent none): Vary: Origin when the answer depends on it, and the
  // Access-Control-* headers when origin is allowed.
  http::Responder Wrap(absl::string_view origin, http::Responder respond) const;
  // The same headers on one answer to request (the HTTP server's own answers:
  // HttpServerOptions::on_own_answer).
  void AddTo(const http::Request& request, http::Response& answer) const;

 private:
  // With "*" and no credentials every answer is the same to every origin; otherwise it depends
  // on Origin, which shared caches must know.
  bool Varies() const { return !any_origin_ || options_.allow_credentials; }
  // The Access-Control-* headers of an answer to origin: none unless it is allowed.
  std::vector<std::pair<std::string, std::string>> HeadersFor(absl::string_view origin) const;

  const CorsOptions options_;              // as given
  std::string exposed_;                    // Access-Control-Expose-Headers
  std::string max_age_;                    // Access-Control-Max-Age, in seconds
  bool any_origin_ = false;                // "*" among the allowed origins
  std::set<std::string> allowed_headers_;  // lower-case
};

}  // namespace hotpath::gateway
