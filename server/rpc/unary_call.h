// A unary call on the async API (see call_base.h): the handler answers through a UnaryResponder,
// at once or later from another thread.
#pragma once

#include <grpcpp/support/async_unary_call.h>

#include <functional>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "server/cache/object_memo.h"
#include "server/rpc/call_base.h"
#include "server/rpc/cancellation.h"

namespace hotpath::rpc {

template <class Response>
class UnaryCallBase {
 public:
  virtual ~UnaryCallBase() = default;
  virtual void Finish(const Response* response, const grpc::Status& status) = 0;
  // OK with an object a cache holds (Answers::kHeld): its bytes may be kept for the next call.
  virtual void FinishHeld(const std::shared_ptr<const Response>& response) = 0;
  // Raised when the client cancels or goes away; null unless the method asked for it.
  virtual std::shared_ptr<Cancellation> cancellation() const = 0;
};

// The right to answer one unary call, exactly once, from any thread. Dropping it unanswered answers
// INTERNAL, so no call is ever left hanging.
template <class Response>
class UnaryResponder final {
 public:
  explicit UnaryResponder(UnaryCallBase<Response>* call) : call_(call) {}
  UnaryResponder(UnaryResponder&& other) noexcept : call_(std::exchange(other.call_, nullptr)) {}
  UnaryResponder& operator=(UnaryResponder&& other) noexcept {
    if (this != &other) {
      Abandon();
      call_ = std::exchange(other.call_, nullptr);
    }
    return *this;
  }
  ~UnaryResponder() { Abandon(); }

  void Finish(const Response& response) {
    std::exchange(call_, nullptr)->Finish(&response, grpc::Status::OK);
  }
  // An object a cache holds, never changed (see UnaryCallBase::FinishHeld).
  void FinishHeld(const std::shared_ptr<const Response>& response) {
    std::exchange(call_, nullptr)->FinishHeld(response);
  }
  void Finish(const grpc::Status& status) {
    std::exchange(call_, nullptr)->Finish(nullptr, status);
  }
  void Finish(const absl::StatusOr<Response>& result) {
    if (result.ok()) {
      Finish(*result);
    } else {
      Finish(ToGrpcStatus(result.status()));
    }
  }
  // See UnaryCallBase::cancellation. Only before the call is answered.
  std::shared_ptr<Cancellation> cancellation() const { return call_->cancellation(); }

 private:
  void Abandon() {
    if (call_ != nullptr) {
      std::exchange(call_, nullptr)
          ->Finish(nullptr, grpc::Status(grpc::StatusCode::INTERNAL, "call dropped unanswered"));
    }
  }

  UnaryCallBase<Response>* call_;  // the call to answer; null once answered
};

// Runs work() (absl::StatusOr<R>()) on the executor and hands its result to answer, on the
// executor's thread; when the executor refuses the work, answer gets Executor::BusyError() at once.
// While work runs, cancellation (may be null) is Current(), so the database statements it starts
// are cancelled when the caller goes away; work whose caller went away while it waited for a
// thread is not started (answer gets CANCELLED). The one way gRPC calls and in-process calls
// (ServiceBindings' local handlers) run blocking work.
template <class Work, class Answer>
void RunOnExecutor(Executor& executor, std::shared_ptr<Cancellation> cancellation, Work work,
                   Answer answer) {
  using Result = decltype(work());
  auto shared = std::make_shared<Answer>(std::move(answer));
  const bool queued = executor.Submit(
      [shared, cancellation = std::move(cancellation), work = std::move(work)]() mutable {
        if (cancellation != nullptr && cancellation->cancelled()) {
          return (*shared)(
              Result(absl::CancelledError("the caller went away before its work started")));
        }
        Cancellation::Scope scope(cancellation.get());
        (*shared)(work());
      });
  if (!queued) (*shared)(Result(Executor::BusyError()));
}

// The same, answering a gRPC call: with the call's cancellation, and its responder as the answer.
template <class Response, class Work>
void RunOnExecutor(Executor& executor, UnaryResponder<Response> responder, Work work) {
  std::shared_ptr<Cancellation> cancellation = responder.cancellation();
  RunOnExecutor(executor, std::move(cancellation), std::move(work),
                [responder = std::move(responder)](const absl::StatusOr<Response>& result) mutable {
                  responder.Finish(result);
                });
}

template <class Request, class Response>
class UnaryCall final : public CallBase, public UnaryCallBase<Response> {
 public:
  using Writer = grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>;
  // Called on a completion-queue thread; answers through the responder now or later.
  using Handler =
      std::function<void(grpc::ServerContext&, const Request&, UnaryResponder<Response>)>;

  struct Method {
    RawService* service;                               // the service it belongs to
    const google::protobuf::MethodDescriptor* method;  // which method
    Handler handler;                                   // what to do with each call
    // Learn when a client cancels or disconnects (UnaryResponder::cancellation); costs one more
    // completion per call, so only for handlers with work worth stopping.
    bool cancellable = false;
    // Wire bytes of answers finished with FinishHeld, by object; null: serialized every time.
    cache::ObjectMemo<grpc::Slice>* wire_memo = nullptr;
  };

  // Registers one pending call of method on cq. method and options must outlive the server.
  static void Arm(const Method* method, grpc::ServerCompletionQueue* cq,
                  const CallOptions* options) {
    new UnaryCall(method, cq, options);
  }

  void OnComplete(bool ok) override {
    if (state_ == State::kAwaiting && !ok) {
      delete this;  // the server is shutting down and this call never started (no done tag)
      return;
    }
    if (state_ == State::kFinishing) return Release();
    Matched(*method_->method, CallObserver::RpcType::NORMAL_RPC);
    Received();  // a unary call's request arrives with it
    Arm(method_, cq_, options_);
    state_ = State::kHandling;
    grpc::Status admitted = Admit(*method_->method);
    if (admitted.ok()) {
      admitted = ParseMessage(&request_bytes_, &request_, options_->max_message_bytes);
    }
    if (!admitted.ok()) return Finish(nullptr, admitted);
    // After this the responder owns the call: it may be finished (and deleted) on another thread
    // before the handler even returns, so nothing below may touch members.
    method_->handler(context_, request_, UnaryResponder<Response>(this));
  }

  std::shared_ptr<Cancellation> cancellation() const override { return cancellation_; }

  void Finish(const Response* response, const grpc::Status& status) override {
    if (response == nullptr) {
      state_ = State::kFinishing;
      FreeSlot();
      return FinishWithError(status);
    }
    std::size_t bytes = 0;
    grpc::ByteBuffer serialized = Serialize(*response, &bytes);
    FinishOk(std::move(serialized), bytes);
  }

  void FinishHeld(const std::shared_ptr<const Response>& response) override {
    cache::ObjectMemo<grpc::Slice>* memo = method_->wire_memo;
    if (memo == nullptr) return Finish(response.get(), grpc::Status::OK);
    grpc::Slice wire;
    if (!memo->Find(method_->method, response, 0, &wire)) {
      std::size_t bytes = 0;
      grpc::ByteBuffer serialized = Serialize(*response, &bytes);
      // Not kept when larger than the memo keeps (not copied into one slice for nothing) or over
      // the message limit (FinishOk answers the error).
      if (bytes > memo->max_value_bytes() || bytes > options_->max_message_bytes ||
          (!serialized.TrySingleSlice(&wire).ok() && !serialized.DumpToSingleSlice(&wire).ok())) {
        return FinishOk(std::move(serialized), bytes);
      }
      memo->Keep(method_->method, response, 0, wire);
    }
    FinishOk(grpc::ByteBuffer(&wire, 1), wire.size());
  }

 private:
  enum class State { kAwaiting, kHandling, kFinishing };

  // response serialized, *bytes its size; empty when over the message limit (FinishOk then
  // answers the error instead).
  grpc::ByteBuffer Serialize(const Response& response, std::size_t* bytes) const {
    *bytes = response.ByteSizeLong();
    return *bytes > options_->max_message_bytes ? grpc::ByteBuffer() : SerializeMessage(response);
  }

  // An answer of `bytes` bytes, serialized (unless over the limit, which answers an error).
  void FinishOk(grpc::ByteBuffer serialized, std::size_t bytes) {
    state_ = State::kFinishing;
    FreeSlot();
    if (bytes > options_->max_message_bytes) {
      return FinishWithError(OversizeAnswer(bytes, options_->max_message_bytes));
    }
    // The response travels with the initial metadata, so its size can still decide.
    if (bytes >= options_->compress_min_bytes) CompressIfAccepted(context_);
    Sending();
    Finishing(grpc::Status::OK);
    Start([this, serialized = std::move(serialized)] {
      HandingToGrpc handing(this);
      writer_.Finish(serialized, grpc::Status::OK, this);
    });
  }

  void FinishWithError(grpc::Status status) {
    status =
        AsTheCallerSawIt(std::move(status), cancellation_ != nullptr && cancellation_->cancelled(),
                         context_.deadline());
    Finishing(status);
    Start([this, status] {
      HandingToGrpc handing(this);
      writer_.FinishWithError(status, this);
    });
  }

  // Starts the final operation: here, or, answered from inside a HandoffBatch, on the polling
  // thread of the call's queue with the batch's other answers there (cq_handoff.h).
  template <class Operation>
  void Start(Operation operation) {
    if (app::HandoffBatch::Open()) {
      if (auto handoff = options_->HandoffFor(cq_)) {
        return app::HandoffBatch::Add(std::move(handoff), std::move(operation));
      }
    }
    operation();
  }

  // AsyncNotifyWhenDone's: raises the cancellation when the call was cancelled.
  void OnDone() {
    if (context_.IsCancelled()) CancelSoon(cancellation_);
    Release();
  }
  using DoneTag = OwnerTag<UnaryCall, &UnaryCall::OnDone>;

  UnaryCall(const Method* method, grpc::ServerCompletionQueue* cq, const CallOptions* options)
      : CallBase(cq, options, /*references=*/1),
        method_(method),
        writer_(&context_),
        done_tag_(this) {
    if (method_->cancellable) {
      cancellation_ = std::make_shared<Cancellation>();
      Retain();  // the done tag
      {
        HandingToGrpc handing(&done_tag_);
        context_.AsyncNotifyWhenDone(&done_tag_);
      }
    }
    {
      HandingToGrpc handing(this);
      method_->service->RequestUnary(method_->method->index(), &context_, &request_bytes_, &writer_,
                                     cq_, this);
    }
  }

  const Method* method_;                        // shared registration of the method
  grpc::ByteBuffer request_bytes_;              // the client's message as received
  Request request_;                             // the client's message
  Writer writer_;                               // answers the call
  DoneTag done_tag_;                            // learns of cancellation (cancellable methods only)
  std::shared_ptr<Cancellation> cancellation_;  // raised by done_tag_; null if not cancellable
  State state_ = State::kAwaiting;              // where the state machine is
};

}  // namespace hotpath::rpc
