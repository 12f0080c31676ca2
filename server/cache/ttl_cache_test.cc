#include "server/cache/ttl_cache.h"

#include <atomic>
#include <deque>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace hotpath::cache {
namespace {

class FakeClock final : public Clock {
 public:
  absl::Time Now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
};

// Runs loads only when told to, so a test decides what happens in between.
class ManualScheduler {
 public:
  Scheduler AsScheduler() {
    return [this](std::function<void()> task) {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
      return absl::OkStatus();
    };
  }
  // Runs what is queued now; returns how many ran.
  int RunAll() {
    std::deque<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
    return static_cast<int>(tasks.size());
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
};

Scheduler Inline() {
  return [](std::function<void()> task) {
    task();
    return absl::OkStatus();
  };
}

using StringCache = TtlCache<std::string, std::string>;

CacheOptions Options(FakeClock* clock, std::size_t max_entries = 100) {
  CacheOptions options;
  options.name = "test";
  options.max_entries = max_entries;
  options.shards = 1;  // exact LRU order across keys
  options.ttl = absl::Seconds(60);
  options.negative_ttl = absl::Seconds(5);
  options.clock = clock;
  return options;
}

// A loader answering "<key>@<version>" and counting calls.
struct CountingLoader {
  std::atomic<int> calls{0};
  std::atomic<int> version{1};
  StringCache::Loader AsLoader() {
    return [this](const std::string& key, absl::Time) -> absl::StatusOr<std::string> {
      ++calls;
      if (key.rfind("missing", 0) == 0) return absl::NotFoundError(key);
      if (key.rfind("broken", 0) == 0) return absl::UnavailableError("database down");
      return key + "@" + std::to_string(version.load());
    };
  }
};

std::string ValueOf(const StringCache::Result& result) {
  return result.ok() ? **result : std::string(result.status().ToString());
}

TEST(TtlCache, LoadsOnceThenHitsUntilTheTtlPasses) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock), loader.AsLoader(), Inline());
  EXPECT_EQ(ValueOf(cache.GetBlocking("a")), "a@1");
  loader.version = 2;
  clock.Advance(absl::Seconds(59));
  EXPECT_EQ(ValueOf(cache.GetBlocking("a")), "a@1");
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(ValueOf(cache.GetBlocking("a")), "a@2");
  const CacheStats stats = cache.stats();
  EXPECT_EQ(stats.loads, 2);
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.misses, 2);
  EXPECT_EQ(stats.size, 1);
}

TEST(TtlCache, EvictsTheLeastRecentlyUsed) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock, 3), loader.AsLoader(), Inline());
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(cache.GetBlocking(key).ok());
  clock.Advance(absl::Seconds(1));           // LRU to the second: a read within it moves nothing
  ASSERT_TRUE(cache.GetBlocking("a").ok());  // a is now the most recent; b the least
  ASSERT_TRUE(cache.GetBlocking("d").ok());
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_TRUE(cache.Peek("a").has_value());
  EXPECT_FALSE(cache.Peek("b").has_value());
  EXPECT_TRUE(cache.Peek("c").has_value());
  EXPECT_TRUE(cache.Peek("d").has_value());
}

// LRU to the second: a hit within a second of its entry's last move leaves the order as it was
// (moving costs the hit cache misses under the shard's lock), so the entry may be evicted first.
TEST(TtlCache, AHitWithinASecondOfItsLastMoveLeavesTheLruOrder) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock, 3), loader.AsLoader(), Inline());
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(cache.GetBlocking(key).ok());
  ASSERT_TRUE(cache.GetBlocking("a").ok());  // the same second as its load: not moved
  ASSERT_TRUE(cache.GetBlocking("d").ok());
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_FALSE(cache.Peek("a").has_value());
  EXPECT_TRUE(cache.Peek("b").has_value());
}

TEST(TtlCache, ExpiredEntriesGoBeforeAnyLiveOneIsEvicted) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock, 3), loader.AsLoader(), Inline());
  ASSERT_TRUE(cache.GetBlocking("old").ok());
  clock.Advance(absl::Seconds(30));
  ASSERT_TRUE(cache.GetBlocking("b").ok());
  ASSERT_TRUE(cache.GetBlocking("c").ok());
  ASSERT_TRUE(cache.GetBlocking("old").ok());  // "old" is the most recently used, but dies first
  clock.Advance(absl::Seconds(31));
  ASSERT_TRUE(cache.GetBlocking("d").ok());
  EXPECT_EQ(cache.stats().evictions, 0);  // the expired entry made room
  EXPECT_TRUE(cache.Peek("b").has_value());
  EXPECT_TRUE(cache.Peek("c").has_value());
  EXPECT_TRUE(cache.Peek("d").has_value());
}

TEST(TtlCache, ConcurrentMissesCoalesceIntoOneLoad) {
  std::atomic<int> calls{0};
  std::atomic<bool> release{false};
  CacheOptions options;
  options.name = "test";
  StringCache cache(
      options,
      [&](const std::string& key, absl::Time) -> absl::StatusOr<std::string> {
        ++calls;
        while (!release) std::this_thread::yield();
        return key + "!";
      },
      [](std::function<void()> task) {
        std::thread(std::move(task)).detach();
        return absl::OkStatus();
      });
  constexpr int kThreads = 64;
  std::atomic<int> answered{0}, right{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      cache.Get("k", [&](const StringCache::Result& r) {
        if (r.ok() && **r == "k!") ++right;
        ++answered;
      });
    });
  }
  for (auto& t : threads) t.join();  // every Get has registered before the load may end
  release = true;
  while (answered < kThreads) std::this_thread::yield();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(right.load(), kThreads);
  EXPECT_EQ(cache.stats().loads, 1);
  EXPECT_EQ(cache.stats().misses, kThreads);
}

TEST(TtlCache, ALoadErrorReachesEveryWaiterAndIsNotCached) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  StringCache cache(Options(&clock), loader.AsLoader(), scheduler.AsScheduler());
  std::vector<absl::StatusCode> codes;
  for (int i = 0; i < 5; ++i) {
    cache.Get("broken", [&](const StringCache::Result& r) { codes.push_back(r.status().code()); });
  }
  EXPECT_EQ(scheduler.RunAll(), 1);
  EXPECT_EQ(codes, std::vector<absl::StatusCode>(5, absl::StatusCode::kUnavailable));
  EXPECT_FALSE(cache.Peek("broken").has_value());
  cache.Get("broken", [](const StringCache::Result&) {});
  EXPECT_EQ(scheduler.RunAll(), 1);  // tried again
  EXPECT_EQ(cache.stats().load_errors, 2);
}

TEST(TtlCache, NotFoundIsCachedForTheNegativeTtl) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock), loader.AsLoader(), Inline());
  EXPECT_EQ(cache.GetBlocking("missing-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.GetBlocking("missing-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loader.calls.load(), 1);
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(cache.GetBlocking("missing-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loader.calls.load(), 2);
  EXPECT_EQ(cache.stats().load_errors, 0);
}

TEST(TtlCache, NegativeCachingCanBeTurnedOff) {
  FakeClock clock;
  CountingLoader loader;
  CacheOptions options = Options(&clock);
  options.negative_ttl = absl::ZeroDuration();
  StringCache cache(options, loader.AsLoader(), Inline());
  EXPECT_EQ(cache.GetBlocking("missing-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cache.GetBlocking("missing-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loader.calls.load(), 2);
}

TEST(TtlCache, AValueKeepRefusesAnswersItsWaitersButIsNotStored) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock), loader.AsLoader(), Inline());
  cache.set_keep([](const std::string& value) { return value.size() <= 3; });
  EXPECT_EQ(ValueOf(cache.GetBlocking("a")), "a@1");
  EXPECT_EQ(ValueOf(cache.GetBlocking("a")), "a@1");
  EXPECT_EQ(loader.calls.load(), 1);  // kept
  EXPECT_EQ(ValueOf(cache.GetBlocking("long")), "long@1");
  EXPECT_EQ(ValueOf(cache.GetBlocking("long")), "long@1");
  EXPECT_EQ(loader.calls.load(), 3);  // too big to keep: loaded each time
  EXPECT_FALSE(cache.Peek("long").has_value());
}

TEST(TtlCache, StaleWhileRevalidateServesTheOldValueDuringOneRefresh) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  CacheOptions options = Options(&clock);
  options.refresh_after = absl::Seconds(10);
  StringCache cache(options, loader.AsLoader(), scheduler.AsScheduler());
  cache.Get("a", [](const StringCache::Result&) {});
  scheduler.RunAll();
  loader.version = 2;
  clock.Advance(absl::Seconds(11));
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@1");  // stale, served at once
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@1");  // still one refresh only
  EXPECT_EQ(scheduler.RunAll(), 1);
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@2");
  EXPECT_EQ(scheduler.RunAll(), 0);  // fresh again: no refresh
}

TEST(TtlCache, AnEntryKeptInUseNeverExpiresUnderItsReaders) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  CacheOptions options = Options(&clock);
  options.refresh_after = absl::Seconds(45);
  options.refresh_spread = 0.25;
  StringCache cache(options, loader.AsLoader(), scheduler.AsScheduler());
  cache.Get("a", [](const StringCache::Result&) {});
  scheduler.RunAll();
  // Read once a second for ten TTLs: every read is a hit; the loads are the background refreshes.
  for (int second = 1; second <= 600; ++second) {
    clock.Advance(absl::Seconds(1));
    ASSERT_TRUE(cache.Peek("a").has_value()) << "expired at " << second << " s";
    scheduler.RunAll();
  }
  EXPECT_EQ(cache.stats().misses, 1);                // the first read only
  EXPECT_GE(loader.calls.load(), 1 + 600 / 45);      // refreshed at least every 45 s
  EXPECT_LE(loader.calls.load(), 1 + 600 / 33 + 1);  // and no sooner than 33.75 s apart
}

TEST(TtlCache, EntriesLoadedTogetherAreRefreshedSpreadOverTheLastQuarterOfRefreshAfter) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  CacheOptions options = Options(&clock, 100'000);  // no shard evicts
  options.shards = 16;
  options.refresh_after = absl::Seconds(40);
  options.refresh_spread = 0.25;
  StringCache cache(options, loader.AsLoader(), scheduler.AsScheduler());
  for (int i = 0; i < 1000; ++i) cache.Get(std::to_string(i), [](const StringCache::Result&) {});
  ASSERT_EQ(scheduler.RunAll(), 1000);
  const auto read_all = [&] {
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(cache.Peek(std::to_string(i)).has_value());
  };
  clock.Advance(absl::Milliseconds(29'900));  // below 3/4 of refresh_after: none due
  read_all();
  EXPECT_EQ(scheduler.RunAll(), 0);
  clock.Advance(absl::Milliseconds(5'100));  // at 35 s, the middle of [30 s, 40 s]: about half
  read_all();
  const int first = scheduler.RunAll();
  EXPECT_GT(first, 300);
  EXPECT_LT(first, 700);
  clock.Advance(absl::Seconds(5));  // at 40 s: the rest
  read_all();
  EXPECT_EQ(first + scheduler.RunAll(), 1000);
}

TEST(TtlCache, ARefreshThatStartedBeforeAnInvalidationNeverStoresItsValue) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  CacheOptions options = Options(&clock);
  options.refresh_after = absl::Seconds(10);
  StringCache cache(options, loader.AsLoader(), scheduler.AsScheduler());
  cache.Get("a", [](const StringCache::Result&) {});
  scheduler.RunAll();
  clock.Advance(absl::Seconds(11));
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@1");  // starts a refresh
  cache.Invalidate("a");                        // a write lands while it is in flight
  loader.version = 2;
  EXPECT_EQ(scheduler.RunAll(), 1);
  EXPECT_FALSE(cache.Peek("a").has_value());  // the refresh's read is not kept
}

TEST(TtlCache, ALoadThatStartedBeforeAnInvalidationNeverStoresItsValue) {
  FakeClock clock;
  std::function<void()> stale_load;
  StringCache cache(
      Options(&clock),
      [](const std::string& key, absl::Time) -> absl::StatusOr<std::string> {
        return key + "@before-write";
      },
      [&](std::function<void()> task) {
        stale_load = std::move(task);
        return absl::OkStatus();
      });
  std::vector<std::string> seen;
  cache.Get("a", [&](const StringCache::Result& r) { seen.push_back(ValueOf(r)); });
  cache.Invalidate("a");  // a write lands while the read is in flight
  stale_load();           // the read completes after the invalidation
  stale_load = nullptr;   // the load is over (the cache's destructor waits for it)
  EXPECT_EQ(seen, std::vector<std::string>{"a@before-write"});  // its caller is still answered
  EXPECT_FALSE(cache.Peek("a").has_value());                    // but the value is not kept
}

// Loads started through set_start_loader (a batch loader's), answered when the test says so.
struct StartedLoads {
  std::vector<std::string> keys;                                      // each load started, in order
  std::vector<std::function<void(absl::StatusOr<std::string>)>> due;  // their answers, unsent
  StringCache::StartLoader AsStartLoader() {
    return [this](const std::string& key, absl::Time,
                  std::function<void(absl::StatusOr<std::string>)> loaded) {
      keys.push_back(key);
      due.push_back(std::move(loaded));
    };
  }
};

TEST(TtlCache, AStartLoaderLoadsMissesAndRefreshesInsteadOfTheScheduler) {
  FakeClock clock;
  CountingLoader loader;
  ManualScheduler scheduler;
  StartedLoads started;
  CacheOptions options = Options(&clock);
  options.refresh_after = absl::Seconds(10);
  StringCache cache(options, loader.AsLoader(), scheduler.AsScheduler());
  cache.set_start_loader(started.AsStartLoader());
  std::vector<std::string> seen;
  auto record = [&seen](const StringCache::Result& r) { seen.push_back(ValueOf(r)); };
  cache.Get("a", record);
  cache.Get("b", record);
  cache.Get("a", record);  // coalesced onto a's load
  EXPECT_EQ(started.keys, (std::vector<std::string>{"a", "b"}));
  started.due[1]("b@1");
  started.due[0]("a@1");
  EXPECT_EQ(seen, (std::vector<std::string>{"b@1", "a@1", "a@1"}));
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@1");  // stored
  clock.Advance(absl::Seconds(11));
  EXPECT_EQ(ValueOf(*cache.Peek("b")), "b@1");  // stale: served, and refreshed through it too
  ASSERT_EQ(started.keys.size(), 3u);
  EXPECT_EQ(started.keys[2], "b");
  started.due[2]("b@2");
  EXPECT_EQ(ValueOf(*cache.Peek("b")), "b@2");
  EXPECT_EQ(scheduler.RunAll(), 0);  // the Loader never ran
  EXPECT_EQ(loader.calls.load(), 0);
  started.due.clear();  // the loads are over (the cache's destructor waits for them)
}

TEST(TtlCache, RefreshesStartThroughTheRefreshStarterAndMissesDoNot) {
  FakeClock clock;
  CountingLoader loader;
  StartedLoads misses;
  StartedLoads refreshes;
  CacheOptions options = Options(&clock);
  options.refresh_after = absl::Seconds(10);
  StringCache cache(options, loader.AsLoader(), Inline());
  cache.set_start_loader(misses.AsStartLoader());
  cache.set_start_refresh(refreshes.AsStartLoader());
  std::vector<std::string> seen;
  cache.Get("a", [&seen](const StringCache::Result& r) { seen.push_back(ValueOf(r)); });
  ASSERT_EQ(misses.keys, std::vector<std::string>{"a"});
  misses.due[0]("a@1");
  clock.Advance(absl::Seconds(11));
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@1");  // stale: served, and refreshed
  EXPECT_EQ(misses.keys.size(), 1u);
  ASSERT_EQ(refreshes.keys, std::vector<std::string>{"a"});
  refreshes.due[0]("a@2");
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@2");
  EXPECT_EQ(loader.calls.load(), 0);
  misses.due.clear();
  refreshes.due.clear();
}

TEST(TtlCache, AStartedLoadAnsweredAfterAnInvalidationIsNotStored) {
  FakeClock clock;
  CountingLoader loader;
  StartedLoads started;
  StringCache cache(Options(&clock), loader.AsLoader(), Inline());
  cache.set_start_loader(started.AsStartLoader());
  std::vector<std::string> seen;
  cache.Get("a", [&seen](const StringCache::Result& r) { seen.push_back(ValueOf(r)); });
  cache.Invalidate("a");  // a write lands while the batch is in flight
  started.due[0]("a@before-write");
  started.due.clear();
  EXPECT_EQ(seen, std::vector<std::string>{"a@before-write"});  // its caller is still answered
  EXPECT_FALSE(cache.Peek("a").has_value());                    // but the value is not kept
}

TEST(TtlCache, ReadersAfterAnInvalidationStartANewLoad) {
  FakeClock clock;
  ManualScheduler scheduler;
  std::atomic<int> version{0};
  StringCache cache(
      Options(&clock),
      [&](const std::string& key, absl::Time) -> absl::StatusOr<std::string> {
        return key + "@" + std::to_string(++version);
      },
      scheduler.AsScheduler());
  std::vector<std::string> before, after;
  cache.Get("a", [&](const StringCache::Result& r) { before.push_back(ValueOf(r)); });
  cache.Invalidate("a");
  cache.Get("a", [&](const StringCache::Result& r) { after.push_back(ValueOf(r)); });
  EXPECT_EQ(scheduler.RunAll(), 2);  // two loads: the second did not join the first
  EXPECT_EQ(before, std::vector<std::string>{"a@1"});
  EXPECT_EQ(after, std::vector<std::string>{"a@2"});
  EXPECT_EQ(ValueOf(*cache.Peek("a")), "a@2");
}

TEST(TtlCache, ClearAndPutIfUnchanged) {
  FakeClock clock;
  CountingLoader loader;
  StringCache cache(Options(&clock), loader.AsLoader(), Inline());
  const std::uint64_t before = cache.Epoch("x");
  cache.PutIfUnchanged("x", "fresh", before);
  EXPECT_EQ(ValueOf(*cache.Peek("x")), "fresh");
  const std::uint64_t epoch = cache.Epoch("y");
  cache.Invalidate("y");
  cache.PutIfUnchanged("y", "stale", epoch);
  EXPECT_FALSE(cache.Peek("y").has_value());
  cache.Clear();
  EXPECT_EQ(cache.stats().size, 0);
  EXPECT_FALSE(cache.Peek("x").has_value());
}

TEST(TtlCache, ASchedulerThatRefusesFailsTheWaiters) {
  CacheOptions options;
  options.name = "test";
  StringCache cache(
      options, [](const std::string& k, absl::Time) -> absl::StatusOr<std::string> { return k; },
      [](std::function<void()>) { return absl::ResourceExhaustedError("server busy"); });
  EXPECT_EQ(cache.GetBlocking("a").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(cache.Peek("a").has_value());
}

}  // namespace
}  // namespace hotpath::cache

namespace hotpath::cache {
namespace {

// Destroying a cache while its load runs waits for the load (which refers to the cache) to end,
// whatever order its owner's members go in.
TEST(TtlCache, DestructionWaitsForALoadInFlight) {
  std::promise<void> loading;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread worker;
  auto cache = std::make_unique<TtlCache<int, int>>(
      CacheOptions{.name = "t", .max_entries = 10, .ttl = absl::Seconds(60)},
      [&loading, released](int, absl::Time) -> absl::StatusOr<int> {
        loading.set_value();
        released.wait();
        return 1;
      },
      [&worker](std::function<void()> task) {
        worker = std::thread(std::move(task));
        return absl::OkStatus();
      });
  std::atomic<bool> answered{false};
  cache->Get(1, [&answered](const auto&) { answered = true; });
  loading.get_future().wait();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&cache, &destroyed] {
    cache.reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(destroyed.load());
  release.set_value();
  destroyer.join();
  worker.join();
  EXPECT_TRUE(destroyed.load());
  EXPECT_TRUE(answered.load());
}

}  // namespace
// Age-limited (the change feed is down), entries older than the limit are loaded again; fresh
// ones are served. Lifted, entries live their TTL again.
TEST(TtlCache, AnAgeLimitReloadsOlderEntriesAndServesYoungerOnes) {
  FakeClock clock;
  int loads = 0;
  StringCache cache(
      Options(&clock),
      [&loads](const std::string& key, absl::Time) -> absl::StatusOr<std::string> {
        ++loads;
        return absl::StrCat(key, loads);
      },
      Inline());
  EXPECT_EQ(**cache.GetBlocking("a"), "a1");
  clock.Advance(absl::Seconds(2));
  cache.LimitAge(absl::Seconds(1));
  EXPECT_TRUE(cache.stats().age_limited);
  EXPECT_EQ(**cache.GetBlocking("a"), "a2");  // 2 s old: loaded again
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(**cache.GetBlocking("a"), "a2");  // 0.5 s old: served
  clock.Advance(absl::Milliseconds(600));
  EXPECT_EQ(**cache.GetBlocking("a"), "a3");
  cache.LimitAge(absl::InfiniteDuration());
  clock.Advance(absl::Seconds(30));
  EXPECT_EQ(**cache.GetBlocking("a"), "a3");
  EXPECT_FALSE(cache.stats().age_limited);
}

}  // namespace hotpath::cache
