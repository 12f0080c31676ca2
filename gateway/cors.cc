#include "gateway/cors.h"

#include <algorithm>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hotpath::gateway {

namespace bhttp = boost::beast::http;

namespace {

// Vary gains Origin beside what the answer already varies on.
void VaryOnOrigin(http::Response& response) {
  auto it = response.find(bhttp::field::vary);
  if (it == response.end()) return response.set(bhttp::field::vary, "Origin");
  const std::string vary(it->value());
  response.set(bhttp::field::vary, absl::StrCat(vary, ", Origin"));
}

// A responder that adds headers to the answer, or the stream's header, and passes the rest on.
class CorsSink final : public http::Responder::Sink {
 public:
  CorsSink(http::Responder inner, std::vector<std::pair<std::string, std::string>> headers,
           bool vary)
      : inner_(std::move(inner)), headers_(std::move(headers)), vary_(vary) {}

  void Whole(http::Response response, absl::FunctionRef<void(int)> decided) override {
    Add(response);
    inner_.Answer(std::move(response), decided);
  }
  void Start(http::Response header, std::function<void(bool)> on_written) override {
    Add(header);
    inner_.StartStream(std::move(header), std::move(on_written));
  }
  void Chunk(std::string data, std::function<void(bool)> on_written) override {
    inner_.WriteChunk(std::move(data), std::move(on_written));
  }
  void Finish() override { inner_.FinishStream(); }
  void OnClientGone(std::function<void()> on_gone) override {
    inner_.OnClientGone(std::move(on_gone));
  }
  std::string_view Peer() const override { return inner_.peer(); }

 private:
  void Add(http::Response& response) const {
    for (const auto& [name, value] : headers_) response.set(name, value);
    if (vary_) VaryOnOrigin(response);
  }

  http::Responder inner_;                                     // the session's responder
  std::vector<std::pair<std::string, std::string>> headers_;  // Access-Control-*
  bool vary_;                                                 // add Origin to Vary
};

}  // namespace

absl::Status ValidateCorsOptions(const CorsOptions& options) {
  for (const std::string& origin : options.allowed_origins) {
    if (origin == "*") continue;
    absl::string_view rest = origin;
    const bool scheme =
        absl::ConsumePrefix(&rest, "http://") || absl::ConsumePrefix(&rest, "https://");
    if (!scheme || rest.empty() || absl::StrContains(rest, '/') ||
        absl::c_any_of(rest, [](char c) { return absl::ascii_isspace(c) || c == '*'; })) {
      return absl::InvalidArgumentError(
          absl::StrCat("CORS origin \"", origin,
                       "\" is neither * nor scheme://host[:port] (no path, no trailing /)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CorsOptions> CorsOptionsFromFlags(absl::string_view origins, bool allow_credentials,
                                                 int max_age_seconds) {
  CorsOptions options;
  for (absl::string_view origin : absl::StrSplit(origins, ',', absl::SkipWhitespace())) {
    options.allowed_origins.emplace_back(absl::StripAsciiWhitespace(origin));
  }
  options.allow_credentials = allow_credentials;
  options.max_age = absl::Seconds(std::max(0, max_age_seconds));
  if (absl::Status s = ValidateCorsOptions(options); !s.ok()) return s;
  return options;
}

Cors::Cors(CorsOptions options) : options_(std::move(options)) {
  exposed_ = absl::StrJoin(options_.exposed_headers, ", ");
  max_age_ = absl::StrCat(absl::ToInt64Seconds(options_.max_age));
  for (const std::string& origin : options_.allowed_origins) any_origin_ |= origin == "*";
  for (const std::string& header : options_.allowed_headers) {
    allowed_headers_.insert(absl::AsciiStrToLower(header));
  }
}

bool Cors::Allows(absl::string_view origin) const {
  if (origin.empty() || !enabled()) return false;
  if (any_origin_) return true;
  for (const std::string& allowed : options_.allowed_origins) {
    if (absl::EqualsIgnoreCase(allowed, origin)) return true;
  }
  return false;
}

bool Cors::IsPreflight(const http::Request& request) {
  return request.method() == bhttp::verb::options && !http::FieldValue(request, "Origin").empty() &&
         !http::FieldValue(request, "Access-Control-Request-Method").empty();
}

http::Response Cors::Preflight(const http::Request& request,
                               const std::set<std::string>& methods) const {
  const std::string origin = http::FieldValue(request, "Origin");
  http::Response response(bhttp::status::no_content, request.version());
  const bool named = !any_origin_ || options_.allow_credentials;
  response.set("Access-Control-Allow-Origin", named ? std::string(origin) : "*");
  if (options_.allow_credentials) response.set("Access-Control-Allow-Credentials", "true");
  std::set<std::string> allowed_methods = methods;
  if (allowed_methods.count("GET")) allowed_methods.insert("HEAD");
  response.set("Access-Control-Allow-Methods", absl::StrJoin(allowed_methods, ", "));
  // The headers asked for that may be sent; the browser refuses the call if one is missing.
  std::vector<std::string> headers;
  for (absl::string_view asked :
       absl::StrSplit(http::FieldValue(request, "Access-Control-Request-Headers"), ',')) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(asked));
    if (allowed_headers_.count(name)) headers.push_back(name);
  }
  if (!headers.empty()) response.set("Access-Control-Allow-Headers", absl::StrJoin(headers, ", "));
  response.set("Access-Control-Max-Age", max_age_);
  response.set(bhttp::field::vary,
               named ? "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                     : "Access-Control-Request-Method, Access-Control-Request-Headers");
  return response;
}

std::vector<std::pair<std::string, std::string>> Cors::HeadersFor(absl::string_view origin) const {
  std::vector<std::pair<std::string, std::string>> headers;
  if (Allows(origin)) {
    headers.emplace_back("Access-Control-Allow-Origin", Varies() ? std::string(origin) : "*");
    if (options_.allow_credentials)
      headers.emplace_back("Access-Control-Allow-Credentials", "true");
    headers.emplace_back("Access-Control-Expose-Headers", exposed_);
  }
  return headers;
}

http::Responder Cors::Wrap(absl::string_view origin, http::Responder respond) const {
  std::vector<std::pair<std::string, std::string>> headers = HeadersFor(origin);
  if (headers.empty() && !Varies()) return respond;
  return http::Responder(
      std::make_shared<CorsSink>(std::move(respond), std::move(headers), Varies()));
}

void Cors::AddTo(const http::Request& request, http::Response& answer) const {
  if (!enabled()) return;
  for (const auto& [name, value] : HeadersFor(http::FieldValue(request, "Origin"))) {
    answer.set(name, value);
  }
  if (Varies()) VaryOnOrigin(answer);
}

}  // namespace hotpath::gateway
