// hotpathd as a library: the database pool, migrations, the service modules it is given (see
// server/module/service_module.h), the gRPC server with its interceptors, and the HTTP server with
// the gateway and /metrics, wired together. It knows no service: main.cc lists the modules, parses
// flags and waits for a signal; tests start it in-process.
#pragma once

#include <prometheus/histogram.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"
#include "server/cache/object_memo.h"
#include "server/db/change_announcer.h"
#include "server/db/pg_pool.h"
#include "server/db/read_replicas.h"
#include "server/http/coalesced_probe.h"
#include "server/http/http_server.h"
#include "server/http/runtime_routes.h"
#include "server/metrics/grpc_metrics.h"
#include "server/metrics/http_metrics.h"
#include "server/metrics/metrics_registry.h"
#include "server/module/service_module.h"
#include "server/rpc/async_server.h"
#include "server/rpc/call_gate.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/executor.h"

namespace hotpath {

struct HotpathdOptions {
  // gRPC listen address; port 0 picks a free port.
  std::string grpc_address = "0.0.0.0:50051";
  // HTTP server (gateway, /metrics, /healthz, /readyz): host, port (0 picks a free one), threads.
  http::HttpServerOptions http;
  // Serve the JSON gateway on the HTTP port. Default on.
  bool gateway = true;
  // Ignore unknown JSON fields in gateway request bodies instead of answering 400.
  bool ignore_unknown_fields = false;
  // Answer 400 for gateway query parameters that name no field, instead of ignoring them.
  bool strict_query_parameters = false;
  // Database: URL, pool bounds and timeouts (see PgPoolOptions).
  db::PgPoolOptions database;
  // Apply pending schema migrations at start. Default on.
  bool migrate = true;
  // The longest a migration waits for a lock before its run rolls back and tries again (see
  // MigrateOptions). 2 s.
  absl::Duration migrate_lock_timeout = absl::Seconds(2);
  // Cache coherence across replicas: one connection LISTENs for the changes the modules' triggers
  // announce (server/db/change_feed.h) and drops what they made stale, within milliseconds of the
  // commit; while it is down the caches serve nothing loaded more than change_feed_max_staleness
  // ago. Off: a replica's caches see only its own writes, and serve what others changed until
  // their TTL. Default on.
  bool change_feed = true;
  // The staleness bound while the feed is down (see ChangeFeedOptions::max_staleness). 1 s.
  absl::Duration change_feed_max_staleness = absl::Seconds(1);
  // How often a silent change feed checks its connection (the longest a quietly dead one goes
  // unnoticed). Default 250 ms.
  absl::Duration change_feed_check_interval = absl::Milliseconds(250);
  // Hot standbys of the primary to read from (server/db/read_replicas.h): reads that miss the
  // caches go to one that has replayed what they must include (the client's own writes, and
  // every write that invalidated what they refill), else to the primary. Empty: none.
  std::vector<std::string> database_read_urls;
  // A standby further behind the primary than this is not read. Default 1 s.
  absl::Duration read_max_lag = absl::Seconds(1);
  // Threads running database work. 0: the pool's max size (more could only wait for a connection).
  int executor_threads = 0;
  // Database tasks that may wait for a thread before calls are refused with RESOURCE_EXHAUSTED.
  int executor_queue = 4096;
  // Niceness added to the database threads, so that when the cores are saturated the threads that
  // read and shed calls (completion queues, HTTP) run first; 0: same priority as the rest.
  int worker_nice = 10;
  // Threads for short reads that calls wait on (batched point reads, ModuleContext::
  // read_scheduler), at the normal priority: worker_nice would put every waiting caller behind the
  // load it offers. At least 1.
  int read_threads = 2;
  // Completion queues / polling threads; 0: one per core.
  int completion_queues = 0;
  // Pending calls per method and queue; server-stream compression threshold.
  rpc::CallOptions calls;
  // Largest gRPC message received or sent (AsyncServerOptions::max_message_bytes); modules keep
  // their answers under it (ModuleContext::max_message_bytes). Default 4 MiB.
  int max_message_bytes = 4 * 1024 * 1024;
  // gRPC responses of at least this many bytes are gzip-compressed for clients that accept gzip.
  std::size_t compress_min_bytes = 1000;
  // Gateway: bodies of cached answers kept rendered (gateway::AnswerMemo); 0: none.
  std::size_t gateway_answer_memo = cache::kDefaultMemoSlots;
  // Gateway: Cache-Control of successful GET / HEAD answers (GatewayOptions::cache_control); "":
  // none.
  std::string gateway_cache_control;
  // Gateway: X-Accel-Expires of the same answers (GatewayOptions::accel_expires); "": none.
  std::string gateway_accel_expires;
  // Gateway: cross-origin calls from browsers (gateway::CorsOptions); off by default.
  gateway::CorsOptions cors;
  // One JSON line per gRPC call and per HTTP request on stderr (http/access_log.h).
  bool access_log = false;
  // Admission of every call, gRPC or gateway: in-flight cap and bearer tokens.
  rpc::CallGateOptions admission;
  // gRPC connection management: keepalive, connection age.
  rpc::ConnectionOptions connections;
  // Every this often, free heap pages go back to the OS (jemalloc purge, or glibc malloc_trim):
  // after a burst the allocator otherwise keeps its high-water mark in RSS. Zero: never. 30 s.
  absl::Duration memory_trim_interval = absl::Seconds(30);
  // On Shutdown, time between readiness turning false and refusing new calls, so load balancers
  // stop sending first. Counts against the grace period. Default 0.
  absl::Duration drain_delay = absl::ZeroDuration();
  // gRPC TLS (PEM files; empty: plaintext); HTTPS is in http.tls_*.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class Hotpathd final {
 public:
  // Connects, applies the modules' migrations, starts them and serves their methods (gRPC and
  // gateway); the error says which step failed. Modules are destroyed after the servers stop.
  static absl::StatusOr<std::unique_ptr<Hotpathd>> Start(HotpathdOptions options,
                                                         module::ServiceModules modules);
  ~Hotpathd();

  int grpc_port() const { return server_->port(); }
  int http_port() const { return http_->port(); }
  db::PgPool& pool() { return *pool_; }
  metrics::MetricsRegistry& metrics() { return *metrics_; }

  // Graceful stop: readiness and health go false, drain_delay passes, no new connections; plaintext
  // gRPC connections that max_connection_age closes before the grace ends are left to (each gets
  // its GOAWAY with every call still served), then no new calls; in-flight ones (gRPC and HTTP)
  // get until grace, database work drains, the HTTP server and the pool close. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  Hotpathd() = default;
  // Every HTTP request: the runtime's routes, then the gateway's, else 404.
  void HandleHttp(const http::Request& request, http::Responder respond);

  // First, so it is destroyed last: a late gRPC callback may still post an answer to its loop.
  std::unique_ptr<http::HttpServer> http_;              // serves the routes below
  std::unique_ptr<metrics::MetricsRegistry> metrics_;   // everything /metrics shows
  std::unique_ptr<metrics::GrpcMetrics> grpc_metrics_;  // grpc_server_* series
  std::unique_ptr<rpc::CallObserver> call_observer_;    // counts every call into grpc_metrics_
  prometheus::Histogram* acquire_wait_ = nullptr;       // pool acquire waits
  std::unique_ptr<db::PgPool> pool_;                    // database connections
  std::unique_ptr<db::ReadReplicas> read_replicas_;     // standbys; null when none
  std::unique_ptr<rpc::Executor> executor_;             // database work
  std::unique_ptr<rpc::Executor> reads_;                // batched reads callers wait on
  std::unique_ptr<rpc::CallGate> gate_;                 // admits every call
  std::unique_ptr<db::ChangeAnnouncer> announcer_;      // tells other replicas; null when feed off
  module::ServiceModules modules_;                      // the services, in the given order
  std::unique_ptr<db::ChangeFeed> change_feed_;  // keeps their caches coherent; null when off
  rpc::LocalHandlers local_;                     // every module's, for the gateway
  std::unique_ptr<rpc::AsyncServer> server_;     // the gRPC server
  std::unique_ptr<metrics::HttpMetrics> http_metrics_;   // http_requests_total, durations
  std::unique_ptr<http::CoalescedProbe> readiness_;      // /readyz's check, off the executor
  std::unique_ptr<http::RuntimeRoutes> runtime_routes_;  // /metrics, /healthz, /readyz
  std::shared_ptr<gateway::Gateway> gateway_;            // REST routes; null when off
  absl::Duration drain_delay_;                           // see HotpathdOptions
  bool access_log_ = false;                              // a line per HTTP request too
  std::thread trimmer_;                                  // runs malloc_trim periodically
  std::mutex trimmer_mu_;                                // guards trimmer_stop_
  std::condition_variable trimmer_wake_;                 // ends the trimmer's wait
  bool trimmer_stop_ = false;                            // Shutdown asked it to stop
  bool stopped_ = false;                                 // Shutdown ran
  std::atomic<int> ready_{0};                            // the last readiness check: 1 ready
  std::atomic<bool> shutting_down_{false};               // Shutdown began: never ready again
};

}  // namespace hotpath
