#include "server/hotpathd.h"

#include <dlfcn.h>
#include <malloc.h>
#include <prometheus/family.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gateway/openapi.h"
#include "server/db/migrations.h"
#include "server/http/access_log.h"
#include "server/http/coalesced_probe.h"
#include "server/interceptors/interceptors.h"

namespace hotpath {
namespace {

namespace bhttp = boost::beast::http;

// Gives free heap pages back to the OS: jemalloc's purge of every arena when the process runs on
// jemalloc (linked, as hotpathd is, or preloaded), glibc's malloc_trim otherwise.
void ReturnFreeMemory() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  static const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl != nullptr) {
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL
  } else {
    malloc_trim(0);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Hotpathd>> Hotpathd::Start(HotpathdOptions options,
                                                          module::ServiceModules modules) {
  std::unique_ptr<Hotpathd> d(new Hotpathd());
  d->drain_delay_ = options.drain_delay;
  d->access_log_ = options.access_log;
  d->modules_ = std::move(modules);
  d->metrics_ = std::make_unique<metrics::MetricsRegistry>();
  d->grpc_metrics_ = std::make_unique<metrics::GrpcMetrics>(d->metrics_->registry());
  d->acquire_wait_ = &prometheus::BuildHistogram()
                          .Name("hotpath_db_pool_acquire_wait_seconds")
                          .Help("Time spent waiting for a database connection.")
                          .Register(d->metrics_->registry())
                          .Add({}, prometheus::Histogram::BucketBoundaries{
                                       0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5});

  std::vector<db::Migration> migrations;
  for (const auto& module : d->modules_) {
    for (const db::Migration& migration : module->Migrations()) migrations.push_back(migration);
    for (db::PreparedStatement& statement : module->Statements()) {
      options.database.statements.push_back(std::move(statement));
    }
  }
  if (options.migrate && !migrations.empty()) {
    if (absl::Status s = db::Migrate(options.database.database_url, migrations, nullptr,
                                     {.connect_timeout = options.database.connect_timeout,
                                      .lock_timeout = options.migrate_lock_timeout});
        !s.ok()) {
      return s;
    }
  }
  options.database.on_acquire_wait = [histogram = d->acquire_wait_](absl::Duration waited) {
    histogram->Observe(absl::ToDoubleSeconds(waited));
  };
  const int pool_max = options.database.max_size;
  const db::ChangeFeedOptions feed_options{.database_url = options.database.database_url,
                                           .connect_timeout = options.database.connect_timeout,
                                           .check_interval = options.change_feed_check_interval,
                                           .max_staleness = options.change_feed_max_staleness};
  if (options.change_feed) {
    // This process announces its own writes in batches; the triggers skip its sessions.
    d->announcer_ = std::make_unique<db::ChangeAnnouncer>(
        db::ChangeAnnouncerOptions{.database_url = feed_options.database_url,
                                   .connect_timeout = feed_options.connect_timeout});
    d->announcer_->Start();
    options.database.on_connect.push_back(db::ChangeAnnouncer::kSessionSetting);
  }
  if (!options.database_read_urls.empty()) {
    db::PgPoolOptions standby_pool = options.database;
    standby_pool.on_acquire_wait = nullptr;
    d->read_replicas_ = std::make_unique<db::ReadReplicas>(
        db::ReadReplicasOptions{.primary_url = options.database.database_url,
                                .standby_urls = options.database_read_urls,
                                .pool = std::move(standby_pool),
                                .max_lag = options.read_max_lag});
  }
  auto pool = db::PgPool::Create(std::move(options.database));
  if (!pool.ok()) return pool.status();
  d->pool_ = *std::move(pool);
  d->executor_ = std::make_unique<rpc::Executor>(
      options.executor_threads > 0 ? options.executor_threads : pool_max, options.executor_queue,
      options.worker_nice);
  d->reads_ =
      std::make_unique<rpc::Executor>(std::max(1, options.read_threads), options.executor_queue);
  d->gate_ = std::make_unique<rpc::CallGate>(std::move(options.admission));
  module::ModuleContext context{
      .pool = d->pool_.get(),
      .read_replicas = d->read_replicas_.get(),
      .executor = d->executor_.get(),
      .scheduler = [executor = d->executor_.get()](
                       std::function<void()> task) { return executor->Schedule(std::move(task)); },
      .read_scheduler =
          [reads = d->reads_.get()](std::function<void()> task) {
            return reads->Schedule(std::move(task));
          },
      .max_message_bytes = static_cast<std::size_t>(options.max_message_bytes)};
  if (d->announcer_ != nullptr) {
    context.announce = [announcer = d->announcer_.get()](std::string_view channel,
                                                         std::string_view payload) {
      announcer->Announce(channel, payload);
    };
  }
  std::vector<rpc::RpcModule*> services;
  std::vector<std::string> service_names;
  for (const auto& module : d->modules_) {
    if (absl::Status s = module->Start(context); !s.ok()) return s;
    services.push_back(&module->bindings());
    service_names.push_back(module->bindings().name());
    d->local_.AddAll(module->bindings().local_handlers());
  }
  d->local_.set_gate(d->gate_.get());

  std::vector<db::ChangeSubscription> subscriptions;
  for (const auto& module : d->modules_) {
    for (db::ChangeSubscription& subscription : module->ChangeSubscriptions()) {
      subscriptions.push_back(std::move(subscription));
    }
  }
  if (options.change_feed && !subscriptions.empty()) {
    db::ChangeFeedOptions with_pool = feed_options;
    // With standbys, each batch of changes comes with the primary's position: refills read a
    // standby only once it has replayed it.
    with_pool.positions = d->read_replicas_ != nullptr;
    with_pool.own_backend = [pool = d->pool_.get(), announcer = d->announcer_.get()](int pid) {
      return pool->OwnsBackend(pid) || (announcer != nullptr && announcer->backend_pid() == pid);
    };
    d->change_feed_ = std::make_unique<db::ChangeFeed>(with_pool, std::move(subscriptions));
    if (!d->change_feed_->Start(feed_options.connect_timeout)) {
      std::cerr << "hotpathd: change feed not listening yet; caches serve only fresh entries\n";
    }
  }

  Hotpathd* self = d.get();
  d->metrics_->AddCollector([self] {
    auto families = metrics::ProcessFamilies();
    auto pool_families = metrics::PoolFamilies(self->pool_->stats());
    families.insert(families.end(), pool_families.begin(), pool_families.end());
    std::vector<std::pair<std::string, cache::CacheStats>> caches;
    for (const auto& module : self->modules_) {
      for (const cache::CacheProbe& cache : module->Caches()) {
        caches.emplace_back(cache.name, cache.stats());
      }
    }
    auto cache_families = metrics::CacheFamilies(caches);
    families.insert(families.end(), cache_families.begin(), cache_families.end());
    families.push_back(metrics::GaugeFamily(
        "hotpath_calls_in_flight", "Calls admitted and not yet answered (gRPC and gateway).",
        {{{}, static_cast<double>(self->gate_->in_flight())}}));
    families.push_back(metrics::GaugeFamily(
        "hotpath_max_in_flight", "The cap on calls in flight (--max_in_flight); 0: none.",
        {{{}, static_cast<double>(self->gate_->max_in_flight())}}));
    // Readiness as /readyz answers it: the last check's result; each scrape starts a fresh one
    // (coalesced with /readyz's), so the value is at most one scrape old.
    if (self->readiness_ != nullptr) (*self->readiness_)([](absl::Status) {});
    families.push_back(metrics::GaugeFamily(
        "hotpath_ready", "1 while /readyz answers 200 (gRPC listener and database), else 0.",
        {{{}, static_cast<double>(self->ready_.load(std::memory_order_relaxed))}}));
    families.push_back(metrics::GaugeFamily(
        "hotpath_executor_queued_tasks", "Database tasks waiting for an executor thread.",
        {{{}, static_cast<double>(self->executor_->queued())}}));
    const rpc::Canceller& canceller = rpc::Canceller::Instance();
    families.push_back(metrics::CounterFamily(
        "hotpath_departure_cancels_total",
        "Work of departed callers cancelled (one thread runs them all), or dropped because the "
        "cancel queue was full (the statement then ends at its deadline).",
        {{{{"result", "cancelled"}}, static_cast<double>(canceller.cancelled())},
         {{{"result", "dropped"}}, static_cast<double>(canceller.dropped())}}));
    const db::ChangeAnnouncerStats announced =
        self->announcer_ != nullptr ? self->announcer_->stats() : db::ChangeAnnouncerStats();
    const db::ChangeFeedStats feed =
        self->change_feed_ != nullptr ? self->change_feed_->stats() : db::ChangeFeedStats();
    auto coherence_families =
        metrics::CoherenceFamilies(self->announcer_ != nullptr ? &announced : nullptr,
                                   self->change_feed_ != nullptr ? &feed : nullptr);
    families.insert(families.end(), coherence_families.begin(), coherence_families.end());
    if (self->read_replicas_ != nullptr) {
      auto read_families = metrics::ReadReplicaFamilies(self->read_replicas_->stats());
      families.insert(families.end(), read_families.begin(), read_families.end());
    }
    return families;
  });

  rpc::AsyncServer::InterceptorFactories interceptors;
  if (options.access_log) interceptors.push_back(interceptors::MakeAccessLogInterceptorFactory());
  d->call_observer_ = interceptors::MakeMetricsObserver(d->grpc_metrics_.get());
  options.calls.compress_min_bytes = options.compress_min_bytes;
  options.calls.gate = d->gate_.get();
  options.calls.observer = d->call_observer_.get();
  d->server_ = std::make_unique<rpc::AsyncServer>(
      rpc::AsyncServerOptions{.address = options.grpc_address,
                              .completion_queues = options.completion_queues,
                              .calls = options.calls,
                              .max_message_bytes = options.max_message_bytes,
                              .connections = options.connections,
                              .tls_cert_file = options.tls_cert_file,
                              .tls_key_file = options.tls_key_file,
                              .tls_client_ca_file = options.tls_client_ca_file},
      std::move(services), std::move(interceptors));
  d->grpc_metrics_->InitializeServices(service_names);
  if (absl::Status s = d->server_->Start(); !s.ok()) return s;

  d->http_metrics_ = std::make_unique<metrics::HttpMetrics>(d->metrics_->registry());
  // Ready: the gRPC listener still takes connections and the database is not down. On a thread
  // of its own, not the executor: a full work queue means busy, not unready, and a load balancer
  // that pulled a busy replica would only move its load onto the others.
  d->readiness_ = std::make_unique<http::CoalescedProbe>([self] {
    absl::Status ready = self->server_->CheckListener(absl::Seconds(1));
    if (ready.ok()) ready = self->pool_->CheckReady(absl::Now() + absl::Seconds(1));
    self->ready_.store(ready.ok() && !self->shutting_down_.load() ? 1 : 0);
    return ready;
  });
  (*d->readiness_)([](absl::Status) {});  // hotpath_ready from the start
  d->runtime_routes_ = std::make_unique<http::RuntimeRoutes>(
      [self] { return self->metrics_->Render(); },
      [self](std::function<void(absl::Status)> done) { (*self->readiness_)(std::move(done)); });
  if (options.gateway) {
    gateway::GatewayOptions gateway_options;
    gateway_options.transcode.ignore_unknown_fields = options.ignore_unknown_fields;
    gateway_options.transcode.strict_query_parameters = options.strict_query_parameters;
    gateway_options.compress_min_bytes = options.compress_min_bytes;
    gateway_options.answer_memo_slots = options.gateway_answer_memo;
    gateway_options.cache_control = options.gateway_cache_control;
    gateway_options.accel_expires = options.gateway_accel_expires;
    gateway_options.cors = options.cors;
    gateway_options.max_body_bytes = options.http.max_body_bytes;
    for (const auto& module : d->modules_) {
      gateway_options.openapi.described_by.emplace_back(module->OpenApiJson());
    }
    gateway_options.local = &d->local_;
    auto gateway = gateway::Gateway::Create(
        service_names, std::make_unique<gateway::Dispatcher>(d->server_->InProcessChannel()),
        std::move(gateway_options));
    if (!gateway.ok()) return gateway.status();
    d->gateway_ = *std::move(gateway);
    d->http_metrics_->NameRoutes(d->gateway_->Routes());
  }
  http::HttpServerOptions http_options = options.http;
  http_options.on_refusal = d->http_metrics_->OnRefusal();
  if (d->gateway_ != nullptr) http_options.on_own_answer = d->gateway_->OwnAnswerHeaders();
  d->http_ = std::make_unique<http::HttpServer>(
      std::move(http_options), [self](const http::Request& request, http::Responder respond) {
        self->HandleHttp(request, std::move(respond));
      });
  if (absl::Status s = d->http_->Start(); !s.ok()) return s;
  if (options.memory_trim_interval > absl::ZeroDuration()) {
    d->trimmer_ = std::thread([self, every = options.memory_trim_interval] {
      std::unique_lock lock(self->trimmer_mu_);
      while (!self->trimmer_wake_.wait_for(lock, absl::ToChronoNanoseconds(every),
                                           [self] { return self->trimmer_stop_; })) {
        ReturnFreeMemory();
      }
    });
  }
  return d;
}

void Hotpathd::HandleHttp(const http::Request& request, http::Responder respond) {
  auto route = std::make_shared<std::string>();
  http::Responder instrumented = http_metrics_->Instrument(std::move(respond), request, route);
  if (access_log_) instrumented = http::AccessLogged(std::move(instrumented), request, route);
  if (runtime_routes_->Handle(request, instrumented, route.get())) return;
  if (gateway_ != nullptr) {
    if (!gateway_->Handle(request, instrumented, route.get())) {
      gateway_->NoRoute(request, instrumented);
    }
    return;
  }
  instrumented(http::JsonError(request, bhttp::status::not_found, 5,
                               absl::StrCat("no route for ", std::string(http::PathOf(request)))));
}

Hotpathd::~Hotpathd() { Shutdown(absl::ZeroDuration()); }

void Hotpathd::Shutdown(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(trimmer_mu_);
    trimmer_stop_ = true;
  }
  trimmer_wake_.notify_all();
  if (trimmer_.joinable()) trimmer_.join();
  // Readiness first, so load balancers stop sending; then no new calls on either port, and the
  // ones already accepted finish (gRPC and HTTP in parallel) until the grace period ends.
  shutting_down_.store(true);
  ready_.store(0);
  if (runtime_routes_ != nullptr) runtime_routes_->SetShuttingDown();
  if (server_ != nullptr) server_->SetNotServing();
  const absl::Time deadline = absl::Now() + grace;
  if (drain_delay_ > absl::ZeroDuration()) absl::SleepFor(std::min(drain_delay_, grace));
  std::thread http_drain;
  if (http_ != nullptr) {
    // Keep-alive connections idle when the drain begins stay open a moment for a request a proxy
    // already sent on one (HttpServerOptions::drain_idle_linger).
    http_drain = std::thread([this, deadline, grace] {
      if (!http_->Drain(deadline) && grace > absl::ZeroDuration()) {
        std::cerr << "hotpathd: HTTP connections still open at the end of the grace period\n";
      }
    });
  }
  // gRPC gets the grace period less a margin for what follows (executor, pollers, HTTP, pool), so
  // the whole stop fits in the grace period even when gRPC must cancel calls at its end (a client
  // that keeps opening streams on a connection being shut down holds it open until then).
  const absl::Duration margin = std::min(grace / 10, absl::Seconds(1));
  if (server_ != nullptr) {
    // Connections that age out in time close with the server still serving (no call refused);
    // what is left after that keeps at least a margin's worth of grace for its calls.
    server_->StopAccepting(deadline - 2 * margin);
    server_->Shutdown(std::max(absl::ZeroDuration(), deadline - margin - absl::Now()));
  }
  if (http_drain.joinable()) http_drain.join();
  if (executor_ != nullptr) executor_->Stop();
  if (reads_ != nullptr) reads_->Stop();
  if (announcer_ != nullptr) announcer_->Stop();  // sends what the last writes left
  if (change_feed_ != nullptr) change_feed_->Stop();
  if (read_replicas_ != nullptr) read_replicas_->Stop();
  if (server_ != nullptr) server_->StopPolling();
  // After the executor: its last tasks may still answer HTTP requests.
  if (http_ != nullptr) http_->Stop();
  if (pool_ != nullptr) pool_->Close();
}

}  // namespace hotpath
