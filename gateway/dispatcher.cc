#include "gateway/dispatcher.h"

#include <grpcpp/support/client_callback.h>

namespace hotpath::gateway {
namespace {

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  bytes.reserve(buffer.Length());
  for (const auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return bytes;
}

Metadata ToMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& in) {
  Metadata out;
  for (const auto& [k, v] : in)
    out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return out;
}

void Prepare(grpc::ClientContext& context, const OutgoingCall& call,
             absl::Duration timeout = absl::InfiniteDuration()) {
  if (call.deadline != absl::InfiniteFuture()) {
    context.set_deadline(absl::ToChronoTime(call.deadline));
  } else if (timeout != absl::InfiniteDuration()) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }
  for (const auto& [key, value] : call.metadata) context.AddMetadata(key, value);
}

// One server-streaming call, as the generic stub sees every call: bidirectional.
class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(std::string request, std::shared_ptr<StreamObserver> observer)
      : request_(ToBuffer(request)), observer_(std::move(observer)) {}

  // self: this call, owned until OnDone.
  void Start(std::shared_ptr<StreamCall> self, grpc::GenericStub& stub, const OutgoingCall& call) {
    self_ = std::move(self);
    Prepare(context_, call);
    stub.PrepareBidiStreamingCall(&context_, call.method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    // Reads are started from outside the reactions (when the HTTP client has taken the previous
    // message): the hold keeps the call, and OnDone, waiting until the read flow ends.
    AddHold();
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return RemoveHold();  // the stream ended: no more reads; OnDone follows
    observer_->OnMessage(
        FromBuffer(response_), [this] { StartRead(&response_); },
        [this] {
          context_.TryCancel();
          RemoveHold();
        });
  }

  void OnDone(const grpc::Status& status) override {
    CallResult result;
    result.status = status;
    result.headers = ToMetadata(context_.GetServerInitialMetadata());
    result.trailers = ToMetadata(context_.GetServerTrailingMetadata());
    observer_->OnDone(std::move(result));
    self_.reset();  // the last reference but a Cancel's that runs now
  }

  void Cancel() { context_.TryCancel(); }

 private:
  std::shared_ptr<StreamCall> self_;          // this, until OnDone
  grpc::ClientContext context_;               // the call
  grpc::ByteBuffer request_;                  // the one request message
  grpc::ByteBuffer response_;                 // target of the pending read
  std::shared_ptr<StreamObserver> observer_;  // where messages go
};

}  // namespace

std::function<void()> Dispatcher::Unary(const OutgoingCall& call, std::string request,
                                        std::function<void(CallResult)> done) {
  struct State {
    grpc::ClientContext context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto state = std::make_shared<State>();
  Prepare(state->context, call, unary_timeout_);
  state->request = ToBuffer(request);
  stub_.UnaryCall(&state->context, call.method, grpc::StubOptions(), &state->request,
                  &state->response, [state, done = std::move(done)](grpc::Status status) {
                    CallResult result;
                    result.status = std::move(status);
                    if (result.status.ok()) result.response = FromBuffer(state->response);
                    result.headers = ToMetadata(state->context.GetServerInitialMetadata());
                    result.trailers = ToMetadata(state->context.GetServerTrailingMetadata());
                    done(std::move(result));
                  });
  // The call's callback holds its state until it ends.
  return [weak = std::weak_ptr<State>(state)] {
    if (auto state = weak.lock()) state->context.TryCancel();
  };
}

std::function<void()> Dispatcher::ServerStream(const OutgoingCall& call, std::string request,
                                               std::shared_ptr<StreamObserver> observer) {
  auto stream = std::make_shared<StreamCall>(std::move(request), std::move(observer));
  stream->Start(stream, stub_, call);
  return [weak = std::weak_ptr<StreamCall>(stream)] {
    if (auto stream = weak.lock()) stream->Cancel();
  };
}

}  // namespace hotpath::gateway
