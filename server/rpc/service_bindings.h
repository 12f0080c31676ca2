// A service's methods, each declared once: from one declaration the runtime registers the gRPC
// call (completion-queue state machine, admission gate, cancellation) and the in-process handler
// the gateway calls. A service's code is plain functions of (request, deadline); the kind of
// method says where they run:
//
//   Cached        answers through a callback, at once on the calling thread when it can (a cache
//                 hit) and later from the executor otherwise; never blocks.
//   OnExecutor    blocks on the database: runs on the executor; a departed client cancels it.
//   ServerStream  validates on the calling thread, then fetches batches on the executor.
//   ClientStream  consumes batches of messages on the executor.
//
//   auto bindings = rpc::ServiceBindings::For<v1::CatalogService>(executor);
//   bindings->Cached("GetItem", &catalog, &CatalogService::GetItem, rpc::Answers::kHeld)
//       .OnExecutor("CreateItem", &catalog, &CatalogService::CreateItem);
//
// The implementation object must outlive the server (hotpathd destroys modules after it).
#pragma once

#include <google/protobuf/descriptor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/rpc/async_server.h"
#include "server/rpc/client_stream_call.h"
#include "server/rpc/consistency.h"
#include "server/rpc/local_handlers.h"
#include "server/rpc/server_stream_call.h"
#include "server/rpc/streams.h"
#include "server/rpc/unary_call.h"

namespace hotpath::rpc {

// What a Cached method answers with: objects a cache holds and replaces (never changes) when the
// data changes, so a front end may keep what it derives from them (the gateway's rendered JSON)
// for as long as the object lives; or objects built for each call.
enum class Answers { kHeld, kBuilt };

// Whether a client that departs (cancels, disconnects) cancels an OnExecutor method's work (its
// database statements) or lets it finish.
enum class Departure { kCancels, kFinishes };

class ServiceBindings final : public RpcModule {
 public:
  // GrpcService: the generated service class, e.g. catalog::v1::CatalogService. executor runs
  // every method that blocks; it must outlive the server.
  template <class GrpcService>
  static std::unique_ptr<ServiceBindings> For(Executor* executor) {
    const auto* descriptor = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
        GrpcService::service_full_name());
    return std::unique_ptr<ServiceBindings>(new ServiceBindings(
        std::make_unique<RawServiceOf<typename GrpcService::Service>>(descriptor), executor));
  }

  template <class Impl, class Request, class Response>
  ServiceBindings& Cached(std::string_view method, Impl* impl,
                          void (Impl::*function)(const Request&, absl::Time, SharedDone<Response>),
                          Answers answers) {
    const auto* descriptor = Declare<Request, Response>(method, Kind::kUnary);
    if (descriptor == nullptr) return *this;
    const bool held = answers == Answers::kHeld;
    if (held && wire_memo_ == nullptr) {
      wire_memo_ = std::make_unique<cache::ObjectMemo<grpc::Slice>>(cache::kDefaultMemoSlots);
    }
    Add<UnaryCall<Request, Response>>(
        {service_.get(), descriptor,
         [impl, function, held](grpc::ServerContext& context, const Request& request,
                                UnaryResponder<Response> responder) {
           auto read_after = ReadAfterOf(context);
           if (!read_after.ok()) return responder.Finish(ToGrpcStatus(read_after.status()));
           Consistency consistency(*read_after);
           Consistency::Scope scope(*read_after != 0 ? &consistency : nullptr);
           auto shared = std::make_shared<UnaryResponder<Response>>(std::move(responder));
           (impl->*function)(
               request, DeadlineOf(context),
               [shared, held](const absl::StatusOr<std::shared_ptr<const Response>>& r) {
                 if (!r.ok()) return shared->Finish(ToGrpcStatus(r.status()));
                 if (held) return shared->FinishHeld(*r);
                 shared->Finish(**r);
               });
         },
         /*cancellable=*/false, held ? wire_memo_.get() : nullptr});
    local_.Add(descriptor, [impl, function, held](const google::protobuf::Message& message,
                                                  const LocalCall& call, LocalDone done) {
      Consistency::Scope scope(call.consistency.get());
      (impl->*function)(
          static_cast<const Request&>(message), call.deadline,
          [done = std::move(done), held](const absl::StatusOr<std::shared_ptr<const Response>>& r) {
            if (!r.ok()) return done(ToGrpcStatus(r.status()), nullptr, nullptr);
            done(grpc::Status::OK, r->get(), held ? *r : nullptr);
          });
    });
    return *this;
  }

  template <class Impl, class Request, class Response>
  ServiceBindings& OnExecutor(std::string_view method, Impl* impl,
                              absl::StatusOr<Response> (Impl::*function)(const Request&,
                                                                         absl::Time),
                              Departure departure = Departure::kCancels) {
    const auto* descriptor = Declare<Request, Response>(method, Kind::kUnary);
    if (descriptor == nullptr) return *this;
    Executor* executor = executor_;
    Add<UnaryCall<Request, Response>>(
        {service_.get(), descriptor,
         [impl, function, executor](grpc::ServerContext& context, const Request& request,
                                    UnaryResponder<Response> responder) {
           auto read_after = ReadAfterOf(context);
           if (!read_after.ok()) return responder.Finish(ToGrpcStatus(read_after.status()));
           // The call, and so request and context, live until the responder answers; the
           // initial metadata goes out with the answer, after work.
           RunOnExecutor(*executor, std::move(responder),
                         [impl, function, &request, &context, deadline = DeadlineOf(context),
                          read_after = *read_after] {
                           Consistency consistency(read_after);
                           Consistency::Scope scope(&consistency);
                           auto result = (impl->*function)(request, deadline);
                           AnswerCommitted(context, consistency);
                           return result;
                         });
         },
         departure == Departure::kCancels});
    local_.Add(
        descriptor, [impl, function, executor, departure](const google::protobuf::Message& message,
                                                          const LocalCall& call, LocalDone done) {
          const auto& request = static_cast<const Request&>(message);
          // request lives until done runs.
          RunOnExecutor(
              *executor, departure == Departure::kCancels ? call.cancellation : nullptr,
              [impl, function, &request, deadline = call.deadline, consistency = call.consistency] {
                Consistency::Scope scope(consistency.get());
                return (impl->*function)(request, deadline);
              },
              [done = std::move(done)](const absl::StatusOr<Response>& result) {
                if (result.ok()) return done(grpc::Status::OK, &*result, nullptr);
                done(ToGrpcStatus(result.status()), nullptr, nullptr);
              });
        });
    return *this;
  }

  // function validates on the calling thread (no I/O) and returns the source, whose batches are
  // fetched on the executor. gRPC only (the gateway calls server streams through gRPC).
  template <class Impl, class Request, class Response>
  ServiceBindings& ServerStream(std::string_view method, Impl* impl,
                                absl::StatusOr<std::unique_ptr<StreamSource<Response>>> (
                                    Impl::*function)(const Request&, absl::Time)) {
    const auto* descriptor = Declare<Request, Response>(method, Kind::kServerStream);
    if (descriptor == nullptr) return *this;
    Add<ServerStreamCall<Request, Response>>(
        {service_.get(), descriptor,
         [impl, function](grpc::ServerContext& context, const Request& request) {
           return (impl->*function)(request, DeadlineOf(context));
         },
         executor_});
    return *this;
  }

  // function returns the sink, which consumes batch_size messages at a time on the executor.
  template <class Impl, class Request, class Response>
  ServiceBindings& ClientStream(
      std::string_view method, Impl* impl,
      absl::StatusOr<std::unique_ptr<StreamSink<Request, Response>>> (Impl::*function)(absl::Time),
      std::size_t batch_size) {
    const auto* descriptor = Declare<Request, Response>(method, Kind::kClientStream);
    if (descriptor == nullptr) return *this;
    Add<ClientStreamCall<Request, Response>>({service_.get(), descriptor,
                                              [impl, function](grpc::ServerContext& context) {
                                                return (impl->*function)(DeadlineOf(context));
                                              },
                                              executor_, batch_size});
    return *this;
  }

  // OK once every method of the service is declared, once, with its proto's types and kind; else
  // what is wrong (a method left undeclared would leave its callers waiting until their deadline).
  absl::Status Check() const;

  // The unary methods as in-process handlers (same code as the gRPC methods, no gRPC hop).
  LocalHandlers& local_handlers() { return local_; }
  const google::protobuf::ServiceDescriptor* descriptor() const { return service_->descriptor(); }

  // RpcModule.
  grpc::Service* service() override { return service_->service(); }
  std::string name() const override { return descriptor()->full_name(); }
  void Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) override;

 private:
  enum class Kind { kUnary, kServerStream, kClientStream };

  // One declared method: its call state machine's registration, armed on every queue.
  class Bound {
   public:
    virtual ~Bound() = default;
    virtual void Arm(grpc::ServerCompletionQueue* cq, const CallOptions* options) const = 0;
    virtual bool streaming() const = 0;
  };
  template <class Call>
  class BoundCall final : public Bound {
   public:
    explicit BoundCall(typename Call::Method method) : method_(std::move(method)) {}
    void Arm(grpc::ServerCompletionQueue* cq, const CallOptions* options) const override {
      Call::Arm(&method_, cq, options);
    }
    bool streaming() const override {
      return method_.method->client_streaming() || method_.method->server_streaming();
    }

   private:
    const typename Call::Method method_;  // what each call of it refers to
  };

  ServiceBindings(std::unique_ptr<RawService> service, Executor* executor)
      : service_(std::move(service)), executor_(executor) {}

  // The method named, checked against Request, Response and kind (a mistake is recorded for
  // Check, and the declaration ignored).
  template <class Request, class Response>
  const google::protobuf::MethodDescriptor* Declare(std::string_view method, Kind kind) {
    return Find(method, Request::descriptor(), Response::descriptor(), kind);
  }
  const google::protobuf::MethodDescriptor* Find(std::string_view method,
                                                 const google::protobuf::Descriptor* request,
                                                 const google::protobuf::Descriptor* response,
                                                 Kind kind);
  template <class Call>
  void Add(typename Call::Method method) {
    bound_.push_back(std::make_unique<BoundCall<Call>>(std::move(method)));
  }

  std::unique_ptr<RawService> service_;  // the generated service, every method raw
  // Wire bytes of Answers::kHeld methods' answers; null until one is declared.
  std::unique_ptr<cache::ObjectMemo<grpc::Slice>> wire_memo_;
  Executor* executor_;                         // runs what blocks
  std::vector<std::unique_ptr<Bound>> bound_;  // declared methods; their addresses are stable
  std::vector<const google::protobuf::MethodDescriptor*> declared_;  // in declaration order
  std::vector<std::string> mistakes_;  // declarations that did not match the proto
  LocalHandlers local_;                // unary methods without gRPC
};

}  // namespace hotpath::rpc
