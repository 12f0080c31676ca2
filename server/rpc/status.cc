#include "server/rpc/status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace hotpath::rpc {
namespace {

constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com/";

}  // namespace

absl::Status Busy(absl::string_view message) {
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(1);
  absl::Status status = absl::ResourceExhaustedError(message);
  status.SetPayload(absl::StrCat(kTypeUrlPrefix, retry.GetTypeName()),
                    absl::Cord(retry.SerializeAsString()));
  return status;
}

grpc::Status AsTheCallerSawIt(grpc::Status status, bool caller_left,
                              std::chrono::system_clock::time_point deadline) {
  if (status.ok() || !caller_left || std::chrono::system_clock::now() >= deadline) return status;
  return grpc::Status(grpc::StatusCode::CANCELLED,
                      absl::StrCat("the caller left (", status.error_message(), ")"));
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  const auto code = static_cast<grpc::StatusCode>(status.code());
  google::rpc::Status details;
  status.ForEachPayload([&details](absl::string_view type_url, const absl::Cord& payload) {
    auto* any = details.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  std::string message(status.message());
  if (details.details_size() == 0) return grpc::Status(code, message);
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

void FieldViolations::Add(std::string field, std::string description) {
  violations_.push_back({std::move(field), std::move(description)});
}

absl::Status FieldViolations::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  google::rpc::BadRequest bad_request;
  std::string message = "invalid request:";
  for (const auto& v : violations_) {
    auto* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
    absl::StrAppend(&message, " ", v.field, ": ", v.description, ";");
  }
  message.pop_back();
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(absl::StrCat(kTypeUrlPrefix, bad_request.GetTypeName()),
                    absl::Cord(bad_request.SerializeAsString()));
  return status;
}

}  // namespace hotpath::rpc

namespace hotpath::rpc {

absl::Status WithMessagePrefix(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  absl::Status result(status.code(), absl::StrCat(prefix, status.message()));
  status.ForEachPayload([&result](absl::string_view type_url, const absl::Cord& payload) {
    result.SetPayload(type_url, payload);
  });
  return result;
}

}  // namespace hotpath::rpc
