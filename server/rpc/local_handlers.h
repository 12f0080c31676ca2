// In-process calls of a service's unary methods, without gRPC: the fastest faithful dispatch for
// an in-process front end (the JSON gateway in hotpathd). A handler runs the same validation,
// cache and store code as the gRPC method, on the caller's thread when it can answer at once (a
// cache hit) and on the executor when it must block, and answers through its callback.
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace hotpath::rpc {

struct LocalCall {
  absl::Time deadline = absl::InfiniteFuture();               // the caller's deadline
  std::vector<std::pair<std::string, std::string>> metadata;  // as a gRPC client would send
};

// response is valid only during the call (null unless status is OK).
using LocalDone =
    std::function<void(const grpc::Status& status, const google::protobuf::Message* response)>;
// request is of the method's input type and stays valid until done runs.
using LocalHandler = std::function<void(const google::protobuf::Message& request,
                                        const LocalCall& call, LocalDone done)>;

class LocalHandlers final {
 public:
  // method: "/pkg.Service/Method".
  void Add(std::string method, LocalHandler handler) {
    handlers_[std::move(method)] = std::move(handler);
  }
  // Null when the method has no local handler (callers then go through gRPC).
  const LocalHandler* Find(const std::string& method) const {
    auto it = handlers_.find(method);
    return it == handlers_.end() ? nullptr : &it->second;
  }

 private:
  std::unordered_map<std::string, LocalHandler> handlers_;  // by full method path
};

}  // namespace hotpath::rpc
