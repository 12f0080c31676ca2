// HTTP/JSON <-> protobuf for one google.api.http binding: a request message from path variables,
// query parameters and a JSON body; a JSON answer from a response message or a gRPC status.
// Protobuf's canonical JSON mapping throughout (google::protobuf::util): lowerCamelCase out, proto
// names accepted in, int64 as strings, enums by name, zero values emitted.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/path_template.h"
#include "gateway/route_table.h"
#include "google/rpc/status.pb.h"

namespace hotpath::gateway {

// One REST form of one RPC, from its google.api.http rule (or an additional binding).
struct HttpBinding {
  const google::protobuf::MethodDescriptor* method = nullptr;  // the RPC
  std::string http_method;    // "GET", "POST", ... (custom kinds as written)
  PathTemplate path;          // parsed template
  std::string body;           // "" (no body), "*" (the whole request) or a top-level field name
  std::string response_body;  // "" (the whole response) or a top-level field name
  std::string rpc_path;       // "/package.Service/Method", the method's gRPC path
  // Default instances of the method's request and response types.
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
};

struct TranscodeOptions {
  // Ignore JSON body fields the message does not have, instead of 400.
  bool ignore_unknown_fields = false;
  // Answer 400 for a query parameter that names no field of the request. Off by default: such
  // parameters (cache busters like "_=123", tracking parameters) are ignored, as grpc-gateway and
  // most REST frameworks do. A parameter that names a field wrongly is always a 400.
  bool strict_query_parameters = false;
};

// Fills request from the path variables, the query string (without '?') and the body. Errors are
// INVALID_ARGUMENT naming the field or parameter and saying what is wrong.
absl::Status BuildRequest(const HttpBinding& binding, const Bindings& path_variables,
                          absl::string_view query, absl::string_view body,
                          const TranscodeOptions& options, google::protobuf::Message* request);

// The JSON body for a successful response (response_body applied).
absl::StatusOr<std::string> RenderResponse(const HttpBinding& binding,
                                           const google::protobuf::Message& response);

// One message as a single line of JSON (for streams).
std::string MessageJson(const google::protobuf::Message& message);

// The HTTP status for a gRPC code: grpc-gateway's table.
int HttpStatusForCode(grpc::StatusCode code);

// The google.rpc.Status of status: its code and message, and the details its error_details carry
// (none when they do not parse).
google::rpc::Status RpcStatusOf(const grpc::Status& status);

// {"code":N,"message":"...","details":[...]}: rpc_status as JSON, details included (dropped, code
// and message kept, when one is of a type this binary does not know).
std::string StatusJson(const google::rpc::Status& rpc_status);
std::string StatusJson(const grpc::Status& status);

}  // namespace hotpath::gateway
