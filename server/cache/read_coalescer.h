// Identical reads sharing one load, never one that started before them: request coalescing for
// data that must not be read stale. A read of a key that has `max_in_flight` loads running waits,
// and the next load of that key answers every read waiting for it by then; a key with a free slot
// loads at once, so a lone read pays nothing. Many clients asking for the same page (a shop's
// first page, a feed's head) then cost the database one query per round trip instead of one each.
//
// A read is answered by a load that started after it arrived, so it sees every write committed
// before it was asked, as a direct query would (BatchLoader's guarantee, for whole keys). Every
// reader of one load gets the same immutable object (so the gateway renders it once).
//
// Memory: one entry per key with loads running or readers waiting, dropped when both are none.
#pragma once

#include <algorithm>
#include <cstdint>
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

template <class Key, class Value>
class ReadCoalescer final {
 public:
  // Reads one key; runs on the scheduler and may block. deadline: the latest of its readers'.
  using Load = std::function<absl::StatusOr<Value>(const Key& key, absl::Time deadline)>;
  using ValuePtr = std::shared_ptr<const Value>;
  using Callback = std::function<void(const absl::StatusOr<ValuePtr>&)>;

  // max_in_flight: loads of one key running at once (at least 1).
  ReadCoalescer(int max_in_flight, Load load, Scheduler scheduler)
      : max_in_flight_(std::max(1, max_in_flight)),
        load_(std::move(load)),
        scheduler_(std::move(scheduler)) {}

  ReadCoalescer(const ReadCoalescer&) = delete;
  // Waits for the loads still queued or running: they refer to this coalescer.
  ~ReadCoalescer() { pending_.WaitForAll(); }
  ReadCoalescer& operator=(const ReadCoalescer&) = delete;

  // done runs once, on the scheduler's thread (or here, when the scheduler refuses the load).
  void Get(const Key& key, absl::Time deadline, Callback done) {
    std::unique_lock lock(mu_);
    Entry& entry = keys_[key];
    entry.waiting.push_back(Reader{deadline, std::move(done)});
    if (entry.in_flight < max_in_flight_) StartLoad(key, entry, lock);
  }

  // Loads started so far (each answers one or more reads).
  std::int64_t loads() const {
    std::lock_guard lock(mu_);
    return loads_;
  }
  // Keys with loads running or reads waiting.
  std::size_t keys() const {
    std::lock_guard lock(mu_);
    return keys_.size();
  }

 private:
  struct Reader {
    absl::Time deadline;  // when its caller gives up
    Callback done;        // its answer
  };
  struct Entry {
    int in_flight = 0;            // loads of the key scheduled or running
    std::vector<Reader> waiting;  // reads not yet in a load
  };

  // Takes every read waiting for key into one load and schedules it; releases lock.
  void StartLoad(const Key& key, Entry& entry, std::unique_lock<std::mutex>& lock) {
    auto readers = std::make_shared<std::vector<Reader>>(std::move(entry.waiting));
    entry.waiting.clear();
    ++entry.in_flight;
    ++loads_;
    lock.unlock();
    // The token keeps the coalescer alive (its destructor waits) until the load is over.
    if (absl::Status refused =
            scheduler_([this, key, readers, token = pending_.Take()] { Run(key, *readers); });
        !refused.ok()) {
      Finished(key);
      for (Reader& reader : *readers) reader.done(refused);
    }
  }

  void Run(const Key& key, std::vector<Reader>& readers) {
    absl::Time deadline = absl::InfinitePast();
    for (const Reader& reader : readers) deadline = std::max(deadline, reader.deadline);
    absl::StatusOr<Value> value = load_(key, deadline);
    const absl::StatusOr<ValuePtr> shared =
        value.ok() ? absl::StatusOr<ValuePtr>(std::make_shared<const Value>(*std::move(value)))
                   : absl::StatusOr<ValuePtr>(value.status());
    // The next load of the key goes to the database before this one's readers are answered.
    Finished(key);
    // Answers bound for one event loop are handed to it together.
    const app::HandoffBatch answers;
    for (Reader& reader : readers) reader.done(shared);
  }

  // A load of key ended: the reads that waited for it form the next one.
  void Finished(const Key& key) {
    std::unique_lock lock(mu_);
    auto it = keys_.find(key);
    Entry& entry = it->second;
    --entry.in_flight;
    if (!entry.waiting.empty()) return StartLoad(key, entry, lock);
    if (entry.in_flight == 0) keys_.erase(it);
  }

  const int max_in_flight_;                                // loads per key at once
  const Load load_;                                        // reads a key
  const Scheduler scheduler_;                              // where loads run
  mutable std::mutex mu_;                                  // guards the below
  absl::flat_hash_map<Key, Entry, absl::Hash<Key>> keys_;  // keys loading or waited for
  std::int64_t loads_ = 0;                                 // loads started
  PendingWork pending_;  // loads queued or running; waited for on destruction
};

}  // namespace hotpath::cache
