#include "server/db/loop_query.h"

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>
#include <pqxx/except>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/db/pg_status.h"

namespace hotpath::db {
namespace {

namespace asio = boost::asio;

// One statement in flight: owned by the handlers waiting on its socket and its timer.
class LoopQuery final : public std::enable_shared_from_this<LoopQuery> {
 public:
  LoopQuery(asio::io_context& loop, PgLease lease, const char* what, const char* statement,
            LoopQueryDone done)
      : connection_(lease.raw_connection()),
        socket_(loop),
        timer_(loop),
        lease_(std::move(lease)),
        what_(what),
        statement_(statement),
        done_(std::move(done)) {}

  ~LoopQuery() {
    // The socket is libpq's: only stop watching it.
    if (socket_.is_open()) socket_.release();
    if (!done_) return;
    // Destroyed unanswered: the loop stopped with the statement in flight, so the connection is
    // mid-statement and cannot be pooled.
    lease_.MarkBroken();
    std::move(done_)(absl::UnavailableError(
        absl::StrCat("event loop stopped while ", what_, "; the query was abandoned")));
  }

  void Start(const std::vector<std::string>& params, absl::Time deadline) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& param : params) values.push_back(param.c_str());
    if (PQsetnonblocking(connection_, 1) != 0 ||
        PQsendQueryPrepared(connection_, statement_, static_cast<int>(values.size()), values.data(),
                            nullptr, nullptr, 0) != 1) {
      return Fail();
    }
    boost::system::error_code error;
    socket_.assign(PQsocket(connection_), error);
    if (error) return Fail();
    // (Clamped: a deadline of InfiniteFuture would overflow the clock's arithmetic.)
    timer_.expires_after(absl::ToChronoNanoseconds(
        std::clamp(deadline - absl::Now(), absl::ZeroDuration(), absl::Hours(24))));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
      if (error == asio::error::operation_aborted || !self->done_) return;
      // PostgreSQL should have stopped the statement itself (statement_timeout) and said so: a
      // server that says nothing by now is not to be trusted with the connection.
      self->lease_.MarkBroken();
      self->Finish(absl::DeadlineExceededError(
          absl::StrCat("deadline exceeded while ", self->what_, ": the database did not answer")));
    });
    Flush();
  }

 private:
  // Sends what libpq still holds, then waits for the answer.
  void Flush() {
    const int flushed = PQflush(connection_);
    if (flushed < 0) return Fail();
    if (flushed > 0) {
      return socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                                [self = shared_from_this()](const boost::system::error_code& e) {
                                  if (!self->done_) return;
                                  if (e) return self->Fail();
                                  self->Flush();
                                });
    }
    WaitForAnswer();
  }

  void WaitForAnswer() {
    socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& e) {
                         if (!self->done_) return;
                         if (e) return self->Fail();
                         self->Read();
                       });
  }

  // Takes what arrived; answers once the statement's results are complete.
  void Read() {
    if (PQconsumeInput(connection_) != 1) return Fail();
    while (PQisBusy(connection_) == 0) {
      PGresult* result = PQgetResult(connection_);
      if (result == nullptr) return Answer();  // the statement is over
      if (!rows_.has_value() && error_.ok()) {
        if (PQresultStatus(result) == PGRES_TUPLES_OK) {
          rows_.emplace(result);
          continue;
        }
        error_ = ErrorOf(result);
      }
      PQclear(result);
    }
    WaitForAnswer();
  }

  // The status of a failed result, as the blocking path would say it.
  absl::Status ErrorOf(PGresult* result) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const pqxx::sql_error error(PQresultErrorMessage(result), statement_, state);
    if (IsConnectionLost(error)) lease_.MarkBroken();
    return StatusFromException(error, what_);
  }

  void Answer() {
    PQsetnonblocking(connection_, 0);  // the next user of the connection is libpqxx
    if (!error_.ok()) return Finish(error_);
    if (!rows_.has_value()) return Fail();  // no result: not what a SELECT answers
    Finish(*std::move(rows_));
  }

  // The connection failed under the statement.
  void Fail() {
    lease_.MarkBroken();
    const pqxx::broken_connection lost(PQerrorMessage(connection_));
    Finish(StatusFromException(lost, what_));
  }

  void Finish(absl::StatusOr<PgRows> answer) {
    timer_.cancel();
    if (socket_.is_open()) socket_.release();  // cancels the wait, leaves libpq its socket
    LoopQueryDone done = std::move(done_);
    done_ = nullptr;
    {
      const PgLease release = std::move(lease_);  // back to the pool before the answer goes on
    }
    std::move(done)(std::move(answer));
  }

  PGconn* const connection_;               // lease_'s libpq handle
  asio::posix::stream_descriptor socket_;  // connection_'s socket, watched, never closed here
  asio::steady_timer timer_;               // fires at the caller's deadline
  PgLease lease_;                          // the connection, returned when answered
  const char* const what_;                 // names the work in errors
  const char* const statement_;            // the prepared statement's name
  LoopQueryDone done_;                     // the answer's destination; empty once answered
  std::optional<PgRows> rows_;             // the statement's rows, once read
  absl::Status error_;                     // the statement's error, once read
};

}  // namespace

void StartLoopQuery(asio::io_context& loop, PgLease lease, const char* what, const char* statement,
                    std::vector<std::string> params, absl::Time deadline, LoopQueryDone done) {
  std::make_shared<LoopQuery>(loop, std::move(lease), what, statement, std::move(done))
      ->Start(params, deadline);
}

}  // namespace hotpath::db
