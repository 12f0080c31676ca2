// What every call passes before its handler runs, over gRPC or in process (the gateway in
// hotpathd): the cap on calls in flight, and bearer-token authorization.
//
// This is not a gRPC interceptor: in gRPC 1.51 an interceptor cannot fail a call before the
// handler runs (it can only cancel it, which the client sees as CANCELLED, and the handler still
// runs). The call runtime (async_calls.h) and the in-process dispatch (local_handlers.h) ask the
// gate instead, so gRPC clients and the gateway get the same rule.
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace hotpath::rpc {

struct CallGateOptions {
  // Calls in flight (admitted, not yet answered) beyond which new calls are refused at once with
  // RESOURCE_EXHAUSTED (HTTP 429) instead of queueing. 0: no cap.
  int max_in_flight = 0;
  // Accepted bearer tokens. Empty: no call needs one.
  std::vector<std::string> tokens;
  // With tokens: reads need one too, not only writes. A write is a method whose idempotency_level
  // is not NO_SIDE_EFFECTS (the proto option that marks a read).
  bool tokens_for_reads = false;
};

// One token a line; blank lines and lines starting with '#' are skipped, surrounding blanks
// trimmed. An error when the file cannot be read or names no token.
absl::StatusOr<std::vector<std::string>> ReadTokensFile(const std::string& path);

// Whether method changes state, by its idempotency_level option.
bool IsWrite(const google::protobuf::MethodDescriptor& method);

class CallGate final {
 public:
  // Holds one in-flight slot; releases it when destroyed. Empty when moved from.
  class Ticket final {
   public:
    Ticket() = default;
    explicit Ticket(std::atomic<int>* in_flight) : in_flight_(in_flight) {}
    Ticket(Ticket&& other) noexcept : in_flight_(std::exchange(other.in_flight_, nullptr)) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        Release();
        in_flight_ = std::exchange(other.in_flight_, nullptr);
      }
      return *this;
    }
    ~Ticket() { Release(); }
    // Whether it holds a slot (a gate without a cap counts nothing).
    bool counted() const { return in_flight_ != nullptr; }

   private:
    void Release() {
      if (in_flight_ != nullptr) in_flight_->fetch_sub(1, std::memory_order_relaxed);
      in_flight_ = nullptr;
    }
    std::atomic<int>* in_flight_ = nullptr;  // the gate's counter; null when not counted
  };

  explicit CallGate(CallGateOptions options);

  // A ticket for a call of method, or the status to answer it with: UNAUTHENTICATED when it needs
  // a token and authorization ("Bearer <token>", "" when absent) does not carry an accepted one,
  // RESOURCE_EXHAUSTED when max_in_flight calls are already running. Tokens are compared in
  // constant time and never appear in a message.
  absl::StatusOr<Ticket> Admit(const google::protobuf::MethodDescriptor& method,
                               std::string_view authorization);

  bool requires_tokens() const { return !token_digests_.empty(); }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  using Digest = std::array<unsigned char, 32>;
  bool Accepts(std::string_view authorization) const;

  const int max_in_flight_;            // 0: no cap
  const bool tokens_for_reads_;        // reads need a token too
  std::vector<Digest> token_digests_;  // SHA-256 of each accepted token
  std::atomic<int> in_flight_{0};      // admitted calls not yet answered
};

}  // namespace hotpath::rpc
