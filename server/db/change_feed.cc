#include "server/db/change_feed.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <pqxx/pqxx>

#include "absl/time/clock.h"
#include "server/app/named_thread.h"
#include "server/db/answer_watch.h"
#include "server/db/host_order.h"
#include "server/db/pg_pool.h"
#include "server/db/read_replicas.h"

namespace hotpath::db {

// Hands one channel's notifications to its subscriber. Creating it sends LISTEN.
class ChangeFeed::Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& connection, const ChangeSubscription& subscription,
           ChangeFeed* feed)
      : pqxx::notification_receiver(connection, subscription.channel),
        subscription_(subscription),
        feed_(feed) {}

  void operator()(const std::string& payload, int backend_pid) override {
    const bool own = feed_->options_.own_backend && feed_->options_.own_backend(backend_pid);
    {
      std::lock_guard lock(feed_->mu_);
      ++(own ? feed_->stats_.own_writes : feed_->stats_.notifications);
      feed_->stats_.last_notification = absl::Now();
    }
    // Handed on once the batch is in and its position known (Deliver).
    if (!own) feed_->pending_.emplace_back(&subscription_, payload);
  }

 private:
  const ChangeSubscription& subscription_;  // whom to tell
  ChangeFeed* feed_;                        // counts what was handed on
};

ChangeFeed::ChangeFeed(ChangeFeedOptions options, std::vector<ChangeSubscription> subscriptions)
    : options_(std::move(options)), subscriptions_(std::move(subscriptions)) {}

ChangeFeed::~ChangeFeed() { Stop(); }

bool ChangeFeed::Start(absl::Duration wait_for) {
  // Until the first LISTEN, nothing that was cached can be trusted.
  for (const auto& subscription : subscriptions_) subscription.on_lost(options_.max_staleness);
  thread_ = app::NamedThread("hotpath-changes", [this] { Run(); });
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoNanoseconds(wait_for),
                           [this] { return stats_.connected; });
}

void ChangeFeed::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_.store(true);
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ChangeFeedStats ChangeFeed::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ChangeFeed::SetConnected(bool connected) {
  {
    std::lock_guard lock(mu_);
    if (stats_.connected == connected) return;
    stats_.connected = connected;
    ++(connected ? stats_.restores : stats_.losses);
  }
  changed_.notify_all();
  for (const auto& subscription : subscriptions_) {
    connected ? subscription.on_restored() : subscription.on_lost(options_.max_staleness);
  }
}

void ChangeFeed::Run() {
  absl::Duration backoff = options_.backoff;
  while (!stopping_.load()) {
    const absl::Time began = absl::Now();
    Listen();
    SetConnected(false);
    // A connection that lived a while earns a fresh backoff; one that failed at once, a longer one.
    backoff = absl::Now() - began > options_.max_backoff
                  ? options_.backoff
                  : std::min(backoff * 2, options_.max_backoff);
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, absl::ToChronoNanoseconds(backoff),
                      [this] { return stopping_.load(); });
  }
}

void ChangeFeed::Deliver(pqxx::connection& connection) {
  if (pending_.empty()) return;
  // The batch is what was received before the position is asked for, so the position is past
  // every commit in it; what arrives with the answer waits for the next round.
  std::vector<std::pair<const ChangeSubscription*, std::string>> batch;
  batch.swap(pending_);
  std::uint64_t position = 0;
  if (options_.positions) {
    const Watched watched(connection.sock(), options_.connect_timeout);
    position = WalInsertPosition(connection);
  }
  for (const auto& [subscription, payload] : batch) subscription->on_change(payload, position);
}

void ChangeFeed::Listen() {
  const absl::Duration interval = options_.check_interval;
  const long seconds = static_cast<long>(absl::ToInt64Seconds(interval));
  const long micros =
      static_cast<long>(absl::ToInt64Microseconds(interval - absl::Seconds(seconds)));
  try {
    const std::unique_ptr<pqxx::connection> opened =
        Connect(options_.database_url, options_.connect_timeout, kApplicationName);
    pqxx::connection& connection = *opened;
    const HostOrder& hosts = HostOrder::For(options_.database_url);
    // A lost connection must surface as an error, not be reopened behind the feed's back (libpqxx
    // would LISTEN again, but what was sent in between would be missed unannounced).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    connection.inhibit_reactivation(true);
#pragma GCC diagnostic pop
    std::vector<std::unique_ptr<Receiver>> receivers;
    {
      const Watched watched(connection.sock(), options_.connect_timeout);
      for (const auto& subscription : subscriptions_) {
        receivers.push_back(std::make_unique<Receiver>(connection, subscription, this));
      }
      // LISTEN is in effect once this round trip returns: from here on nothing is missed.
      pqxx::nontransaction(connection).exec("SELECT 1");
    }
    SetConnected(true);
    while (!stopping_.load()) {
      if (connection.await_notification(seconds, micros) == 0) {
        // Still there? A server that does not answer is as lost as one that hung up.
        const Watched watched(connection.sock(), options_.connect_timeout);
        pqxx::nontransaction(connection).exec("SELECT 1");
        connection.get_notifs();  // what arrived with the answer
      }
      Deliver(connection);
      // A primary that stopped taking writes (fenced for a switchover) hears of none: the feed
      // goes where they go, and counts as reconnecting until it is there.
      if (!hosts.Keeps(connection)) {
        throw pqxx::broken_connection("the server no longer takes writes");
      }
    }
  } catch (const std::exception& e) {
    if (!stopping_.load()) {
      std::cerr << "change feed: " << ErrorText(e) << "; reconnecting\n";
    }
  }
}

}  // namespace hotpath::db
