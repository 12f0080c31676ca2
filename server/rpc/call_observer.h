// What the call runtime tells about every call it serves, at the points a gRPC server interceptor
// sees them (matched, each message in and out, the final status), with the call's elapsed time:
// the runtime's own interceptors, for timing and metrics.
//
// Why not gRPC's: in gRPC 1.51 a server with any interceptor queues every call's request and
// final batch on its completion queue a second time after the interceptors ran, even when they
// did nothing (BaseAsyncRequest and CallOpSet ContinueFinalizeResultAfterInterception): five
// completion-queue events per unary call instead of three. Measured on cached GetItem
// (bench/NOTES.md "gRPC: the runtime's interceptors"): 16% more instructions per call than the
// C++ ceiling with gRPC's interceptors, and 0.82 of the ceiling's calls/s against 0.90 without.
// gRPC's interceptors stay for what needs one (the access log, opt-in).
//
// Every hook runs on the thread that drives the call at that moment, one at a time per call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string_view>

namespace hotpath::rpc {

class CallObserver {
 public:
  using RpcType = grpc::internal::RpcMethod::RpcType;

  // One method's hooks, shared by its calls.
  class Method {
   public:
    virtual ~Method() = default;
    // A client call matched (before the CallGate admits it).
    virtual void Started() = 0;
    // A request message arrived.
    virtual void Received() = 0;
    // A response message is about to be sent.
    virtual void Sent() = 0;
    // The final status is about to be sent, elapsed after the call matched.
    virtual void Finished(grpc::StatusCode code, std::chrono::steady_clock::duration elapsed) = 0;
  };

  virtual ~CallObserver() = default;
  // The hooks of the method protobuf names full_name ("pkg.Service.Method"), served as type; the
  // same object for every call of it, valid as long as the observer. Once per call: must be cheap.
  virtual Method* ForMethod(std::string_view full_name, RpcType type) = 0;
};

}  // namespace hotpath::rpc
