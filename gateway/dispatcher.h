// How the gateway reaches the services: generic gRPC calls (method path + serialized message) over
// a channel. In hotpathd that channel is the server's in-process channel (no socket, no network
// hop, yet the same interceptors, deadlines and metadata as any client); hotpath-gateway uses a
// channel to --upstream.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace hotpath::gateway {

using Metadata = std::multimap<std::string, std::string>;

struct OutgoingCall {
  std::string method;                                         // "/pkg.Service/Method"
  std::vector<std::pair<std::string, std::string>> metadata;  // sent as client metadata
  absl::Time deadline = absl::InfiniteFuture();               // the call's deadline
  std::uint64_t read_after = 0;  // X-Hotpath-Lsn, parsed (rpc::Consistency); 0: none
};

struct CallResult {
  grpc::Status status;   // how it ended
  std::string response;  // the serialized response (unary calls that succeeded)
  Metadata headers;      // the server's initial metadata
  Metadata trailers;     // the server's trailing metadata
};

// Receives a server stream. Calls come one at a time, never concurrently.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  // One message; call exactly one of read_next() (for the next message, when ready: this is the
  // back-pressure) or cancel().
  virtual void OnMessage(std::string message, std::function<void()> read_next,
                         std::function<void()> cancel) = 0;
  // The end: status and metadata (response is empty). The observer may be destroyed after.
  virtual void OnDone(CallResult result) = 0;
};

class Dispatcher final {
 public:
  // unary_timeout: the deadline of a unary call that comes without one (hotpath-gateway's
  // --upstream_timeout_ms), so an upstream that stops answering holds no request past it.
  // Streams keep the caller's deadline or none: an export may rightly run long (the channel's
  // keepalive pings end one whose upstream stops answering).
  explicit Dispatcher(std::shared_ptr<grpc::Channel> channel,
                      absl::Duration unary_timeout = absl::InfiniteDuration())
      : channel_(std::move(channel)), stub_(channel_), unary_timeout_(unary_timeout) {}

  // done runs once, on a gRPC thread. Returns what cancels the call (its client left): from any
  // thread, at any time; once the call has ended, it does nothing.
  std::function<void()> Unary(const OutgoingCall& call, std::string request,
                              std::function<void(CallResult)> done);
  // observer must live until its OnDone. Returns what cancels the call, as Unary's does.
  std::function<void()> ServerStream(const OutgoingCall& call, std::string request,
                                     std::shared_ptr<StreamObserver> observer);

 private:
  std::shared_ptr<grpc::Channel> channel_;  // to the services
  grpc::GenericStub stub_;                  // generic calls on channel_
  absl::Duration unary_timeout_;            // for unary calls without a deadline
};

}  // namespace hotpath::gateway
