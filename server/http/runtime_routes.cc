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
    AnswerMetrics(request, respond);
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

void RuntimeRoutes::AnswerMetrics(const Request& request, const Responder& respond) {
  // gzip when the scraper asks (Prometheus does): the text shrinks about tenfold.
  const bool gzip = AcceptsGzip(FieldValue(request, "Accept-Encoding"));
  const unsigned version = request.version();
  renderings_([this, respond, version, gzip](absl::Status status) {
    Request shape;
    shape.version(version);
    if (!status.ok()) {
      return respond(JsonError(shape, bhttp::status::service_unavailable, 14, "shutting down"));
    }
    if (gzip && rendered_gzip_.empty()) rendered_gzip_ = GzipCompress(rendered_);
    Response response = Text(shape, bhttp::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                             gzip ? rendered_gzip_ : rendered_);
    response.set(bhttp::field::vary, "Accept-Encoding");
    if (gzip) response.set(bhttp::field::content_encoding, "gzip");
    respond(std::move(response));
  });
}

}  // namespace hotpath::http
