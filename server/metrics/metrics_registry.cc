#include "server/metrics/metrics_registry.h"

#include <dirent.h>
#include <prometheus/text_serializer.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace hotpath::metrics {
namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                std::vector<Sample> samples) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  for (auto& [labels, value] : samples) {
    prometheus::ClientMetric metric;
    for (auto& [k, v] : labels) metric.label.push_back({k, v});
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
  return family;
}

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

void MetricsRegistry::AddCollector(Collector collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    std::lock_guard lock(mu_);
    for (const auto& collector : collectors_) {
      auto more = collector();
      families.insert(families.end(), std::make_move_iterator(more.begin()),
                      std::make_move_iterator(more.end()));
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     std::vector<Sample> samples) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge,
                std::move(samples));
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       std::vector<Sample> samples) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Counter,
                std::move(samples));
}

std::vector<prometheus::MetricFamily> ProcessFamilies() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  static const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::vector<prometheus::MetricFamily> families;
  // /proc/self/stat: fields after the parenthesised command name; utime is field 14 overall.
  const std::string stat = ReadFile("/proc/self/stat");
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    const std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    // f[0] is field 3 (state): field n is f[n - 3].
    double utime = 0, stime = 0, start_ticks = 0, vsize = 0, rss_pages = 0;
    if (f.size() > 21 && absl::SimpleAtod(f[11], &utime) && absl::SimpleAtod(f[12], &stime) &&
        absl::SimpleAtod(f[19], &start_ticks) && absl::SimpleAtod(f[20], &vsize) &&
        absl::SimpleAtod(f[21], &rss_pages)) {
      families.push_back(CounterFamily("process_cpu_seconds_total",
                                       "Total user and system CPU time spent in seconds.",
                                       {{{}, (utime + stime) / ticks}}));
      families.push_back(GaugeFamily("process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.", {{{}, vsize}}));
      families.push_back(GaugeFamily("process_resident_memory_bytes",
                                     "Resident memory size in bytes.",
                                     {{{}, rss_pages * page_size}}));
      if (double threads = 0; absl::SimpleAtod(f[17], &threads)) {
        families.push_back(GaugeFamily("process_threads", "Number of OS threads in the process.",
                                       {{{}, threads}}));
      }
      double boot_time = 0;
      for (absl::string_view line : absl::StrSplit(ReadFile("/proc/stat"), '\n')) {
        if (absl::ConsumePrefix(&line, "btime ")) (void)absl::SimpleAtod(line, &boot_time);
      }
      families.push_back(GaugeFamily("process_start_time_seconds",
                                     "Start time of the process since unix epoch in seconds.",
                                     {{{}, boot_time + start_ticks / ticks}}));
    }
  }
  double fds = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++fds;
    }
    closedir(dir);
    --fds;  // the directory stream's own descriptor
  }
  families.push_back(
      GaugeFamily("process_open_fds", "Number of open file descriptors.", {{{}, fds}}));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(GaugeFamily("process_max_fds", "Maximum number of open file descriptors.",
                                   {{{}, static_cast<double>(limit.rlim_cur)}}));
  }
  return families;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> buckets = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,     0.1,     0.25,   0.5,     1,      2.5,   5,      10};
  return buckets;
}

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The pool series under prefix (hotpath_db_pool: the primary's; hotpath_read_standby_pool: the
// standbys'), one sample set per pool, each pool's labels on its samples.
std::vector<prometheus::MetricFamily> PoolFamiliesOf(
    const std::string& prefix, const std::vector<std::pair<Labels, db::PgPoolStats>>& pools) {
  std::vector<Sample> connections, max_connections, opened, broken, errors, timeouts, fail_fast,
      idle_leases, down, waiting;
  for (const auto& pool : pools) {
    const Labels& labels = pool.first;
    const db::PgPoolStats& s = pool.second;
    const auto with = [&labels](std::pair<std::string, std::string> label) {
      Labels all = labels;
      all.push_back(std::move(label));
      return all;
    };
    connections.emplace_back(with({"state", "in_use"}), static_cast<double>(s.in_use));
    connections.emplace_back(with({"state", "idle"}), static_cast<double>(s.idle));
    waiting.emplace_back(labels, static_cast<double>(s.waiting));
    max_connections.emplace_back(labels, static_cast<double>(s.max_size));
    opened.emplace_back(labels, static_cast<double>(s.opened));
    broken.emplace_back(labels, static_cast<double>(s.broken));
    errors.emplace_back(labels, static_cast<double>(s.connect_errors));
    timeouts.emplace_back(labels, static_cast<double>(s.acquire_timeouts));
    fail_fast.emplace_back(labels, static_cast<double>(s.fail_fast));
    idle_leases.emplace_back(labels, static_cast<double>(s.idle_leases));
    down.emplace_back(labels, s.down ? 1.0 : 0.0);
  }
  return {
      GaugeFamily(prefix + "_connections", "Database connections by state.", connections),
      GaugeFamily(prefix + "_max_connections", "Most database connections the pool opens.",
                  max_connections),
      GaugeFamily(prefix + "_waiting",
                  "Callers waiting in line for a database connection (every one in use).", waiting),
      CounterFamily(prefix + "_opened_total", "Database connections opened.", opened),
      CounterFamily(prefix + "_broken_total", "Database connections discarded as broken.", broken),
      CounterFamily(prefix + "_connection_errors_total",
                    "Failed attempts to open a database connection.", errors),
      CounterFamily(prefix + "_acquire_timeouts_total",
                    "Waits for a database connection that ran out of time.", timeouts),
      CounterFamily(prefix + "_fail_fast_total",
                    "Connection requests refused at once while the database was unreachable.",
                    fail_fast),
      CounterFamily(prefix + "_idle_leases_total",
                    "Idle connections lent at once to a statement run from an event loop "
                    "(a batch of reads started by an HTTP request).",
                    idle_leases),
      GaugeFamily(prefix + "_down",
                  "1 while the database is unreachable and the pool reconnects in the background.",
                  down),
  };
}

}  // namespace

std::vector<prometheus::MetricFamily> PoolFamilies(const db::PgPoolStats& stats) {
  std::vector<prometheus::MetricFamily> families = PoolFamiliesOf("hotpath_db_pool", {{{}, stats}});
  families.push_back(CounterFamily(
      "hotpath_db_connections_cut_total",
      "Database connections cut because the server had not answered in time (its calls' "
      "deadlines, or a check's): the pools', the change feed's, the monitors'.",
      {{{}, static_cast<double>(db::AnswerWatch::Instance().cuts())}}));
  return families;
}

std::vector<prometheus::MetricFamily> ReadReplicaFamilies(const db::ReadReplicasStats& stats) {
  std::vector<Sample> usable, lag, reads;
  std::vector<std::pair<Labels, db::PgPoolStats>> pools;
  for (std::size_t i = 0; i < stats.standbys.size(); ++i) {
    const db::StandbyStats& standby = stats.standbys[i];
    const Labels label{{"standby", std::to_string(i)}};
    if (standby.pool.has_value()) pools.emplace_back(label, *standby.pool);
    usable.emplace_back(label, standby.usable ? 1.0 : 0.0);
    lag.emplace_back(
        label, standby.lag == absl::InfiniteDuration() ? -1.0 : absl::ToDoubleSeconds(standby.lag));
    reads.emplace_back(label, static_cast<double>(standby.reads));
  }
  std::vector<prometheus::MetricFamily> families = {
      GaugeFamily("hotpath_read_standby_usable",
                  "1 while reads go to the standby (reachable, in recovery, its lag plus the age "
                  "of the primary's last sample within the lag bound).",
                  usable),
      GaugeFamily("hotpath_read_standby_lag_seconds",
                  "How long ago the primary first wrote past what the standby has replayed; "
                  "-1 when unknown.",
                  lag),
      CounterFamily("hotpath_read_standby_reads_total",
                    "Read queries sent to the standby (concurrent reads batched into one "
                    "query count once).",
                    reads),
      CounterFamily("hotpath_read_primary_reads_total",
                    "Read queries sent to the primary because no standby had replayed what "
                    "they must include (or none was usable).",
                    {{{}, static_cast<double>(stats.primary_reads)}}),
      CounterFamily("hotpath_read_primary_changes_total",
                    "Times the primary's write position went back: another server became the "
                    "primary (a standby promoted after a failover).",
                    {{{}, static_cast<double>(stats.primary_changes)}})};
  if (!pools.empty()) {
    auto pool_families = PoolFamiliesOf("hotpath_read_standby_pool", pools);
    families.insert(families.end(), pool_families.begin(), pool_families.end());
  }
  return families;
}

std::vector<prometheus::MetricFamily> CoherenceFamilies(const db::ChangeAnnouncerStats* announced,
                                                        const db::ChangeFeedStats* feed) {
  std::vector<prometheus::MetricFamily> families;
  if (announced != nullptr) {
    families.push_back(
        CounterFamily("hotpath_change_announcements_total",
                      "This replica's committed writes announced to the others (NOTIFY, batched).",
                      {{{}, static_cast<double>(announced->announced)}}));
    families.push_back(CounterFamily(
        "hotpath_change_announcement_batches_total",
        "NOTIFY transactions that carried them (each takes PostgreSQL's notify lock once).",
        {{{}, static_cast<double>(announced->batches)}}));
    families.push_back(
        CounterFamily("hotpath_change_announcement_errors_total",
                      "Batches that failed to send (kept and sent again once reconnected).",
                      {{{}, static_cast<double>(announced->errors)}}));
  }
  if (feed != nullptr) {
    families.push_back(GaugeFamily(
        "hotpath_change_feed_connected",
        "1 while the change feed listens (caches trusted); 0 while it reconnects (bypassed).",
        {{{}, feed->connected ? 1.0 : 0.0}}));
    families.push_back(CounterFamily(
        "hotpath_change_feed_notifications_total",
        "Changes made elsewhere (other replicas, psql) announced by the database; each "
        "invalidates what it names.",
        {{{}, static_cast<double>(feed->notifications)}}));
    families.push_back(CounterFamily("hotpath_change_feed_own_writes_total",
                                     "Announcements of this replica's own writes, "
                                     "skipped (they invalidated before answering).",
                                     {{{}, static_cast<double>(feed->own_writes)}}));
    families.push_back(
        CounterFamily("hotpath_change_feed_restores_total",
                      "Times the feed (re)connected, each clearing the caches it keeps coherent.",
                      {{{}, static_cast<double>(feed->restores)}}));
    const double age = feed->last_notification == absl::InfinitePast()
                           ? -1
                           : absl::ToDoubleSeconds(absl::Now() - feed->last_notification);
    families.push_back(GaugeFamily(
        "hotpath_change_feed_last_notification_age_seconds",
        "Seconds since the last change notification arrived; -1 before the first.", {{{}, age}}));
  }
  return families;
}

std::vector<prometheus::MetricFamily> CacheFamilies(
    const std::vector<std::pair<std::string, cache::CacheStats>>& caches) {
  std::vector<Sample> hits, misses, loads, load_errors, evictions, invalidations, entries,
      age_limited;
  for (const auto& [name, s] : caches) {
    const std::vector<std::pair<std::string, std::string>> labels = {{"cache", name}};
    hits.push_back({labels, static_cast<double>(s.hits)});
    misses.push_back({labels, static_cast<double>(s.misses)});
    loads.push_back({labels, static_cast<double>(s.loads)});
    load_errors.push_back({labels, static_cast<double>(s.load_errors)});
    evictions.push_back({labels, static_cast<double>(s.evictions)});
    invalidations.push_back({labels, static_cast<double>(s.invalidations)});
    entries.push_back({labels, static_cast<double>(s.size)});
    age_limited.push_back({labels, s.age_limited ? 1.0 : 0.0});
  }
  return {
      CounterFamily("hotpath_cache_hits_total", "Reads answered from the cache.", std::move(hits)),
      CounterFamily("hotpath_cache_misses_total", "Reads that waited for a load.",
                    std::move(misses)),
      CounterFamily("hotpath_cache_loads_total", "Loads started (concurrent misses share one).",
                    std::move(loads)),
      CounterFamily("hotpath_cache_load_errors_total", "Loads that failed.",
                    std::move(load_errors)),
      CounterFamily("hotpath_cache_evictions_total", "Live entries evicted to make room.",
                    std::move(evictions)),
      CounterFamily("hotpath_cache_invalidations_total",
                    "Entries invalidated or caches cleared, by a write here or a change elsewhere.",
                    std::move(invalidations)),
      GaugeFamily("hotpath_cache_entries", "Entries held.", std::move(entries)),
      GaugeFamily("hotpath_cache_age_limited",
                  "1 while the cache serves only entries younger than the staleness bound (its "
                  "change feed is down).",
                  std::move(age_limited)),
  };
}

}  // namespace hotpath::metrics
