// Bodies rendered from shared response messages, kept for as long as each message lives
// (cache::ObjectMemo): the next hit on the same cached item copies bytes instead of walking the
// message by reflection. Keyed by route, message and whether the client accepts gzip.
#pragma once

#include <cstddef>
#include <string>

#include "server/cache/object_memo.h"

namespace hotpath::gateway {

// The HTTP body an answer rendered to.
struct AnswerBody {
  std::string bytes;     // the HTTP body
  bool gzipped = false;  // Content-Encoding: gzip

  std::size_t size() const { return bytes.size(); }  // what the memo counts
};

// Find(route, message, gzip_ok, &body) / Keep(route, message, gzip_ok, body).
class AnswerMemo final : public cache::ObjectMemo<AnswerBody> {
 public:
  using Body = AnswerBody;
  using ObjectMemo::ObjectMemo;
};

}  // namespace hotpath::gateway
