#include "server/http/runtime_routes.h"

#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "server/http/gzip.h"

namespace hotpath::http {
namespace {

namespace bhttp = boost::beast::http;

Response Text(const Request& request, bhttp::status status, const char* type, std::string body) {
  Response response(status, request.version());
  response.set(bhttp::field::content_type, type);
  response.body() = std::move(body);
  return response;
}

}  // namespace

absl::string_view PathOf(const Request& request) {
  const absl::string_view target(request.target().data(), request.target().size());
  return target.substr(0, target.find('?'));
}

bool RuntimeRoutes::Handle(const Request& request, const Responder& respond, std::string* route) {
  const absl::string_view path = PathOf(request);
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") return false;
  *route = std::string(path);
  if (request.method() != bhttp::verb::get && request.method() != bhttp::verb::head) {
    Response response =
        JsonError(request, bhttp::status::method_not_allowed, 12,
                  absl::StrCat(std::string(request.method_string()), " is not allowed on ", path));
    response.set(bhttp::field::allow, "GET, HEAD");
    respond(std::move(response));
    return true;
  }
  if (path == "/metrics") {
    // gzip when the scraper asks (Prometheus does): the text shrinks about tenfold.
    std::string body = render_metrics_();
    const auto accept = request.find(bhttp::field::accept_encoding);
    const bool gzip =
        accept != request.end() &&
        AcceptsGzip(absl::string_view(accept->value().data(), accept->value().size()));
    if (gzip) body = GzipCompress(body);
    Response response = Text(request, bhttp::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                             std::move(body));
    response.set(bhttp::field::vary, "Accept-Encoding");
    if (gzip) response.set(bhttp::field::content_encoding, "gzip");
    respond(std::move(response));
  } else if (path == "/healthz") {
    respond(Text(request, bhttp::status::ok, "application/json", "{\"status\":\"ok\"}"));
  } else if (shutting_down_) {
    respond(JsonError(request, bhttp::status::service_unavailable, 14, "shutting down"));
  } else {
    const unsigned version = request.version();
    probe_([respond, version](absl::Status status) {
      Request shape;
      shape.version(version);
      if (status.ok()) {
        respond(Text(shape, bhttp::status::ok, "application/json", "{\"status\":\"ready\"}"));
      } else {
        respond(JsonError(shape, bhttp::status::service_unavailable, 14,
                          std::string(status.message())));
      }
    });
  }
  return true;
}

}  // namespace hotpath::http
