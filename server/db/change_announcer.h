// Announces this process's committed writes to the other replicas' change feeds (change_feed.h),
// many writes per NOTIFY. A NOTIFY in the write's own transaction takes PostgreSQL's notify lock
// at commit, which serialises every notifying commit: at 64 connections it cost REST creates 44%
// of their throughput (bench/NOTES.md "Cache coherence across replicas"). Here a write is
// announced after it committed, batched with whatever else committed meanwhile, from one
// connection of its own: the lock is taken once per batch.
//
// The writes it announces must not also be announced by the tables' triggers: the pool's
// connections set kSessionSetting, which the triggers skip (migration 0004_announced_writes).
// The price: a process killed between a write's commit and its announcement (at most the time one
// batch takes, milliseconds) leaves the other replicas' caches holding the old row until their
// TTL.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace hotpath::db {

struct ChangeAnnouncerOptions {
  // libpq connection string or URL of the primary.
  std::string database_url;
  // Longest a connection may take to open. Default 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Least time between two batches: what committed meanwhile waits and goes in the next one.
  // Every NOTIFY wakes each listening backend and replica; sent per write, that costs more CPU
  // than the writes on a small machine. Adds at most this to the staleness. Default 5 ms.
  absl::Duration min_interval = absl::Milliseconds(5);
  // Wait before reconnecting after a failure. Default 100 ms.
  absl::Duration backoff = absl::Milliseconds(100);
};

struct ChangeAnnouncerStats {
  std::int64_t announced = 0;  // Announce calls sent on
  std::int64_t batches = 0;    // NOTIFY transactions that sent them
  std::int64_t errors = 0;     // batches that failed (sent again once reconnected)
};

class ChangeAnnouncer final {
 public:
  // SET on the connections whose writes this announcer announces; the triggers skip them.
  static constexpr char kSessionSetting[] = "SET hotpath.announced = on";
  // The announcer's connection's application_name.
  static constexpr char kApplicationName[] = "hotpath-announcer";
  // Largest payload sent: PostgreSQL refuses 8000 bytes or more. Past it a batch is "*".
  static constexpr std::size_t kMaxPayload = 7900;

  explicit ChangeAnnouncer(ChangeAnnouncerOptions options);
  ~ChangeAnnouncer();
  ChangeAnnouncer(const ChangeAnnouncer&) = delete;
  ChangeAnnouncer& operator=(const ChangeAnnouncer&) = delete;

  void Start();
  // Sends what is pending, then stops.
  void Stop();

  // After a write committed: payload goes out on channel with the next batch, joined with the
  // others by commas ("*" stays "*" and absorbs the rest). Never blocks on the database.
  void Announce(std::string_view channel, std::string_view payload);

  // The backend process id of the announcer's connection (0 while it has none): a change feed
  // skips what it sent, as it skips the pool's.
  int backend_pid() const;
  ChangeAnnouncerStats stats() const;

 private:
  void Run();
  static void Merge(std::string& batch, std::string_view payload);

  const ChangeAnnouncerOptions options_;        // as given
  mutable std::mutex mu_;                       // guards the below
  std::condition_variable wake_;                // something pending, or stop
  std::map<std::string, std::string> pending_;  // channel -> payload of the next batch
  std::int64_t pending_count_ = 0;              // Announce calls in pending_
  bool stop_ = false;                           // Stop was called
  int backend_pid_ = 0;                         // see backend_pid()
  ChangeAnnouncerStats stats_;                  // see stats()
  std::thread thread_;                          // runs Run
};

}  // namespace hotpath::db
