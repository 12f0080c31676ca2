#include "server/rpc/call_gate.h"

#include <google/protobuf/descriptor.pb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <fstream>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/status.h"

namespace hotpath::rpc {
namespace {

std::array<unsigned char, 32> Sha256(std::string_view text) {
  std::array<unsigned char, 32> digest;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadTokensFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read tokens file ", path));
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(file, line)) {
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || absl::StartsWith(token, "#")) continue;
    tokens.emplace_back(token);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tokens file ", path, " names no token"));
  }
  return tokens;
}

bool IsWrite(const google::protobuf::MethodDescriptor& method) {
  return method.options().idempotency_level() != google::protobuf::MethodOptions::NO_SIDE_EFFECTS;
}

CallGate::CallGate(CallGateOptions options)
    : max_in_flight_(options.max_in_flight),
      max_per_connection_(options.max_in_flight_per_connection > 0
                              ? options.max_in_flight_per_connection
                              : std::max(1, options.max_in_flight / 8)),
      tokens_for_reads_(options.tokens_for_reads) {
  for (const std::string& token : options.tokens) token_digests_.push_back(Sha256(token));
}

bool CallGate::Accepts(std::string_view authorization) const {
  // RFC 6750: the scheme is case-insensitive, one space before the token.
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()),
                              absl::string_view(kScheme.data(), kScheme.size()))) {
    return false;
  }
  // Digests have one length whatever the token's, and every accepted one is compared: the time
  // taken tells nothing about how close a guess was, nor which token it matched.
  const auto presented = Sha256(authorization.substr(kScheme.size()));
  bool match = false;
  for (const Digest& digest : token_digests_) {
    match |= CRYPTO_memcmp(presented.data(), digest.data(), digest.size()) == 0;
  }
  return match;
}

absl::StatusOr<CallGate::Ticket> CallGate::Admit(const google::protobuf::MethodDescriptor& method,
                                                 std::string_view authorization,
                                                 std::string_view peer) {
  if (!token_digests_.empty() && (tokens_for_reads_ || IsWrite(method)) &&
      !Accepts(authorization)) {
    return absl::UnauthenticatedError(
        authorization.empty()
            ? absl::StrCat(method.name(), " needs an authorization: Bearer <token> header")
            : absl::StrCat(method.name(), ": the bearer token is not accepted"));
  }
  if (max_in_flight_ <= 0) return Ticket();
  if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= max_in_flight_) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return Busy(
        absl::StrCat("server busy: ", max_in_flight_, " calls already in flight, retry later"));
  }
  if (peer.empty()) return Ticket(this, 0);
  std::uint64_t connection = absl::HashOf(peer);
  if (connection == 0) connection = 1;  // 0 means "not counted per connection"
  Stripe& stripe = stripes_[connection % kStripes];
  {
    std::lock_guard lock(stripe.mu);
    int& count = stripe.counts[connection];
    if (count < max_per_connection_) {
      ++count;
      return Ticket(this, connection);
    }
  }
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  return Busy(
      absl::StrCat("server busy: this connection has ", max_per_connection_,
                   " calls in flight or answers not yet read already, the most one connection "
                   "may have; retry later"));
}

void CallGate::ReleaseInFlight() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

void CallGate::ReleaseShare(std::uint64_t connection) {
  Stripe& stripe = stripes_[connection % kStripes];
  std::lock_guard lock(stripe.mu);
  auto it = stripe.counts.find(connection);
  if (it != stripe.counts.end() && --it->second <= 0) stripe.counts.erase(it);
}

}  // namespace hotpath::rpc
