#include "server/rpc/service_bindings.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hotpath::rpc {

const google::protobuf::MethodDescriptor* ServiceBindings::Find(
    std::string_view method, const google::protobuf::Descriptor* request,
    const google::protobuf::Descriptor* response, Kind kind) {
  const auto* found = descriptor()->FindMethodByName(std::string(method));
  std::string mistake;
  if (found == nullptr) {
    mistake = absl::StrCat(name(), " has no method ", std::string(method));
  } else if (std::find(declared_.begin(), declared_.end(), found) != declared_.end()) {
    mistake = absl::StrCat(found->full_name(), " is declared twice");
  } else if (found->input_type() != request || found->output_type() != response) {
    mistake = absl::StrCat(found->full_name(), " takes ", found->input_type()->full_name(),
                           " and returns ", found->output_type()->full_name(),
                           ", not what its declaration says (", request->full_name(), ", ",
                           response->full_name(), ")");
  } else if (found->client_streaming() != (kind == Kind::kClientStream) ||
             found->server_streaming() != (kind == Kind::kServerStream)) {
    mistake = absl::StrCat(found->full_name(), " is declared as the wrong kind of method");
  }
  if (!mistake.empty()) {
    mistakes_.push_back(std::move(mistake));
    return nullptr;
  }
  declared_.push_back(found);
  return found;
}

absl::Status ServiceBindings::Check() const {
  std::vector<std::string> problems = mistakes_;
  for (int i = 0; i < descriptor()->method_count(); ++i) {
    const auto* method = descriptor()->method(i);
    if (std::find(declared_.begin(), declared_.end(), method) == declared_.end()) {
      problems.push_back(absl::StrCat(method->full_name(), " is not declared"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
}

void ServiceBindings::Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) {
  const int unary = options.pending_calls;
  // Streams are long and rare: a few pending calls are plenty.
  const int streams = std::max(1, unary / 4);
  for (const auto& method : bound_) {
    const int count = method->streaming() ? streams : unary;
    for (int i = 0; i < count; ++i) method->Arm(cq, &options);
  }
}

}  // namespace hotpath::rpc
