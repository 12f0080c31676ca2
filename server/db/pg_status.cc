#include "server/db/pg_status.h"

#include <iostream>
#include <pqxx/except>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace hotpath::db {
namespace {

// PostgreSQL's multi-line message ("ERROR:  ...\nDETAIL:  ...\n") as one line.
std::string OneLine(absl::string_view message) {
  std::string text = absl::StrReplaceAll(absl::StripAsciiWhitespace(message),
                                         {{"\n", "; "}, {"ERROR:  ", ""}, {"DETAIL:  ", ""}});
  return text;
}

absl::StatusCode CodeForSqlState(absl::string_view state) {
  if (state == "23505") return absl::StatusCode::kAlreadyExists;
  if (state == "23503") return absl::StatusCode::kFailedPrecondition;
  if (absl::StartsWith(state, "23") || absl::StartsWith(state, "22")) {
    return absl::StatusCode::kInvalidArgument;  // integrity and data exceptions: the input
  }
  if (state == "57014") return absl::StatusCode::kDeadlineExceeded;  // statement_timeout
  if (state == "40001" || state == "40P01") return absl::StatusCode::kAborted;
  if (absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") || state == "53300") {
    return absl::StatusCode::kUnavailable;  // connection trouble, shutdown, too many clients
  }
  if (absl::StartsWith(state, "53")) return absl::StatusCode::kResourceExhausted;
  return absl::StatusCode::kInternal;
}

}  // namespace

bool IsConnectionLost(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    // Every error PostgreSQL sends has a SQLSTATE: one without is libpq's own, about the
    // connection under the statement ("server closed the connection unexpectedly", "lost
    // synchronization with server"), which libpqxx throws as a plain sql_error when libpq has
    // not yet marked the connection bad.
    // 25006, read_only_sql_transaction: the server stopped taking writes with the connection open
    // (a primary fenced for a switchover); a new connection goes where they are taken.
    return state.empty() || absl::StartsWith(state, "08") || absl::StartsWith(state, "57P") ||
           state == "25006";
  }
  return false;
}

absl::Status StatusFromException(const std::exception& e, absl::string_view what) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database connection lost during commit while ",
                                               what, "; the outcome is unknown"));
  }
  if (IsConnectionLost(e)) {
    return absl::UnavailableError(
        absl::StrCat("database unavailable while ", what, ": ", OneLine(e.what())));
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const absl::StatusCode code = CodeForSqlState(sql->sqlstate());
    if (code == absl::StatusCode::kDeadlineExceeded) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline exceeded while ", what, ": the query was cancelled"));
    }
    // PostgreSQL's text says what was wrong with the input for these; for anything else it
    // would tell a client about the schema and the SQL, so it goes to the log only.
    if (code != absl::StatusCode::kInternal) {
      return absl::Status(code, absl::StrCat(what, ": ", OneLine(sql->what())));
    }
  }
  std::cerr << "hotpath: database error while " << what << ": " << OneLine(e.what()) << "\n";
  return absl::InternalError(absl::StrCat("database error while ", what, " (details in the log)"));
}

}  // namespace hotpath::db
