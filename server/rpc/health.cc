#include "server/rpc/health.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace hotpath::rpc {

namespace {

// grpc.health.v1.Health (the generated service class does not expose its descriptor).
const google::protobuf::ServiceDescriptor* HealthDescriptor() {
  return ::grpc::health::v1::HealthCheckRequest::descriptor()->file()->FindServiceByName("Health");
}
}  // namespace

// One Watch stream: the current status first, then every change, one write at a time (a change
// that comes while a write is out is sent when it completes, the latest one only). Lives until its
// final operation and the call's done notification have both come back.
class HealthService::WatchCall final : public CompletionHandler {
 public:
  static void Arm(HealthService* health, grpc::ServerCompletionQueue* cq) {
    new WatchCall(health, cq);
  }

  void OnComplete(bool ok) override {
    std::unique_lock lock(mu_);
    switch (state_) {
      case State::kAwaiting: {
        if (!ok) {  // the server is shutting down and this call never started (no done tag)
          lock.unlock();
          delete this;
          return;
        }
        live_.Enter(health_->options_.live_calls, cq_);
        observation_.Matched(health_->options_.observer, health_->watch_->full_name(),
                             CallObserver::RpcType::SERVER_STREAMING);
        observation_.Received();
        Arm(health_, cq_);
        state_ = State::kWatching;
        grpc::Status parsed = ParseMessage(&request_bytes_, &request_);
        if (!parsed.ok()) return FinishLocked(parsed);
        // The service's lock comes before ours (AddWatcher calls Notify), so ours is let go; the
        // call may meanwhile be cancelled and finished, but not deleted (registering_).
        registering_ = true;
        lock.unlock();
        const bool added = health_->AddWatcher(this);
        lock.lock();
        registering_ = false;
        if (!added && state_ == State::kWatching) {
          FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
        }
        return ReleaseIfDone(lock);
      }
      case State::kWatching:
        writing_ = false;
        if (!ok) return FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        return WriteOrEndLocked();
      case State::kFinishing:
        finished_ = true;
        return ReleaseIfDone(lock);
    }
  }

  // Which service it watches; set before the call is registered, then constant.
  const std::string& service() const { return request_.service(); }

  // The service's status changed (called with the service's lock held).
  void Notify(Response::ServingStatus status, bool end) {
    std::lock_guard lock(mu_);
    if (state_ != State::kWatching) return;
    latest_ = status;
    end_ = end_ || end;
    if (!writing_) WriteOrEndLocked();
  }

 private:
  enum class State { kAwaiting, kWatching, kFinishing };

  WatchCall(HealthService* health, grpc::ServerCompletionQueue* cq)
      : health_(health), cq_(cq), writer_(&context_), done_tag_(this) {
    {
      HandingToGrpc handing(&done_tag_);
      context_.AsyncNotifyWhenDone(&done_tag_);
    }
    HandingToGrpc handing(this);
    health_->raw_.RequestServerStream(health_->watch_->index(), &context_, &request_bytes_,
                                      &writer_, cq_, this);
  }

  // The call is over (finished, or cancelled by the client): an idle watch finishes now.
  void OnDone() {
    std::unique_lock lock(mu_);
    done_ = true;
    if (state_ == State::kWatching && !writing_) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
    }
    ReleaseIfDone(lock);
  }
  using DoneTag = OwnerTag<WatchCall, &WatchCall::OnDone>;

  void WriteOrEndLocked() {
    if (latest_ != sent_) {
      Response response;
      response.set_status(latest_);
      sent_ = latest_;
      writing_ = true;
      observation_.Sending(context_);
      HandingToGrpc handing(this);
      writer_.Write(SerializeMessage(response), this);
    } else if (end_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    }
  }

  void FinishLocked(const grpc::Status& status) {
    state_ = State::kFinishing;
    observation_.Finishing(context_, status);
    HandingToGrpc handing(this);
    writer_.Finish(status, this);
  }

  // Deletes the call once its final operation and the done notification are both back.
  void ReleaseIfDone(std::unique_lock<std::mutex>& lock) {
    if (!(finished_ && done_) || registering_) return;
    lock.unlock();
    health_->RemoveWatcher(this);
    delete this;
  }

  LiveCalls::Presence live_;         // counted from match to destruction (first: destroyed last)
  HealthService* health_;            // the service, outlives every call
  grpc::ServerCompletionQueue* cq_;  // the queue this call lives on
  grpc::ServerContext context_;      // per-call metadata
  CallObservation observation_;      // x-process-time and the observer's hooks
  grpc::ByteBuffer request_bytes_;   // the client's message as received
  Request request_;                  // which service to watch
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;  // the stream
  DoneTag done_tag_;                                  // learns when the call is over
  std::mutex mu_;                                     // guards everything below
  State state_ = State::kAwaiting;                    // where the state machine is
  // Last status sent and the latest known; UNKNOWN is never a real one, so the first always goes.
  Response::ServingStatus sent_ = Response::UNKNOWN;
  Response::ServingStatus latest_ = Response::UNKNOWN;
  bool writing_ = false;      // a write is out
  bool end_ = false;          // the server is shutting down: finish after the latest status
  bool finished_ = false;     // the final operation came back
  bool done_ = false;         // the done notification came back
  bool registering_ = false;  // AddWatcher is running: not to be deleted yet
};

HealthService::HealthService()
    : raw_(HealthDescriptor()), watch_(HealthDescriptor()->FindMethodByName("Watch")) {
  check_.service = &raw_;
  check_.method = HealthDescriptor()->FindMethodByName("Check");
  check_.handler = [this](grpc::ServerContext&, const Request& request,
                          UnaryResponder<Response> responder) {
    Check(request, std::move(responder));
  };
  serving_[""] = true;
}

HealthService::~HealthService() = default;

void HealthService::Arm(grpc::ServerCompletionQueue* cq, const CallOptions& options) {
  options_ = options;
  options_.gate = nullptr;  // probes need no token and are never shed
  for (int i = 0; i < options_.pending_calls; ++i) {
    UnaryCall<Request, Response>::Arm(&check_, cq, &options_);
  }
  WatchCall::Arm(this, cq);
}

void HealthService::Check(const Request& request, UnaryResponder<Response> responder) {
  Response response;
  bool known;
  {
    std::lock_guard lock(mu_);
    known = serving_.find(request.service()) != serving_.end();
    response.set_status(StatusOfLocked(request.service()));
  }
  if (!known) {
    return responder.Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND,
                     absl::StrCat("no health status for service '", request.service(), "'")));
  }
  responder.Finish(response);
}

HealthService::Response::ServingStatus HealthService::StatusOfLocked(
    const std::string& service) const {
  auto it = serving_.find(service);
  if (it == serving_.end()) return Response::SERVICE_UNKNOWN;
  return it->second && !shut_down_ ? Response::SERVING : Response::NOT_SERVING;
}

void HealthService::SetServingStatus(const std::string& service, bool serving) {
  std::lock_guard lock(mu_);
  serving_[service] = serving;
  NotifyWatchersLocked(false);
}

void HealthService::SetServingStatus(bool serving) {
  std::lock_guard lock(mu_);
  for (auto& [service, value] : serving_) value = serving;
  NotifyWatchersLocked(false);
}

void HealthService::Shutdown() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  NotifyWatchersLocked(true);
}

void HealthService::NotifyWatchersLocked(bool end) {
  // Every watch is told its own service's status; one that did not change writes nothing.
  for (WatchCall* call : watchers_) call->Notify(StatusOfLocked(call->service()), end);
}

bool HealthService::AddWatcher(WatchCall* call) {
  std::lock_guard lock(mu_);
  if (shut_down_) return false;
  watchers_.insert(call);
  call->Notify(StatusOfLocked(call->service()), false);
  return true;
}

void HealthService::RemoveWatcher(WatchCall* call) {
  std::lock_guard lock(mu_);
  watchers_.erase(call);
}

}  // namespace hotpath::rpc
