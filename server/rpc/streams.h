// What a service's code hands the runtime, free of any transport type: answers shared with a
// cache, and the two halves of streaming methods.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hotpath::rpc {

// How a method that may answer at once (a cache hit) answers: with an immutable object it shares
// (a cache's, so a hit copies nothing), or the error.
template <class Response>
using SharedDone = std::function<void(const absl::StatusOr<std::shared_ptr<const Response>>&)>;

// Produces a server stream's messages batch by batch; called on the executor, one call at a time.
template <class Response>
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Fills batch (empty on entry) with the next messages; sets *done after the last batch.
  virtual absl::Status Next(std::vector<Response>* batch, bool* done) = 0;
};

// Consumes a client stream's messages batch by batch; called on the executor, one call at a time.
template <class Request, class Response>
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Takes the next messages. An error ends the call with it; later messages are not read.
  virtual absl::Status Consume(std::vector<Request>& batch) = 0;
  // The client has half-closed: complete the work and answer. cancelled: set once the caller is
  // known to be gone, in which case nothing may be kept.
  virtual absl::StatusOr<Response> Finish(const std::atomic<bool>& cancelled) = 0;
};

}  // namespace hotpath::rpc
