// A generic, thread-safe, sharded in-process cache: what Python's cachetools.TTLCache(maxsize, ttl)
// has (max entries with LRU eviction among live entries, to the second; TTL from insert), plus what
// a server needs:
//
// - request coalescing: concurrent misses on one key cause one load; every caller gets its result,
//   and a load error goes to all of them without being cached;
// - negative caching: a NOT_FOUND result is kept for its own, shorter TTL;
// - refresh-ahead (optional): past refresh_after, a hit still serves the entry and starts one
//   background load to replace it, so an entry kept in use never expires under its readers; each
//   entry's refresh age is drawn within the last refresh_spread of refresh_after, so entries loaded
//   together (a cold start, a cleared cache) are not all refreshed, nor loaded, together again;
// - invalidation that wins against loads: a load that started before Invalidate(key) or Clear()
//   never puts its (possibly stale) value back, and callers arriving after the invalidation start a
//   new load instead of joining the old one.
//
// Loads run through a caller-supplied scheduler (the server's database executor), so callers never
// block: Get answers a hit on the spot and a miss through its callback.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/cache/pending_work.h"

namespace hotpath::cache {

// Where a cache reads the time; tests inject a fake one.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  static const Clock* Real();
};

struct CacheOptions {
  // Name used in metrics (cache="..."). Required.
  std::string name;
  // Most entries kept (positive and negative); LRU among live entries goes first. Default 10,000.
  std::size_t max_entries = 10'000;
  // Lifetime of a loaded value, from insert. Default 60 s.
  absl::Duration ttl = absl::Seconds(60);
  // Lifetime of a NOT_FOUND result; zero disables negative caching. Default 5 s.
  absl::Duration negative_ttl = absl::Seconds(5);
  // Age after which a hit triggers one background refresh (refresh-ahead); must be below ttl to
  // have an effect. Zero (the default) disables it.
  absl::Duration refresh_after = absl::ZeroDuration();
  // Each entry is refreshed from an age drawn uniformly between (1 - refresh_spread) x
  // refresh_after and refresh_after, not at refresh_after exactly. In [0, 1]; default 0.
  double refresh_spread = 0;
  // Independent locks; more shards, less contention. Default 16.
  std::size_t shards = 16;
  // Time source; default the real clock.
  const Clock* clock = nullptr;
};

struct CacheStats {
  std::int64_t hits = 0;           // answered from a live entry (negative ones included)
  std::int64_t misses = 0;         // had to wait for a load (started or joined)
  std::int64_t loads = 0;          // loads started (misses coalesce; refreshes count)
  std::int64_t load_errors = 0;    // loads that failed with anything but a cached NOT_FOUND
  std::int64_t evictions = 0;      // live entries dropped to make room
  std::int64_t invalidations = 0;  // Invalidate and Clear calls (a write, or a change feed's event)
  std::int64_t size = 0;           // entries held now
  bool age_limited = false;        // LimitAge: entries past an age are not served
};

// A cache as /metrics reads it, whatever its key and value types: its name and its counters now.
struct CacheProbe {
  std::string name;                   // the cache="..." label
  std::function<CacheStats()> stats;  // thread-safe; called at every scrape
};

// Runs a load somewhere else: OK once it is queued, else why it cannot be (what the callers
// waiting for the load are answered, e.g. the executor's RESOURCE_EXHAUSTED "server busy").
using Scheduler = std::function<absl::Status(std::function<void()>)>;

template <class Key, class Value>
class TtlCache final {
 public:
  using ValuePtr = std::shared_ptr<const Value>;
  using Result = absl::StatusOr<ValuePtr>;
  // Produces the value of a key; runs on the scheduler, may block, and should give up at deadline
  // (the deadline of the caller whose miss started the load; InfiniteFuture for refreshes).
  using Loader = std::function<absl::StatusOr<Value>(const Key&, absl::Time deadline)>;
  using Callback = std::function<void(const Result&)>;
  // Starts the load of a key without blocking, and calls loaded once with what it produced, on
  // any thread: for loads that share their work (cache::BatchLoader). deadline as for Loader.
  using StartLoader = std::function<void(const Key&, absl::Time deadline,
                                         std::function<void(absl::StatusOr<Value>)> loaded)>;

  TtlCache(CacheOptions options, Loader loader, Scheduler scheduler)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
        loader_(std::move(loader)),
        scheduler_(std::move(scheduler)),
        shards_(options_.shards == 0 ? 1 : options_.shards) {
    per_shard_max_ = (options_.max_entries + shards_.size() - 1) / shards_.size();
    if (per_shard_max_ == 0) per_shard_max_ = 1;
  }

  TtlCache(const TtlCache&) = delete;
  TtlCache& operator=(const TtlCache&) = delete;
  // Waits for the loads still queued or running: they refer to this cache.
  ~TtlCache() { pending_.WaitForAll(); }

  const CacheOptions& options() const { return options_; }
  // What /metrics reads of this cache; valid while the cache lives.
  CacheProbe probe() const {
    return CacheProbe{options_.name, [this] { return stats(); }};
  }

  // Which loaded values are worth keeping (null: all). A value it refuses still answers the
  // callers that waited for it, and is loaded again next time: for values whose size varies
  // widely, so that max_entries bounds the memory. Set before the first Get.
  void set_keep(std::function<bool(const Value&)> keep) { keep_ = std::move(keep); }

  // Loads (misses and refreshes) start through start instead of running the Loader on the
  // scheduler. Set before the first Get.
  void set_start_loader(StartLoader start) { start_loader_ = std::move(start); }
  // Refreshes (no caller waits on them) start through start instead, when set: a batch loader's
  // background reads, which wait a little to share a query. Set before the first Get.
  void set_start_refresh(StartLoader start) { start_refresh_ = std::move(start); }

  // A live entry's result (a value, or a cached NOT_FOUND), or nullopt. Counts a hit, never a miss,
  // and may start a background refresh.
  std::optional<Result> Peek(const Key& key) {
    Shard& shard = ShardOf(key);
    std::unique_lock lock(shard.mu);
    bool stale = false;
    std::optional<Result> hit = LiveEntry(shard, key, &stale);
    if (stale) Refresh(shard, key, lock);
    return hit;
  }

  // done(result) runs exactly once: at once for a hit, else when the load finishes, on the
  // scheduler's thread. deadline: handed to the loader when this call starts the load.
  void Get(const Key& key, Callback done, absl::Time deadline = absl::InfiniteFuture()) {
    Shard& shard = ShardOf(key);
    std::unique_lock lock(shard.mu);
    bool stale = false;
    if (std::optional<Result> hit = LiveEntry(shard, key, &stale)) {
      if (stale) Refresh(shard, key, lock);
      lock.unlock();
      done(*hit);
      return;
    }
    ++shard.counters.misses;
    auto& load = shard.loads[key];
    if (load != nullptr) {
      load->waiters.push_back(std::move(done));  // coalesce onto the load in flight
      return;
    }
    load = std::make_shared<Load>();
    load->waiters.push_back(std::move(done));
    StartLoad(shard, key, load, deadline, lock);
  }

  // Get, waiting for the result: for tests and tools, never for a completion-queue thread.
  Result GetBlocking(const Key& key, absl::Time deadline = absl::InfiniteFuture()) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result> result;
    Get(
        key,
        [&](const Result& r) {
          std::lock_guard lock(mu);
          result = r;
          cv.notify_one();
        },
        deadline);
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return result.has_value(); });
    return *result;
  }

  // What a read that started at `Epoch(key)` may store: the value, unless key (or the cache) was
  // invalidated since. For callers that load several keys in one query (batch reads).
  std::uint64_t Epoch(const Key& key) {
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    return shard.epoch;
  }
  void PutIfUnchanged(const Key& key, Value value, std::uint64_t epoch) {
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    if (shard.epoch != epoch || (keep_ && !keep_(value))) return;
    Store(shard, key, std::make_shared<const Value>(std::move(value)), absl::OkStatus());
  }

  // Drops key's entry and detaches any load in flight for it.
  void Invalidate(const Key& key) {
    Shard& shard = ShardOf(key);
    std::lock_guard lock(shard.mu);
    ++shard.epoch;
    ++shard.counters.invalidations;
    shard.loads.erase(key);
    if (auto it = shard.entries.find(key); it != shard.entries.end()) Erase(shard, it);
  }

  void Clear() {
    {
      std::lock_guard lock(shards_.front().mu);
      ++shards_.front().counters.invalidations;
    }
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      ++shard.epoch;
      shard.loads.clear();
      shard.entries.clear();
      shard.lru.clear();
      shard.expiry.clear();
      shard.negative_expiry.clear();
    }
  }

  // Entries older than max_age (from their load) are not served: they are loaded again. For while
  // the feed of invalidations that keeps entries fresh is down, so nothing is served that may
  // have changed more than max_age ago unannounced. InfiniteDuration (the default): no limit.
  void LimitAge(absl::Duration max_age) {
    max_age_nanos_.store(max_age == absl::InfiniteDuration() ? kNoAgeLimit
                                                             : absl::ToInt64Nanoseconds(max_age));
  }
  bool age_limited() const { return max_age_nanos_.load() != kNoAgeLimit; }

  CacheStats stats() const {
    CacheStats stats;
    for (const Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      stats.hits += shard.counters.hits;
      stats.misses += shard.counters.misses;
      stats.loads += shard.counters.loads;
      stats.load_errors += shard.counters.load_errors;
      stats.evictions += shard.counters.evictions;
      stats.invalidations += shard.counters.invalidations;
      stats.size += static_cast<std::int64_t>(shard.entries.size());
    }
    stats.age_limited = age_limited();
    return stats;
  }

 private:
  struct Load {
    std::vector<Callback> waiters;  // callers to answer when the load ends
  };

  struct Entry {
    ValuePtr value;                            // null for a negative entry
    absl::Status status;                       // OK, or the cached NOT_FOUND
    absl::Time inserted;                       // for LimitAge
    absl::Time refresh_at;                     // inserted + refresh_after, less its share of spread
    absl::Time expires;                        // inserted + ttl (or negative_ttl)
    absl::Time used;                           // last moved to the front of Shard::lru
    typename std::list<Key>::iterator lru;     // position in Shard::lru
    typename std::list<Key>::iterator expiry;  // position in its expiry list
  };

  using Entries = absl::flat_hash_map<Key, Entry, absl::Hash<Key>>;

  // Cache-line aligned so that shards' locks and counters never share a line.
  struct alignas(64) Shard {
    mutable std::mutex mu;  // guards the rest
    // Live or not-yet-purged. Open addressing: a hit reads one slot instead of chasing a bucket
    // list's node (the lookup was 3% of a cached REST read).
    Entries entries;
    std::unordered_map<Key, std::shared_ptr<Load>, absl::Hash<Key>> loads;  // in flight
    std::list<Key> lru;     // most recently used first
    std::list<Key> expiry;  // positive entries, oldest insert first (one TTL: expiry order)
    std::list<Key> negative_expiry;  // negative entries, oldest insert first
    std::uint64_t epoch = 0;         // bumped by every invalidation
    CacheStats counters;             // this shard's share of stats() (size unused)
    absl::InsecureBitGen random;     // draws refresh ages
  };

  Shard& ShardOf(const Key& key) { return shards_[absl::Hash<Key>{}(key) % shards_.size()]; }

  // The live entry's result, refreshing its LRU position; expired entries are purged. *stale: the
  // entry is past its refresh age (with refresh-ahead on).
  std::optional<Result> LiveEntry(Shard& shard, const Key& key, bool* stale) {
    auto it = shard.entries.find(key);
    if (it == shard.entries.end()) return std::nullopt;
    const absl::Time now = clock_->Now();
    const std::int64_t max_age = max_age_nanos_.load(std::memory_order_relaxed);
    if (now >= it->second.expires ||
        (max_age != kNoAgeLimit && now - it->second.inserted > absl::Nanoseconds(max_age))) {
      Erase(shard, it);
      return std::nullopt;
    }
    // LRU to the second: moving an entry costs a hit the cache misses of its list node and both
    // neighbours, and an entry read again within a second is still among the most recent.
    if (now - it->second.used >= kLruStep) {
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second.lru);
      it->second.used = now;
    }
    *stale = options_.refresh_after > absl::ZeroDuration() && now >= it->second.refresh_at;
    ++shard.counters.hits;
    if (it->second.value != nullptr) return Result(it->second.value);
    return Result(it->second.status);
  }

  // Starts the background reload of a live entry past its refresh age, unless one is under way.
  void Refresh(Shard& shard, const Key& key, std::unique_lock<std::mutex>& lock) {
    auto& load = shard.loads[key];
    if (load != nullptr) return;  // a refresh (or load) is already under way
    load = std::make_shared<Load>();
    StartLoad(shard, key, load, absl::InfiniteFuture(), lock, /*refresh=*/true);
    lock.lock();  // the caller still holds the shard
  }

  // Schedules the load (a refresh: no caller waits on it); releases lock.
  void StartLoad(Shard& shard, const Key& key, std::shared_ptr<Load> load, absl::Time deadline,
                 std::unique_lock<std::mutex>& lock, bool refresh = false) {
    ++shard.counters.loads;
    lock.unlock();
    // The token keeps the cache alive (its destructor waits) until the load is over.
    if (const StartLoader& start = refresh && start_refresh_ ? start_refresh_ : start_loader_) {
      return start(
          key, deadline,
          [this, &shard, key, load, token = pending_.Take()](absl::StatusOr<Value> loaded) {
            Finish(shard, key, load, std::move(loaded));
          });
    }
    auto run = [this, &shard, key, load, deadline, token = pending_.Take()] {
      absl::StatusOr<Value> loaded = loader_(key, deadline);
      Finish(shard, key, load, std::move(loaded));
    };
    if (absl::Status refused = scheduler_(run); !refused.ok()) {
      Finish(shard, key, load, std::move(refused));
    }
  }

  void Finish(Shard& shard, const Key& key, const std::shared_ptr<Load>& load,
              absl::StatusOr<Value> loaded) {
    Result result = loaded.ok() ? Result(std::make_shared<const Value>(*std::move(loaded)))
                                : Result(loaded.status());
    const bool negative = absl::IsNotFound(result.status());
    std::vector<Callback> waiters;
    {
      std::lock_guard lock(shard.mu);
      if (!result.ok() && !negative) ++shard.counters.load_errors;
      auto it = shard.loads.find(key);
      // Only the current load of the key may store: an invalidation detached this one.
      if (it != shard.loads.end() && it->second == load) {
        shard.loads.erase(it);
        if (result.ok()) {
          if (!keep_ || keep_(**result)) Store(shard, key, *result, absl::OkStatus());
        } else if (negative && options_.negative_ttl > absl::ZeroDuration()) {
          Store(shard, key, nullptr, result.status());
        }
      }
      waiters.swap(load->waiters);
    }
    for (auto& waiter : waiters) waiter(result);
  }

  void Store(Shard& shard, const Key& key, ValuePtr value, absl::Status status) {
    const absl::Time now = clock_->Now();
    if (auto it = shard.entries.find(key); it != shard.entries.end()) Erase(shard, it);
    Purge(shard, now);
    while (shard.entries.size() >= per_shard_max_ && !shard.lru.empty()) {
      Erase(shard, shard.entries.find(shard.lru.back()));
      ++shard.counters.evictions;
    }
    const bool negative = value == nullptr;
    auto& expiry = negative ? shard.negative_expiry : shard.expiry;
    shard.lru.push_front(key);
    expiry.push_back(key);
    absl::Duration refresh_age = options_.refresh_after;
    if (options_.refresh_spread > 0 && refresh_age > absl::ZeroDuration()) {
      refresh_age -= options_.refresh_after *
                     absl::Uniform(shard.random, 0.0, std::min(options_.refresh_spread, 1.0));
    }
    shard.entries.emplace(key, Entry{std::move(value), std::move(status), now, now + refresh_age,
                                     now + (negative ? options_.negative_ttl : options_.ttl), now,
                                     shard.lru.begin(), std::prev(expiry.end())});
  }

  // Drops expired entries: each expiry list is in expiry order, so only its head can be due.
  void Purge(Shard& shard, absl::Time now) {
    for (auto* list : {&shard.expiry, &shard.negative_expiry}) {
      while (!list->empty()) {
        auto it = shard.entries.find(list->front());
        if (it->second.expires > now) break;
        Erase(shard, it);
      }
    }
  }

  void Erase(Shard& shard, typename Entries::iterator it) {
    shard.lru.erase(it->second.lru);
    (it->second.value == nullptr ? shard.negative_expiry : shard.expiry).erase(it->second.expiry);
    shard.entries.erase(it);
  }

  const CacheOptions options_;              // as given
  const Clock* clock_;                      // time source
  Loader loader_;                           // produces values
  Scheduler scheduler_;                     // runs loads
  PendingWork pending_;                     // loads queued or running; waited for on destruction
  std::vector<Shard> shards_;               // keys by hash
  std::size_t per_shard_max_;               // max_entries spread over the shards
  std::function<bool(const Value&)> keep_;  // values worth storing; null: all
  StartLoader start_loader_;                // starts loads instead of the scheduler; null: none
  StartLoader start_refresh_;               // starts refreshes instead; null: as other loads
  static constexpr std::int64_t kNoAgeLimit = std::numeric_limits<std::int64_t>::max();
  static constexpr absl::Duration kLruStep = absl::Seconds(1);  // see LiveEntry
  std::atomic<std::int64_t> max_age_nanos_{kNoAgeLimit};        // LimitAge
};

}  // namespace hotpath::cache
