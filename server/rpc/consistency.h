// Read-your-writes across replicas and database copies: what a call asks of the data it reads and
// what its writes reached, as positions in the database's write-ahead log (PostgreSQL LSNs; 0 is
// none). A write answers with the position of its commit in metadata x-hotpath-lsn (HTTP header
// X-Hotpath-Lsn); a later read that sends it back is served only from data that includes that
// commit (a standby that has replayed it, else the primary), through any replica. The runtime
// makes a call's Consistency Current() on the thread that works for it, as with Cancellation.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/rpc/call_local.h"

namespace hotpath::rpc {

class Consistency final : public CallLocal<Consistency> {
 public:
  // gRPC metadata key, both ways; the gateway maps it to and from the X-Hotpath-Lsn header.
  static constexpr char kMetadataKey[] = "x-hotpath-lsn";
  static constexpr char kHeader[] = "X-Hotpath-Lsn";
  // What a malformed one is told, after the key's or header's name.
  static constexpr char kMalformed[] =
      " must be a position a write answered with, e.g. 16/B374D848";

  // monotonic: every read of the call must be at least as recent as its earlier ones (a server
  // stream's batches), see source().
  explicit Consistency(std::uint64_t read_after = 0, bool monotonic = false)
      : read_after_(read_after), monotonic_(monotonic) {}

  // Reads must see at least this position (0: any within the replicas' bounds).
  std::uint64_t read_after() const { return read_after_; }
  // A write of this call committed at position; the call answers with the highest.
  void Committed(std::uint64_t position) {
    std::uint64_t seen = committed_.load(std::memory_order_relaxed);
    while (position > seen && !committed_.compare_exchange_weak(seen, position)) {
    }
  }
  std::uint64_t committed() const { return committed_.load(std::memory_order_relaxed); }

  // Monotonic reads. Where the call's earlier reads went, as the store that made them names it
  // (opaque here: e.g. the standby whose replay only moves forward, or the primary); null before
  // the first. A store keeps a monotonic call's later reads there, or moves them to a source at
  // least as recent (the primary) and says so with set_source.
  bool monotonic() const { return monotonic_; }
  void* source() const { return source_.load(std::memory_order_acquire); }
  void set_source(void* source) { source_.store(source, std::memory_order_release); }

  // "16/B374D848", PostgreSQL's text form of an LSN.
  static std::string Format(std::uint64_t position);
  // The position written as Format does (hex digits, a slash, hex digits); 0 if it is not one.
  static std::uint64_t Parse(std::string_view text);

  // Current() and Scope (call_local.h): the consistency of the call this thread works for.

 private:
  const std::uint64_t read_after_;           // what reads must include
  const bool monotonic_;                     // reads never older than earlier ones
  std::atomic<std::uint64_t> committed_{0};  // where this call's writes reached
  std::atomic<void*> source_{nullptr};       // where earlier reads went (monotonic calls)
};

}  // namespace hotpath::rpc
