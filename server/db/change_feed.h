// Changes committed to the database, as PostgreSQL's LISTEN/NOTIFY delivers them: one dedicated
// connection to the primary LISTENs on each subscribed channel and hands every notification's
// payload to its subscriber, in commit order, on the feed's own thread.
//
// A listener that is not connected misses notifications for good, so the feed tells subscribers
// when it is down (on_lost: stop trusting what the notifications kept fresh) and when it is back
// (on_restored: drop everything, then trust again). It starts down, and checks a silent connection
// with a round trip every check_interval, so a connection that died quietly is noticed within that;
// a round trip not answered within connect_timeout (and db::kAnswerGrace) loses the connection too.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <pqxx/connection>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace hotpath::db {

struct ChangeSubscription {
  // The NOTIFY channel, e.g. "hotpath_catalog_items".
  std::string channel;
  // Each notification's payload, and the primary's write position once it was received (past the
  // commit that sent it; 0 unless ChangeFeedOptions::positions). On the feed's thread; must not
  // block for long.
  std::function<void(std::string_view payload, std::uint64_t position)> on_change;
  // The feed went down: notifications may be missed from now on. What was cached may be served
  // for max_staleness (ChangeFeedOptions) after it was loaded, no longer.
  std::function<void(absl::Duration max_staleness)> on_lost;
  // The feed is listening again; whatever happened while it was down was missed.
  std::function<void()> on_restored;
};

struct ChangeFeedOptions {
  // libpq connection string or URL of the primary (where NOTIFY is sent from).
  std::string database_url;
  // Longest a connection may take to open. Default 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // A connection silent this long is checked with a round trip. Default 250 ms.
  absl::Duration check_interval = absl::Milliseconds(250);
  // While the feed is down, how old a cached entry may be and still be served: the staleness
  // bound of a replica that cannot hear about changes. Default 1 s.
  absl::Duration max_staleness = absl::Seconds(1);
  // Wait before reconnecting; doubles after each failure up to max_backoff. Default 100 ms, 2 s.
  absl::Duration backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // Whether a notification's sending backend is one of this process's own connections: its writes
  // invalidated this process's caches before they were answered, so their echo is skipped (and
  // cannot clear pages again a moment later). Null: every notification is handed on.
  std::function<bool(int backend_pid)> own_backend;
  // Whether to ask the primary its write position (one round trip) after each batch of
  // notifications and hand it with them: reads that refill a cache from a standby must include
  // it (read_replicas.h).
  bool positions = false;
};

struct ChangeFeedStats {
  bool connected = false;          // listening now
  std::int64_t notifications = 0;  // payloads handed to subscribers (writes made elsewhere)
  std::int64_t own_writes = 0;     // notifications of this process's own writes, skipped
  std::int64_t restores = 0;       // times the feed came (back) up: subscribers dropped all
  std::int64_t losses = 0;         // times it went down
  absl::Time last_notification = absl::InfinitePast();  // when the last payload arrived
};

class ChangeFeed final {
 public:
  // The feed's connection's application_name (pg_stat_activity).
  static constexpr char kApplicationName[] = "hotpath-change-feed";

  ChangeFeed(ChangeFeedOptions options, std::vector<ChangeSubscription> subscriptions);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Starts the feed's thread; waits up to wait_for for it to be listening. False if it is not yet
  // (it keeps trying; subscribers were told it is down).
  bool Start(absl::Duration wait_for);
  // Stops listening and joins the thread (within check_interval).
  void Stop();

  ChangeFeedStats stats() const;

 private:
  class Receiver;

  void Run();
  // One connection's life: LISTEN, then hand on notifications until it fails or Stop.
  void Listen();
  // Hands the notifications received so far to their subscribers, with the position if asked.
  void Deliver(pqxx::connection& connection);
  void SetConnected(bool connected);

  const ChangeFeedOptions options_;                      // as given
  const std::vector<ChangeSubscription> subscriptions_;  // who is told what
  // Received, not yet handed on (the feed's thread only).
  std::vector<std::pair<const ChangeSubscription*, std::string>> pending_;
  std::thread thread_;                 // runs Run
  std::atomic<bool> stopping_{false};  // Stop was called
  mutable std::mutex mu_;              // guards the below
  std::condition_variable changed_;    // connected_ or stopping_ changed
  ChangeFeedStats stats_;              // stats()
};

}  // namespace hotpath::db
