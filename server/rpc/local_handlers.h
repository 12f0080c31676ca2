// In-process calls of a service's unary methods, without gRPC: the fastest faithful dispatch for
// an in-process front end (the JSON gateway in hotpathd). A handler runs the same validation,
// cache and store code as the gRPC method, on the caller's thread when it can answer at once (a
// cache hit) and on the executor when it must block, and answers through its callback. Calls pass
// the same CallGate as gRPC calls (in-flight cap, bearer tokens).
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/rpc/call_gate.h"
#include "server/rpc/cancellation.h"
#include "server/rpc/consistency.h"
#include "server/rpc/status.h"

namespace hotpath::rpc {

struct LocalCall {
  absl::Time deadline = absl::InfiniteFuture();               // the caller's deadline
  std::vector<std::pair<std::string, std::string>> metadata;  // as a gRPC client would send
  std::shared_ptr<Cancellation> cancellation;  // raised if the caller leaves; may be null
  // What the call reads after, and where its writes reach (read by the caller once done); null:
  // a read with no position.
  std::shared_ptr<Consistency> consistency;
};

// response is valid only during the call (null unless status is OK). shared, when not null, is
// response itself held by a cache: an immutable object, replaced and never changed when its data
// changes, so what a front end derives from it (its JSON) holds for as long as the object lives.
using LocalDone =
    std::function<void(const grpc::Status& status, const google::protobuf::Message* response,
                       const std::shared_ptr<const google::protobuf::Message>& shared)>;
// request is of the method's input type and stays valid until done runs.
using LocalHandler = std::function<void(const google::protobuf::Message& request,
                                        const LocalCall& call, LocalDone done)>;

struct LocalMethod {
  const google::protobuf::MethodDescriptor* method;  // what it serves
  LocalHandler handler;                              // how
};

class LocalHandlers final {
 public:
  void Add(const google::protobuf::MethodDescriptor* method, LocalHandler handler) {
    handlers_[absl::StrCat("/", method->service()->full_name(), "/", method->name())] =
        LocalMethod{method, std::move(handler)};
  }
  // Adds every handler of other (a service's) to these.
  void AddAll(const LocalHandlers& other) {
    handlers_.insert(other.handlers_.begin(), other.handlers_.end());
  }
  // Every call passes gate first (null: none). gate must outlive the calls.
  void set_gate(CallGate* gate) { gate_ = gate; }

  // Null when the method has no local handler (callers then go through gRPC). path:
  // "/pkg.Service/Method".
  const LocalMethod* Find(const std::string& path) const {
    auto it = handlers_.find(path);
    return it == handlers_.end() ? nullptr : &it->second;
  }

  // Runs method's handler once the gate admits the call; done gets the refusal otherwise.
  void Call(const LocalMethod& method, const google::protobuf::Message& request,
            const LocalCall& call, LocalDone done) const {
    if (gate_ == nullptr) return method.handler(request, call, std::move(done));
    std::string_view authorization;
    for (const auto& [key, value] : call.metadata) {
      if (key == "authorization") authorization = value;
    }
    auto ticket = gate_->Admit(*method.method, authorization);
    if (!ticket.ok()) return done(ToGrpcStatus(ticket.status()), nullptr, nullptr);
    if (!ticket->counted()) return method.handler(request, call, std::move(done));
    // The slot is freed when the answer is given.
    auto slot = std::make_shared<CallGate::Ticket>(*std::move(ticket));
    method.handler(request, call,
                   [slot, done = std::move(done)](
                       const grpc::Status& status, const google::protobuf::Message* response,
                       const std::shared_ptr<const google::protobuf::Message>& shared) {
                     *slot = CallGate::Ticket();  // before the caller can see the answer
                     done(status, response, shared);
                   });
  }

 private:
  std::unordered_map<std::string, LocalMethod> handlers_;  // by full method path
  CallGate* gate_ = nullptr;                               // admits calls; null: all
};

}  // namespace hotpath::rpc
