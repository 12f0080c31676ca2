// The order in which new connections try the hosts of a multi-host database URL.
//
// libpq's multi-host form ("host=db1,db2 port=5432,5432 target_session_attrs=read-write", or
// "postgresql://db1:5432,db2:5432/catalog?target_session_attrs=read-write") names a primary and
// the standbys that may replace it, and libpq tries the hosts in the order given on every
// connection it opens. After a failover that order is wrong twice over:
// - the old primary, started again as a primary (nobody fenced it), takes every connection opened
//   from then on while those already open stay on the new one: one process writing to two
//   primaries, each holding writes the other lacks;
// - a host that no longer answers at all (its machine gone, its packets dropped) costs
//   connect_timeout (2 s at least) on every connection opened, for as long as it is listed first.
// So new connections start at the host the last one reached, the others following in the given
// order (a host that fails is still passed over by libpq, as before): the pool, the change feed,
// the announcer and the replica monitor stay together on the primary they last found, and a host
// that does not answer is waited for once, not once per connection (pgjdbc tracks its hosts the
// same way). A single-host URL is used as it is.
//
// A process that starts after the failover has reached no host yet. When its URL asks for a
// primary (target_session_attrs=read-write or primary), its first connection asks every host at
// once which accepts writes and on which timeline, and starts at the one on the latest: a
// promoted standby's timeline is its old primary's plus one, so an old primary started again
// loses to the standby that replaced it, wherever the URL lists it.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <pqxx/connection>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hotpath::db {

class HostOrder final {
 public:
  // The order for url (a URL or keyword/value string), shared by every connection this process
  // opens to it; made on first use, kept for the process's life. Thread-safe.
  static HostOrder& For(const std::string& url);

  // Parses url; a string libpq cannot parse is used as it is (its connect then reports why).
  explicit HostOrder(std::string url);

  // url with its hosts starting at the one a connection last reached: url itself until one has
  // (or when it names one host); otherwise a keyword/value string with the same parameters.
  std::string Ordered() const;
  // Notes which of the hosts connection reached (nothing when it is none of them).
  void Reached(pqxx::connection& connection);
  // The same, for the host and port as libpq names them (PQhost, PQport): the host= entry, or the
  // hostaddr= one where the host has none.
  void Reached(absl::string_view host, absl::string_view port);
  // Which of the hosts, in the order given, new connections try first.
  int first() const { return first_.load(std::memory_order_relaxed); }
  // Whether a connection to url may stay open: the URL does not ask for a primary, or the server
  // still takes writes (TakesWrites). One that does not is to be closed; libpq passes its server
  // over when the next connection opens.
  bool Keeps(PGconn* connection) const { return !wants_primary_ || TakesWrites(connection); }
  bool Keeps(pqxx::connection& connection) const;

  // Whether connection's server takes writes as of its last answer: neither in hot standby nor
  // with default_transaction_read_only on, which PostgreSQL (14 and later) reports to libpq with
  // its answers when they change, so this asks nothing of the server. A primary fenced for a
  // switchover (ALTER SYSTEM SET default_transaction_read_only = on, then a reload) keeps its
  // connections open but stops taking writes; a session sees that from its second statement
  // after the reload.
  static bool TakesWrites(PGconn* connection);

  // Once per process, before the first connection, when the URL asks for a primary and names
  // several hosts: connects to each alone (at once, each within connect_timeout) and makes the
  // one that accepts writes on the latest timeline first. Later calls return at once.
  void Survey(absl::Duration connect_timeout);

 private:
  struct Parameter {
    std::string keyword;
    std::string value;
  };

  const std::string url_;               // as given
  std::vector<Parameter> parameters_;   // url's, but for the lists below
  std::vector<std::string> hosts_;      // host= entries, one per host ("" where only an address)
  std::vector<std::string> addresses_;  // hostaddr= entries: none, or one per host
  std::vector<std::string> ports_;      // port= entries: none, one for all, or one per host
  bool wants_primary_ = false;          // target_session_attrs is read-write or primary
  std::atomic<int> first_{0};           // index of the host tried first
  std::mutex survey_mu_;                // held while Survey runs
  std::atomic<bool> surveyed_{false};   // Survey has run (or had nothing to do)

  // A keyword/value string of the parameters with these lists (rotated, or one host's).
  std::string Conninfo(const std::vector<std::string>& hosts,
                       const std::vector<std::string>& addresses,
                       const std::vector<std::string>& ports) const;
};

// A connection to url, its hosts tried in HostOrder::For(url)'s order, with libpq's
// connect_timeout (whole seconds, at least 2) and, unless empty, application_name (what
// pg_stat_activity shows for it). Throws what libpqxx throws.
std::unique_ptr<pqxx::connection> Connect(const std::string& url, absl::Duration connect_timeout,
                                          absl::string_view application_name = "");

}  // namespace hotpath::db
