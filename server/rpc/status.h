// The one bridge between the service layer's absl::Status and the wire's grpc::Status.
//
// Rich error details travel as absl::Status payloads keyed by their type URL
// ("type.googleapis.com/google.rpc.BadRequest"); on the wire they become the details of a
// google.rpc.Status in the grpc-status-details-bin trailer, which every gRPC client library and the
// gateway understand.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hotpath::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

// RESOURCE_EXHAUSTED for a refusal worth retrying soon (the server is busy, not the request
// wrong): it carries a google.rpc.RetryInfo detail of 1 s, which gRPC clients read from the
// status's details and the gateway answers as Retry-After: 1.
absl::Status Busy(absl::string_view message);

// A call's status as its caller saw it: one that failed after its caller left (caller_left: the
// call's Cancellation was raised) ends CANCELLED, whatever its work failed with (a statement
// stopped for it reads as PostgreSQL's "canceling statement", a timeout's code), so that metrics
// and access lines do not count a departure as the server's failure. Not once deadline has
// passed: that is what the caller saw.
grpc::Status AsTheCallerSawIt(grpc::Status status, bool caller_left,
                              std::chrono::system_clock::time_point deadline);

// Collects the field violations of one request and turns them into a single INVALID_ARGUMENT status
// carrying a google.rpc.BadRequest detail.
class FieldViolations final {
 public:
  // field: the path in the request, e.g. "item.sku". description: what is wrong, for a person.
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  // OK when nothing was added.
  absl::Status ToStatus() const;

 private:
  struct Violation {
    std::string field;        // request path of the bad field
    std::string description;  // why it was rejected
  };
  std::vector<Violation> violations_;  // in the order found
};

}  // namespace hotpath::rpc

namespace hotpath::rpc {

// status with its message prefixed ("item 7 rejected: ...") and its payloads kept.
absl::Status WithMessagePrefix(const absl::Status& status, absl::string_view prefix);

}  // namespace hotpath::rpc
