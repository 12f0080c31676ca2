#include "gateway/gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gateway/conditional.h"
#include "google/api/annotations.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/http/gzip.h"
#include "server/http/process_time.h"
#include "server/http/runtime_routes.h"
#include "server/rpc/consistency.h"
#include "server/rpc/status.h"

namespace hotpath::gateway {
namespace {

namespace bhttp = boost::beast::http;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;
using Clock = std::chrono::steady_clock;

std::string RandomRequestId() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return absl::StrCat(absl::Hex(random(), absl::kZeroPad16), absl::Hex(random(), absl::kZeroPad16));
}

std::string Header(const http::Request& request, bhttp::field field) {
  const boost::beast::string_view name = bhttp::to_string(field);
  return http::FieldValue(request, std::string_view(name.data(), name.size()));
}

// The header fields the gateway reads that take one value (RFC 9110 5.3: a sender must not send
// two lines of them). Two lines of one are refused: a proxy or cache in front may take either,
// and must take the one hotpath takes (an access check on one Authorization, a body inspected as
// the last Content-Type). Fields that are lists (Accept-Encoding, If-Match, X-Forwarded-For...)
// are read whole, every line of them.
constexpr absl::string_view kSingleValueFields[] = {
    "Authorization", "Content-Type",
    "Origin",        "Access-Control-Request-Method",
    "X-Request-Id",  rpc::Consistency::kHeader,
    "Grpc-Timeout",  "X-Timeout-Ms"};
static_assert(sizeof kSingleValueFields / sizeof kSingleValueFields[0] <= 32);

// The first of kSingleValueFields that request gives more than once; empty if none. One pass
// over the request's fields, as many as a client sent.
absl::string_view FieldGivenTwice(const http::Request& request) {
  std::uint32_t seen = 0;
  for (const auto& field : request) {
    const absl::string_view name(field.name_string().data(), field.name_string().size());
    for (std::size_t i = 0; i < std::size(kSingleValueFields); ++i) {
      if (name.size() != kSingleValueFields[i].size() ||
          !absl::EqualsIgnoreCase(name, kSingleValueFields[i])) {
        continue;
      }
      if (seen & (1u << i)) return kSingleValueFields[i];
      seen |= 1u << i;
      break;
    }
  }
  return {};
}

// The metadata keys the gateway sets itself, from a header or on its own: a Grpc-Metadata-<key>
// header must not add a second value beside it (the server behind reads the first, so
// Grpc-Metadata-X-Forwarded-For would hide the client's address from its access log).
struct OwnKey {
  absl::string_view key;
  absl::string_view header;  // the header to send instead
};
constexpr OwnKey kOwnMetadataKeys[] = {{"authorization", "Authorization"},
                                       {"x-request-id", "X-Request-Id"},
                                       {"x-forwarded-for", "X-Forwarded-For"},
                                       {rpc::Consistency::kMetadataKey, rpc::Consistency::kHeader}};

// grpc-timeout's form: up to 8 digits and a unit (H, M, S, m, u, n).
bool ParseGrpcTimeout(absl::string_view text, absl::Duration* timeout) {
  if (text.size() < 2 || text.size() > 9) return false;
  std::int64_t value;
  if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &value) || value < 0) return false;
  switch (text.back()) {
    case 'H':
      *timeout = absl::Hours(value);
      return true;
    case 'M':
      *timeout = absl::Minutes(value);
      return true;
    case 'S':
      *timeout = absl::Seconds(value);
      return true;
    case 'm':
      *timeout = absl::Milliseconds(value);
      return true;
    case 'u':
      *timeout = absl::Microseconds(value);
      return true;
    case 'n':
      *timeout = absl::Nanoseconds(value);
      return true;
  }
  return false;
}

std::string ProcessTime(Clock::time_point start) {
  return http::FormatProcessTime(Clock::now() - start);
}

}  // namespace

// What every gateway answer carries, whatever its status.
struct AnswerContext {
  unsigned version;           // HTTP version of the request
  bool head;                  // HEAD: the server drops the body
  bool accepts_gzip;          // Accept-Encoding allows gzip
  std::string request_id;     // echoed as X-Request-Id
  Clock::time_point start;    // for X-Process-Time
  bool safe = false;          // GET or HEAD: may be answered 304 and carry Cache-Control
  std::string if_none_match;  // the If-None-Match header of a GET or HEAD, "" for none
  bool if_match = false;      // an If-Match was applied: ABORTED (etag mismatch) answers 412
};

namespace {

// The body as sent to this client: gzip-compressed when it accepts gzip and the body is at least
// compress_min_bytes.
AnswerMemo::Body Encode(const AnswerContext& a, std::string body, std::size_t compress_min_bytes) {
  if (a.accepts_gzip && body.size() >= compress_min_bytes) {
    return AnswerMemo::Body{http::GzipCompress(body), true};
  }
  return AnswerMemo::Body{std::move(body), false};
}

http::Response EncodedAnswer(const AnswerContext& a, int status, AnswerMemo::Body body,
                             const char* type) {
  http::Response response(static_cast<bhttp::status>(status), a.version);
  response.set(bhttp::field::content_type, type);
  response.set(bhttp::field::vary, "Accept-Encoding");
  response.set("X-Request-Id", a.request_id);
  if (body.gzipped) response.set(bhttp::field::content_encoding, "gzip");
  response.body() = std::move(body.bytes);
  response.set("X-Process-Time", ProcessTime(a.start));
  return response;
}

http::Response Answer(const AnswerContext& a, int status, std::string body, const char* type,
                      std::size_t compress_min_bytes) {
  return EncodedAnswer(a, status, Encode(a, std::move(body), compress_min_bytes), type);
}

// The seconds an error's google.rpc.RetryInfo detail asks a client to wait, rounded up and kept
// within 1 s to an hour (it may come from a remote server), or 0 without one.
std::int64_t RetryAfterSeconds(const google::rpc::Status& error) {
  for (const google::protobuf::Any& detail : error.details()) {
    google::rpc::RetryInfo retry;
    if (!detail.UnpackTo(&retry)) continue;
    const google::protobuf::Duration& delay = retry.retry_delay();
    return std::clamp<std::int64_t>(delay.seconds() + (delay.nanos() > 0 ? 1 : 0), 1, 3600);
  }
  return 0;
}

http::Response ErrorAnswer(const AnswerContext& a, const grpc::Status& status,
                           std::size_t compress_min_bytes) {
  const google::rpc::Status error = RpcStatusOf(status);  // its details parsed once
  http::Response response = Answer(a, HttpStatusForCode(status.error_code()), StatusJson(error),
                                   "application/json", compress_min_bytes);
  // RFC 9110: when a refusal says when to ask again (a busy server's RetryInfo). A 503 without
  // one says 1 s, as the HTTP server's own 503 does: UNAVAILABLE is gRPC's "transient, retry
  // with backoff" (a database reconnecting, a replica draining, an upstream out of reach).
  std::int64_t seconds = RetryAfterSeconds(error);
  if (seconds == 0 && status.error_code() == grpc::StatusCode::UNAVAILABLE) seconds = 1;
  if (seconds > 0) response.set(bhttp::field::retry_after, std::to_string(seconds));
  // RFC 7235: a 401 names the scheme that would succeed.
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    response.set(bhttp::field::www_authenticate, "Bearer realm=\"hotpath\"");
  }
  return response;
}

// 304 to a GET or HEAD whose If-None-Match names the current etag: no body, the same headers.
http::Response NotModified(const AnswerContext& a, const std::string& etag) {
  http::Response response(bhttp::status::not_modified, a.version);
  response.set(bhttp::field::etag, EntityTag(etag));
  response.set(bhttp::field::vary, "Accept-Encoding");
  response.set("X-Request-Id", a.request_id);
  response.set("X-Process-Time", ProcessTime(a.start));
  return response;
}

// Server metadata back to the client as grpc-gateway does: headers as Grpc-Metadata-<key>,
// trailers as Grpc-Trailer-<key> (gRPC's own keys and binary values left out).
void CopyMetadata(const CallResult& result, http::Response& response) {
  for (const auto& [prefix, metadata] : {std::pair{"Grpc-Metadata-", &result.headers},
                                         std::pair{"Grpc-Trailer-", &result.trailers}}) {
    for (const auto& [key, value] : *metadata) {
      if (absl::StartsWith(key, "grpc-") || absl::EndsWith(key, "-bin")) continue;
      response.insert(absl::StrCat(prefix, key), value);
      // A write's commit position, as the header a later read sends back (read-your-writes).
      if (key == rpc::Consistency::kMetadataKey) response.set(rpc::Consistency::kHeader, value);
    }
  }
}

// NDJSON for a server stream: the header goes out with the first message, so a call that fails
// before any message still gets its proper HTTP status. A client that accepts gzip gets one gzip
// member over the whole stream once its first compress_min_bytes are in (a stream that ends
// before that is answered whole, uncompressed, like any small answer).
//
// The next message is read while a chunk is being written: lines that come meanwhile gather and
// go out as one chunk when the write is done, so a client that keeps up gets each line as it
// comes, and an export is not a write and a wake-up per line (plain NDJSON exports took twice as
// long, bench/stalled_exports). Reading stops while kGatherBytes wait: a client that stops
// reading holds no more than that and the chunk being written.
class NdjsonStream final : public StreamObserver,
                           public std::enable_shared_from_this<NdjsonStream> {
 public:
  static constexpr std::size_t kGatherBytes = 16 << 10;

  NdjsonStream(http::Responder respond, AnswerContext answer, const Message* prototype,
               std::size_t compress_min_bytes)
      : respond_(std::move(respond)),
        answer_(std::move(answer)),
        prototype_(prototype),
        compress_min_bytes_(compress_min_bytes) {}

  void OnMessage(std::string bytes, std::function<void()> read_next,
                 std::function<void()> cancel) override {
    std::unique_ptr<Message> message(prototype_->New());
    if (!message->ParseFromString(bytes)) {
      failed_ = grpc::Status(grpc::StatusCode::INTERNAL, "undecodable message from the service");
      return cancel();
    }
    std::string line = absl::StrCat("{\"result\":", MessageJson(*message), "}\n");
    if (started_) {
      if (gzip_ != nullptr) line = gzip_->Add(line);
      return Send(std::move(line), std::move(read_next), std::move(cancel));
    }
    if (answer_.accepts_gzip) {
      absl::StrAppend(&held_, line);
      if (held_.size() < compress_min_bytes_) return read_next();
      gzip_ = std::make_unique<http::GzipStream>();
      line = gzip_->Add(std::exchange(held_, {}));
    }
    started_ = true;
    http::Response header(bhttp::status::ok, answer_.version);
    header.set(bhttp::field::content_type, "application/x-ndjson");
    header.set(bhttp::field::vary, "Accept-Encoding");
    if (gzip_ != nullptr) header.set(bhttp::field::content_encoding, "gzip");
    header.set("X-Request-Id", answer_.request_id);
    header.set("X-Process-Time", ProcessTime(answer_.start));
    // The header is the first write; the line waits for it, as later lines wait for theirs.
    {
      std::lock_guard lock(mu_);
      writing_ = true;
    }
    respond_.StartStream(std::move(header),
                         [self = shared_from_this()](bool ok) { self->Written(ok); });
    Send(std::move(line), std::move(read_next), std::move(cancel));
  }

  void OnDone(CallResult result) override {
    const grpc::Status status = failed_.ok() ? result.status : failed_;
    const std::string error =
        status.ok() ? "" : absl::StrCat("{\"error\":", StatusJson(status), "}\n");
    if (!started_) {
      if (held_.empty() && !status.ok()) {
        return respond_(ErrorAnswer(answer_, status, compress_min_bytes_));
      }
      // Nothing, or less than compress_min_bytes, came: one whole answer.
      http::Response whole = Answer(answer_, 200, absl::StrCat(held_, error),
                                    "application/x-ndjson", compress_min_bytes_);
      CopyMetadata(result, whole);
      return respond_(std::move(whole));
    }
    std::string tail = error;
    if (gzip_ != nullptr) tail = absl::StrCat(gzip_->Add(tail), gzip_->Finish());
    std::string chunk;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      pending_ += tail;
      if (writing_) return;  // Written sends the rest, then finishes
      chunk = std::exchange(pending_, {});
      writing_ = !chunk.empty();
    }
    if (chunk.empty()) return respond_.FinishStream();
    WriteChunk(std::move(chunk));
  }

 private:
  // A line (or gzip's bytes) to send once the stream has started; then the next read, now or
  // once the write in flight is done.
  void Send(std::string data, std::function<void()> read_next, std::function<void()> cancel) {
    std::string chunk;
    bool read = false, gone = false;
    {
      std::lock_guard lock(mu_);
      gone = gone_;
      if (!gone) {
        pending_ += data;
        if (!writing_ && !pending_.empty()) {
          chunk = std::exchange(pending_, {});
          writing_ = true;
        }
        read = pending_.size() < kGatherBytes;
        if (!read) {
          waiting_read_ = std::move(read_next);
          waiting_cancel_ = std::move(cancel);
        }
      }
    }
    if (gone) return cancel();
    if (!chunk.empty()) {
      WriteChunk(std::move(chunk));
    }
    if (read) read_next();
  }

  // Writes chunk; Written runs when it is on the wire (or the client is gone).
  void WriteChunk(std::string chunk) {
    respond_.WriteChunk(std::move(chunk),
                        [self = shared_from_this()](bool ok) { self->Written(ok); });
  }

  // The end of the write in flight: the next chunk of what gathered meanwhile, the read that
  // waited for room, or the stream's end; the call's cancellation if the client is gone.
  void Written(bool ok) {
    std::string chunk;
    std::function<void()> read, cancel;
    bool finish = false;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) {
        gone_ = true;
        pending_.clear();
        cancel = std::exchange(waiting_cancel_, nullptr);  // else the next message cancels
        waiting_read_ = nullptr;
        finish = done_;
      } else {
        if (!pending_.empty()) {
          chunk = std::exchange(pending_, {});
          writing_ = true;
        }
        if (waiting_read_) {
          read = std::exchange(waiting_read_, nullptr);
          waiting_cancel_ = nullptr;
        }
        finish = done_ && !writing_;
      }
    }
    if (cancel) cancel();
    if (!chunk.empty()) {
      WriteChunk(std::move(chunk));
    }
    if (read) read();
    if (finish) respond_.FinishStream();
  }

  http::Responder respond_;         // the HTTP answer
  AnswerContext answer_;            // headers for it
  const Message* prototype_;        // the stream's message type
  std::size_t compress_min_bytes_;  // gzip from this many bytes, when accepted
  // Touched by the messages and OnDone alone, one at a time:
  bool started_ = false;                    // the header is (being) sent
  std::string held_;                        // lines before the header, while deciding on gzip
  std::unique_ptr<http::GzipStream> gzip_;  // the body's compressor, when gzipped
  grpc::Status failed_;                     // a local failure that ended the stream
  std::mutex mu_;                           // guards the below, shared with the writes' ends
  bool writing_ = false;                    // a header or chunk write is in flight
  std::string pending_;                     // what gathered meanwhile
  std::function<void()> waiting_read_;      // the read held for room
  std::function<void()> waiting_cancel_;    // its alternative
  bool done_ = false;                       // OnDone came: finish after the last write
  bool gone_ = false;                       // a write failed: the client left
};

}  // namespace

absl::StatusOr<std::shared_ptr<Gateway>> Gateway::Create(
    const std::vector<std::string>& service_names, std::unique_ptr<Dispatcher> dispatcher,
    GatewayOptions options) {
  if (!options.accel_expires.empty()) {
    const absl::string_view time = absl::StripPrefix(options.accel_expires, "@");
    if (time.empty() || !std::all_of(time.begin(), time.end(), absl::ascii_isdigit)) {
      return absl::InvalidArgumentError(
          absl::StrCat("X-Accel-Expires must be seconds, or @ and a Unix time, not \"",
                       options.accel_expires, "\""));
    }
  }
  std::shared_ptr<Gateway> gateway(new Gateway(std::move(dispatcher), std::move(options)));
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : service_names) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(name);
    if (service == nullptr) return absl::NotFoundError(absl::StrCat("unknown service ", name));
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      if (!method->options().HasExtension(google::api::http)) continue;
      if (method->client_streaming()) continue;  // no REST form for client streams
      const google::api::HttpRule& rule = method->options().GetExtension(google::api::http);
      if (absl::Status s = gateway->AddRule(method, rule); !s.ok()) return s;
      for (const auto& extra : rule.additional_bindings()) {
        if (absl::Status s = gateway->AddRule(method, extra); !s.ok()) return s;
      }
    }
  }
  std::vector<const HttpBinding*> bindings;
  for (const HttpBinding& binding : gateway->described_) bindings.push_back(&binding);
  auto documents = DescribeRoutes(bindings, gateway->options_.openapi);
  if (!documents.ok()) return documents.status();
  gateway->openapi_ = *std::move(documents);
  return gateway;
}

std::vector<http::RouteRpc> Gateway::Routes() const {
  std::vector<http::RouteRpc> routes;
  for (const HttpBinding& binding : described_) {
    routes.push_back({binding.http_method, binding.path.text,
                      binding.method->service()->full_name(), binding.method->name()});
  }
  return routes;
}

std::function<void(const http::Request&, http::Response&)> Gateway::OwnAnswerHeaders() const {
  if (!cors_.enabled()) return nullptr;
  return [self = shared_from_this()](const http::Request& request, http::Response& answer) {
    self->cors_.AddTo(request, answer);
  };
}

absl::Status Gateway::AddRule(const MethodDescriptor* method, const google::api::HttpRule& rule) {
  HttpBinding binding;
  binding.method = method;
  std::string path;
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      binding.http_method = "GET";
      path = rule.get();
      break;
    case google::api::HttpRule::kPut:
      binding.http_method = "PUT";
      path = rule.put();
      break;
    case google::api::HttpRule::kPost:
      binding.http_method = "POST";
      path = rule.post();
      break;
    case google::api::HttpRule::kDelete:
      binding.http_method = "DELETE";
      path = rule.delete_();
      break;
    case google::api::HttpRule::kPatch:
      binding.http_method = "PATCH";
      path = rule.patch();
      break;
    case google::api::HttpRule::kCustom:
      binding.http_method = rule.custom().kind();
      path = rule.custom().path();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(method->full_name(), ": http rule without a pattern"));
  }
  auto parsed = PathTemplate::Parse(path);
  if (!parsed.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(method->full_name(), ": ", parsed.status().message()));
  binding.path = *std::move(parsed);
  binding.body = rule.body();
  binding.response_body = rule.response_body();
  binding.rpc_path = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  binding.request_prototype = factory->GetPrototype(method->input_type());
  binding.response_prototype = factory->GetPrototype(method->output_type());
  const PathTemplate path_template = binding.path;
  const std::string http_method = binding.http_method;
  ++route_count_;
  described_.push_back(binding);
  return routes_.Add(http_method, path_template, std::move(binding));
}

namespace {

// What gRPC accepts as a metadata key (lower-case letters, digits, "-", "_", ".") and as the
// value of a text key (printable ASCII), by gRPC's own rules. gRPC 1.51 aborts the process on a
// call started with anything else, so nothing else leaves the gateway as metadata. A key must
// also not be gRPC's own (grpc-*) nor binary (*-bin: HTTP headers carry no raw bytes).
grpc_slice Slice(absl::string_view text) {
  return grpc_slice_from_static_buffer(text.data(), text.size());
}

bool LegalMetadataKey(absl::string_view key) {
  return grpc_header_key_is_legal(Slice(key)) != 0 && grpc_is_binary_header(Slice(key)) == 0 &&
         !absl::StartsWith(key, "grpc-");
}

bool LegalMetadataValue(absl::string_view value) {
  return grpc_header_nonbin_value_is_legal(Slice(value)) != 0;
}

}  // namespace

bool Gateway::Options(const http::Request& request, const AnswerContext& answer,
                      const http::Responder& respond, std::string* route) const {
  // No route has OPTIONS: what the lookup returns is every method the path has.
  std::set<std::string> methods = routes_.Find("OPTIONS", http::PathOf(request)).allowed;
  if (methods.empty()) return false;
  *route = "OPTIONS";
  const std::string origin = Header(request, bhttp::field::origin);
  http::Response response;
  if (cors_.enabled() && Cors::IsPreflight(request)) {
    if (!cors_.Allows(origin)) {
      response = ErrorAnswer(answer,
                             grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                          absl::StrCat("origin ", origin,
                                                       " may not call this API from a browser "
                                                       "(not in --cors_allowed_origins)")),
                             options_.compress_min_bytes);
    } else {
      response = cors_.Preflight(request, methods);
    }
  } else {
    if (methods.count("GET")) methods.insert("HEAD");
    methods.insert("OPTIONS");
    response = http::Response(bhttp::status::no_content, answer.version);
    response.set(bhttp::field::allow, absl::StrJoin(methods, ", "));
    response.set(bhttp::field::vary, "Accept-Encoding");
  }
  response.set("X-Request-Id", answer.request_id);
  response.set("X-Process-Time", ProcessTime(answer.start));
  respond(std::move(response));
  return true;
}

// Parse: what every answer to request carries, whatever its status.
AnswerContext Gateway::ContextOf(const http::Request& request) {
  AnswerContext answer{request.version(), request.method() == bhttp::verb::head,
                       http::AcceptsGzip(Header(request, bhttp::field::accept_encoding)), "",
                       Clock::now()};
  answer.request_id = http::FieldValue(request, "X-Request-Id");
  if (answer.request_id.empty() || answer.request_id.size() > 128 ||
      !LegalMetadataValue(answer.request_id)) {
    answer.request_id = RandomRequestId();
  }
  answer.safe = answer.head || request.method() == bhttp::verb::get;
  if (answer.safe) answer.if_none_match = Header(request, bhttp::field::if_none_match);
  return answer;
}

void Gateway::NoRoute(const http::Request& request, const http::Responder& given) const {
  const http::Responder respond =
      cors_.enabled() ? cors_.Wrap(Header(request, bhttp::field::origin), given) : given;
  respond(ErrorAnswer(ContextOf(request),
                      grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   absl::StrCat("no route for ", http::PathOf(request))),
                      options_.compress_min_bytes));
}

bool Gateway::Handle(const http::Request& request, const http::Responder& given,
                     std::string* route) {
  const absl::string_view target(request.target().data(), request.target().size());
  const absl::string_view path = http::PathOf(request);
  const absl::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : absl::string_view();
  AnswerContext answer = ContextOf(request);
  const std::size_t min = options_.compress_min_bytes;
  if (const absl::string_view twice = FieldGivenTwice(request); !twice.empty()) {
    *route = "unmatched";
    given(ErrorAnswer(
        answer,
        grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("header ", twice, " is given twice: it takes one value (RFC 9110 5.3)")),
        min));
    return true;
  }
  if (request.method() == bhttp::verb::options) return Options(request, answer, given, route);
  // With CORS on, every answer goes through a responder that adds its headers.
  std::optional<http::Responder> wrapped;
  if (cors_.enabled()) wrapped = cors_.Wrap(Header(request, bhttp::field::origin), given);
  const http::Responder& respond = wrapped ? *wrapped : given;

  if (path == "/openapi.json" || path == "/openapi3.json") {
    *route = std::string(path);
    respond(Answer(answer, 200, path == "/openapi.json" ? openapi_.v2 : openapi_.v3,
                   "application/json", min));
    return true;
  }
  // Route.
  const std::string method = answer.head ? "GET" : std::string(request.method_string());
  auto match = routes_.Find(method, path);
  if (match.target == nullptr && match.malformed) {
    *route = "unmatched";
    respond(ErrorAnswer(
        answer,
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed percent-encoding in the path"),
        min));
    return true;
  }
  if (match.target == nullptr) {
    if (match.allowed.empty()) return false;
    *route = "unmatched";
    if (match.allowed.count("GET")) match.allowed.insert("HEAD");
    http::Response response =
        ErrorAnswer(answer,
                    grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                 absl::StrCat(method, " is not allowed on ", std::string(path))),
                    min);
    response.result(bhttp::status::method_not_allowed);
    response.set(bhttp::field::allow, absl::StrJoin(match.allowed, ", "));
    respond(std::move(response));
    return true;
  }
  const HttpBinding& binding = *match.target;
  *route = binding.path.text;

  // Decode: the call from the headers, the request message from path, query and body.
  const rpc::LocalMethod* local = options_.local != nullptr && !binding.method->server_streaming()
                                      ? options_.local->Find(binding.rpc_path)
                                      : nullptr;
  OutgoingCall call;
  if (local == nullptr) call.method = binding.rpc_path;
  std::unique_ptr<Message> message;
  // A call sent on over a channel names the client in X-Forwarded-For (for the access log of the
  // server behind); one answered in process needs no name.
  if (Refusal refused = DecodeCall(request, answer, local == nullptr ? respond.peer() : "", &call);
      !refused.status.ok() ||
      !(refused = DecodeMessage(request, binding, match.bindings, query, &message)).status.ok()) {
    http::Response response = ErrorAnswer(answer, refused.status, min);
    if (refused.http_status != 0) response.result(static_cast<bhttp::status>(refused.http_status));
    respond(std::move(response));
    return true;
  }
  // If-Match on a write becomes the request's etag, which the service checks with the write.
  if (const std::string if_match = Header(request, bhttp::field::if_match);
      !if_match.empty() && !answer.safe) {
    const absl::Status applied = ApplyIfMatch(if_match, binding, message.get());
    if (!applied.ok()) {
      http::Response response =
          ErrorAnswer(answer,
                      grpc::Status(static_cast<grpc::StatusCode>(applied.code()),
                                   std::string(applied.message())),
                      min);
      if (absl::IsFailedPrecondition(applied)) response.result(bhttp::status::precondition_failed);
      respond(std::move(response));
      return true;
    }
    answer.if_match = true;
  }

  // Invoke, then render.
  if (binding.method->server_streaming()) {
    // A client that leaves before the stream's first message cancels it (after that, the
    // failed write does).
    respond.OnClientGone(dispatcher_->ServerStream(
        call, message->SerializeAsString(),
        std::make_shared<NdjsonStream>(respond, answer, binding.response_prototype, min)));
    return true;
  }
  Invoke(binding, local, std::move(call), std::move(message), respond, answer);
  return true;
}

Gateway::Refusal Gateway::DecodeCall(const http::Request& request, const AnswerContext& answer,
                                     std::string_view peer, OutgoingCall* call) const {
  if (const std::string grpc_timeout = http::FieldValue(request, "Grpc-Timeout");
      !grpc_timeout.empty()) {
    absl::Duration timeout;
    if (!ParseGrpcTimeout(grpc_timeout, &timeout)) {
      return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "Grpc-Timeout must be digits and a unit (H M S m u n), e.g. 500m")};
    }
    call->deadline = absl::Now() + timeout;
  } else if (const std::string timeout_ms = http::FieldValue(request, "X-Timeout-Ms");
             !timeout_ms.empty()) {
    std::int64_t ms;
    if (!absl::SimpleAtoi(timeout_ms, &ms) || ms <= 0) {
      return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "X-Timeout-Ms must be a positive number of milliseconds")};
    }
    call->deadline = absl::Now() + absl::Milliseconds(ms);
  }
  call->metadata.emplace_back("x-request-id", answer.request_id);
  for (const auto& field : request) {
    const absl::string_view name(field.name_string().data(), field.name_string().size());
    const absl::string_view value(field.value().data(), field.value().size());
    if (field.name() == bhttp::field::authorization) {
      if (!LegalMetadataValue(value)) {
        return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "the Authorization header must be printable ASCII"),
                400};
      }
      call->metadata.emplace_back("authorization", std::string(value));
    } else if (absl::EqualsIgnoreCase(name, rpc::Consistency::kHeader)) {
      call->read_after = rpc::Consistency::Parse(std::string_view(value.data(), value.size()));
      if (call->read_after == 0) {
        return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat(rpc::Consistency::kHeader, rpc::Consistency::kMalformed)),
                400};
      }
      call->metadata.emplace_back(rpc::Consistency::kMetadataKey, std::string(value));
    } else if (name.size() > 14 && absl::StartsWithIgnoreCase(name, "grpc-metadata-")) {
      std::string key = absl::AsciiStrToLower(name.substr(14));
      for (const OwnKey& own : kOwnMetadataKeys) {
        if (key != own.key) continue;
        return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("header ", name, ": the gateway sets ", own.key,
                                          " itself; send the ", own.header, " header")),
                400};
      }
      if (!LegalMetadataKey(key) || !LegalMetadataValue(value)) {
        return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("header ", name,
                                          ": gRPC metadata takes keys of a-z, 0-9, -, _ and . "
                                          "(not grpc-*, not *-bin) and printable ASCII values")),
                400};
      }
      call->metadata.emplace_back(std::move(key), std::string(value));
    }
  }
  // As a proxy adds itself to X-Forwarded-For (and grpc-gateway does): the address the request
  // came from after what the proxies before said, when they said it in printable ASCII.
  if (!peer.empty()) {
    std::string forwarded(peer);
    if (const std::string before = http::FieldValue(request, "X-Forwarded-For"); !before.empty()) {
      if (LegalMetadataValue(before)) {
        forwarded = absl::StrCat(before, ", ", absl::string_view(peer.data(), peer.size()));
      }
    }
    call->metadata.emplace_back("x-forwarded-for", std::move(forwarded));
  }
  return {};
}

Gateway::Refusal Gateway::DecodeMessage(const http::Request& request, const HttpBinding& binding,
                                        const Bindings& captures, absl::string_view query,
                                        std::unique_ptr<Message>* message) const {
  // The body: JSON, possibly gzip.
  std::string unpacked;
  absl::string_view body = request.body();
  if (!absl::StripAsciiWhitespace(body).empty()) {
    const std::string type = absl::AsciiStrToLower(Header(request, bhttp::field::content_type));
    if (!type.empty() && !absl::StartsWith(type, "application/json")) {
      return {grpc::Status(
                  grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("unsupported Content-Type \"", type, "\": send application/json")),
              415};
    }
    const std::string encoding =
        absl::AsciiStrToLower(Header(request, bhttp::field::content_encoding));
    if (encoding == "gzip") {
      auto inflated = http::GzipDecompress(body, options_.max_body_bytes);
      if (!inflated.ok()) {
        return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             std::string(inflated.status().message())),
                absl::IsResourceExhausted(inflated.status()) ? 413 : 400};
      }
      unpacked = *std::move(inflated);
      body = unpacked;
    } else if (!encoding.empty() && encoding != "identity") {
      return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           absl::StrCat("unsupported Content-Encoding \"", encoding,
                                        "\": send gzip or identity")),
              415};
    }
  }
  message->reset(binding.request_prototype->New());
  if (absl::Status s =
          BuildRequest(binding, captures, query, body, options_.transcode, message->get());
      !s.ok()) {
    return {grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()))};
  }
  return {};
}

void Gateway::SetCacheHeaders(http::Response& response) const {
  if (options_.cache_control.empty() && options_.accel_expires.empty()) return;
  if (!options_.cache_control.empty()) {
    response.set(bhttp::field::cache_control, options_.cache_control);
  }
  if (!options_.accel_expires.empty()) response.set("X-Accel-Expires", options_.accel_expires);
  // An answer a cache may keep says what it depends on: a read that sends a write's position
  // (read-your-writes) must not be answered with a copy kept for one that did not.
  response.set(bhttp::field::vary, absl::StrCat("Accept-Encoding, ", rpc::Consistency::kHeader));
}

void Gateway::Invoke(const HttpBinding& binding, const rpc::LocalMethod* local, OutgoingCall call,
                     std::unique_ptr<Message> message, const http::Responder& respond,
                     const AnswerContext& answer) {
  const std::size_t min = options_.compress_min_bytes;
  // Render. shared: the reply as a cache holds it (see rpc::LocalDone), whose body the memo may
  // already have. Holds the gateway: binding and memo are its own.
  auto respond_unary = [respond, answer, min, &binding, memo = memo_.get(),
                        self = shared_from_this()](const grpc::Status& status, const Message* reply,
                                                   const CallResult* metadata,
                                                   const std::shared_ptr<const Message>& shared) {
    if (!status.ok()) {
      http::Response response = ErrorAnswer(answer, status, min);
      // The service refused the If-Match etag: the precondition failed (RFC 9110 13.1.1).
      if (answer.if_match && status.error_code() == grpc::StatusCode::ABORTED) {
        response.result(bhttp::status::precondition_failed);
      }
      if (metadata != nullptr) CopyMetadata(*metadata, response);
      return respond(std::move(response));
    }
    const std::string etag = EtagOf(*reply);
    if (!etag.empty() && !answer.if_none_match.empty() && NoneMatch(answer.if_none_match, etag)) {
      http::Response response = NotModified(answer, etag);
      self->SetCacheHeaders(response);
      return respond(std::move(response));
    }
    const bool memoized = shared != nullptr && memo != nullptr;
    AnswerMemo::Body body;
    if (!memoized || !memo->Find(&binding, shared, answer.accepts_gzip, &body)) {
      auto json = RenderResponse(binding, *reply);
      if (!json.ok()) {
        return respond(ErrorAnswer(
            answer, grpc::Status(grpc::StatusCode::INTERNAL, std::string(json.status().message())),
            min));
      }
      body = Encode(answer, *std::move(json), min);
      if (memoized) memo->Keep(&binding, shared, answer.accepts_gzip, body);
    }
    http::Response response = EncodedAnswer(answer, 200, std::move(body), "application/json");
    if (!etag.empty()) response.set(bhttp::field::etag, EntityTag(etag));
    if (answer.safe) self->SetCacheHeaders(response);
    if (metadata != nullptr) CopyMetadata(*metadata, response);
    respond(std::move(response));
  };
  if (local != nullptr) {
    // In process: the request message itself goes to the service; nothing is serialized.
    std::shared_ptr<const Message> request(std::move(message));
    // A client that closes its connection cancels the call (and its running SQL).
    auto cancellation = std::make_shared<rpc::Cancellation>();
    respond.OnClientGone([cancellation] { rpc::CancelSoon(cancellation); });
    // What the call reads after, and where its writes reach (the X-Hotpath-Lsn header both ways):
    // for reads that send a position, and for every call that may write.
    std::shared_ptr<rpc::Consistency> consistency;
    if (call.read_after != 0 || !answer.safe) {
      consistency = std::make_shared<rpc::Consistency>(call.read_after);
    }
    rpc::LocalCall local_call{call.deadline, std::move(call.metadata), cancellation};
    local_call.consistency = consistency;
    options_.local->Call(
        *local, *request, local_call,
        [request, consistency, cancellation, deadline = absl::ToChronoTime(local_call.deadline),
         safe = answer.safe,
         respond_unary = std::move(respond_unary)](grpc::Status status, const Message* reply,
                                                   const std::shared_ptr<const Message>& shared) {
          // A client that closed its connection first is answered (counted, logged) 499, as
          // nginx counts it: not the server error its cancelled statement would read as. A read's
          // reply is not rendered for it either (a write's says what was done, and is).
          const bool left = cancellation->cancelled();
          status = rpc::AsTheCallerSawIt(std::move(status), left, deadline);
          if (left && safe && status.ok()) {
            status = grpc::Status(grpc::StatusCode::CANCELLED, "the client left before the answer");
          }
          if (consistency == nullptr || consistency->committed() == 0) {
            return respond_unary(status, reply, nullptr, shared);
          }
          CallResult metadata;
          metadata.headers.emplace(rpc::Consistency::kMetadataKey,
                                   rpc::Consistency::Format(consistency->committed()));
          respond_unary(status, reply, &metadata, shared);
        });
    return;
  }
  const Message* output = binding.response_prototype;
  // A client that closes its connection cancels the upstream call (and, there, its running SQL):
  // it ends CANCELLED, answered 499.
  std::function<void()> cancel = dispatcher_->Unary(
      call, message->SerializeAsString(), [respond_unary, output](CallResult result) {
        if (!result.status.ok()) return respond_unary(result.status, nullptr, &result, nullptr);
        std::unique_ptr<Message> reply(output->New());
        if (!reply->ParseFromString(result.response)) {
          return respond_unary(
              grpc::Status(grpc::StatusCode::INTERNAL, "undecodable response from the service"),
              nullptr, &result, nullptr);
        }
        respond_unary(grpc::Status::OK, reply.get(), &result, nullptr);
      });
  respond.OnClientGone(std::move(cancel));
}

}  // namespace hotpath::gateway
