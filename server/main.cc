// hotpathd: flags in, the catalog module listed, signals handled; everything else is in the
// hotpath_server and hotpath_catalog libraries.
#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "server/app/descriptors.h"
#include "server/app/env.h"
#include "server/app/flag_ranges.h"
#include "server/app/mutexes.h"
#include "server/app/termination.h"
#include "server/cache/object_memo.h"
#include "server/catalog/catalog_module.h"
#include "server/hotpathd.h"

using hotpath::app::EnvOr;

// Every flag falls back to an environment variable, named in its help (tests/flags_test.cc).
ABSL_FLAG(std::string, grpc_host, EnvOr("HOTPATH_GRPC_HOST", "0.0.0.0"),
          "gRPC listen host (env HOTPATH_GRPC_HOST)");
ABSL_FLAG(int, grpc_port, EnvOr("HOTPATH_GRPC_PORT", 50051),
          "gRPC port; 0 picks a free one (env HOTPATH_GRPC_PORT)");
ABSL_FLAG(std::string, http_host, EnvOr("HOTPATH_HTTP_HOST", "0.0.0.0"),
          "HTTP listen host (env HOTPATH_HTTP_HOST)");
ABSL_FLAG(int, http_port, EnvOr("HOTPATH_HTTP_PORT", 8080),
          "HTTP port for /metrics, /healthz, /readyz and the gateway; 0 picks a free one "
          "(env HOTPATH_HTTP_PORT)");
ABSL_FLAG(int, http_threads, EnvOr("HOTPATH_HTTP_THREADS", 0),
          "event-loop threads of the HTTP server; 0: two per usable core "
          "(env HOTPATH_HTTP_THREADS)");
ABSL_FLAG(int, http_max_connections, EnvOr("HOTPATH_HTTP_MAX_CONNECTIONS", 10000),
          "open HTTP connections at most (503 past it; never more than half the descriptor limit) "
          "(env HOTPATH_HTTP_MAX_CONNECTIONS)");
ABSL_FLAG(int, compress_min_bytes, EnvOr("HOTPATH_COMPRESS_MIN_BYTES", 1000),
          "responses of at least this many bytes are gzip-compressed for clients that accept it "
          "(env HOTPATH_COMPRESS_MIN_BYTES)");
ABSL_FLAG(int, max_message_bytes, EnvOr("HOTPATH_MAX_MESSAGE_BYTES", 4 << 20),
          "largest gRPC message received or sent, in bytes (at least 65536); list pages stop "
          "short of it (env HOTPATH_MAX_MESSAGE_BYTES)");
ABSL_FLAG(bool, gateway, EnvOr("HOTPATH_GATEWAY", true),
          "serve the HTTP/JSON gateway on the HTTP port (env HOTPATH_GATEWAY)");
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
          "Cache-Control of successful gateway GET/HEAD answers, e.g. no-cache (shared caches "
          "keep them and revalidate with If-None-Match); empty: none "
          "(env HOTPATH_GATEWAY_CACHE_CONTROL)");
ABSL_FLAG(int, gateway_answer_memo,
          EnvOr("HOTPATH_GATEWAY_ANSWER_MEMO", static_cast<int>(hotpath::cache::kDefaultMemoSlots)),
          "gateway: bodies of cached answers kept rendered (JSON, gzip), so a cache hit is not "
          "printed again; 0: none (env HOTPATH_GATEWAY_ANSWER_MEMO)");
ABSL_FLAG(bool, ignore_unknown_fields, EnvOr("HOTPATH_IGNORE_UNKNOWN_FIELDS", false),
          "gateway: ignore unknown JSON fields in request bodies instead of answering 400 (env "
          "HOTPATH_IGNORE_UNKNOWN_FIELDS)");
ABSL_FLAG(bool, strict_query_parameters, EnvOr("HOTPATH_STRICT_QUERY_PARAMETERS", false),
          "gateway: answer 400 for query parameters that name no field, instead of ignoring them "
          "(env HOTPATH_STRICT_QUERY_PARAMETERS)");
ABSL_FLAG(int, max_body_bytes, EnvOr("HOTPATH_MAX_BODY_BYTES", 1 << 20),
          "largest HTTP request body, unpacked, in bytes; larger ones get 413 (env "
          "HOTPATH_MAX_BODY_BYTES)");
ABSL_FLAG(int, max_receiving_body_bytes, EnvOr("HOTPATH_MAX_RECEIVING_BODY_BYTES", 64 << 20),
          "HTTP request bodies still arriving hold at most this many bytes in all (each its "
          "declared length, a chunked one --max_body_bytes); a body past it gets 503 before it is "
          "read; at least --max_body_bytes (env HOTPATH_MAX_RECEIVING_BODY_BYTES)");
ABSL_FLAG(int, max_unsent_answer_bytes, EnvOr("HOTPATH_MAX_UNSENT_ANSWER_BYTES", 64 << 20),
          "HTTP answers not yet written hold at most this many bytes in all (each its body's "
          "size, until written); an answer past it is replaced by a 503 (env "
          "HOTPATH_MAX_UNSENT_ANSWER_BYTES)");
ABSL_FLAG(bool, access_log, EnvOr("HOTPATH_ACCESS_LOG", false),
          "one JSON line per gRPC call and per HTTP request on stderr (env HOTPATH_ACCESS_LOG)");
ABSL_FLAG(std::string, database_url,
          EnvOr("DATABASE_URL", "postgresql://postgres@localhost:5432/hotpath"),
          "PostgreSQL URL or libpq connection string (env DATABASE_URL)");
ABSL_FLAG(std::string, database_read_url, EnvOr("HOTPATH_DATABASE_READ_URL", ""),
          "hot standbys of the primary to read from, separated by ';' (URLs or libpq strings); "
          "reads go to one that has replayed what they must include, else to the primary "
          "(env HOTPATH_DATABASE_READ_URL)");
ABSL_FLAG(absl::Duration, read_max_lag, EnvOr("HOTPATH_READ_MAX_LAG", absl::Seconds(1)),
          "a standby further behind the primary than this is not read (env HOTPATH_READ_MAX_LAG)");
ABSL_FLAG(int, pool_min, EnvOr("HOTPATH_POOL_MIN", 2),
          "database connections opened at start, at most --pool_max (env HOTPATH_POOL_MIN)");
ABSL_FLAG(int, pool_max, EnvOr("HOTPATH_POOL_MAX", 16),
          "most database connections (env HOTPATH_POOL_MAX)");
ABSL_FLAG(int, connect_timeout_ms, EnvOr("HOTPATH_CONNECT_TIMEOUT_MS", 5000),
          "longest wait to open a database connection (env HOTPATH_CONNECT_TIMEOUT_MS)");
ABSL_FLAG(int, acquire_timeout_ms, EnvOr("HOTPATH_ACQUIRE_TIMEOUT_MS", 10000),
          "longest wait for a pooled connection, whatever the call's deadline "
          "(env HOTPATH_ACQUIRE_TIMEOUT_MS)");
ABSL_FLAG(int, statement_timeout_ms, EnvOr("HOTPATH_STATEMENT_TIMEOUT_MS", 30000),
          "statement_timeout for calls without a deadline (env HOTPATH_STATEMENT_TIMEOUT_MS)");
ABSL_FLAG(int, executor_threads, EnvOr("HOTPATH_EXECUTOR_THREADS", 0),
          "threads for database work; 0: pool_max (env HOTPATH_EXECUTOR_THREADS)");
ABSL_FLAG(int, executor_queue, EnvOr("HOTPATH_EXECUTOR_QUEUE", 4096),
          "database tasks that may queue before RESOURCE_EXHAUSTED (env HOTPATH_EXECUTOR_QUEUE)");
ABSL_FLAG(int, worker_nice, EnvOr("HOTPATH_WORKER_NICE", 10),
          "niceness added to the database threads so that, with the cores saturated, the threads "
          "that read and shed calls run first; 0: off (env HOTPATH_WORKER_NICE)");
ABSL_FLAG(int, cq_threads, EnvOr("HOTPATH_CQ_THREADS", 0),
          "completion queues, one polling thread each; 0: one per usable core "
          "(env HOTPATH_CQ_THREADS)");
ABSL_FLAG(int, pending_calls, EnvOr("HOTPATH_PENDING_CALLS", 16),
          "pending calls registered per method and queue (env HOTPATH_PENDING_CALLS)");
ABSL_FLAG(std::string, page_token_secret, EnvOr("HOTPATH_PAGE_TOKEN_SECRET", ""),
          "HMAC key for page tokens, shared by replicas; empty: random per process "
          "(env HOTPATH_PAGE_TOKEN_SECRET)");
ABSL_FLAG(
    bool, cache_enabled, EnvOr("HOTPATH_CACHE_ENABLED", true),
    "cache reads in process; false sends every read to the database (env HOTPATH_CACHE_ENABLED)");
ABSL_FLAG(bool, change_feed, EnvOr("HOTPATH_CHANGE_FEED", true),
          "keep caches coherent with writes made anywhere (other replicas, psql): LISTEN for the "
          "changes the database announces (env HOTPATH_CHANGE_FEED)");
ABSL_FLAG(absl::Duration, change_feed_max_staleness,
          EnvOr("HOTPATH_CHANGE_FEED_MAX_STALENESS", absl::Seconds(1)),
          "while the change feed reconnects, cached entries loaded longer ago than this are not "
          "served (env HOTPATH_CHANGE_FEED_MAX_STALENESS)");
ABSL_FLAG(absl::Duration, change_feed_check_interval,
          EnvOr("HOTPATH_CHANGE_FEED_CHECK_INTERVAL", absl::Milliseconds(250)),
          "a silent change feed checks its connection this often "
          "(env HOTPATH_CHANGE_FEED_CHECK_INTERVAL)");
ABSL_FLAG(int, item_cache_size, EnvOr("HOTPATH_ITEM_CACHE_SIZE", 100000),
          "items kept by GetItem/BatchGetItems' cache (env HOTPATH_ITEM_CACHE_SIZE)");
ABSL_FLAG(absl::Duration, item_cache_ttl, EnvOr("HOTPATH_ITEM_CACHE_TTL", absl::Seconds(60)),
          "lifetime of a cached item (env HOTPATH_ITEM_CACHE_TTL)");
ABSL_FLAG(double, item_cache_refresh_at, EnvOr("HOTPATH_ITEM_CACHE_REFRESH_AT", 0.75),
          "a read of a cached item older than this fraction of --item_cache_ttl (each item's "
          "point drawn between 3/4 of it and it) reloads the item in the background while still "
          "serving it, so an item in use never expires under its readers; 0: off, items expire "
          "and the next read waits for the database (env HOTPATH_ITEM_CACHE_REFRESH_AT)");
ABSL_FLAG(absl::Duration, item_cache_negative_ttl,
          EnvOr("HOTPATH_ITEM_CACHE_NEGATIVE_TTL", absl::Seconds(5)),
          "lifetime of a cached NOT_FOUND item; 0: none (env HOTPATH_ITEM_CACHE_NEGATIVE_TTL)");
ABSL_FLAG(absl::Duration, list_cache_ttl, EnvOr("HOTPATH_LIST_CACHE_TTL", absl::Seconds(5)),
          "lifetime of a cached ListItems page; every write clears them (anywhere, with the "
          "change feed); "
          "0: lists always read the database (env HOTPATH_LIST_CACHE_TTL)");
ABSL_FLAG(int, list_cache_size, EnvOr("HOTPATH_LIST_CACHE_SIZE", 256),
          "ListItems pages kept by their cache (env HOTPATH_LIST_CACHE_SIZE)");
ABSL_FLAG(int, read_batches, EnvOr("HOTPATH_READ_BATCHES", 2),
          "GetItem's database reads (every read with the cache off, the item cache's loads with it "
          "on): most queries running at once; reads arriving meanwhile share the next one; 0: a "
          "query per read (env HOTPATH_READ_BATCHES)");
ABSL_FLAG(absl::Duration, read_batch_overlap,
          EnvOr("HOTPATH_READ_BATCH_OVERLAP", absl::Milliseconds(1)),
          "GetItem's database reads: a query starts beside one already running only once that "
          "one has run this long (up to --read_batches); 0: at once (env "
          "HOTPATH_READ_BATCH_OVERLAP)");
ABSL_FLAG(bool, loop_reads, EnvOr("HOTPATH_LOOP_READS", true),
          "GetItem's database reads: a batch started by an HTTP request is sent and answered on "
          "its event loop, without an executor thread (env HOTPATH_LOOP_READS)");
ABSL_FLAG(int, shared_list_reads, EnvOr("HOTPATH_SHARED_LIST_READS", 2),
          "with list pages not cached: queries of one page running at once; identical lists "
          "arriving meanwhile share the next; 0: a query per list (env HOTPATH_SHARED_LIST_READS)");
ABSL_FLAG(int, stats_cache_size, EnvOr("HOTPATH_STATS_CACHE_SIZE", 1000),
          "categories kept by GetCategoryStats' cache (env HOTPATH_STATS_CACHE_SIZE)");
ABSL_FLAG(absl::Duration, stats_cache_ttl, EnvOr("HOTPATH_STATS_CACHE_TTL", absl::Seconds(30)),
          "lifetime of cached category stats (env HOTPATH_STATS_CACHE_TTL)");
ABSL_FLAG(absl::Duration, stats_cache_refresh_after,
          EnvOr("HOTPATH_STATS_CACHE_REFRESH_AFTER", absl::Seconds(10)),
          "age after which cached stats are refreshed in the background while still served; "
          "0: off (env HOTPATH_STATS_CACHE_REFRESH_AFTER)");
ABSL_FLAG(bool, migrate, EnvOr("HOTPATH_MIGRATE", true),
          "apply pending schema migrations at start (env HOTPATH_MIGRATE)");
ABSL_FLAG(
    absl::Duration, migrate_lock_timeout, EnvOr("HOTPATH_MIGRATE_LOCK_TIMEOUT", absl::Seconds(2)),
    "longest a migration waits for a lock, above 0 (queries on its table queue behind it); past "
    "it the run rolls back and tries again, 5 runs in all (env "
    "HOTPATH_MIGRATE_LOCK_TIMEOUT)");
ABSL_FLAG(std::string, auth_tokens_file, EnvOr("HOTPATH_AUTH_TOKENS_FILE", ""),
          "file of bearer tokens, one a line; when set, writes (Create/Update/Delete/Import) need "
          "'authorization: Bearer <token>' (env HOTPATH_AUTH_TOKENS_FILE)");
ABSL_FLAG(bool, auth_reads, EnvOr("HOTPATH_AUTH_READS", false),
          "with --auth_tokens_file, reads need a token too (env HOTPATH_AUTH_READS)");
ABSL_FLAG(int, max_in_flight, EnvOr("HOTPATH_MAX_IN_FLIGHT", 2048),
          "calls in flight (gRPC and gateway) beyond which new ones are refused at once with "
          "RESOURCE_EXHAUSTED / 429; 0: no cap (env HOTPATH_MAX_IN_FLIGHT)");
ABSL_FLAG(int, max_in_flight_per_connection, EnvOr("HOTPATH_MAX_IN_FLIGHT_PER_CONNECTION", 0),
          "calls in flight from one gRPC connection at most (RESOURCE_EXHAUSTED past it); "
          "0: max_in_flight / 8 (env HOTPATH_MAX_IN_FLIGHT_PER_CONNECTION)");
ABSL_FLAG(int, stream_stall_timeout_s, EnvOr("HOTPATH_STREAM_STALL_TIMEOUT_S", 30),
          "a server stream whose client reads nothing for this long is cancelled; 0: never "
          "(env HOTPATH_STREAM_STALL_TIMEOUT_S)");
ABSL_FLAG(int, max_connection_age_s, EnvOr("HOTPATH_MAX_CONNECTION_AGE_S", 1800),
          "gRPC connections older than this are closed gracefully so clients rebalance; 0: never "
          "(env HOTPATH_MAX_CONNECTION_AGE_S)");
ABSL_FLAG(int, keepalive_s, EnvOr("HOTPATH_KEEPALIVE_S", 60),
          "gRPC keepalive ping interval on idle connections (env HOTPATH_KEEPALIVE_S)");
ABSL_FLAG(std::string, tls_cert_file, EnvOr("HOTPATH_TLS_CERT_FILE", ""),
          "serve gRPC over TLS and HTTP as HTTPS with this PEM certificate chain; empty: "
          "plaintext (env HOTPATH_TLS_CERT_FILE)");
ABSL_FLAG(std::string, tls_key_file, EnvOr("HOTPATH_TLS_KEY_FILE", ""),
          "the certificate's PEM private key (env HOTPATH_TLS_KEY_FILE)");
ABSL_FLAG(std::string, tls_client_ca_file, EnvOr("HOTPATH_TLS_CLIENT_CA_FILE", ""),
          "gRPC: require client certificates signed by this CA (mutual TLS) "
          "(env HOTPATH_TLS_CLIENT_CA_FILE)");
ABSL_FLAG(int, drain_delay_ms, EnvOr("HOTPATH_DRAIN_DELAY_MS", 0),
          "on SIGTERM, time /readyz answers 503 before new calls are refused, so load balancers "
          "stop first; part of the grace period (env HOTPATH_DRAIN_DELAY_MS)");
ABSL_FLAG(int, memory_trim_interval_s, EnvOr("HOTPATH_MEMORY_TRIM_INTERVAL_S", 30),
          "return free heap pages to the OS this often (jemalloc purge / malloc_trim); 0: never "
          "(env HOTPATH_MEMORY_TRIM_INTERVAL_S)");
ABSL_FLAG(int, shutdown_grace_ms, EnvOr("HOTPATH_SHUTDOWN_GRACE_MS", 10000),
          "time in-flight calls get to finish on SIGTERM (env HOTPATH_SHUTDOWN_GRACE_MS)");

int main(int argc, char** argv) {
  hotpath::app::ConfigureMutexDeadlockDetection();
  hotpath::app::RaiseDescriptorLimit();
  absl::SetProgramUsageMessage("hotpathd: the hotpath catalog server (gRPC, HTTP/JSON, /metrics)");
  absl::ParseCommandLine(argc, argv);
  // Threads and connections past these are a typo rather than a plan: each costs a thread or a
  // PostgreSQL backend.
  constexpr int kMaxThreads = 1024;
  constexpr int kMaxPool = 10000;
  absl::Status invalid = hotpath::app::CheckEnvironment();
  if (invalid.ok()) {
    invalid = hotpath::app::CheckFlagRanges({
        {"grpc_port", absl::GetFlag(FLAGS_grpc_port), 0, 65535},
        {"http_port", absl::GetFlag(FLAGS_http_port), 0, 65535},
        {"http_threads", absl::GetFlag(FLAGS_http_threads), 0, kMaxThreads},
        {"http_max_connections", absl::GetFlag(FLAGS_http_max_connections), 1},
        {"compress_min_bytes", absl::GetFlag(FLAGS_compress_min_bytes), 0},
        {"max_message_bytes", absl::GetFlag(FLAGS_max_message_bytes), 64 << 10},
        {"cors_max_age_s", absl::GetFlag(FLAGS_cors_max_age_s), 0},
        {"gateway_answer_memo", absl::GetFlag(FLAGS_gateway_answer_memo), 0},
        {"max_body_bytes", absl::GetFlag(FLAGS_max_body_bytes), 1},
        {"max_receiving_body_bytes", absl::GetFlag(FLAGS_max_receiving_body_bytes), 1},
        {"max_unsent_answer_bytes", absl::GetFlag(FLAGS_max_unsent_answer_bytes), 1},
        {"pool_max", absl::GetFlag(FLAGS_pool_max), 1, kMaxPool},
        {"pool_min", absl::GetFlag(FLAGS_pool_min), 0, kMaxPool},
        {"connect_timeout_ms", absl::GetFlag(FLAGS_connect_timeout_ms), 1},
        {"acquire_timeout_ms", absl::GetFlag(FLAGS_acquire_timeout_ms), 1},
        {"statement_timeout_ms", absl::GetFlag(FLAGS_statement_timeout_ms), 0},
        {"executor_threads", absl::GetFlag(FLAGS_executor_threads), 0, kMaxThreads},
        {"executor_queue", absl::GetFlag(FLAGS_executor_queue), 1},
        {"worker_nice", absl::GetFlag(FLAGS_worker_nice), 0, 19},
        {"cq_threads", absl::GetFlag(FLAGS_cq_threads), 0, kMaxThreads},
        {"pending_calls", absl::GetFlag(FLAGS_pending_calls), 1, 100000},
        {"item_cache_size", absl::GetFlag(FLAGS_item_cache_size), 1},
        {"list_cache_size", absl::GetFlag(FLAGS_list_cache_size), 1},
        {"read_batches", absl::GetFlag(FLAGS_read_batches), 0, kMaxThreads},
        {"shared_list_reads", absl::GetFlag(FLAGS_shared_list_reads), 0, kMaxPool},
        {"stats_cache_size", absl::GetFlag(FLAGS_stats_cache_size), 1},
        {"max_in_flight", absl::GetFlag(FLAGS_max_in_flight), 0},
        {"max_in_flight_per_connection", absl::GetFlag(FLAGS_max_in_flight_per_connection), 0},
        {"stream_stall_timeout_s", absl::GetFlag(FLAGS_stream_stall_timeout_s), 0},
        {"max_connection_age_s", absl::GetFlag(FLAGS_max_connection_age_s), 0},
        {"keepalive_s", absl::GetFlag(FLAGS_keepalive_s), 1},
        {"drain_delay_ms", absl::GetFlag(FLAGS_drain_delay_ms), 0},
        {"memory_trim_interval_s", absl::GetFlag(FLAGS_memory_trim_interval_s), 0},
        {"shutdown_grace_ms", absl::GetFlag(FLAGS_shutdown_grace_ms), 0},
    });
  }
  // A silent change feed checks its connection with a round trip: 0 was a loop of them, and a
  // negative interval a wait that nothing ended, not even SIGTERM.
  if (invalid.ok()) {
    invalid = hotpath::app::CheckFlagRanges({
        {"read_max_lag", absl::GetFlag(FLAGS_read_max_lag), absl::ZeroDuration()},
        {"change_feed_max_staleness", absl::GetFlag(FLAGS_change_feed_max_staleness),
         absl::ZeroDuration()},
        {"change_feed_check_interval", absl::GetFlag(FLAGS_change_feed_check_interval),
         absl::Milliseconds(10), absl::Hours(1)},
        {"item_cache_ttl", absl::GetFlag(FLAGS_item_cache_ttl), absl::Milliseconds(1)},
        {"item_cache_negative_ttl", absl::GetFlag(FLAGS_item_cache_negative_ttl),
         absl::ZeroDuration()},
        {"list_cache_ttl", absl::GetFlag(FLAGS_list_cache_ttl), absl::ZeroDuration()},
        {"read_batch_overlap", absl::GetFlag(FLAGS_read_batch_overlap), absl::ZeroDuration()},
        {"stats_cache_ttl", absl::GetFlag(FLAGS_stats_cache_ttl), absl::Milliseconds(1)},
        {"stats_cache_refresh_after", absl::GetFlag(FLAGS_stats_cache_refresh_after),
         absl::ZeroDuration()},
    });
  }
  if (!invalid.ok()) {
    std::cerr << "hotpathd: " << invalid.message() << "\n";
    return 1;
  }

  hotpath::app::BlockTerminationSignals();

  hotpath::HotpathdOptions options;
  options.grpc_address =
      absl::StrCat(absl::GetFlag(FLAGS_grpc_host), ":", absl::GetFlag(FLAGS_grpc_port));
  options.database.database_url = absl::GetFlag(FLAGS_database_url);
  options.database.min_size = absl::GetFlag(FLAGS_pool_min);
  options.database.max_size = absl::GetFlag(FLAGS_pool_max);
  options.database.connect_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_connect_timeout_ms));
  options.database.max_acquire_wait = absl::Milliseconds(absl::GetFlag(FLAGS_acquire_timeout_ms));
  options.database.max_statement_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_statement_timeout_ms));
  options.migrate = absl::GetFlag(FLAGS_migrate);
  options.migrate_lock_timeout = absl::GetFlag(FLAGS_migrate_lock_timeout);
  if (options.migrate_lock_timeout <= absl::ZeroDuration()) {
    std::cerr << "hotpathd: --migrate_lock_timeout must be above 0 (a wait with no bound lets a "
                 "migration hold every query on its table behind a long transaction), not "
              << options.migrate_lock_timeout << "\n";
    return 1;
  }
  options.change_feed = absl::GetFlag(FLAGS_change_feed);
  options.change_feed_check_interval = absl::GetFlag(FLAGS_change_feed_check_interval);
  for (absl::string_view url :
       absl::StrSplit(absl::GetFlag(FLAGS_database_read_url), ';', absl::SkipWhitespace())) {
    options.database_read_urls.emplace_back(absl::StripAsciiWhitespace(url));
  }
  options.read_max_lag = absl::GetFlag(FLAGS_read_max_lag);
  options.change_feed_max_staleness = absl::GetFlag(FLAGS_change_feed_max_staleness);
  options.executor_threads = absl::GetFlag(FLAGS_executor_threads);
  options.worker_nice = absl::GetFlag(FLAGS_worker_nice);
  options.executor_queue = absl::GetFlag(FLAGS_executor_queue);
  options.completion_queues = absl::GetFlag(FLAGS_cq_threads);
  options.calls.pending_calls = absl::GetFlag(FLAGS_pending_calls);
  if (const int stall = absl::GetFlag(FLAGS_stream_stall_timeout_s); stall > 0) {
    options.calls.stream_stall_timeout = absl::Seconds(stall);
  } else {
    options.calls.stream_stall_timeout = absl::InfiniteDuration();
  }
  options.http.host = absl::GetFlag(FLAGS_http_host);
  options.http.port = absl::GetFlag(FLAGS_http_port);
  options.http.threads = absl::GetFlag(FLAGS_http_threads);
  options.http.max_connections =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_http_max_connections));
  options.compress_min_bytes = static_cast<std::size_t>(absl::GetFlag(FLAGS_compress_min_bytes));
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.gateway_cache_control = absl::GetFlag(FLAGS_gateway_cache_control);
  options.gateway_accel_expires = absl::GetFlag(FLAGS_gateway_accel_expires);
  auto cors = hotpath::gateway::CorsOptionsFromFlags(absl::GetFlag(FLAGS_cors_allowed_origins),
                                                     absl::GetFlag(FLAGS_cors_allow_credentials),
                                                     absl::GetFlag(FLAGS_cors_max_age_s));
  if (!cors.ok()) {
    std::cerr << "hotpathd: " << cors.status().message() << "\n";
    return 1;
  }
  options.cors = *std::move(cors);
  options.gateway_answer_memo = static_cast<std::size_t>(absl::GetFlag(FLAGS_gateway_answer_memo));
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.gateway = absl::GetFlag(FLAGS_gateway);
  options.ignore_unknown_fields = absl::GetFlag(FLAGS_ignore_unknown_fields);
  options.strict_query_parameters = absl::GetFlag(FLAGS_strict_query_parameters);
  options.http.max_body_bytes = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  options.http.max_receiving_body_bytes =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_max_receiving_body_bytes));
  options.http.max_unsent_answer_bytes =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_max_unsent_answer_bytes));
  // The services this binary serves, each a module with its own options.
  hotpath::catalog::CatalogModuleOptions catalog;
  catalog.page_token_secret = absl::GetFlag(FLAGS_page_token_secret);
  catalog.cache.enabled = absl::GetFlag(FLAGS_cache_enabled);
  catalog.cache.items.max_entries = static_cast<std::size_t>(absl::GetFlag(FLAGS_item_cache_size));
  catalog.cache.items.ttl = absl::GetFlag(FLAGS_item_cache_ttl);
  catalog.cache.items.negative_ttl = absl::GetFlag(FLAGS_item_cache_negative_ttl);
  catalog.cache.item_refresh_at = absl::GetFlag(FLAGS_item_cache_refresh_at);
  if (!(catalog.cache.item_refresh_at >= 0 && catalog.cache.item_refresh_at < 1)) {
    std::cerr << "hotpathd: --item_cache_refresh_at must be at least 0 and below 1 (a fraction "
                 "of --item_cache_ttl), not "
              << catalog.cache.item_refresh_at << "\n";
    return 1;
  }
  catalog.cache.item_reads.max_in_flight = absl::GetFlag(FLAGS_read_batches);
  // A thread for each batch that may run at once, at the normal priority (HotpathdOptions).
  options.read_threads = std::max(1, absl::GetFlag(FLAGS_read_batches));
  catalog.cache.item_reads.overlap_after = absl::GetFlag(FLAGS_read_batch_overlap);
  catalog.cache.item_reads_on_loops = absl::GetFlag(FLAGS_loop_reads);
  catalog.cache.list_reads_in_flight = absl::GetFlag(FLAGS_shared_list_reads);
  catalog.cache.list_pages.ttl = absl::GetFlag(FLAGS_list_cache_ttl);
  catalog.cache.list_pages.max_entries =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_list_cache_size));
  catalog.cache.category_stats.max_entries =
      static_cast<std::size_t>(absl::GetFlag(FLAGS_stats_cache_size));
  catalog.cache.category_stats.ttl = absl::GetFlag(FLAGS_stats_cache_ttl);
  catalog.cache.category_stats.refresh_after = absl::GetFlag(FLAGS_stats_cache_refresh_after);

  if (const std::string tokens_file = absl::GetFlag(FLAGS_auth_tokens_file); !tokens_file.empty()) {
    auto tokens = hotpath::rpc::ReadTokensFile(tokens_file);
    if (!tokens.ok()) {
      std::cerr << "hotpathd: " << tokens.status().message() << "\n";
      return 1;
    }
    options.admission.tokens = *std::move(tokens);
    options.admission.tokens_for_reads = absl::GetFlag(FLAGS_auth_reads);
  } else {
    std::cerr << "hotpathd: WARNING: no --auth_tokens_file: writes are open to every client"
              << std::endl;
  }
  options.admission.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  options.admission.max_in_flight_per_connection =
      absl::GetFlag(FLAGS_max_in_flight_per_connection);
  if (const int age = absl::GetFlag(FLAGS_max_connection_age_s); age > 0) {
    options.connections.max_connection_age = absl::Seconds(age);
  } else {
    options.connections.max_connection_age = absl::InfiniteDuration();
  }
  options.connections.keepalive_time = absl::Seconds(absl::GetFlag(FLAGS_keepalive_s));

  options.tls_cert_file = options.http.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = options.http.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  options.drain_delay = absl::Milliseconds(absl::GetFlag(FLAGS_drain_delay_ms));
  options.memory_trim_interval = absl::Seconds(absl::GetFlag(FLAGS_memory_trim_interval_s));

  hotpath::module::ServiceModules modules;
  modules.push_back(std::make_unique<hotpath::catalog::CatalogModule>(std::move(catalog)));
  auto server = hotpath::Hotpathd::Start(std::move(options), std::move(modules));
  if (!server.ok()) {
    std::cerr << "hotpathd: failed to start: " << server.status() << "\n";
    return 1;
  }
  std::cerr << "hotpathd: serving gRPC on port " << (*server)->grpc_port() << ", HTTP on port "
            << (*server)->http_port() << std::endl;

  std::cerr << "hotpathd: " << hotpath::app::WaitForTerminationSignal() << ", draining calls"
            << std::endl;
  (*server)->Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms)));
  std::cerr << "hotpathd: stopped" << std::endl;
  return 0;
}
