// Values derived from immutable shared objects, kept for as long as each object lives.
//
// A cache answers with the very object it holds (an immutable std::shared_ptr<const T>, replaced,
// never changed, when the data changes). What a front end derives from that object (its JSON, its
// gzip, its wire bytes) is the same every time, so it can be kept beside a weak reference to the
// object: the next answer with the same object copies the value instead of deriving it again. An
// object replaced in the cache is a new object and is derived anew; the memo never keeps an object
// alive (though the storage of one made by make_shared is returned only once its slot is reused:
// bounded by slots).
//
// Keyed by the object and a tag saying how the value was derived (a route and a variant, e.g.
// whether gzip was accepted). Bounded: a fixed table of slots in sets of two (the hash of the key
// picks the set); a new value takes an empty slot of its set, or one whose object is gone, or else
// the one kept longer ago. With one slot per key, two hot objects that hashed to the same slot
// replaced each other's value on every answer: at 10,000 hot items in 16,384 slots nearly half of
// them did, and were derived anew each time. Values larger than max_value_bytes, or that would
// take the bytes kept past max_bytes, are not kept (Value::size() counts them), so no client can
// fill memory with large answers. Thread-safe: sets are guarded by striped locks.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"

namespace hotpath::cache {

// The memos' default size, in slots: 10,000 hot objects read at random find their value in about
// 95% of reads (in 16,384 slots, 86%; AnswerMemoTest). About 70-80 bytes a slot, plus the values.
inline constexpr std::size_t kDefaultMemoSlots = 32768;

template <class Value>
class ObjectMemo {
 public:
  static constexpr std::size_t kMaxValueBytes = 64 << 10;
  static constexpr std::size_t kMaxBytes = 64 << 20;

  // slots: how many values are kept at most (rounded up to a power of two, at least 64).
  explicit ObjectMemo(std::size_t slots, std::size_t max_value_bytes = kMaxValueBytes,
                      std::size_t max_bytes = kMaxBytes)
      : slots_(std::bit_ceil(std::max<std::size_t>(slots, 64))),
        older_(slots_.size() / 2, 0),
        max_value_bytes_(max_value_bytes),
        max_bytes_(max_bytes) {}

  // The largest value Keep keeps.
  std::size_t max_value_bytes() const { return max_value_bytes_; }
  // Bytes of the values kept now.
  std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  // True, with *value filled, when a value was kept for exactly this object (the same address and
  // the same owner) under route and variant.
  template <class T>
  bool Find(const void* route, const std::shared_ptr<T>& object, int variant, Value* value) const {
    const std::size_t set = SetOf(route, object.get(), variant);
    std::lock_guard lock(StripeOf(set));
    for (std::size_t i = 2 * set; i < 2 * set + 2; ++i) {
      if (Holds(slots_[i], route, object, variant)) {
        *value = slots_[i].value;
        return true;
      }
    }
    return false;
  }

  template <class T>
  void Keep(const void* route, const std::shared_ptr<T>& object, int variant, Value value) {
    const std::size_t size = value.size();
    if (size > max_value_bytes_) return;
    const std::size_t set = SetOf(route, object.get(), variant);
    std::weak_ptr<const void> dropped;  // released after the lock: it may free a control block
    Value replaced;                     // likewise
    std::lock_guard lock(StripeOf(set));
    Slot* const pair = &slots_[2 * set];
    // The key's own slot, else an empty one or one whose object is gone, else the older.
    std::size_t victim = older_[set];
    for (std::size_t i = 0; i < 2; ++i) {
      if (Holds(pair[i], route, object, variant)) {
        victim = i;
        break;
      }
      if (pair[i].object == nullptr || pair[i].owner.expired()) victim = i;
    }
    Slot& slot = pair[victim];
    const std::size_t old = slot.value.size();
    // Counted before it is kept, atomically across stripes: never past max_bytes.
    std::size_t now = bytes_.load(std::memory_order_relaxed);
    do {
      if (size > old && now + (size - old) > max_bytes_) return;
    } while (!bytes_.compare_exchange_weak(now, now + size - old, std::memory_order_relaxed));
    slot.route = route;
    slot.object = object.get();
    dropped = std::exchange(slot.owner, object);
    slot.variant = variant;
    replaced = std::exchange(slot.value, std::move(value));
    older_[set] = static_cast<std::uint8_t>(1 - victim);
  }

 private:
  struct Slot {
    const void* route = nullptr;      // what derived it
    const void* object = nullptr;     // the object it was derived from
    std::weak_ptr<const void> owner;  // its owner, without keeping it
    int variant = 0;                  // which of the route's values
    Value value;                      // what it was derived to
  };
  static constexpr std::size_t kStripes = 64;

  // Whether slot holds the value of exactly this key. The slot's weak reference keeps the owner's
  // control block, so no other object can have come to share it.
  template <class T>
  static bool Holds(const Slot& slot, const void* route, const std::shared_ptr<T>& object,
                    int variant) {
    return slot.route == route && slot.object == object.get() && slot.variant == variant &&
           !slot.owner.owner_before(object) && !object.owner_before(slot.owner);
  }
  // The set of two slots (2 * set, 2 * set + 1) a key may be kept in.
  std::size_t SetOf(const void* route, const void* object, int variant) const {
    return absl::HashOf(route, object, variant) & (older_.size() - 1);
  }
  std::mutex& StripeOf(std::size_t set) const { return stripes_[set % kStripes]; }

  std::vector<Slot> slots_;               // size is a power of two, two per set
  std::vector<std::uint8_t> older_;       // per set: which of its two slots was kept longer ago
  mutable std::mutex stripes_[kStripes];  // stripes_[i] guards sets i, i + kStripes, ...
  const std::size_t max_value_bytes_;     // largest value kept
  const std::size_t max_bytes_;           // most bytes kept in all
  std::atomic<std::size_t> bytes_{0};     // bytes kept now
};

}  // namespace hotpath::cache
