// Hot standbys for reads, never serving what a reader must not see.
//
// Each standby gets a pool of its own. A monitor samples the primary's write position
// (pg_current_wal_insert_lsn) and each standby's replay position (pg_last_wal_replay_lsn) every
// check_interval, each server from a thread of its own (one that stops answering delays no
// other's samples); a standby's lag is how long ago the primary first wrote past what the standby
// has replayed (so an idle pair lags 0, however old its last transaction). A standby is used only
// while it is reachable, in recovery and lagging at most max_lag, counting the age of the
// primary's last sample in.
//
// A read asks For(position): a standby known to have replayed at least position, else null (the
// caller reads the primary). Positions come from two places: the client's own writes
// (rpc::Consistency: read-your-writes), and floors kept here, so a cache refilled after an
// invalidation never reads a standby that has not replayed the write that invalidated it. Floors
// are per key (an item id) for the writes this process learns of, with one floor for everything
// past a bounded number of keys and for what has no key (a list page depends on every write).
//
// After a failover (primary_url naming several hosts, target_session_attrs=read-write, and a
// standby promoted) the monitor samples the new primary, whose positions start behind the old
// one's last: lags are measured against the new primary's history from then on. Floors and
// positions from the old primary's last writes (which the new one may never have had) keep their
// reads on the primary until it passes them.
//
// Positions are WAL insert positions (pg_current_wal_insert_lsn), taken after the commit: past
// the commit record. pg_current_wal_lsn, the position written so far, may still be before it
// with asynchronous commit, and a standby that replayed up to it would not show the write.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "server/db/pg_pool.h"

namespace hotpath::db {

// The primary's WAL insert position now, on connection: past the commit record of every
// transaction that has finished (see above for why not pg_current_wal_lsn). Throws as libpqxx
// does.
std::uint64_t WalInsertPosition(pqxx::connection& connection);

struct ReadReplicasOptions {
  // The primary, whose write position the monitor samples.
  std::string primary_url;
  // One libpq connection string or URL per standby.
  std::vector<std::string> standby_urls;
  // Each standby's pool, as the primary's (its database_url is replaced by the standby's).
  PgPoolOptions pool;
  // A standby further behind than this is not read. Default 1 s.
  absl::Duration max_lag = absl::Seconds(1);
  // How often positions are sampled. Default 20 ms.
  absl::Duration check_interval = absl::Milliseconds(20);
  // Keys with a floor of their own; past it the oldest fold into the floor of every key.
  std::size_t max_keys = 100000;
};

struct StandbyStats {
  bool usable = false;              // reads go to it
  std::uint64_t replayed = 0;       // its replay position at the last sample
  absl::Duration lag;               // at the last sample (InfiniteDuration when unknown)
  std::int64_t reads = 0;           // reads sent to it
  std::optional<PgPoolStats> pool;  // its pool's, once the monitor has made it
};

struct ReadReplicasStats {
  std::vector<StandbyStats> standbys;  // in the order of standby_urls
  std::int64_t primary_reads = 0;      // reads that found no standby far enough along
  std::int64_t primary_changes = 0;    // samples that found the primary behind its last one
  std::uint64_t written = 0;           // the primary's write position at the last sample
};

class ReadReplicas final {
 public:
  // Starts the monitor; standbys that cannot be reached yet are retried by it (and not read).
  explicit ReadReplicas(ReadReplicasOptions options);
  ~ReadReplicas();
  ReadReplicas(const ReadReplicas&) = delete;
  ReadReplicas& operator=(const ReadReplicas&) = delete;

  // Stops the monitor, closes the standbys' pools. Reads after it go to the primary.
  void Stop();

  // The pool of a usable standby that has replayed at least position (round robin among them),
  // or null: read the primary. Counts the read either way.
  PgPool* For(std::uint64_t position);
  // For a read that must stay on pool (a standby For returned before): pool while it is usable
  // and has replayed at least position, else null (read the primary), as for any pool that is
  // not one of the standbys'. Counts the read either way.
  PgPool* On(PgPool* pool, std::uint64_t position);
  // A read For chose (pool, null: the primary) did not go there after all (its caller found no
  // connection free at once and reads the usual way, which chooses again): uncounted.
  void Unread(PgPool* pool);

  // A write at position changed the rows of keys / rows of any key: reads of them must include it.
  void Wrote(std::uint64_t position, const std::vector<std::int64_t>& keys);
  void WroteAll(std::uint64_t position);
  // A write committed (or may have) at a position not known: until the monitor's next sample of
  // the primary (which is past it), every read goes to the primary.
  void WroteUnknown();
  // What a read of keys must include; of rows of any key (a list, a search).
  std::uint64_t FloorOf(const std::vector<std::int64_t>& keys) const;
  std::uint64_t FloorOfAll() const;

  // Waits (at most timeout) until a sample shows every standby usable: for tests and start-up.
  bool WaitUsable(absl::Duration timeout);

  ReadReplicasStats stats() const;
  const ReadReplicasOptions& options() const { return options_; }

 private:
  struct Standby {
    std::string url;
    std::unique_ptr<PgPool> pool;             // set once by the monitor
    std::atomic<PgPool*> published{nullptr};  // pool, once it exists
    std::atomic<bool> usable{false};          // reads may go to it
    std::atomic<std::uint64_t> replayed{0};   // replay position at the last sample
    std::atomic<std::int64_t> lag_us{-1};     // -1: unknown
    std::atomic<std::int64_t> reads{0};
  };
  // The samplers' loops, one thread each: the primary's write position, a standby's replay
  // position (and from them its lag), every check_interval; connections (re)opened as needed.
  void SamplePrimary();
  void SampleStandby(Standby& standby);
  // Waits check_interval; false once stopping.
  bool Pause();
  // With floors_mu_ held: drops keys every usable standby has passed, and the oldest past max_keys.
  void PruneLocked(std::uint64_t passed_by_all);

  const ReadReplicasOptions options_;
  std::vector<std::unique_ptr<Standby>> standbys_;
  std::atomic<std::size_t> next_{0};  // round robin
  std::atomic<std::int64_t> primary_reads_{0};
  std::atomic<std::int64_t> primary_changes_{0};
  std::atomic<std::uint64_t> written_{0};
  std::mutex history_mu_;  // guards history_ and primary_sampled_
  // When the primary first showed each position, over the last max_lag + 1 s.
  std::deque<std::pair<absl::Time, std::uint64_t>> history_;
  absl::Time primary_sampled_ = absl::InfinitePast();  // its last sample; past: failed

  mutable std::mutex floors_mu_;                               // guards the floors below
  std::unordered_map<std::int64_t, std::uint64_t> key_floor_;  // per key
  std::deque<std::pair<std::uint64_t, std::int64_t>> order_;   // (position, key) as raised
  std::uint64_t every_key_ = 0;                                // floor of every key
  std::uint64_t any_write_ = 0;                                // the latest write of any key
  std::int64_t unknown_marks_ = 0;                             // WroteUnknown calls
  std::int64_t resolved_marks_ = 0;  // of which a later sample of the primary covers

  std::mutex mu_;                 // guards stopping_
  std::condition_variable wake_;  // Stop, and each standby's sample
  bool stopping_ = false;
  std::vector<std::thread> samplers_;  // the primary's, then one per standby
};

}  // namespace hotpath::db
