// libpqxx exceptions end here: the store boundary turns them into absl::Status.
#pragma once

#include <exception>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hotpath::db {

// The status for an exception thrown by libpqxx (or anything else) while doing `what`:
// unique violation -> ALREADY_EXISTS, check/not-null/data errors -> INVALID_ARGUMENT,
// statement_timeout -> DEADLINE_EXCEEDED, lost (IsConnectionLost) or refused connections ->
// UNAVAILABLE, serialization failures and deadlocks -> ABORTED, anything else INTERNAL.
absl::Status StatusFromException(const std::exception& e, absl::string_view what);

// True when the exception means the connection can no longer be used: a lost connection (libpq
// has closed it, or reports a failure of its own, without a SQLSTATE, under the statement), a
// connection-class or shutdown SQLSTATE (08..., 57P...), or a write refused by a server that no
// longer takes writes (25006).
bool IsConnectionLost(const std::exception& e);

}  // namespace hotpath::db
