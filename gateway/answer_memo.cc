#include "gateway/answer_memo.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/hash/hash.h"

namespace hotpath::gateway {

using google::protobuf::Message;

AnswerMemo::AnswerMemo(std::size_t slots)
    : slots_(std::bit_ceil(std::max<std::size_t>(slots, 64))) {}

std::size_t AnswerMemo::SlotOf(const void* route, const Message* message, bool gzip_ok) const {
  return absl::HashOf(route, message, gzip_ok) & (slots_.size() - 1);
}

bool AnswerMemo::Find(const void* route, const std::shared_ptr<const Message>& message,
                      bool gzip_ok, Body* body) const {
  const std::size_t i = SlotOf(route, message.get(), gzip_ok);
  std::lock_guard lock(StripeOf(i));
  const Slot& slot = slots_[i];
  // The same address and the same owner: the same object. The slot's weak reference keeps the
  // owner's control block, so no other object can have come to share it.
  if (slot.route != route || slot.message != message.get() || slot.gzip_ok != gzip_ok ||
      slot.owner.owner_before(message) || message.owner_before(slot.owner)) {
    return false;
  }
  *body = slot.body;
  return true;
}

void AnswerMemo::Keep(const void* route, const std::shared_ptr<const Message>& message,
                      bool gzip_ok, const Body& body) {
  const std::size_t i = SlotOf(route, message.get(), gzip_ok);
  std::weak_ptr<const Message> dropped;  // released after the lock: it may free a control block
  std::lock_guard lock(StripeOf(i));
  Slot& slot = slots_[i];
  slot.route = route;
  slot.message = message.get();
  dropped = std::exchange(slot.owner, message);
  slot.gzip_ok = gzip_ok;
  slot.body = body;
}

}  // namespace hotpath::gateway
