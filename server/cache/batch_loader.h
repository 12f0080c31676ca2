// Natural batching of point reads: DataLoader's idea without its wait. A read that arrives while
// `max_in_flight` loads are running waits, and the next load takes every key waiting by then (up
// to `max_batch`) in one query. An idle loader starts a load at once, so a lone read pays
// nothing; under load, many reads share one round trip, and the database works on a few larger
// queries instead of many one-row ones.
//
// A read is answered by a load that started after it arrived, so it sees every write committed
// before it was asked (read-your-writes holds as for a direct query).
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/app/handoff_batch.h"
#include "server/cache/pending_work.h"
#include "server/cache/ttl_cache.h"

namespace hotpath::cache {

struct BatchLoaderOptions {
  // Most distinct keys in one load. Default 100.
  std::size_t max_batch = 100;
  // Loads running at once; a read that finds them all busy joins the next one. Default 2.
  int max_in_flight = 2;
};

template <class Key, class Value>
class BatchLoader final {
 public:
  // Reads distinct keys at once; runs on the scheduler and may block. Returns one result per key,
  // in the keys' order (NOT_FOUND for a key that has no value), or one error for the whole batch.
  // deadline: the latest of the batch's readers'.
  using Load = std::function<absl::StatusOr<std::vector<absl::StatusOr<Value>>>(
      const std::vector<Key>& keys, absl::Time deadline)>;
  using Callback = std::function<void(absl::StatusOr<Value>)>;

  BatchLoader(BatchLoaderOptions options, Load load, Scheduler scheduler)
      : options_(options), load_(std::move(load)), scheduler_(std::move(scheduler)) {
    options_.max_batch = std::max<std::size_t>(1, options_.max_batch);
    options_.max_in_flight = std::max(1, options_.max_in_flight);
  }

  BatchLoader(const BatchLoader&) = delete;
  // Waits for the loads still queued or running: they refer to this loader.
  ~BatchLoader() { pending_.WaitForAll(); }
  BatchLoader& operator=(const BatchLoader&) = delete;

  // done runs once, on the scheduler's thread (or here, when the scheduler refuses the load).
  void Get(const Key& key, absl::Time deadline, Callback done) {
    std::unique_lock lock(mu_);
    waiting_.push_back(Reader{key, deadline, std::move(done)});
    if (in_flight_ < options_.max_in_flight) StartLoad(lock);
  }

  // Loads started so far (each answers one or more reads).
  std::int64_t loads() const {
    std::lock_guard lock(mu_);
    return loads_;
  }

 private:
  struct Reader {
    Key key;              // what it asks for
    absl::Time deadline;  // when its caller gives up
    Callback done;        // its answer
  };

  // Takes up to max_batch waiting readers into one load and schedules it; releases lock.
  void StartLoad(std::unique_lock<std::mutex>& lock) {
    auto batch = std::make_shared<std::vector<Reader>>();
    absl::flat_hash_map<Key, std::size_t, absl::Hash<Key>> distinct;
    while (!waiting_.empty()) {
      const Key& key = waiting_.front().key;
      if (!distinct.contains(key) && distinct.size() >= options_.max_batch) break;
      distinct.try_emplace(key, distinct.size());
      batch->push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
    if (batch->empty()) return;
    ++in_flight_;
    ++loads_;
    lock.unlock();
    // The token keeps the loader alive (its destructor waits) until the load is over.
    if (absl::Status refused = scheduler_([this, batch, token = pending_.Take()] { Run(*batch); });
        !refused.ok()) {
      Finished();
      for (auto& reader : *batch) reader.done(refused);
    }
  }

  void Run(std::vector<Reader>& batch) {
    std::vector<Key> keys;
    absl::flat_hash_map<Key, std::size_t, absl::Hash<Key>> index;
    absl::Time deadline = absl::InfinitePast();
    for (const Reader& reader : batch) {
      if (index.try_emplace(reader.key, keys.size()).second) keys.push_back(reader.key);
      deadline = std::max(deadline, reader.deadline);
    }
    auto results = load_(keys, deadline);
    if (results.ok() && results->size() != keys.size()) {
      results = absl::InternalError("batch load answered the wrong number of keys");
    }
    // The next batch goes to the database before this one's readers are answered.
    Finished();
    // Answers bound for one event loop are handed to it together.
    const app::HandoffBatch answers;
    for (Reader& reader : batch) {
      if (!results.ok()) {
        reader.done(results.status());
      } else {
        reader.done((*results)[index[reader.key]]);
      }
    }
  }

  // A load ended: the readers that waited for it form the next one.
  void Finished() {
    std::unique_lock lock(mu_);
    --in_flight_;
    if (!waiting_.empty()) StartLoad(lock);
  }

  BatchLoaderOptions options_;  // as given, clamped to at least 1
  const Load load_;             // reads a batch
  const Scheduler scheduler_;   // where loads run
  mutable std::mutex mu_;       // guards the below
  std::deque<Reader> waiting_;  // reads not yet in a load, oldest first
  int in_flight_ = 0;           // loads scheduled or running
  std::int64_t loads_ = 0;      // loads started
  PendingWork pending_;         // loads queued or running; waited for on destruction
};

}  // namespace hotpath::cache
