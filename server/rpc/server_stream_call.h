// A server-streaming call on the async API (see call_base.h).
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/support/async_stream.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/time/clock.h"
#include "server/rpc/call_base.h"
#include "server/rpc/cancellation.h"
#include "server/rpc/streams.h"

namespace hotpath::rpc {

// Server streaming: fetch a batch on the executor, write it one message at a time (each write waits
// for the previous one, so a slow reader holds back the producer), fetch the next.
template <class Request, class Response>
class ServerStreamCall final : public CallBase {
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
        if (!ok) {
          delete this;  // the server is shutting down and this call never started (no done tag)
          return;
        }
        Matched(*method_->method, CallObserver::RpcType::SERVER_STREAMING);
        Received();
        Arm(method_, cq_, options_);
        grpc::Status admitted = Admit(*method_->method);
        if (admitted.ok()) {
          admitted = ParseMessage(&request_bytes_, &request_, options_->max_message_bytes);
        }
        if (!admitted.ok()) return FinishWith(admitted);
        auto read_after = ReadAfterOf(context_);
        if (!read_after.ok()) return FinishWith(ToGrpcStatus(read_after.status()));
        // A stream's batches never read older data than an earlier batch did.
        consistency_.emplace(*read_after, /*monotonic=*/true);
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

  void WatchForStalls() {
    if (options_->stream_stall_timeout == absl::InfiniteDuration()) return;
    std::lock_guard lock(stall_mu_);
    Retain();  // released by the alarm's last turn
    ArmStallAlarmLocked(absl::Now() + options_->stream_stall_timeout);
  }
  void ArmStallAlarmLocked(absl::Time when) {
    HandingToGrpc handing(&stall_tag_);
    stall_alarm_.Set(cq_, absl::ToChronoTime(when), &stall_tag_);
  }
  // The stall alarm's: cancels the call when one write has been pending for stream_stall_timeout
  // (the client reads nothing), and otherwise looks again later.
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
  using StallTag = OwnerTag<ServerStreamCall, &ServerStreamCall::OnStallCheck>;

  // AsyncNotifyWhenDone's: a client that cancels or leaves cancels the batch being read (its
  // statement), not only the next write.
  void OnDone() {
    if (context_.IsCancelled()) CancelSoon(cancellation_);
    Release();
  }
  using DoneTag = OwnerTag<ServerStreamCall, &ServerStreamCall::OnDone>;

  ServerStreamCall(const Method* method, grpc::ServerCompletionQueue* cq,
                   const CallOptions* options)
      : CallBase(cq, options, /*references=*/2),  // the call's tags and the done tag
        method_(method),
        writer_(&context_),
        stall_tag_(this),
        done_tag_(this) {
    {
      HandingToGrpc handing(&done_tag_);
      context_.AsyncNotifyWhenDone(&done_tag_);
    }
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
      const Consistency::Scope scope(&*consistency_);  // the position the client sent, if any
      const Cancellation::Scope cancellation(cancellation_.get());
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
      const std::size_t bytes = message.ByteSizeLong();
      if (bytes > options_->max_message_bytes) {
        return FinishWith(OversizeAnswer(bytes, options_->max_message_bytes));
      }
      grpc::WriteOptions write_options;
      // Compression, when the call has it, is per message: small ones are not worth it.
      if (bytes < options_->compress_min_bytes) write_options.set_no_compression();
      writing_since_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
      Sending();
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

  void FinishWith(grpc::Status status) {
    status = AsTheCallerSawIt(std::move(status), cancellation_->cancelled(), context_.deadline());
    state_ = State::kFinishing;
    FreeSlot();
    {
      std::lock_guard lock(stall_mu_);
      finishing_ = true;
      stall_alarm_.Cancel();  // its tag comes back at once, and releases
    }
    Finishing(status);
    {
      HandingToGrpc handing(this);
      writer_.Finish(status, this);
    }
  }

  const Method* method_;                            // shared registration of the method
  grpc::ByteBuffer request_bytes_;                  // the client's message as received
  Request request_;                                 // the client's message
  Writer writer_;                                   // writes the stream
  std::unique_ptr<StreamSource<Response>> source_;  // where messages come from
  std::optional<Consistency> consistency_;          // what its reads must include (x-hotpath-lsn)
  std::vector<Response> batch_;                     // the batch being written
  std::size_t next_ = 0;                            // index in batch_ of the next write
  bool done_ = false;                               // the source has no more batches
  State state_ = State::kAwaiting;                  // where the state machine is
  std::atomic<std::int64_t> writing_since_{0};      // when the pending write began (ns); 0: none
  std::mutex stall_mu_;                             // guards the alarm and finishing_
  grpc::Alarm stall_alarm_;                         // wakes OnStallCheck
  StallTag stall_tag_;                              // the alarm's tag
  DoneTag done_tag_;                                // learns of cancellation
  std::shared_ptr<Cancellation> cancellation_ = std::make_shared<Cancellation>();  // raised by it
  bool finishing_ = false;  // the final operation has started
};

}  // namespace hotpath::rpc
