// A prepared statement run from an event loop without blocking it: sent on a pooled connection
// with libpq's non-blocking calls, its rows read when the connection's socket turns readable, and
// answered on the same loop. For reads that must not cost a thread switch each way (a batch of
// point reads started by the loop whose request missed the cache): no executor thread is woken to
// run the statement and no loop waits for one to hand the answer back.
//
// What it does not do, the caller's blocking path does (db/with_connection.h): open connections,
// set statement_timeout (the lease's must already fit the deadline, PgLease::TimeoutFits), retry on
// a stale connection. A caller starts one when PgPool::TryAcquire has an idle connection whose
// timeout fits, and otherwise, or when it fails UNAVAILABLE, runs the statement the blocking way.
#pragma once

#include <libpq-fe.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/db/pg_pool.h"

namespace hotpath::db {

// The rows of one result as PostgreSQL printed them (text format). Owns libpq's result.
class PgRows final {
 public:
  explicit PgRows(PGresult* result) : result_(result) {}

  int size() const { return PQntuples(result_.get()); }
  // The field's text ("" for NULL); valid while this lives.
  std::string_view Text(int row, int column) const {
    return {PQgetvalue(result_.get(), row, column),
            static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
  }
  bool IsNull(int row, int column) const { return PQgetisnull(result_.get(), row, column) != 0; }

 private:
  struct Clear {
    void operator()(PGresult* result) const { PQclear(result); }
  };
  std::unique_ptr<PGresult, Clear> result_;  // libpq's result
};

using LoopQueryDone = absl::AnyInvocable<void(absl::StatusOr<PgRows>) &&>;

// Runs the prepared statement named statement with params (text) on lease's connection; done runs
// once, on loop, with its rows or a status as db::StatusFromException gives for the same failure
// (what names the work: "reading items"). UNAVAILABLE when the connection was lost (it is then
// discarded, not pooled) or the loop stopped first; DEADLINE_EXCEEDED when PostgreSQL has not
// answered by deadline (statement_timeout normally stops the statement just before). Must be
// called on loop's thread.
void StartLoopQuery(boost::asio::io_context& loop, PgLease lease, const char* what,
                    const char* statement, std::vector<std::string> params, absl::Time deadline,
                    LoopQueryDone done);

}  // namespace hotpath::db
