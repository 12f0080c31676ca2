#include "server/db/read_replicas.h"

#include <algorithm>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <utility>

#include "absl/time/clock.h"
#include "server/app/named_thread.h"
#include "server/db/answer_watch.h"
#include "server/db/host_order.h"
#include "server/rpc/consistency.h"

namespace hotpath::db {
namespace {

constexpr char kMonitorName[] = "hotpath-read-monitor";

// A position as PostgreSQL writes it, or nullopt for NULL.
std::optional<std::uint64_t> Position(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return rpc::Consistency::Parse(field.c_str());
}

}  // namespace

std::uint64_t WalInsertPosition(pqxx::connection& connection) {
  return rpc::Consistency::Parse(
      pqxx::nontransaction(connection).exec1("SELECT pg_current_wal_insert_lsn()")[0].c_str());
}

ReadReplicas::ReadReplicas(ReadReplicasOptions options) : options_(std::move(options)) {
  for (const std::string& url : options_.standby_urls) {
    auto standby = std::make_unique<Standby>();
    standby->url = url;
    standbys_.push_back(std::move(standby));
  }
  // One sampler per server, so that one that stops answering (each of its round trips waits out
  // its bound) delays no other's samples.
  samplers_.push_back(app::NamedThread("hotpath-replicas", [this] { SamplePrimary(); }));
  for (std::size_t i = 0; i < standbys_.size(); ++i) {
    samplers_.push_back(
        app::NamedThread("hotpath-standby", [this, i] { SampleStandby(*standbys_[i]); }));
  }
}

ReadReplicas::~ReadReplicas() { Stop(); }

void ReadReplicas::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& sampler : samplers_) sampler.join();
  for (auto& standby : standbys_) {
    standby->usable = false;
    if (standby->pool != nullptr) standby->pool->Close();
  }
}

bool ReadReplicas::Pause() {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.check_interval),
                 [this] { return stopping_; });
  return !stopping_;
}

void ReadReplicas::SamplePrimary() {
  const absl::Duration connect = std::min(options_.pool.connect_timeout, absl::Seconds(2));
  std::unique_ptr<pqxx::connection> primary;
  do {
    std::int64_t marks = 0;  // writes at unknown positions before this sample
    {
      std::lock_guard lock(floors_mu_);
      marks = unknown_marks_;
    }
    std::optional<std::uint64_t> written;
    try {
      if (primary == nullptr) primary = Connect(options_.primary_url, connect, kMonitorName);
      // A server that does not answer is as lost as one that hung up (db/answer_watch.h).
      const Watched watched(primary->sock(), connect);
      written = WalInsertPosition(*primary);
      // A primary that stopped taking writes (fenced for a switchover) is left for the one that
      // takes them, measured from the next sample.
      if (!HostOrder::For(options_.primary_url).Keeps(*primary)) primary.reset();
    } catch (const std::exception& e) {
      primary.reset();
    }
    const absl::Time now = absl::Now();
    {
      std::lock_guard lock(history_mu_);
      primary_sampled_ = written.has_value() ? now : absl::InfinitePast();
      if (written.has_value()) {
        written_ = *written;
        // Behind a position the primary already showed: another server is the primary now (a
        // standby promoted after a failover, on a timeline of its own that forked before the old
        // primary's last writes). What the old one wrote when says nothing of how far behind a
        // standby of the new one is: its history starts again, or every standby behind the new
        // primary would count as further behind than the bound until the new one passed the old
        // one's last position.
        if (!history_.empty() && *written < history_.back().second) {
          history_.clear();
          primary_changes_.fetch_add(1, std::memory_order_relaxed);
        }
        if (history_.empty() || history_.back().second < *written) {
          history_.emplace_back(now, *written);
        }
        while (history_.size() > 1 &&
               now - history_[1].first > options_.max_lag + absl::Seconds(1)) {
          history_.pop_front();
        }
      }
    }
    std::optional<std::uint64_t> passed_by_all;
    for (const auto& standby : standbys_) {
      if (!standby->usable.load()) continue;
      const std::uint64_t replayed = standby->replayed.load();
      passed_by_all = std::min(passed_by_all.value_or(replayed), replayed);
    }
    std::lock_guard lock(floors_mu_);
    if (written.has_value() && marks > resolved_marks_) {
      every_key_ = std::max(every_key_, *written);
      any_write_ = std::max(any_write_, *written);
      resolved_marks_ = marks;
    }
    PruneLocked(passed_by_all.value_or(0));
  } while (Pause());
}

void ReadReplicas::SampleStandby(Standby& standby) {
  const absl::Duration connect = std::min(options_.pool.connect_timeout, absl::Seconds(2));
  std::unique_ptr<pqxx::connection> monitor;
  do {
    if (standby.pool == nullptr) {
      PgPoolOptions pool = options_.pool;
      pool.database_url = standby.url;
      pool.min_size = std::min(pool.min_size, 1);
      pool.connect_timeout = connect;
      if (auto created = PgPool::Create(std::move(pool)); created.ok()) {
        standby.pool = *std::move(created);
        standby.published = standby.pool.get();
      }
    }
    std::optional<std::uint64_t> replayed;
    bool in_recovery = false;
    try {
      if (monitor == nullptr) monitor = Connect(standby.url, connect, kMonitorName);
      const Watched watched(monitor->sock(), connect);
      const pqxx::row row = pqxx::nontransaction(*monitor).exec1(
          "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()");
      in_recovery = row[0].as<bool>();
      replayed = Position(row[1]);
    } catch (const std::exception& e) {
      monitor.reset();
    }
    const absl::Time now = absl::Now();
    // Lag: how long ago the primary first wrote past what the standby has replayed, as far as
    // the primary's samples tell; they are as old as its last one, which counts against the
    // bound too (a primary that stops answering leaves no standby usable for long).
    std::optional<absl::Duration> lag;
    absl::Duration unseen;  // since the primary's last sample
    if (replayed.has_value() && in_recovery) {
      std::lock_guard lock(history_mu_);
      unseen = now - primary_sampled_;
      if (!history_.empty() && *replayed >= history_.back().second) {
        lag = absl::ZeroDuration();
      } else if (!history_.empty()) {
        const auto ahead = std::find_if(history_.begin(), history_.end(), [&](const auto& sample) {
          return sample.second > *replayed;
        });
        // Behind the oldest sample kept: further behind than the bound.
        if (ahead != history_.begin() && ahead != history_.end()) lag = now - ahead->first;
      }
    }
    if (replayed.has_value()) standby.replayed = *replayed;
    standby.lag_us = lag.has_value() ? absl::ToInt64Microseconds(*lag) : -1;
    const PgPool* pool = standby.published.load();
    standby.usable = lag.has_value() && *lag + unseen <= options_.max_lag && pool != nullptr &&
                     !pool->stats().down;
    wake_.notify_all();  // WaitUsable
  } while (Pause());
}

void ReadReplicas::PruneLocked(std::uint64_t passed_by_all) {
  while (!order_.empty() &&
         (order_.front().first <= passed_by_all || key_floor_.size() > options_.max_keys)) {
    const auto [position, key] = order_.front();
    order_.pop_front();
    // Whatever comes back later (a standby that was down) must have passed it too.
    every_key_ = std::max(every_key_, position);
    if (auto it = key_floor_.find(key); it != key_floor_.end() && it->second <= position) {
      key_floor_.erase(it);
    }
  }
}

PgPool* ReadReplicas::For(std::uint64_t position) {
  const std::size_t n = standbys_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    Standby& standby = *standbys_[(start + i) % n];
    if (!standby.usable.load() || standby.replayed.load() < position) continue;
    if (PgPool* pool = standby.published.load(); pool != nullptr) {
      standby.reads.fetch_add(1, std::memory_order_relaxed);
      return pool;
    }
  }
  primary_reads_.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

PgPool* ReadReplicas::On(PgPool* pool, std::uint64_t position) {
  for (const auto& standby : standbys_) {
    if (pool == nullptr || standby->published.load() != pool) continue;
    if (!standby->usable.load() || standby->replayed.load() < position) break;
    standby->reads.fetch_add(1, std::memory_order_relaxed);
    return pool;
  }
  primary_reads_.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

void ReadReplicas::Unread(PgPool* pool) {
  if (pool == nullptr) {
    primary_reads_.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  for (const auto& standby : standbys_) {
    if (standby->published.load() == pool) {
      standby->reads.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
}

void ReadReplicas::Wrote(std::uint64_t position, const std::vector<std::int64_t>& keys) {
  std::lock_guard lock(floors_mu_);
  any_write_ = std::max(any_write_, position);
  for (const std::int64_t key : keys) {
    std::uint64_t& floor = key_floor_[key];
    floor = std::max(floor, position);
    order_.emplace_back(position, key);
  }
  if (key_floor_.size() > options_.max_keys) PruneLocked(0);
}

void ReadReplicas::WroteAll(std::uint64_t position) {
  std::lock_guard lock(floors_mu_);
  any_write_ = std::max(any_write_, position);
  every_key_ = std::max(every_key_, position);
}

void ReadReplicas::WroteUnknown() {
  std::lock_guard lock(floors_mu_);
  ++unknown_marks_;
}

std::uint64_t ReadReplicas::FloorOf(const std::vector<std::int64_t>& keys) const {
  std::lock_guard lock(floors_mu_);
  if (unknown_marks_ > resolved_marks_) return UINT64_MAX;
  std::uint64_t floor = every_key_;
  for (const std::int64_t key : keys) {
    if (auto it = key_floor_.find(key); it != key_floor_.end()) floor = std::max(floor, it->second);
  }
  return floor;
}

std::uint64_t ReadReplicas::FloorOfAll() const {
  std::lock_guard lock(floors_mu_);
  if (unknown_marks_ > resolved_marks_) return UINT64_MAX;
  return std::max(any_write_, every_key_);
}

bool ReadReplicas::WaitUsable(absl::Duration timeout) {
  const auto all_usable = [this] {
    return std::all_of(standbys_.begin(), standbys_.end(),
                       [](const auto& standby) { return standby->usable.load(); });
  };
  std::unique_lock lock(mu_);
  return wake_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    return stopping_ || all_usable();
  }) && !stopping_;
}

ReadReplicasStats ReadReplicas::stats() const {
  ReadReplicasStats stats;
  for (const auto& standby : standbys_) {
    StandbyStats s;
    s.usable = standby->usable.load();
    s.replayed = standby->replayed.load();
    const std::int64_t lag_us = standby->lag_us.load();
    s.lag = lag_us < 0 ? absl::InfiniteDuration() : absl::Microseconds(lag_us);
    s.reads = standby->reads.load();
    if (const PgPool* pool = standby->published.load()) s.pool = pool->stats();
    stats.standbys.push_back(s);
  }
  stats.primary_reads = primary_reads_.load();
  stats.primary_changes = primary_changes_.load();
  stats.written = written_.load();
  return stats;
}

}  // namespace hotpath::db
