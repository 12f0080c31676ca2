#include "server/db/change_announcer.h"

#include <iostream>
#include <memory>
#include <pqxx/pqxx>

#include "server/app/named_thread.h"
#include "server/db/answer_watch.h"
#include "server/db/host_order.h"
#include "server/db/pg_pool.h"

namespace hotpath::db {

ChangeAnnouncer::ChangeAnnouncer(ChangeAnnouncerOptions options) : options_(std::move(options)) {}

ChangeAnnouncer::~ChangeAnnouncer() { Stop(); }

void ChangeAnnouncer::Start() {
  thread_ = app::NamedThread("hotpath-announce", [this] { Run(); });
}

void ChangeAnnouncer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// Adds payload to a batch: comma-joined, or "*" once either is "*" or the joined text would pass
// kMaxPayload.
void ChangeAnnouncer::Merge(std::string& batch, std::string_view payload) {
  if (batch == "*") return;
  if (payload == "*" || batch.size() + payload.size() + 1 > kMaxPayload) {
    batch.clear();  // (batch = "*" trips g++ 12's -Wrestrict false positive here)
    batch.push_back('*');
    return;
  }
  if (!batch.empty()) batch += ',';
  batch.append(payload);
}

void ChangeAnnouncer::Announce(std::string_view channel, std::string_view payload) {
  {
    std::lock_guard lock(mu_);
    Merge(pending_[std::string(channel)], payload);
    ++pending_count_;
  }
  wake_.notify_one();
}

int ChangeAnnouncer::backend_pid() const {
  std::lock_guard lock(mu_);
  return backend_pid_;
}

ChangeAnnouncerStats ChangeAnnouncer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ChangeAnnouncer::Run() {
  std::unique_ptr<pqxx::connection> connection;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping, nothing left to send
    std::map<std::string, std::string> batch;
    batch.swap(pending_);
    const std::int64_t count = std::exchange(pending_count_, 0);
    const bool stopping = stop_;
    lock.unlock();
    bool sent = false;
    try {
      // Announced where the writes are: not on a primary that stopped taking them (fenced).
      if (connection != nullptr && !HostOrder::For(options_.database_url).Keeps(*connection)) {
        connection.reset();
      }
      if (connection == nullptr) {
        connection = Connect(options_.database_url, options_.connect_timeout, kApplicationName);
        const int pid = connection->backendpid();
        std::lock_guard pid_lock(mu_);
        backend_pid_ = pid;
      }
      // A server that does not answer is as lost as one that hung up.
      const Watched watched(connection->sock(), options_.connect_timeout);
      pqxx::nontransaction work(*connection);
      for (const auto& [channel, payload] : batch) {
        work.exec_params("SELECT pg_notify($1, $2)", channel, payload);
      }
      sent = true;
    } catch (const std::exception& e) {
      std::cerr << "change announcer: " << ErrorText(e) << "\n";
      connection.reset();
    }
    lock.lock();
    if (sent) {
      stats_.announced += count;
      ++stats_.batches;
      if (!stop_) {
        wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.min_interval),
                       [this] { return stop_; });
      }
      continue;
    }
    ++stats_.errors;
    backend_pid_ = 0;
    // Not sent: put it back with whatever came meanwhile, and try again shortly.
    for (const auto& [channel, payload] : batch) Merge(pending_[channel], payload);
    pending_count_ += count;
    if (stopping) return;  // the database is gone; nobody is left to tell
    wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.backoff), [this] { return stop_; });
  }
}

}  // namespace hotpath::db
