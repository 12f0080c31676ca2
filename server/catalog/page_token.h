// Opaque, tamper-checked page tokens for keyset pagination.
//
// A token carries the position after the last row of a page and an HMAC-SHA256 over that position
// and the request's filters (its scope), so a client can neither forge a position nor reuse a token
// with other filters. Tokens stay valid across restarts and replicas that share the secret.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hotpath::catalog {

// Where the next page starts: after (last_rank, last_category, last_id) in the list's order.
struct PageCursor {
  std::int64_t last_id = 0;        // id of the last row served
  std::string last_category;       // its category, for order_by "category,id"
  std::optional<float> last_rank;  // its search rank, for SearchItems
};

// A rank as text that parses back (in C++ or as PostgreSQL's float4) to the very same float: the
// search SQL compares ranks for equality.
std::string RankText(float rank);

class PageTokenCodec final {
 public:
  // secret: the HMAC key; empty picks a random one (tokens then die with the process).
  explicit PageTokenCodec(std::string secret);

  std::string Encode(const PageCursor& cursor, absl::string_view scope) const;
  // INVALID_ARGUMENT (field "page_token") when the token is malformed, forged, or was issued for
  // another scope.
  absl::StatusOr<PageCursor> Decode(absl::string_view token, absl::string_view scope) const;

 private:
  std::string Mac(absl::string_view payload, absl::string_view scope) const;

  std::string secret_;  // HMAC-SHA256 key
};

}  // namespace hotpath::catalog
