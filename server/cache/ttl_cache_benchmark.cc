// Cache get/put under contention: a hit is what a cached GetItem costs on a completion-queue
// thread.
#include <string>

#include "benchmark/benchmark.h"
#include "server/cache/ttl_cache.h"

namespace hotpath::cache {
namespace {

using IntCache = TtlCache<std::int64_t, std::string>;

IntCache& SharedCache(std::size_t shards) {
  static auto* caches = new std::map<std::size_t, std::unique_ptr<IntCache>>();
  static std::mutex mu;
  std::lock_guard lock(mu);
  auto& cache = (*caches)[shards];
  if (cache == nullptr) {
    CacheOptions options;
    options.name = "bench";
    options.max_entries = 100'000;
    options.shards = shards;
    cache = std::make_unique<IntCache>(
        options,
        [](const std::int64_t& key, absl::Time) -> absl::StatusOr<std::string> {
          return std::string(300, static_cast<char>('a' + key % 26));
        },
        [](std::function<void()> task) {
          task();
          return absl::OkStatus();
        });
    for (std::int64_t k = 0; k < 10'000; ++k) (void)cache->GetBlocking(k);  // warm
  }
  return *cache;
}

// Peek of a hot key set (10,000 keys), from 1..N threads at once.
void BM_PeekHit(benchmark::State& state) {
  IntCache& cache = SharedCache(static_cast<std::size_t>(state.range(0)));
  std::uint64_t x = 88172645463325252ull + state.thread_index();
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    benchmark::DoNotOptimize(cache.Peek(static_cast<std::int64_t>(x % 10'000)));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PeekHit)->Arg(1)->Arg(16)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// Invalidate + reload of one key (a write followed by a read), from 1..N threads.
void BM_InvalidateThenGet(benchmark::State& state) {
  IntCache& cache = SharedCache(16);
  std::int64_t key = state.thread_index() * 1000;
  for (auto _ : state) {
    cache.Invalidate(key);
    benchmark::DoNotOptimize(cache.GetBlocking(key));
    key = (key + 1) % 10'000;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InvalidateThenGet)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace hotpath::cache

BENCHMARK_MAIN();
