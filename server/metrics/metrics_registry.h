// The process's Prometheus metrics: a prometheus-cpp registry for what is counted as it happens,
// plus collectors that read the state of runtime pieces (pool, caches, process) at scrape time.
#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/cache/ttl_cache.h"
#include "server/db/change_announcer.h"
#include "server/db/change_feed.h"
#include "server/db/pg_pool.h"
#include "server/db/read_replicas.h"

namespace hotpath::metrics {

using Collector = std::function<std::vector<prometheus::MetricFamily>()>;

class MetricsRegistry final {
 public:
  MetricsRegistry() : registry_(std::make_shared<prometheus::Registry>()) {}

  prometheus::Registry& registry() { return *registry_; }
  // Called on every scrape; must be thread-safe.
  void AddCollector(Collector collector);
  // Everything, in the Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // counters and histograms
  mutable std::mutex mu_;                           // guards collectors_
  std::vector<Collector> collectors_;               // read at scrape time
};

// The buckets of every latency histogram (gRPC handling, HTTP requests), in seconds: from 10 µs,
// where a cached read answers, to 10 s, three per decade (1, 2.5, 5). 19 boundaries (20 bucket
// series per method); prometheus.DefBuckets' 14 began at 0.5 ms, under which 96% of cached calls
// fell, so their quantiles were guesses within [0, 0.5 ms].
const std::vector<double>& LatencyBuckets();

// One labelled sample: label pairs and a value.
using Sample = std::pair<std::vector<std::pair<std::string, std::string>>, double>;

prometheus::MetricFamily GaugeFamily(std::string name, std::string help,
                                     std::vector<Sample> samples);
prometheus::MetricFamily CounterFamily(std::string name, std::string help,
                                       std::vector<Sample> samples);

// process_resident_memory_bytes, process_virtual_memory_bytes, process_cpu_seconds_total,
// process_open_fds, process_max_fds, process_threads, process_start_time_seconds (from /proc, as
// the official clients name them).
std::vector<prometheus::MetricFamily> ProcessFamilies();

// hotpath_db_pool_*: the primary's pool: connections by state, max, callers waiting, opened,
// broken, connect errors, acquire timeouts, fail-fast refusals, idle leases, down; and
// hotpath_db_connections_cut_total, every connection of the process the answer watch cut
// (db/answer_watch.h).
std::vector<prometheus::MetricFamily> PoolFamilies(const db::PgPoolStats& stats);

// hotpath_change_announce*: this replica's announcements (null: no announcer);
// hotpath_change_feed_*: what its change feed heard (null: no feed).
std::vector<prometheus::MetricFamily> CoherenceFamilies(const db::ChangeAnnouncerStats* announced,
                                                        const db::ChangeFeedStats* feed);

// hotpath_read_*: each standby's usability, lag and reads ({standby="0"}, in the order given), and
// the reads that went to the primary for want of one far enough along; hotpath_read_standby_pool_*:
// each standby's pool once it exists, the series of hotpath_db_pool_* with its {standby} label.
std::vector<prometheus::MetricFamily> ReadReplicaFamilies(const db::ReadReplicasStats& stats);

// hotpath_cache_*{cache="..."}: hits, misses, loads, load errors, evictions, entries.
std::vector<prometheus::MetricFamily> CacheFamilies(
    const std::vector<std::pair<std::string, cache::CacheStats>>& caches);

}  // namespace hotpath::metrics
