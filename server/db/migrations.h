// Versioned schema migrations. Each module brings its own, compiled in from its .sql files by
// hotpath_embed_migrations (cmake/hotpath.cmake).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hotpath::db {

struct Migration {
  absl::string_view version;  // file name without .sql, e.g. "0001_items"; applied in this order
  absl::string_view sql;      // the file's text
};

// Applies the migrations not yet recorded in schema_migrations, all in one transaction that holds
// an advisory lock, so replicas starting at once apply each exactly once. Returns what was applied.
// The connection opens as every other (host_order.h), within connect_timeout.
absl::Status Migrate(const std::string& database_url, const std::vector<Migration>& migrations,
                     std::vector<std::string>* applied = nullptr,
                     absl::Duration connect_timeout = absl::Seconds(5));

}  // namespace hotpath::db
