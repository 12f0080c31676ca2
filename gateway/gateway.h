// The HTTP/JSON gateway: serves every RPC that has a google.api.http rule, from the service
// descriptors alone, the way grpc-gateway and Envoy's transcoder do. Routes are built once at
// start.
//
// Per request: match the route; take deadline (Grpc-Timeout, X-Timeout-Ms) and metadata
// (Authorization, X-Request-Id, Grpc-Metadata-*) from the headers; build the request message from
// path, query and (possibly gzip) JSON body; call the method through the Dispatcher; answer JSON
// (gzip when accepted and at least compress_min_bytes), or the gRPC error as
// {"code","message","details"} with grpc-gateway's status table. Server streams answer NDJSON:
// {"result": message} per line, and a final {"error": status} line if the stream fails midway.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/answer_memo.h"
#include "gateway/cors.h"
#include "gateway/dispatcher.h"
#include "gateway/openapi.h"
#include "gateway/route_table.h"
#include "gateway/transcoder.h"
#include "google/api/http.pb.h"
#include "server/cache/object_memo.h"
#include "server/http/http_server.h"
#include "server/rpc/local_handlers.h"

namespace hotpath::gateway {

struct AnswerContext;

struct GatewayOptions {
  TranscodeOptions transcode;             // JSON parsing rules
  std::size_t compress_min_bytes = 1000;  // smallest answer gzip-compressed
  std::size_t max_body_bytes = 1 << 20;   // limit on a request body once unpacked
  // The API as OpenAPI documents built from the routes (gateway/openapi.h): Swagger 2.0 at
  // /openapi.json, OpenAPI 3.0 at /openapi3.json.
  OpenApiOptions openapi;
  // Bodies of cached answers kept rendered (AnswerMemo): the in-process handlers' cache hits are
  // printed once per cached object, not once per request. 0: every answer printed. Default
  // cache::kDefaultMemoSlots (about 80 bytes each, plus the bodies); only with `local`, which
  // alone answers with cached objects.
  std::size_t answer_memo_slots = cache::kDefaultMemoSlots;
  // In-process handlers, used instead of the dispatcher for the methods they have (hotpathd: the
  // services' own code, no gRPC hop). Not owned; may be null.
  const rpc::LocalHandlers* local = nullptr;
  // Cache-Control of successful GET / HEAD answers (and their 304s), e.g. "no-cache" (caches may
  // keep them but revalidate each use with If-None-Match) or "max-age=1". Empty (the default):
  // none, so no shared cache keeps an answer without being told to. With it or accel_expires,
  // those answers Vary on X-Hotpath-Lsn as well as Accept-Encoding.
  std::string cache_control;
  // X-Accel-Expires of the same answers, for an nginx cache in front: how long nginx keeps them,
  // in seconds ("60") or until a Unix time ("@1": always expired, so nginx revalidates every use
  // with If-None-Match and serves its copy on a 304). nginx does not pass it on to clients. Empty
  // (the default): none. Create refuses anything else.
  std::string accel_expires;
  // Cross-origin calls from browsers (gateway/cors.h); off unless origins are given.
  CorsOptions cors;
};

// Shared: every call in flight holds it (its route binding and the answer memo are the
// gateway's), so the owner may let go of it at any time, however late an upstream answers.
class Gateway final : public std::enable_shared_from_this<Gateway> {
 public:
  // Routes for every method of the named services (from the generated descriptor pool) that has
  // google.api.http options, additional bindings included.
  static absl::StatusOr<std::shared_ptr<Gateway>> Create(
      const std::vector<std::string>& service_names, std::unique_ptr<Dispatcher> dispatcher,
      GatewayOptions options);

  // Answers request when its path is a gateway route (under any method) and returns true; false
  // leaves it to the caller. *route: the matched template, for metrics. OPTIONS answers 204 with
  // the path's methods in Allow, or as a CORS preflight when CORS is on.
  bool Handle(const http::Request& request, const http::Responder& respond, std::string* route);
  // The answer to a request no route serves: 404 NOT_FOUND as a JSON error, with the headers
  // every gateway answer carries (X-Request-Id, X-Process-Time, Vary, CORS's).
  void NoRoute(const http::Request& request, const http::Responder& respond) const;

  std::size_t route_count() const { return route_count_; }
  // What the HTTP server adds to the answers it gives without the gateway, its refusals
  // (HttpServerOptions::on_own_answer): the CORS headers every gateway answer carries. Null when
  // CORS is off. Holds the gateway.
  std::function<void(const http::Request&, http::Response&)> OwnAnswerHeaders() const;
  // Every route: its HTTP method and template, and the RPC it calls (for the HTTP metrics).
  std::vector<http::RouteRpc> Routes() const;

 private:
  // Cache-Control and X-Accel-Expires as configured, on a successful GET / HEAD answer or its 304.
  void SetCacheHeaders(http::Response& response) const;

  explicit Gateway(std::unique_ptr<Dispatcher> dispatcher, GatewayOptions options)
      : dispatcher_(std::move(dispatcher)),
        options_(std::move(options)),
        cors_(options_.cors),
        memo_(options_.answer_memo_slots > 0 && options_.local != nullptr
                  ? std::make_unique<AnswerMemo>(options_.answer_memo_slots)
                  : nullptr) {}
  absl::Status AddRule(const google::protobuf::MethodDescriptor* method,
                       const google::api::HttpRule& rule);

  // Handle's stages, as grpc-gateway's runtime splits them: parse (ContextOf), route (the table),
  // decode (DecodeCall, DecodeMessage), invoke and render (Invoke). A stage that refuses the
  // request says how: the status, and the HTTP status when not the code's usual one.
  struct Refusal {
    grpc::Status status;  // OK: not refused
    int http_status = 0;  // 0: the code's own (HttpStatusForCode)
  };
  static AnswerContext ContextOf(const http::Request& request);
  // OPTIONS: Allow, or a CORS preflight's answer; false when no route has the path.
  bool Options(const http::Request& request, const AnswerContext& answer,
               const http::Responder& respond, std::string* route) const;
  // peer: the client's address, added to X-Forwarded-For; empty: none added.
  Refusal DecodeCall(const http::Request& request, const AnswerContext& answer,
                     std::string_view peer, OutgoingCall* call) const;
  Refusal DecodeMessage(const http::Request& request, const HttpBinding& binding,
                        const Bindings& captures, absl::string_view query,
                        std::unique_ptr<google::protobuf::Message>* message) const;
  void Invoke(const HttpBinding& binding, const rpc::LocalMethod* local, OutgoingCall call,
              std::unique_ptr<google::protobuf::Message> message, const http::Responder& respond,
              const AnswerContext& answer);

  std::unique_ptr<Dispatcher> dispatcher_;  // reaches the services
  const GatewayOptions options_;            // as given
  const Cors cors_;                         // options_.cors at work
  const std::unique_ptr<AnswerMemo> memo_;  // bodies of cached answers; null when off
  RouteTable<HttpBinding> routes_;          // built once
  std::vector<HttpBinding> described_;      // the routes, in order, for the documents
  OpenApiDocuments openapi_;                // built from described_ once the routes are in
  std::size_t route_count_ = 0;             // bindings added
};

}  // namespace hotpath::gateway
