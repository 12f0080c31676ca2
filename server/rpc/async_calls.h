// State machines for gRPC's async completion-queue API: one object per call, one obvious place
// where each state ends.
//
// Every tag this runtime puts on a completion queue is a CompletionHandler*. A call object arms
// itself (registers a pending Request* with the server); when a client call matches it, it arms a
// replacement so the method always has pending calls, hands the request to the method's handler and
// lives until its final operation completes.
//
// Handlers run on completion-queue threads and must not block: anything slow (database work) goes
// to the Executor, and the call is finished from there.
//
// Methods are served raw (gRPC hands over the bytes) and parsed here, so a malformed message is
// answered INVALID_ARGUMENT; gRPC's own parsing answers INTERNAL "Unable to parse request". Before
// its handler runs, every call passes the CallGate (in-flight cap, bearer tokens).
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/byte_buffer.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/rpc/call_gate.h"
#include "server/rpc/cancellation.h"
#include "server/rpc/executor.h"
#include "server/rpc/message_bytes.h"
#include "server/rpc/status.h"
#include "server/rpc/streams.h"

namespace hotpath::rpc {

// ThreadSanitizer cannot see gRPC's own synchronisation (Debian's libgrpc is not built with it).
// Handing a tag to gRPC happens before the tag comes back from a completion queue (HandingToGrpc
// releases, TakeBack acquires), and the accesses gRPC's inline code makes while filling or
// finishing an operation are its own business (ignored), so TSan judges only hotpath's code.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_release(void* address);
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
class HandingToGrpc final {
 public:
  explicit HandingToGrpc(const void* tag) {
    __tsan_release(const_cast<void*>(tag));
    __tsan_ignore_thread_begin();
  }
  ~HandingToGrpc() { __tsan_ignore_thread_end(); }
};
inline void IgnoreGrpcBegin() { __tsan_ignore_thread_begin(); }
inline void IgnoreGrpcEnd() { __tsan_ignore_thread_end(); }
inline void TakeBack(const void* tag) { __tsan_acquire(const_cast<void*>(tag)); }
#else
class HandingToGrpc final {
 public:
  explicit HandingToGrpc(const void*) {}
};
inline void IgnoreGrpcBegin() {}
inline void IgnoreGrpcEnd() {}
inline void TakeBack(const void*) {}
#endif

class CompletionHandler {
 public:
  virtual ~CompletionHandler() = default;
  // ok: the completion queue's verdict on the operation this tag was given to.
  virtual void OnComplete(bool ok) = 0;
};

// Calls matched and not yet destroyed, counted in a few cache-line-sized slots chosen by
// completion queue, so that counts touched on each queue's own thread do not bounce between cores.
// The server shuts its queues down only once none is left: an operation started on a queue after
// its Shutdown aborts the process, and a call that is refused or answered while the server stops
// (by an executor that no longer takes work, or after a read that failed) starts one.
class LiveCalls final {
 public:
  // Held by a call from the moment a client call matches it until it is destroyed.
  class Presence final {
   public:
    Presence() = default;
    Presence(const Presence&) = delete;
    Presence& operator=(const Presence&) = delete;
    ~Presence() {
      if (calls_ != nullptr) calls_->Slot(cq_).fetch_sub(1, std::memory_order_release);
    }
    // Once per call; calls may be null (not counted).
    void Enter(LiveCalls* calls, const void* cq) {
      if (calls == nullptr) return;
      calls_ = calls;
      cq_ = cq;
      calls_->Slot(cq_).fetch_add(1, std::memory_order_relaxed);
    }

   private:
    LiveCalls* calls_ = nullptr;  // null: not counted
    const void* cq_ = nullptr;    // which slot
  };

  std::int64_t Count() const {
    std::int64_t n = 0;
    for (const auto& slot : slots_) n += slot.n.load(std::memory_order_acquire);
    return n;
  }

 private:
  static constexpr std::size_t kSlots = 8;
  struct alignas(64) Padded {
    std::atomic<std::int64_t> n{0};
  };
  std::atomic<std::int64_t>& Slot(const void* cq) {
    return slots_[(reinterpret_cast<std::uintptr_t>(cq) >> 6) % kSlots].n;
  }

  std::array<Padded, kSlots> slots_;
};

// What every call of a server shares.
struct CallOptions {
  // Pending calls registered per method and completion queue. Default 16.
  int pending_calls = 16;
  // Responses of at least this many bytes are compressed (gzip) for clients that accept gzip;
  // smaller ones never are, and on a stream each message is judged alone. Default 1000 (the FastAPI
  // GZipMiddleware's minimum_size); 0 compresses everything, SIZE_MAX nothing.
  std::size_t compress_min_bytes = 1000;
  // Admits each call before its handler runs; null admits every call.
  CallGate* gate = nullptr;
  // Counts the calls in progress; null counts nothing. Set by AsyncServer.
  LiveCalls* live_calls = nullptr;
  // Largest request message, inflated; set by AsyncServer from its max_message_bytes.
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  // A server stream whose client reads nothing for this long (one write pending all that time)
  // is cancelled, so a client that stops reading cannot hold a call, its slot in the CallGate and
  // its buffered messages for ever. InfiniteDuration: never. Default 30 s.
  absl::Duration stream_stall_timeout = absl::Seconds(30);
};

// The raw form of a generated service: what the calls below register themselves with.
class RawService {
 public:
  virtual ~RawService() = default;
  virtual grpc::Service* service() = 0;
  virtual const google::protobuf::ServiceDescriptor* descriptor() const = 0;
  virtual void RequestUnary(int index, grpc::ServerContext* context, grpc::ByteBuffer* request,
                            grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
                            grpc::ServerCompletionQueue* cq, void* tag) = 0;
  virtual void RequestServerStream(int index, grpc::ServerContext* context,
                                   grpc::ByteBuffer* request,
                                   grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                                   grpc::ServerCompletionQueue* cq, void* tag) = 0;
  virtual void RequestClientStream(
      int index, grpc::ServerContext* context,
      grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer>* reader,
      grpc::ServerCompletionQueue* cq, void* tag) = 0;
};

// Generated: the generated service base, e.g. catalog::v1::CatalogService::Service. Every method
// is marked raw; gRPC numbers methods in descriptor order.
template <class Generated>
class RawServiceOf final : public RawService, private Generated {
 public:
  explicit RawServiceOf(const google::protobuf::ServiceDescriptor* descriptor)
      : descriptor_(descriptor) {
    for (int i = 0; i < descriptor->method_count(); ++i) this->MarkMethodRaw(i);
  }
  grpc::Service* service() override { return this; }
  const google::protobuf::ServiceDescriptor* descriptor() const override { return descriptor_; }
  void RequestUnary(int index, grpc::ServerContext* context, grpc::ByteBuffer* request,
                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
                    grpc::ServerCompletionQueue* cq, void* tag) override {
    this->RequestAsyncUnary(index, context, request, writer, cq, cq, tag);
  }
  void RequestServerStream(int index, grpc::ServerContext* context, grpc::ByteBuffer* request,
                           grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                           grpc::ServerCompletionQueue* cq, void* tag) override {
    this->RequestAsyncServerStreaming(index, context, request, writer, cq, cq, tag);
  }
  void RequestClientStream(int index, grpc::ServerContext* context,
                           grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer>* reader,
                           grpc::ServerCompletionQueue* cq, void* tag) override {
    this->RequestAsyncClientStreaming(index, context, reader, cq, cq, tag);
  }

 private:
  const google::protobuf::ServiceDescriptor* descriptor_;  // the service's methods, in order
};

// Parses a raw message; INVALID_ARGUMENT (not gRPC's INTERNAL) when the bytes are not one, and
// RESOURCE_EXHAUSTED when a compressed message inflates past max_bytes (see message_bytes.h).
template <class Message>
grpc::Status ParseMessage(grpc::ByteBuffer* bytes, Message* message,
                          std::size_t max_bytes = kDefaultMaxMessageBytes) {
  std::string inflated;
  const absl::StatusOr<bool> compressed = InflateIfCompressed(bytes, max_bytes, &inflated);
  if (!compressed.ok()) return ToGrpcStatus(compressed.status());
  const bool parsed = *compressed
                          ? message->ParseFromString(inflated)
                          : grpc::SerializationTraits<Message>::Deserialize(bytes, message).ok();
  if (parsed) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::INVALID_ARGUMENT,
      absl::StrCat("the request is not a valid ", Message::descriptor()->full_name(),
                   " message (bad protobuf encoding or invalid UTF-8 in a string)"));
}

template <class Message>
grpc::ByteBuffer SerializeMessage(const Message& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer;
  grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer);
  return bytes;
}

// Asks options' gate to admit a call of method; OK and *ticket set, or the status to answer.
inline grpc::Status AdmitCall(const CallOptions& options,
                              const google::protobuf::MethodDescriptor& method,
                              const grpc::ServerContext& context, CallGate::Ticket* ticket) {
  if (options.gate == nullptr) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  const std::string_view authorization =
      it == metadata.end() ? std::string_view()
                           : std::string_view(it->second.data(), it->second.size());
  auto admitted = options.gate->Admit(method, authorization, context.peer());
  if (!admitted.ok()) return ToGrpcStatus(admitted.status());
  *ticket = *std::move(admitted);
  return grpc::Status::OK;
}

// Asks the core to compress the call's messages with the best algorithm the client accepts at
// the "low" level: gzip when the client lists it (as every gRPC library does by default),
// identity otherwise. Must be called before the initial metadata is sent.
inline void CompressIfAccepted(grpc::ServerContext& context) {
  context.set_compression_level(GRPC_COMPRESS_LEVEL_LOW);
}

// Serves one completion queue until it is shut down and drained.
void PollCompletionQueue(grpc::ServerCompletionQueue* cq);

inline const grpc::Status& ExecutorRefusedStatus() {
  static const grpc::Status status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   "server busy: the database work queue is full, retry later");
  return status;
}

template <class Response>
class UnaryCallBase {
 public:
  virtual ~UnaryCallBase() = default;
  virtual void Finish(const Response* response, const grpc::Status& status) = 0;
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

// Runs work() on the executor and answers the call with its result. work:
// absl::StatusOr<Response>(). While it runs, the call's cancellation (if any) is Current(), so
// the database statements it starts are cancelled when the client goes away.
template <class Response, class Work>
void RunOnExecutor(Executor& executor, UnaryResponder<Response> responder, Work work) {
  std::shared_ptr<Cancellation> cancellation = responder.cancellation();
  auto shared = std::make_shared<UnaryResponder<Response>>(std::move(responder));
  const bool queued = executor.Submit(
      [shared, cancellation = std::move(cancellation), work = std::move(work)]() mutable {
        Cancellation::Scope scope(cancellation.get());
        shared->Finish(work());
      });
  if (!queued) shared->Finish(ExecutorRefusedStatus());
}

template <class Request, class Response>
class UnaryCall final : public CompletionHandler, public UnaryCallBase<Response> {
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
    live_.Enter(options_->live_calls, cq_);
    Arm(method_, cq_, options_);
    state_ = State::kHandling;
    grpc::Status admitted = AdmitCall(*options_, *method_->method, context_, &ticket_);
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
    state_ = State::kFinishing;
    ticket_ = CallGate::Ticket();  // before the client can see the answer
    if (response != nullptr) {
      // The response travels with the initial metadata, so its size can still decide.
      if (response->ByteSizeLong() >= options_->compress_min_bytes) CompressIfAccepted(context_);
      {
        HandingToGrpc handing(this);
        writer_.Finish(SerializeMessage(*response), status, this);
      }
    } else {
      {
        HandingToGrpc handing(this);
        writer_.FinishWithError(status, this);
      }
    }
  }

 private:
  enum class State { kAwaiting, kHandling, kFinishing };

  // AsyncNotifyWhenDone's tag: raises the cancellation when the call was cancelled.
  class DoneTag final : public CompletionHandler {
   public:
    explicit DoneTag(UnaryCall* call) : call_(call) {}
    void OnComplete(bool) override {
      if (call_->context_.IsCancelled()) CancelSoon(call_->cancellation_);
      call_->Release();
    }

   private:
    UnaryCall* call_;  // the owner
  };

  UnaryCall(const Method* method, grpc::ServerCompletionQueue* cq, const CallOptions* options)
      : method_(method), cq_(cq), options_(options), writer_(&context_), done_tag_(this) {
    if (method_->cancellable) {
      cancellation_ = std::make_shared<Cancellation>();
      references_.store(2, std::memory_order_relaxed);
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

  // The final operation releases once, and the done tag once when there is one.
  void Release() {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  LiveCalls::Presence live_;         // counted from match to destruction (first: destroyed last)
  const Method* method_;             // shared registration of the method
  grpc::ServerCompletionQueue* cq_;  // the queue this call lives on
  const CallOptions* options_;       // the server's call options
  grpc::ServerContext context_;      // per-call metadata, deadline, peer
  grpc::ByteBuffer request_bytes_;   // the client's message as received
  Request request_;                  // the client's message
  Writer writer_;                    // answers the call
  CallGate::Ticket ticket_;          // the call's in-flight slot, freed with the call
  DoneTag done_tag_;                 // learns of cancellation (cancellable methods only)
  std::shared_ptr<Cancellation> cancellation_;  // raised by done_tag_; null if not cancellable
  std::atomic<int> references_{1};              // final op, plus the done tag when cancellable
  State state_ = State::kAwaiting;              // where the state machine is
};

// Server streaming: fetch a batch on the executor, write it one message at a time (each write waits
// for the previous one, so a slow reader holds back the producer), fetch the next.
template <class Request, class Response>
class ServerStreamCall final : public CompletionHandler {
 public:
  using Writer = grpc::ServerAsyncWriter<grpc::ByteBuffer>;
  // Called on a completion-queue thread: validate and build the source, without blocking.
  using Handler = std::function<absl::StatusOr<std::unique_ptr<StreamSource<Response>>>(
      grpc::ServerContext&, const Request&)>;

  struct Method {
    RawService* service;                               // the service it belongs to
    const google::protobuf::MethodDescriptor* method;  // which method
    Handler handler;                                   // builds each call's source
    Executor* executor;                                // where batches are fetched
  };

  static void Arm(const Method* method, grpc::ServerCompletionQueue* cq,
                  const CallOptions* options) {
    new ServerStreamCall(method, cq, options);
  }

  void OnComplete(bool ok) override {
    switch (state_) {
      case State::kAwaiting: {
        if (!ok) break;
        live_.Enter(options_->live_calls, cq_);
        Arm(method_, cq_, options_);
        grpc::Status admitted = AdmitCall(*options_, *method_->method, context_, &ticket_);
        if (admitted.ok()) {
          admitted = ParseMessage(&request_bytes_, &request_, options_->max_message_bytes);
        }
        if (!admitted.ok()) return FinishWith(admitted);
        auto source = method_->handler(context_, request_);
        if (!source.ok()) return FinishWith(ToGrpcStatus(source.status()));
        source_ = *std::move(source);
        // Per message below (WriteNext): gzip when the client accepts it and the message is big.
        if (options_->compress_min_bytes != SIZE_MAX) CompressIfAccepted(context_);
        WatchForStalls();
        return Fetch();
      }
      case State::kWriting:
        writing_since_.store(0, std::memory_order_relaxed);
        if (!ok) {
          return FinishWith(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        }
        return WriteNext();
      case State::kFetching:
      case State::kFinishing:
        break;
    }
    Release();
  }

 private:
  enum class State { kAwaiting, kFetching, kWriting, kFinishing };

  // The stall alarm's tag: cancels the call when one write has been pending for
  // stream_stall_timeout (the client reads nothing), and otherwise looks again later.
  class StallTag final : public CompletionHandler {
   public:
    explicit StallTag(ServerStreamCall* call) : call_(call) {}
    void OnComplete(bool) override { call_->OnStallCheck(); }

   private:
    ServerStreamCall* call_;  // the owner
  };

  void WatchForStalls() {
    if (options_->stream_stall_timeout == absl::InfiniteDuration()) return;
    std::lock_guard lock(stall_mu_);
    references_.fetch_add(1, std::memory_order_relaxed);  // released by the alarm's last turn
    ArmStallAlarmLocked(absl::Now() + options_->stream_stall_timeout);
  }
  void ArmStallAlarmLocked(absl::Time when) {
    HandingToGrpc handing(&stall_tag_);
    stall_alarm_.Set(cq_, absl::ToChronoTime(when), &stall_tag_);
  }
  void OnStallCheck() {
    {
      std::lock_guard lock(stall_mu_);
      if (!finishing_) {
        const std::int64_t since = writing_since_.load(std::memory_order_relaxed);
        const absl::Time now = absl::Now();
        const absl::Duration bound = options_->stream_stall_timeout;
        if (since != 0 && now - absl::FromUnixNanos(since) >= bound) {
          // The pending write then fails, and the stream finishes as CANCELLED.
          context_.TryCancel();
        } else {
          ArmStallAlarmLocked(since != 0 ? absl::FromUnixNanos(since) + bound : now + bound);
          return;
        }
      }
    }
    Release();
  }

  // The final operation releases once, and the stall alarm once when it was armed.
  void Release() {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  ServerStreamCall(const Method* method, grpc::ServerCompletionQueue* cq,
                   const CallOptions* options)
      : method_(method), cq_(cq), options_(options), writer_(&context_), stall_tag_(this) {
    {
      HandingToGrpc handing(this);
      method_->service->RequestServerStream(method_->method->index(), &context_, &request_bytes_,
                                            &writer_, cq_, this);
    }
  }

  void Fetch() {
    state_ = State::kFetching;
    batch_.clear();
    next_ = 0;
    const bool queued = method_->executor->Submit([this] {
      const absl::Status status = source_->Next(&batch_, &done_);
      if (!status.ok()) return FinishWith(ToGrpcStatus(status));
      WriteNext();
    });
    if (!queued) FinishWith(ExecutorRefusedStatus());
  }

  void WriteNext() {
    if (next_ < batch_.size()) {
      state_ = State::kWriting;
      const Response& message = batch_[next_++];
      grpc::WriteOptions write_options;
      // Compression, when the call has it, is per message: small ones are not worth it.
      if (message.ByteSizeLong() < options_->compress_min_bytes) write_options.set_no_compression();
      writing_since_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
      {
        HandingToGrpc handing(this);
        writer_.Write(SerializeMessage(message), write_options, this);
      }
    } else if (done_) {
      FinishWith(grpc::Status::OK);
    } else {
      Fetch();
    }
  }

  void FinishWith(const grpc::Status& status) {
    state_ = State::kFinishing;
    ticket_ = CallGate::Ticket();  // before the client can see the answer
    {
      std::lock_guard lock(stall_mu_);
      finishing_ = true;
      stall_alarm_.Cancel();  // its tag comes back at once, and releases
    }
    {
      HandingToGrpc handing(this);
      writer_.Finish(status, this);
    }
  }

  LiveCalls::Presence live_;         // counted from match to destruction (first: destroyed last)
  const Method* method_;             // shared registration of the method
  grpc::ServerCompletionQueue* cq_;  // the queue this call lives on
  const CallOptions* options_;       // the server's call options
  grpc::ServerContext context_;      // per-call metadata, deadline, peer
  grpc::ByteBuffer request_bytes_;   // the client's message as received
  Request request_;                  // the client's message
  Writer writer_;                    // writes the stream
  CallGate::Ticket ticket_;          // the call's in-flight slot
  std::unique_ptr<StreamSource<Response>> source_;  // where messages come from
  std::vector<Response> batch_;                     // the batch being written
  std::size_t next_ = 0;                            // index in batch_ of the next write
  bool done_ = false;                               // the source has no more batches
  State state_ = State::kAwaiting;                  // where the state machine is
  std::atomic<std::int64_t> writing_since_{0};      // when the pending write began (ns); 0: none
  std::mutex stall_mu_;                             // guards the alarm and finishing_
  grpc::Alarm stall_alarm_;                         // wakes OnStallCheck
  StallTag stall_tag_;                              // the alarm's tag
  bool finishing_ = false;                          // the final operation has started
  std::atomic<int> references_{1};                  // final op, plus the stall alarm when armed
};

// Client streaming: read up to batch_size messages, hand them to the sink on the executor (no
// further read until it is done, so a slow sink holds back the client), repeat; on half-close,
// finish the sink and answer.
template <class Request, class Response>
class ClientStreamCall final : public CompletionHandler {
 public:
  using Reader = grpc::ServerAsyncReader<grpc::ByteBuffer, grpc::ByteBuffer>;
  using Handler = std::function<absl::StatusOr<std::unique_ptr<StreamSink<Request, Response>>>(
      grpc::ServerContext&)>;

  struct Method {
    RawService* service;                               // the service it belongs to
    const google::protobuf::MethodDescriptor* method;  // which method
    Handler handler;                                   // builds each call's sink
    Executor* executor;                                // where batches are consumed
    std::size_t batch_size;                            // messages per Consume
  };

  static void Arm(const Method* method, grpc::ServerCompletionQueue* cq,
                  const CallOptions* options) {
    new ClientStreamCall(method, cq, options);
  }

  void OnComplete(bool ok) override {
    switch (state_) {
      case State::kAwaiting: {
        if (!ok) {
          delete this;  // never started, so the done tag will not come either
          return;
        }
        live_.Enter(options_->live_calls, cq_);
        Arm(method_, cq_, options_);
        if (grpc::Status admitted = AdmitCall(*options_, *method_->method, context_, &ticket_);
            !admitted.ok()) {
          return FinishWithError(admitted);
        }
        auto sink = method_->handler(context_);
        if (!sink.ok()) return FinishWithError(ToGrpcStatus(sink.status()));
        sink_ = *std::move(sink);
        return ReadNext();
      }
      case State::kReading:
        if (!ok) {
          // A read fails at the client's half-close and when the stream broke (cancelled, the
          // connection lost, the server stopping). The done tag, which says which, may come after
          // the last batch is consumed, so ask the call itself: only a half-close may commit.
          if (grpc_call_failed_before_recv_message(context_.c_call()) != 0) cancelled_ = true;
          return Consume(/*last=*/true);
        }
        batch_.emplace_back();
        if (grpc::Status parsed =
                ParseMessage(&incoming_, &batch_.back(), options_->max_message_bytes);
            !parsed.ok()) {
          // Nothing of this stream is committed: the sink is dropped unfinished.
          return FinishWithError(
              grpc::Status(parsed.error_code(),
                           absl::StrCat("message ", received_ + 1, ": ", parsed.error_message())));
        }
        ++received_;
        if (batch_.size() >= method_->batch_size) return Consume(/*last=*/false);
        return ReadNext();
      case State::kConsuming:
      case State::kFinishing:
        return Release();
    }
  }

 private:
  enum class State { kAwaiting, kReading, kConsuming, kFinishing };

  // AsyncNotifyWhenDone's tag: tells whether the call was cancelled.
  class DoneTag final : public CompletionHandler {
   public:
    explicit DoneTag(ClientStreamCall* call) : call_(call) {}
    void OnComplete(bool) override {
      call_->cancelled_ = call_->context_.IsCancelled();
      call_->Release();
    }

   private:
    ClientStreamCall* call_;  // the owner
  };

  ClientStreamCall(const Method* method, grpc::ServerCompletionQueue* cq,
                   const CallOptions* options)
      : method_(method), cq_(cq), options_(options), reader_(&context_), done_tag_(this) {
    {
      HandingToGrpc handing(&done_tag_);
      context_.AsyncNotifyWhenDone(&done_tag_);
    }
    {
      HandingToGrpc handing(this);
      method_->service->RequestClientStream(method_->method->index(), &context_, &reader_, cq_,
                                            this);
    }
  }

  // Each of the final operation and the done tag releases once; the second deletes.
  void Release() {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void ReadNext() {
    state_ = State::kReading;
    incoming_.Clear();
    {
      HandingToGrpc handing(this);
      reader_.Read(&incoming_, this);
    }
  }

  void Consume(bool last) {
    state_ = State::kConsuming;
    const bool queued = method_->executor->Submit([this, last] {
      if (!batch_.empty()) {
        const absl::Status status = sink_->Consume(batch_);
        batch_.clear();
        if (!status.ok()) return FinishWithError(ToGrpcStatus(status));
      }
      if (!last) return ReadNext();
      auto response = sink_->Finish(cancelled_);
      if (!response.ok()) return FinishWithError(ToGrpcStatus(response.status()));
      state_ = State::kFinishing;
      ticket_ = CallGate::Ticket();  // before the client can see the answer
      if (response->ByteSizeLong() >= options_->compress_min_bytes) CompressIfAccepted(context_);
      {
        HandingToGrpc handing(this);
        reader_.Finish(SerializeMessage(*response), grpc::Status::OK, this);
      }
    });
    if (!queued) FinishWithError(ExecutorRefusedStatus());
  }

  void FinishWithError(const grpc::Status& status) {
    state_ = State::kFinishing;
    ticket_ = CallGate::Ticket();  // before the client can see the answer
    {
      HandingToGrpc handing(this);
      reader_.FinishWithError(status, this);
    }
  }

  LiveCalls::Presence live_;         // counted from match to destruction (first: destroyed last)
  const Method* method_;             // shared registration of the method
  grpc::ServerCompletionQueue* cq_;  // the queue this call lives on
  const CallOptions* options_;       // the server's call options
  grpc::ServerContext context_;      // per-call metadata, deadline, peer
  Reader reader_;                    // reads the stream, answers once
  DoneTag done_tag_;                 // learns of cancellation
  std::unique_ptr<StreamSink<Request, Response>> sink_;  // where messages go
  grpc::ByteBuffer incoming_;                            // target of the pending read
  std::vector<Request> batch_;                           // messages not yet consumed
  std::size_t received_ = 0;                             // messages read so far
  CallGate::Ticket ticket_;                              // the call's in-flight slot
  std::atomic<bool> cancelled_{false};                   // set when the call died early
  std::atomic<int> references_{2};                       // final op + done tag
  State state_ = State::kAwaiting;                       // where the state machine is
};

}  // namespace hotpath::rpc
