// Natural batching of point reads: DataLoader's idea without its wait. A read that arrives while
// a load is running waits, and the next load takes every key waiting by then (up to `max_batch`)
// in one query. An idle loader starts a load at once, so a lone read pays nothing; under load,
// many reads share one round trip, and the database works on a few larger queries instead of many
// one-row ones. A load that runs long (`overlap_after`) lets another start beside it, up to
// `max_in_flight`, so one slow query does not hold every reader.
//
// A read is answered by a load that started after it arrived, so it sees every write committed
// before it was asked (read-your-writes holds as for a direct query).
//
// A background read (GetInBackground: a cache's refresh-ahead, which no caller waits on) waits up
// to background_wait for company: it rides along in the next load started for other reads, or goes
// with the other background reads once the oldest has waited that long or they fill a batch. A
// refresh wave then costs a query per many items, not one per item.
//
// A load may also start without the scheduler (set_start): a read that waits on the calling
// thread's event loop, answered there, so neither an executor thread nor a handoff back is paid
// for it; loads it cannot start or finish that way run on the scheduler as before.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/app/handoff_batch.h"
#include "server/app/named_thread.h"
#include "server/cache/pending_work.h"
#include "server/cache/ttl_cache.h"

namespace hotpath::cache {

struct BatchLoaderOptions {
  // Most distinct keys in one load. Default 100.
  std::size_t max_batch = 100;
  // Most loads running at once; a read that cannot start one joins the next. Default 2.
  int max_in_flight = 2;
  // A read that arrives while loads run starts another (below max_in_flight) only when the newest
  // of them has run this long; until then it waits for the next, larger batch. Zero: at once.
  // Default 1 ms, several of a batch's usual round trips on one host.
  absl::Duration overlap_after = absl::Milliseconds(1);
  // Longest a background read waits for other reads to share a load with (see above); zero: it
  // starts one at once, like any read. A positive wait runs a thread of the loader's own that
  // starts the background reads that came due. Default zero.
  absl::Duration background_wait = absl::ZeroDuration();
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
  // What a load answers: one result per key, in the keys' order, or one error for all.
  using Results = absl::StatusOr<std::vector<absl::StatusOr<Value>>>;
  // A load started without blocking: answered once, with the results, or with nullopt when it
  // could not finish that way (the batch then runs through Load on the scheduler).
  using Answered = absl::AnyInvocable<void(std::optional<Results>) &&>;
  // Starts a load of keys without blocking the calling thread; false, leaving answered unused,
  // when it cannot start one here.
  using Start =
      std::function<bool(const std::vector<Key>& keys, absl::Time deadline, Answered& answered)>;

  BatchLoader(BatchLoaderOptions options, Load load, Scheduler scheduler)
      : options_(options), load_(std::move(load)), scheduler_(std::move(scheduler)) {
    options_.max_batch = std::max<std::size_t>(1, options_.max_batch);
    options_.max_in_flight = std::max(1, options_.max_in_flight);
    if (options_.background_wait > absl::ZeroDuration()) {
      flusher_ = app::NamedThread("hotpath-bgreads", [this] { FlushBackground(); });
    }
  }

  BatchLoader(const BatchLoader&) = delete;
  // Starts the background reads still waiting, then waits for the loads still queued or running:
  // they refer to this loader.
  ~BatchLoader() {
    if (flusher_.joinable()) {
      {
        std::lock_guard lock(mu_);
        stopping_ = true;
      }
      flush_.notify_one();
      flusher_.join();
    }
    pending_.WaitForAll();
  }
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Set before the first Get: loads try start first, the scheduler when it declines.
  void set_start(Start start) { start_ = std::move(start); }

  // done runs once: on the scheduler's thread, on the thread that started a load without blocking
  // when it answers, or here (the scheduler refused the load).
  void Get(const Key& key, absl::Time deadline, Callback done) {
    std::unique_lock lock(mu_);
    waiting_.push_back(Reader{key, deadline, std::move(done)});
    if (MayStartLoad()) StartLoad(lock);
  }

  // A read no caller waits on (a refresh): as Get without a deadline, but it may wait up to
  // options' background_wait to share a load. done runs once, as for Get.
  void GetInBackground(const Key& key, Callback done) {
    if (!flusher_.joinable()) return Get(key, absl::InfiniteFuture(), std::move(done));  // no wait
    std::unique_lock lock(mu_);
    background_.push_back(Reader{key, absl::InfiniteFuture(), std::move(done), absl::Now()});
    if (BackgroundDue() && MayStartLoad()) return StartLoad(lock);
    if (background_.size() == 1) flush_.notify_one();  // the flusher waits for a first one
  }

  // As given to the constructor, max_batch and max_in_flight clamped to at least 1.
  const BatchLoaderOptions& options() const { return options_; }

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
    absl::Time queued;    // when it came (background reads only)
  };
  // The readers of one load.
  struct Batch {
    std::vector<Reader> readers;  // in the order they arrived
    absl::Time started;           // when its load started
  };

  // Whether a waiting read may start a load now (mu_ held): none runs, or the newest of those
  // running has run overlap_after and there is room for another.
  bool MayStartLoad() const {
    if (started_.empty()) return true;
    if (started_.size() >= static_cast<std::size_t>(options_.max_in_flight)) return false;
    if (options_.overlap_after <= absl::ZeroDuration()) return true;
    return absl::Now() - *std::max_element(started_.begin(), started_.end()) >=
           options_.overlap_after;
  }

  // Whether the background reads should load now (mu_ held): they fill a batch, or the oldest has
  // waited background_wait.
  bool BackgroundDue() const {
    return !background_.empty() &&
           (background_.size() >= options_.max_batch ||
            absl::Now() - background_.front().queued >= options_.background_wait);
  }

  // Takes up to max_batch waiting readers, then background ones while there is room, into one
  // load and schedules it; releases lock.
  void StartLoad(std::unique_lock<std::mutex>& lock) {
    auto batch = std::make_shared<Batch>();
    absl::flat_hash_map<Key, std::size_t, absl::Hash<Key>> distinct;
    for (std::deque<Reader>* readers : {&waiting_, &background_}) {
      while (!readers->empty()) {
        const Key& key = readers->front().key;
        if (!distinct.contains(key) && distinct.size() >= options_.max_batch) break;
        distinct.try_emplace(key, distinct.size());
        batch->readers.push_back(std::move(readers->front()));
        readers->pop_front();
      }
    }
    if (batch->readers.empty()) {
      lock.unlock();
      return;
    }
    batch->started = absl::Now();
    started_.push_back(batch->started);
    ++loads_;
    lock.unlock();
    if (start_ && StartWithoutBlocking(batch)) return;
    Schedule(std::move(batch));
  }

  // The load of batch on the scheduler.
  void Schedule(std::shared_ptr<Batch> batch) {
    // The token keeps the loader alive (its destructor waits) until the load is over.
    if (absl::Status refused = scheduler_([this, batch, token = pending_.Take()] { Run(*batch); });
        !refused.ok()) {
      Finished(*batch);
      for (auto& reader : batch->readers) reader.done(refused);
    }
  }

  // A batch's distinct keys and where each is in them, and the latest of its readers' deadlines.
  struct Keys {
    explicit Keys(const std::vector<Reader>& batch) {
      for (const Reader& reader : batch) {
        if (index.try_emplace(reader.key, keys.size()).second) keys.push_back(reader.key);
        deadline = std::max(deadline, reader.deadline);
      }
    }
    std::vector<Key> keys;                                         // distinct, as first asked
    absl::flat_hash_map<Key, std::size_t, absl::Hash<Key>> index;  // key -> its place in keys
    absl::Time deadline = absl::InfinitePast();                    // the latest reader's
  };

  bool StartWithoutBlocking(const std::shared_ptr<Batch>& batch) {
    auto keys = std::make_shared<const Keys>(batch->readers);
    Answered answered = [this, batch, keys,
                         token = pending_.Take()](std::optional<Results> results) mutable {
      if (!results.has_value()) return Schedule(std::move(batch));
      Answer(*batch, *keys, *std::move(results));
    };
    return start_(keys->keys, keys->deadline, answered);
  }

  void Run(Batch& batch) {
    const Keys keys(batch.readers);
    Answer(batch, keys, load_(keys.keys, keys.deadline));
  }

  void Answer(Batch& batch, const Keys& keys, Results results) {
    if (results.ok() && results->size() != keys.keys.size()) {
      results = absl::InternalError("batch load answered the wrong number of keys");
    }
    // The next batch goes to the database before this one's readers are answered.
    Finished(batch);
    // Answers bound for one event loop are handed to it together.
    const app::HandoffBatch answers;
    for (Reader& reader : batch.readers) {
      if (!results.ok()) {
        reader.done(results.status());
      } else {
        reader.done((*results)[keys.index.at(reader.key)]);
      }
    }
  }

  // batch's load ended: the readers that waited for it form the next one.
  void Finished(const Batch& batch) {
    std::unique_lock lock(mu_);
    started_.erase(std::find(started_.begin(), started_.end(), batch.started));
    if (!waiting_.empty() || BackgroundDue()) StartLoad(lock);
  }

  // The flusher thread: starts background reads as they come due (when a load may start; else
  // the next load to finish takes them), and every one left when the loader stops.
  void FlushBackground() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (background_.empty()) {
        flush_.wait(lock);
      } else if (!BackgroundDue() || !MayStartLoad()) {
        // Until the oldest comes due; once due, a load may start when the newest running one
        // passes overlap_after, or a finishing one takes them: checked each millisecond.
        const absl::Duration until_due =
            background_.front().queued + options_.background_wait - absl::Now();
        flush_.wait_for(lock,
                        absl::ToChronoNanoseconds(std::max(until_due, absl::Milliseconds(1))));
      } else {
        StartLoad(lock);
        lock.lock();
      }
    }
    while (!background_.empty()) {
      StartLoad(lock);
      lock.lock();
    }
  }

  BatchLoaderOptions options_;       // as given, clamped to at least 1
  const Load load_;                  // reads a batch
  const Scheduler scheduler_;        // where loads run
  Start start_;                      // starts loads without blocking; empty: none
  mutable std::mutex mu_;            // guards the below
  std::deque<Reader> waiting_;       // reads not yet in a load, oldest first
  std::deque<Reader> background_;    // background reads not yet in a load, oldest first
  std::vector<absl::Time> started_;  // when each load scheduled or running started
  std::int64_t loads_ = 0;           // loads started
  PendingWork pending_;              // loads queued or running; waited for on destruction
  std::condition_variable flush_;    // wakes the flusher: a first background read, or stop
  bool stopping_ = false;            // set once by the destructor
  std::thread flusher_;              // FlushBackground; none when background_wait is zero
};

}  // namespace hotpath::cache
