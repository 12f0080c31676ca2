#include "server/db/pg_status.h"

#include <gtest/gtest.h>

#include <pqxx/except>
#include <string>

namespace hotpath::db {
namespace {

constexpr char kClosed[] =
    "server closed the connection unexpectedly\n"
    "\tThis probably means the server terminated abnormally\n"
    "\tbefore or while processing the request.\n";

// libpq reports a statement whose connection broke under it as a failed result with no SQLSTATE
// (PostgreSQL gives every error it sends one), before it has always marked the connection bad:
// libpqxx throws that as a plain sql_error. A database unavailable, never an internal error.
TEST(PgStatusTest, AFailureWithoutASqlStateIsALostConnection) {
  const pqxx::sql_error closed(kClosed, "search_items", nullptr);
  EXPECT_TRUE(IsConnectionLost(closed));
  const absl::Status status = StatusFromException(closed, "searching items");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(status.message(),
            "database unavailable while searching items: server closed the connection "
            "unexpectedly; \tThis probably means the server terminated abnormally; \tbefore or "
            "while processing the request.");
}

TEST(PgStatusTest, ConnectionAndShutdownStatesAreLostConnections) {
  for (const char* state : {"08006", "57P01", "57P02", "57P03", "25006"}) {
    const pqxx::sql_error error("terminating connection", "q", state);
    EXPECT_TRUE(IsConnectionLost(error)) << state;
    EXPECT_EQ(StatusFromException(error, "x").code(), absl::StatusCode::kUnavailable) << state;
  }
  const pqxx::broken_connection broken("no connection to the server");
  EXPECT_TRUE(IsConnectionLost(broken));
  EXPECT_EQ(StatusFromException(broken, "x").code(), absl::StatusCode::kUnavailable);
}

TEST(PgStatusTest, TheServersOwnErrorsKeepTheirCodesAndTheirConnection) {
  const struct {
    const char* state;
    absl::StatusCode code;
  } cases[] = {
      {"23505", absl::StatusCode::kAlreadyExists},
      {"23503", absl::StatusCode::kFailedPrecondition},
      {"22P02", absl::StatusCode::kInvalidArgument},
      {"57014", absl::StatusCode::kDeadlineExceeded},
      {"40001", absl::StatusCode::kAborted},
      {"53200", absl::StatusCode::kResourceExhausted},
      {"53300", absl::StatusCode::kUnavailable},
      {"42P01", absl::StatusCode::kInternal},
  };
  for (const auto& [state, code] : cases) {
    const pqxx::sql_error error("ERROR:  something", "q", state);
    EXPECT_FALSE(IsConnectionLost(error)) << state;
    EXPECT_EQ(StatusFromException(error, "x").code(), code) << state;
  }
  // What would tell a client about the schema goes to the log only.
  EXPECT_EQ(StatusFromException(pqxx::sql_error("relation \"items\" does not exist", "q", "42P01"),
                                "listing items")
                .message(),
            "database error while listing items (details in the log)");
}

TEST(PgStatusTest, ACommitWhoseConnectionWasLostHasAnUnknownOutcome) {
  const pqxx::in_doubt_error doubt("connection lost during commit");
  const absl::Status status = StatusFromException(doubt, "creating an item");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(),
            "database connection lost during commit while creating an item; the outcome is "
            "unknown");
}

}  // namespace
}  // namespace hotpath::db
