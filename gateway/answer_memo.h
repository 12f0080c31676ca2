// Bodies rendered from shared response messages, kept for as long as each message lives.
//
// A service's cached reads answer with the very object its cache holds (an immutable
// std::shared_ptr<const Message>, replaced, never changed, when the data changes). Printing that
// object as JSON, and gzipping the JSON, gives the same bytes every time, so the gateway keeps
// them beside a weak reference to the object: the next hit on the same cached item copies bytes
// instead of walking the message by reflection. A message replaced in the cache (a write, a TTL
// expiry) is a new object and is rendered anew; the memo never keeps a message alive (though the
// storage of one made by make_shared is returned only once its slot is reused: bounded by slots).
//
// Bounded: a fixed table of slots (hash of route and object); a new body replaces whatever held
// its slot. Thread-safe: slots are guarded by striped locks.
#pragma once

#include <google/protobuf/message.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hotpath::gateway {

class AnswerMemo final {
 public:
  // slots: how many bodies are kept at most (rounded up to a power of two, at least 64).
  explicit AnswerMemo(std::size_t slots);

  // A body kept for `message` answered on `route` (any stable per-route value) to a client that
  // does (gzip_ok) or does not accept gzip. `gzipped` tells whether the body is gzip-encoded.
  struct Body {
    std::string bytes;     // the HTTP body
    bool gzipped = false;  // Content-Encoding: gzip
  };
  // True, with *body filled, when a body was kept for exactly this message object.
  bool Find(const void* route, const std::shared_ptr<const google::protobuf::Message>& message,
            bool gzip_ok, Body* body) const;
  void Keep(const void* route, const std::shared_ptr<const google::protobuf::Message>& message,
            bool gzip_ok, const Body& body);

 private:
  struct Slot {
    const void* route = nullptr;                           // what rendered it
    const google::protobuf::Message* message = nullptr;    // the object rendered
    std::weak_ptr<const google::protobuf::Message> owner;  // its owner, without keeping it
    bool gzip_ok = false;                                  // for clients accepting gzip or not
    Body body;                                             // what it rendered to
  };
  static constexpr std::size_t kStripes = 64;

  std::size_t SlotOf(const void* route, const google::protobuf::Message* message,
                     bool gzip_ok) const;
  std::mutex& StripeOf(std::size_t slot) const { return stripes_[slot % kStripes]; }

  std::vector<Slot> slots_;               // size is a power of two
  mutable std::mutex stripes_[kStripes];  // stripes_[i] guards slots i, i + kStripes, ...
};

}  // namespace hotpath::gateway
