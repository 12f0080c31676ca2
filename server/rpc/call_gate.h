// What every call passes before its handler runs, over gRPC or in process (the gateway in
// hotpathd): the cap on calls in flight, and bearer-token authorization.
//
// This is not a gRPC interceptor: in gRPC 1.51 an interceptor cannot fail a call before the
// handler runs (it can only cancel it, which the client sees as CANCELLED, and the handler still
// runs). The call runtime (call_base.h) and the in-process dispatch (local_handlers.h) ask the
// gate instead, so gRPC clients and the gateway get the same rule.
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace hotpath::rpc {

struct CallGateOptions {
  // Calls in flight (admitted, not yet answered) beyond which new calls are refused at once with
  // RESOURCE_EXHAUSTED (HTTP 429) instead of queueing. 0: no cap.
  int max_in_flight = 0;
  // Calls in flight from one gRPC connection at most, beyond which its new calls are refused with
  // RESOURCE_EXHAUSTED: one connection must not hold every slot. gRPC 1.51 enforces its own
  // 256-streams-per-connection limit only once the client acknowledged the server's SETTINGS,
  // which a hostile client never does. 0: max_in_flight / 8 (256 of the default 2048: what a
  // well-behaved client can have open on one connection anyway).
  int max_in_flight_per_connection = 0;
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
  // Holds one in-flight slot and its connection's share; releases what it still holds when
  // destroyed. Empty when moved from.
  class Ticket final {
   public:
    Ticket() = default;
    Ticket(CallGate* gate, std::uint64_t connection) : gate_(gate), connection_(connection) {}
    Ticket(Ticket&& other) noexcept
        : gate_(std::exchange(other.gate_, nullptr)),
          connection_(std::exchange(other.connection_, 0)),
          in_flight_(std::exchange(other.in_flight_, false)) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        Release();
        gate_ = std::exchange(other.gate_, nullptr);
        connection_ = std::exchange(other.connection_, 0);
        in_flight_ = std::exchange(other.in_flight_, false);
      }
      return *this;
    }
    ~Ticket() { Release(); }
    // Whether it holds a slot (a gate without a cap counts nothing).
    bool counted() const { return gate_ != nullptr; }
    // The call is answered: its in-flight slot is free (before the client can see the answer,
    // so that a client never finds its own finished call in the way), and its connection's share
    // is kept until the ticket goes, once the answer is delivered. An answer the client does not
    // read (a zero flow-control window) stays in gRPC's buffers: counted, one connection holds
    // at most its share of them, where freed with the slot it held any number.
    void Answered() {
      if (gate_ != nullptr && std::exchange(in_flight_, false)) gate_->ReleaseInFlight();
    }

   private:
    void Release() {
      Answered();
      if (gate_ != nullptr && connection_ != 0) gate_->ReleaseShare(connection_);
      gate_ = nullptr;
      connection_ = 0;
    }
    CallGate* gate_ = nullptr;      // the gate whose slot it holds; null when not counted
    std::uint64_t connection_ = 0;  // hash of the connection's peer; 0: not counted per connection
    bool in_flight_ = true;         // holds its in-flight slot still
  };

  explicit CallGate(CallGateOptions options);

  // A ticket for a call of method, or the status to answer it with: UNAUTHENTICATED when it needs
  // a token and authorization ("Bearer <token>", "" when absent) does not carry an accepted one,
  // RESOURCE_EXHAUSTED when max_in_flight calls are already running, or when the call's
  // connection (peer: gRPC's peer string, one per connection; empty for calls from inside the
  // process) holds its share already. Tokens are compared in constant time and never appear in a
  // message.
  absl::StatusOr<Ticket> Admit(const google::protobuf::MethodDescriptor& method,
                               std::string_view authorization, std::string_view peer = {});

  bool requires_tokens() const { return !token_digests_.empty(); }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // The cap (--max_in_flight); 0: none.
  int max_in_flight() const { return max_in_flight_; }

 private:
  using Digest = std::array<unsigned char, 32>;
  bool Accepts(std::string_view authorization) const;

  void ReleaseInFlight();
  void ReleaseShare(std::uint64_t connection);

  // Calls in flight per connection, in stripes so that connections rarely share a lock.
  struct alignas(64) Stripe {
    std::mutex mu;                                   // guards counts
    absl::flat_hash_map<std::uint64_t, int> counts;  // by peer hash; absent: none
  };
  static constexpr std::size_t kStripes = 16;

  const int max_in_flight_;               // 0: no cap
  const int max_per_connection_;          // calls one connection may hold
  const bool tokens_for_reads_;           // reads need a token too
  std::vector<Digest> token_digests_;     // SHA-256 of each accepted token
  std::atomic<int> in_flight_{0};         // admitted calls not yet answered
  std::array<Stripe, kStripes> stripes_;  // per-connection counts
};

}  // namespace hotpath::rpc
