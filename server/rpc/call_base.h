// The shared base of the call state machines of gRPC's async completion-queue API
// (unary_call.h, server_stream_call.h, client_stream_call.h): one object per call, one obvious
// place where each state ends.
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
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/app/handoff_batch.h"
#include "server/http/process_time.h"
#include "server/rpc/call_gate.h"
#include "server/rpc/call_observer.h"
#include "server/rpc/consistency.h"
#include "server/rpc/executor.h"
#include "server/rpc/grpc_handoff.h"
#include "server/rpc/message_bytes.h"
#include "server/rpc/status.h"

namespace hotpath::rpc {

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
  // Told of every call (timing and metrics); null: none. Not owned.
  CallObserver* observer = nullptr;
  // Largest message, a request inflated or an answer; set by AsyncServer from its
  // max_message_bytes. An answer over it ends the call INTERNAL (OversizeAnswer) rather than
  // leave gRPC to fail it after the handler, and the metrics, counted OK.
  std::size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Per completion queue, where a call answered from inside an app::HandoffBatch (a batched read
  // answering its callers) starts its final operation: that queue's polling thread
  // (cq_handoff.h). None for a queue: the answering thread starts it. Set by AsyncServer.
  std::vector<
      std::pair<const grpc::ServerCompletionQueue*, std::shared_ptr<app::HandoffBatch::Queue>>>
      handoffs;
  // The handoff queue of cq, or null.
  std::shared_ptr<app::HandoffBatch::Queue> HandoffFor(
      const grpc::ServerCompletionQueue* cq) const {
    for (const auto& [queue, handoff] : handoffs) {
      if (queue == cq) return handoff;
    }
    return nullptr;
  }
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
// *size, when given, is told the message's size inflated.
template <class Message>
grpc::Status ParseMessage(grpc::ByteBuffer* bytes, Message* message,
                          std::size_t max_bytes = kDefaultMaxMessageBytes,
                          std::size_t* size = nullptr) {
  std::string inflated;
  const absl::StatusOr<bool> compressed = InflateIfCompressed(bytes, max_bytes, &inflated);
  if (!compressed.ok()) return ToGrpcStatus(compressed.status());
  if (size != nullptr) *size = *compressed ? inflated.size() : bytes->Length();
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

// The position a call's reads must include (metadata x-hotpath-lsn, see consistency.h), 0 when it
// sent none; INVALID_ARGUMENT when what it sent is not one.
inline absl::StatusOr<std::uint64_t> ReadAfterOf(const grpc::ServerContext& context) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(Consistency::kMetadataKey);
  if (it == metadata.end()) return 0;
  const std::uint64_t position =
      Consistency::Parse(std::string_view(it->second.data(), it->second.size()));
  if (position == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Consistency::kMetadataKey, Consistency::kMalformed));
  }
  return position;
}

// Where the call's writes committed (if any did), in its initial metadata (x-hotpath-lsn): reads
// that send it back include them, through any replica. Before the answer is sent.
inline void AnswerCommitted(grpc::ServerContext& context, const Consistency& consistency) {
  if (const std::uint64_t committed = consistency.committed(); committed != 0) {
    context.AddInitialMetadata(Consistency::kMetadataKey, Consistency::Format(committed));
  }
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

// An answer of bytes bytes, more than max_bytes a message may hold: the service should have kept it
// smaller (a shorter page, a refusal naming the limit). What the client gets instead.
inline grpc::Status OversizeAnswer(std::size_t bytes, std::size_t max_bytes) {
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat("the answer is ", bytes, " bytes, more than the ", max_bytes,
                                   " a message may hold (--max_message_bytes)"));
}

inline const grpc::Status& ExecutorRefusedStatus() {
  static const grpc::Status status = ToGrpcStatus(Executor::BusyError());
  return status;
}

// A call's second tag (its done notification, an alarm): completes into (owner->*on_complete)().
template <class Owner, void (Owner::*on_complete)()>
class OwnerTag final : public CompletionHandler {
 public:
  explicit OwnerTag(Owner* owner) : owner_(owner) {}
  void OnComplete(bool) override { (owner_->*on_complete)(); }

 private:
  Owner* owner_;  // the call it belongs to
};

// One call's timing and what the observer hears of it, for every call state machine (CallBase's
// and the health and reflection streams): every answer carries x-process-time (seconds since the
// call matched, like the X-Process-Time header of the FastAPI timing middleware) in its initial
// and its trailing metadata. A state machine calls Sending before each message it writes and
// Finishing before its final status; those put it there and tell the observer.
class CallObservation final {
 public:
  static constexpr char kProcessTimeKey[] = "x-process-time";
  using Clock = std::chrono::steady_clock;

  // A client call of the method protobuf names full_name matched: timed from now, and told to
  // observer (may be null).
  void Matched(CallObserver* observer, std::string_view full_name, CallObserver::RpcType type) {
    start_ = Clock::now();
    if (observer != nullptr) {
      observed_ = observer->ForMethod(full_name, type);
      observed_->Started();
    }
  }
  // A request message arrived.
  void Received() {
    if (observed_ != nullptr) observed_->Received();
  }
  // A response message is about to be written (with the initial metadata, if it is the first).
  void Sending(grpc::ServerContext& context) {
    StampInitialMetadata(context);
    if (observed_ != nullptr) observed_->Sent();
  }
  // The final status is about to be sent (with the initial metadata, if nothing was written).
  void Finishing(grpc::ServerContext& context, const grpc::Status& status) {
    StampInitialMetadata(context);
    const Clock::duration elapsed = Clock::now() - start_;
    context.AddTrailingMetadata(kProcessTimeKey, http::FormatProcessTime(elapsed));
    if (observed_ != nullptr) observed_->Finished(status.error_code(), elapsed);
  }

 private:
  void StampInitialMetadata(grpc::ServerContext& context) {
    if (initial_stamped_) return;
    initial_stamped_ = true;
    context.AddInitialMetadata(kProcessTimeKey, http::FormatProcessTime(Clock::now() - start_));
  }

  Clock::time_point start_;                   // when the call matched
  CallObserver::Method* observed_ = nullptr;  // the observer's hooks; null: none
  bool initial_stamped_ = false;              // x-process-time is in the initial metadata
};

// What every call state machine has: its queue and options, its context, its slot in the
// CallGate, its place in LiveCalls, its CallObservation, and a count of the tags still to come
// back (the final operation, plus a done tag or an alarm), the last of which deletes it.
class CallBase : public CompletionHandler {
 protected:
  // references: tags that will come back and Release; more may be added with Retain.
  CallBase(grpc::ServerCompletionQueue* cq, const CallOptions* options, int references)
      : cq_(cq), options_(options), references_(references) {}

  // A client call of method matched this one: counted as live until it is destroyed, timed and
  // observed.
  void Matched(const google::protobuf::MethodDescriptor& method, CallObserver::RpcType type) {
    live_.Enter(options_->live_calls, cq_);
    observation_.Matched(options_->observer, method.full_name(), type);
  }
  // See CallObservation.
  void Received() { observation_.Received(); }
  void Sending() { observation_.Sending(context_); }
  void Finishing(const grpc::Status& status) { observation_.Finishing(context_, status); }
  // Asks the gate to admit the call; OK, or the status to answer.
  grpc::Status Admit(const google::protobuf::MethodDescriptor& method) {
    return AdmitCall(*options_, method, context_, &ticket_);
  }
  // Gives the call's in-flight slot back, before the client can see the answer; its connection's
  // share goes with the call, once the answer is delivered (CallGate::Ticket::Answered).
  void FreeSlot() { ticket_.Answered(); }
  // One more tag will come back and Release.
  void Retain() { references_.fetch_add(1, std::memory_order_relaxed); }
  // A tag came back for the last time; the last one deletes the call.
  void Release() {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  LiveCalls::Presence live_;               // counted from match to destruction (destroyed last)
  grpc::ServerCompletionQueue* const cq_;  // the queue this call lives on
  const CallOptions* const options_;       // the server's call options
  grpc::ServerContext context_;            // per-call metadata, deadline, peer
  CallGate::Ticket ticket_;                // the call's in-flight slot and connection share
  CallObservation observation_;            // x-process-time and the observer's hooks

 private:
  std::atomic<int> references_;  // tags still to come back
};

}  // namespace hotpath::rpc
