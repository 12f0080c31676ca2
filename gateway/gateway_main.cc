// hotpath-gateway: the HTTP/JSON gateway alone, in front of remote hotpath gRPC servers.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"
#include "gateway/openapi.h"
#include "gateway/upstream_metrics.h"
#include "grpc/health/v1/health.pb.h"
#include "server/app/descriptors.h"
#include "server/app/env.h"
#include "server/app/flag_ranges.h"
#include "server/app/mutexes.h"
#include "server/app/termination.h"
#include "server/catalog/catalog_api.h"
#include "server/http/access_log.h"
#include "server/http/http_server.h"
#include "server/http/runtime_routes.h"
#include "server/metrics/http_metrics.h"
#include "server/metrics/metrics_registry.h"
#include "server/rpc/tls.h"

using hotpath::app::EnvOr;

ABSL_FLAG(std::string, upstream, EnvOr("HOTPATH_UPSTREAM", "localhost:50051"),
          "gRPC address (host:port, or any gRPC target such as dns:///name:port or "
          "ipv4:a:port,b:port) of the hotpath servers: calls go round robin over every address "
          "it names (env HOTPATH_UPSTREAM)");
ABSL_FLAG(std::string, upstream_ca_file, EnvOr("HOTPATH_UPSTREAM_CA_FILE", ""),
          "call the upstream over TLS, trusting this CA's PEM certificate "
          "(env HOTPATH_UPSTREAM_CA_FILE)");
ABSL_FLAG(int, upstream_timeout_ms, EnvOr("HOTPATH_UPSTREAM_TIMEOUT_MS", 30000),
          "deadline of a unary call to the upstream whose request sets none (Grpc-Timeout, "
          "X-Timeout-Ms): an upstream that stops answering holds no request past it; 0: none "
          "(env HOTPATH_UPSTREAM_TIMEOUT_MS)");
ABSL_FLAG(int, upstream_keepalive_ms, EnvOr("HOTPATH_UPSTREAM_KEEPALIVE_MS", 20000),
          "while calls are open, ping the upstream this often; a connection whose ping goes "
          "unanswered is closed and its calls fail (exports included). hotpathd refuses pings "
          "more often than every 10 s (env HOTPATH_UPSTREAM_KEEPALIVE_MS)");
ABSL_FLAG(int, upstream_keepalive_timeout_ms, EnvOr("HOTPATH_UPSTREAM_KEEPALIVE_TIMEOUT_MS", 10000),
          "how long a ping to the upstream may go unanswered "
          "(env HOTPATH_UPSTREAM_KEEPALIVE_TIMEOUT_MS)");
ABSL_FLAG(int, upstream_connect_timeout_ms, EnvOr("HOTPATH_UPSTREAM_CONNECT_TIMEOUT_MS", 2000),
          "longest one connection attempt to the upstream may take (TCP, TLS and the server's "
          "first HTTP/2 frame); requests waiting for it answer 503 when it fails "
          "(env HOTPATH_UPSTREAM_CONNECT_TIMEOUT_MS)");
ABSL_FLAG(bool, access_log, EnvOr("HOTPATH_ACCESS_LOG", false),
          "one JSON line per HTTP request on stderr, as hotpathd's (env HOTPATH_ACCESS_LOG)");
ABSL_FLAG(std::string, tls_cert_file, EnvOr("HOTPATH_TLS_CERT_FILE", ""),
          "serve HTTPS with this PEM certificate chain (env HOTPATH_TLS_CERT_FILE)");
ABSL_FLAG(std::string, tls_key_file, EnvOr("HOTPATH_TLS_KEY_FILE", ""),
          "the certificate's PEM private key (env HOTPATH_TLS_KEY_FILE)");
ABSL_FLAG(int, shutdown_grace_ms, EnvOr("HOTPATH_SHUTDOWN_GRACE_MS", 10000),
          "time requests in flight get to finish on SIGTERM (env HOTPATH_SHUTDOWN_GRACE_MS)");
ABSL_FLAG(std::string, http_host, EnvOr("HOTPATH_HTTP_HOST", "0.0.0.0"),
          "HTTP listen host (env HOTPATH_HTTP_HOST)");
ABSL_FLAG(int, http_port, EnvOr("HOTPATH_HTTP_PORT", 8081),
          "HTTP port; 0 picks a free one (env HOTPATH_HTTP_PORT)");
ABSL_FLAG(int, http_threads, EnvOr("HOTPATH_HTTP_THREADS", 0),
          "event-loop threads of the HTTP server; 0: two per usable core "
          "(env HOTPATH_HTTP_THREADS)");
ABSL_FLAG(int, http_max_connections, EnvOr("HOTPATH_HTTP_MAX_CONNECTIONS", 10000),
          "open HTTP connections at most (503 past it; never more than half the descriptor "
          "limit) (env HOTPATH_HTTP_MAX_CONNECTIONS)");
ABSL_FLAG(int, max_body_bytes, EnvOr("HOTPATH_MAX_BODY_BYTES", 1 << 20),
          "largest request body, unpacked, in bytes; 413 above (env HOTPATH_MAX_BODY_BYTES)");
ABSL_FLAG(int, max_receiving_body_bytes, EnvOr("HOTPATH_MAX_RECEIVING_BODY_BYTES", 64 << 20),
          "HTTP request bodies still arriving hold at most this many bytes in all (each its "
          "declared length, a chunked one --max_body_bytes); a body past it gets 503 before it is "
          "read; at least --max_body_bytes (env HOTPATH_MAX_RECEIVING_BODY_BYTES)");
ABSL_FLAG(int, max_unsent_answer_bytes, EnvOr("HOTPATH_MAX_UNSENT_ANSWER_BYTES", 64 << 20),
          "HTTP answers not yet written hold at most this many bytes in all (each its body's "
          "size, until written); an answer past it is replaced by a 503 (env "
          "HOTPATH_MAX_UNSENT_ANSWER_BYTES)");
ABSL_FLAG(std::string, cors_allowed_origins, EnvOr("HOTPATH_CORS_ALLOWED_ORIGINS", ""),
          "origins whose pages may call the gateway from a browser, comma-separated "
          "scheme://host[:port], or * for any; empty: no CORS (env HOTPATH_CORS_ALLOWED_ORIGINS)");
ABSL_FLAG(bool, cors_allow_credentials, EnvOr("HOTPATH_CORS_ALLOW_CREDENTIALS", false),
          "let those pages send cookies and HTTP authentication (env "
          "HOTPATH_CORS_ALLOW_CREDENTIALS)");
ABSL_FLAG(int, cors_max_age_s, EnvOr("HOTPATH_CORS_MAX_AGE_S", 600),
          "seconds a browser may keep a CORS preflight's answer (env HOTPATH_CORS_MAX_AGE_S)");
ABSL_FLAG(std::string, gateway_accel_expires, EnvOr("HOTPATH_GATEWAY_ACCEL_EXPIRES", ""),
          "X-Accel-Expires of successful gateway GET/HEAD answers, for an nginx cache in front: "
          "seconds, or @ and a Unix time (@1: nginx revalidates every use); empty: none "
          "(env HOTPATH_GATEWAY_ACCEL_EXPIRES)");
ABSL_FLAG(std::string, gateway_cache_control, EnvOr("HOTPATH_GATEWAY_CACHE_CONTROL", ""),
          "Cache-Control of successful GET/HEAD answers, e.g. no-cache; empty: none "
          "(env HOTPATH_GATEWAY_CACHE_CONTROL)");
ABSL_FLAG(int, compress_min_bytes, EnvOr("HOTPATH_COMPRESS_MIN_BYTES", 1000),
          "answers of at least this many bytes are gzip-compressed (env "
          "HOTPATH_COMPRESS_MIN_BYTES)");
ABSL_FLAG(bool, strict_query_parameters, EnvOr("HOTPATH_STRICT_QUERY_PARAMETERS", false),
          "answer 400 for query parameters that name no field, instead of ignoring them (env "
          "HOTPATH_STRICT_QUERY_PARAMETERS)");
ABSL_FLAG(
    bool, ignore_unknown_fields, EnvOr("HOTPATH_IGNORE_UNKNOWN_FIELDS", false),
    "ignore unknown JSON fields instead of answering 400 (env HOTPATH_IGNORE_UNKNOWN_FIELDS)");

int main(int argc, char** argv) {
  hotpath::app::ConfigureMutexDeadlockDetection();
  hotpath::app::RaiseDescriptorLimit();
  absl::SetProgramUsageMessage("hotpath-gateway: HTTP/JSON in front of hotpath gRPC servers");
  absl::ParseCommandLine(argc, argv);
  absl::Status invalid = hotpath::app::CheckEnvironment();
  if (invalid.ok()) {
    invalid = hotpath::app::CheckFlagRanges({
        {"upstream_timeout_ms", absl::GetFlag(FLAGS_upstream_timeout_ms), 0},
        {"upstream_keepalive_ms", absl::GetFlag(FLAGS_upstream_keepalive_ms), 1},
        {"upstream_keepalive_timeout_ms", absl::GetFlag(FLAGS_upstream_keepalive_timeout_ms), 1},
        {"upstream_connect_timeout_ms", absl::GetFlag(FLAGS_upstream_connect_timeout_ms), 1},
        {"http_port", absl::GetFlag(FLAGS_http_port), 0, 65535},
        {"http_threads", absl::GetFlag(FLAGS_http_threads), 0, 1024},
        {"http_max_connections", absl::GetFlag(FLAGS_http_max_connections), 1},
        {"max_body_bytes", absl::GetFlag(FLAGS_max_body_bytes), 1},
        {"max_receiving_body_bytes", absl::GetFlag(FLAGS_max_receiving_body_bytes), 1},
        {"max_unsent_answer_bytes", absl::GetFlag(FLAGS_max_unsent_answer_bytes), 1},
        {"compress_min_bytes", absl::GetFlag(FLAGS_compress_min_bytes), 0},
        {"cors_max_age_s", absl::GetFlag(FLAGS_cors_max_age_s), 0},
        {"shutdown_grace_ms", absl::GetFlag(FLAGS_shutdown_grace_ms), 0},
    });
  }
  if (!invalid.ok()) {
    std::cerr << "hotpath-gateway: " << invalid.message() << "\n";
    return 1;
  }
  hotpath::app::BlockTerminationSignals();

  auto credentials = hotpath::rpc::ChannelCredentials(absl::GetFlag(FLAGS_upstream_ca_file));
  if (!credentials.ok()) {
    std::cerr << "hotpath-gateway: " << credentials.status().message() << "\n";
    return 1;
  }
  // Back soon after the upstream is: gRPC's default reconnect backoff starts at 1 s and grows by
  // 1.6x up to 120 s, so a gateway whose upstream restarted served again only 5 s later. From
  // 100 ms capped at 500 ms (+/- 20% jitter), it reconnects within a second of the upstream
  // listening again.
  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // gRPC's "minimum reconnect backoff" is the time one connection attempt may take, 20 s by
  // default, and calls wait for an attempt in progress: in front of an upstream whose machine is
  // gone (no answer to SYN) or whose process hangs (the kernel accepts, no HTTP/2 settings come),
  // every request waited 20 s for its 503. Servers beside the gateway connect in milliseconds.
  const int connect_timeout_ms = absl::GetFlag(FLAGS_upstream_connect_timeout_ms);
  channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, connect_timeout_ms);
  // Every server the target names (dns:/// with several addresses, ipv4:a,b): a connection to
  // each and calls spread over them. gRPC's default, pick_first, sends every call to one.
  channel_args.SetLoadBalancingPolicyName("round_robin");
  // An upstream that stops answering (hung, or its machine gone with no reset sent) is found by
  // its unanswered ping, not minutes later by TCP: the connection closes, its calls fail
  // UNAVAILABLE (503) and the next go to a new connection. gRPC stops pinging after two pings
  // without a data frame sent by default, which a long export (the gateway sends nothing after
  // its request) would reach: no limit here.
  const int keepalive_ms = absl::GetFlag(FLAGS_upstream_keepalive_ms);
  const int keepalive_timeout_ms = absl::GetFlag(FLAGS_upstream_keepalive_timeout_ms);
  const int timeout_ms = absl::GetFlag(FLAGS_upstream_timeout_ms);
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_timeout_ms);
  channel_args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Whatever the upstream sends: its own --max_message_bytes bounds its answers, and a limit here
  // of gRPC's default 4 MiB would fail a larger one as RESOURCE_EXHAUSTED, a 429 a client retries.
  channel_args.SetMaxReceiveMessageSize(-1);
  hotpath::metrics::MetricsRegistry metrics;
  metrics.AddCollector([] { return hotpath::metrics::ProcessFamilies(); });
  hotpath::metrics::HttpMetrics http_metrics(metrics.registry());
  // Every call to the upstream, by method and the code it ended with: grpc_client_*.
  hotpath::metrics::GrpcMetrics upstream_metrics(metrics.registry(),
                                                 hotpath::metrics::GrpcMetrics::Side::kClient,
                                                 {{"upstream", absl::GetFlag(FLAGS_upstream)}});
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(
      hotpath::gateway::MakeUpstreamMetricsInterceptorFactory(&upstream_metrics));
  auto channel = grpc::experimental::CreateCustomChannelWithInterceptors(
      absl::GetFlag(FLAGS_upstream), *credentials, channel_args, std::move(interceptors));

  hotpath::gateway::GatewayOptions options;
  options.transcode.ignore_unknown_fields = absl::GetFlag(FLAGS_ignore_unknown_fields);
  options.transcode.strict_query_parameters = absl::GetFlag(FLAGS_strict_query_parameters);
  options.compress_min_bytes = static_cast<std::size_t>(absl::GetFlag(FLAGS_compress_min_bytes));
  options.max_body_bytes = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  options.cache_control = absl::GetFlag(FLAGS_gateway_cache_control);
  options.accel_expires = absl::GetFlag(FLAGS_gateway_accel_expires);
  auto cors = hotpath::gateway::CorsOptionsFromFlags(absl::GetFlag(FLAGS_cors_allowed_origins),
                                                     absl::GetFlag(FLAGS_cors_allow_credentials),
                                                     absl::GetFlag(FLAGS_cors_max_age_s));
  if (!cors.ok()) {
    std::cerr << "hotpath-gateway: " << cors.status().message() << "\n";
    return 1;
  }
  options.cors = *std::move(cors);
  // The services it fronts: each one's descriptor (the routes come from its google.api.http
  // options) and OpenAPI document.
  struct Api {
    const google::protobuf::ServiceDescriptor* service;
    std::string_view openapi;
  };
  const std::vector<Api> apis = {
      {hotpath::catalog::CatalogServiceDescriptor(), hotpath::catalog::kCatalogOpenApi}};
  std::vector<std::string> services;
  for (const Api& api : apis) {
    services.push_back(api.service->full_name());
    options.openapi.described_by.emplace_back(api.openapi);
  }
  upstream_metrics.InitializeServices(services);  // every method's series, at zero
  auto gateway = hotpath::gateway::Gateway::Create(
      services,
      std::make_unique<hotpath::gateway::Dispatcher>(
          channel, timeout_ms == 0 ? absl::InfiniteDuration() : absl::Milliseconds(timeout_ms)),
      std::move(options));
  if (!gateway.ok()) {
    std::cerr << "hotpath-gateway: " << gateway.status() << "\n";
    return 1;
  }
  http_metrics.NameRoutes((*gateway)->Routes());

  // Ready while the upstream's health service says SERVING.
  auto health = std::make_shared<hotpath::gateway::Dispatcher>(channel);
  hotpath::http::RuntimeRoutes runtime(
      [&metrics] { return metrics.Render(); },
      [health](std::function<void(absl::Status)> done) {
        hotpath::gateway::OutgoingCall call;
        call.method = "/grpc.health.v1.Health/Check";
        call.deadline = absl::Now() + absl::Seconds(1);
        health->Unary(call, "", [done](hotpath::gateway::CallResult result) {
          if (!result.status.ok()) {
            return done(
                absl::UnavailableError(absl::StrCat("upstream: ", result.status.error_message())));
          }
          grpc::health::v1::HealthCheckResponse health;
          const bool serving = health.ParseFromString(result.response) &&
                               health.status() == grpc::health::v1::HealthCheckResponse::SERVING;
          done(serving ? absl::OkStatus() : absl::UnavailableError("upstream is not serving"));
        });
      });

  hotpath::http::HttpServerOptions http_options;
  http_options.host = absl::GetFlag(FLAGS_http_host);
  http_options.port = absl::GetFlag(FLAGS_http_port);
  http_options.threads = absl::GetFlag(FLAGS_http_threads);
  http_options.max_connections =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_http_max_connections));
  http_options.max_body_bytes = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  http_options.max_receiving_body_bytes =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_max_receiving_body_bytes));
  http_options.max_unsent_answer_bytes =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_max_unsent_answer_bytes));
  http_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  http_options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  http_options.on_refusal = http_metrics.OnRefusal();
  http_options.on_own_answer = (*gateway)->OwnAnswerHeaders();
  hotpath::gateway::Gateway* routes = gateway->get();
  const bool access_log = absl::GetFlag(FLAGS_access_log);
  hotpath::http::HttpServer server(
      http_options, [&](const hotpath::http::Request& request, hotpath::http::Responder respond) {
        auto route = std::make_shared<std::string>();
        hotpath::http::Responder instrumented =
            http_metrics.Instrument(std::move(respond), request, route);
        if (access_log) {
          instrumented = hotpath::http::AccessLogged(std::move(instrumented), request, route);
        }
        if (runtime.Handle(request, instrumented, route.get())) return;
        if (routes->Handle(request, instrumented, route.get())) return;
        routes->NoRoute(request, instrumented);
      });
  if (absl::Status s = server.Start(); !s.ok()) {
    std::cerr << "hotpath-gateway: " << s << "\n";
    return 1;
  }
  std::cerr << "hotpath-gateway: serving HTTP on port " << server.port() << " for "
            << absl::GetFlag(FLAGS_upstream) << " (" << routes->route_count() << " routes)"
            << std::endl;
  hotpath::app::WaitForTerminationSignal();
  // Readiness first, then no new connections; requests already read are answered.
  runtime.SetShuttingDown();
  server.Drain(absl::Now() + absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms)));
  server.Stop();
  // Calls still pending upstream hold the gateway (shared) and their HTTP sessions until they end.
  gateway->reset();
  std::cerr << "hotpath-gateway: stopped" << std::endl;
  return 0;
}
