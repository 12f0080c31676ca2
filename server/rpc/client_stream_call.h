// A client-streaming call on the async API (see call_base.h).
#pragma once

#include <grpcpp/support/async_stream.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "server/rpc/call_base.h"
#include "server/rpc/streams.h"

namespace hotpath::rpc {

// Client streaming: read up to batch_size messages, or kMaxBatchBytes of them, hand them to the
// sink on the executor (no further read until it is done, so a slow sink holds back the client),
// repeat; on half-close, finish the sink and answer (with where its writes committed,
// x-hotpath-lsn, as a unary write does).
template <class Request, class Response>
class ClientStreamCall final : public CallBase {
 public:
  // A batch ends at the message that brings it to this many bytes (as they arrived, inflated), so
  // a call holds at most this plus one message: by count alone, a thousand messages of 4 MiB
  // (each a few KiB of gzip on the wire) were held until their batch was consumed.
  static constexpr std::size_t kMaxBatchBytes = 1 << 20;

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
        Matched(*method_->method, CallObserver::RpcType::CLIENT_STREAMING);
        Arm(method_, cq_, options_);
        if (grpc::Status admitted = Admit(*method_->method); !admitted.ok()) {
          return FinishWithError(admitted);
        }
        auto read_after = ReadAfterOf(context_);
        if (!read_after.ok()) return FinishWithError(ToGrpcStatus(read_after.status()));
        consistency_.emplace(*read_after);
        auto sink = method_->handler(context_);
        if (!sink.ok()) return FinishWithError(ToGrpcStatus(sink.status()));
        sink_ = *std::move(sink);
        return ReadNext();
      }
      case State::kReading: {
        if (!ok) {
          // A read fails at the client's half-close and when the stream broke (cancelled, the
          // connection lost, the server stopping). The done tag, which says which, may come after
          // the last batch is consumed, so ask the call itself: only a half-close may commit.
          if (grpc_call_failed_before_recv_message(context_.c_call()) != 0) cancelled_ = true;
          return Consume(/*last=*/true);
        }
        Received();
        batch_.emplace_back();
        std::size_t size = 0;
        if (grpc::Status parsed =
                ParseMessage(&incoming_, &batch_.back(), options_->max_message_bytes, &size);
            !parsed.ok()) {
          // Nothing of this stream is committed: the sink is dropped unfinished.
          return FinishWithError(
              grpc::Status(parsed.error_code(),
                           absl::StrCat("message ", received_ + 1, ": ", parsed.error_message())));
        }
        ++received_;
        batch_bytes_ += size;
        if (batch_.size() >= method_->batch_size || batch_bytes_ >= kMaxBatchBytes) {
          return Consume(/*last=*/false);
        }
        return ReadNext();
      }
      case State::kConsuming:
      case State::kFinishing:
        return Release();
    }
  }

 private:
  enum class State { kAwaiting, kReading, kConsuming, kFinishing };

  // AsyncNotifyWhenDone's tag: tells whether the call was cancelled.
  void OnDone() {
    cancelled_ = context_.IsCancelled();
    Release();
  }
  using DoneTag = OwnerTag<ClientStreamCall, &ClientStreamCall::OnDone>;

  ClientStreamCall(const Method* method, grpc::ServerCompletionQueue* cq,
                   const CallOptions* options)
      : CallBase(cq, options, /*references=*/2),  // the final operation and the done tag
        method_(method),
        reader_(&context_),
        done_tag_(this) {
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
      // The sink's writes report where they committed to it; its reads include what the client
      // sent.
      const Consistency::Scope scope(&*consistency_);
      if (!batch_.empty()) {
        const absl::Status status = sink_->Consume(batch_);
        batch_.clear();
        batch_bytes_ = 0;
        if (!status.ok()) return FinishWithError(ToGrpcStatus(status));
      }
      if (!last) return ReadNext();
      auto response = sink_->Finish(cancelled_);
      if (!response.ok()) return FinishWithError(ToGrpcStatus(response.status()));
      const std::size_t bytes = response->ByteSizeLong();
      if (bytes > options_->max_message_bytes) {
        return FinishWithError(OversizeAnswer(bytes, options_->max_message_bytes));
      }
      AnswerCommitted(context_, *consistency_);  // as a unary write answers
      state_ = State::kFinishing;
      FreeSlot();
      if (bytes >= options_->compress_min_bytes) CompressIfAccepted(context_);
      Sending();
      Finishing(grpc::Status::OK);
      {
        HandingToGrpc handing(this);
        reader_.Finish(SerializeMessage(*response), grpc::Status::OK, this);
      }
    });
    if (!queued) FinishWithError(ExecutorRefusedStatus());
  }

  void FinishWithError(const grpc::Status& status) {
    state_ = State::kFinishing;
    FreeSlot();
    Finishing(status);
    {
      HandingToGrpc handing(this);
      reader_.FinishWithError(status, this);
    }
  }

  const Method* method_;                                 // shared registration of the method
  Reader reader_;                                        // reads the stream, answers once
  DoneTag done_tag_;                                     // learns of cancellation
  std::unique_ptr<StreamSink<Request, Response>> sink_;  // where messages go
  std::optional<Consistency> consistency_;               // x-hotpath-lsn: read after, committed
  grpc::ByteBuffer incoming_;                            // target of the pending read
  std::vector<Request> batch_;                           // messages not yet consumed
  std::size_t batch_bytes_ = 0;                          // their size as they arrived
  std::size_t received_ = 0;                             // messages read so far
  std::atomic<bool> cancelled_{false};                   // set when the call died early
  State state_ = State::kAwaiting;                       // where the state machine is
};

}  // namespace hotpath::rpc
