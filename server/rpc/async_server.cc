#include "server/rpc/async_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <pthread.h>

#include <chrono>
#include <climits>
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/rpc/async_calls.h"
#include "server/rpc/health.h"
#include "server/rpc/tls.h"

namespace hotpath::rpc {

void PollCompletionQueue(grpc::ServerCompletionQueue* cq) {
  pthread_setname_np(pthread_self(), "hotpath-cq");  // for top -H, perf and gdb
  void* tag;
  bool ok;
  for (;;) {
    IgnoreGrpcBegin();  // Next runs gRPC's inline FinalizeResult code
    const bool more = cq->Next(&tag, &ok);
    IgnoreGrpcEnd();
    if (!more) break;
    TakeBack(tag);
    static_cast<CompletionHandler*>(tag)->OnComplete(ok);
  }
}

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

AsyncServer::AsyncServer(AsyncServerOptions options, std::vector<RpcModule*> modules,
                         InterceptorFactories interceptors)
    : options_(std::move(options)),
      calls_(options_.calls),
      health_(std::make_unique<HealthService>()),
      modules_(std::move(modules)),
      interceptors_(std::move(interceptors)) {
  modules_.push_back(health_.get());
  calls_.live_calls = &live_calls_;
}

AsyncServer::~AsyncServer() {
  if (server_ != nullptr) {
    if (!shut_down_) Shutdown(absl::ZeroDuration());
    StopPolling();
  }
}

absl::Status AsyncServer::Start() {
  auto credentials =
      ServerCredentials(options_.tls_cert_file, options_.tls_key_file, options_.tls_client_ca_file);
  if (!credentials.ok()) return credentials.status();
  // Ours (health_), on the completion queues: gRPC's is a callback service, see health.h.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.address, *credentials, &port_);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  const ConnectionOptions& connections = options_.connections;
  auto milliseconds = [](absl::Duration d) {
    return d == absl::InfiniteDuration() ? INT_MAX : static_cast<int>(absl::ToInt64Milliseconds(d));
  };
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, milliseconds(connections.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             milliseconds(connections.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             milliseconds(connections.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             milliseconds(connections.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             milliseconds(connections.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             milliseconds(connections.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, connections.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, connections.max_metadata_bytes);
  for (RpcModule* module : modules_) builder.RegisterService(module->service());
  if (!interceptors_.empty())
    builder.experimental().SetInterceptorCreators(std::move(interceptors_));
  int queue_count = options_.completion_queues;
  if (queue_count <= 0)
    queue_count = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < queue_count; ++i) queues_.push_back(builder.AddCompletionQueue());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("could not listen on ", options_.address));
  }
  for (auto& queue : queues_) {
    for (RpcModule* module : modules_) module->Arm(queue.get(), calls_);
  }
  for (auto& queue : queues_) pollers_.emplace_back(PollCompletionQueue, queue.get());
  for (RpcModule* module : modules_) {
    if (module != health_.get()) health_->SetServingStatus(module->name(), true);
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> AsyncServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  return server_->InProcessChannel(args);
}

void AsyncServer::SetNotServing() {
  if (server_ != nullptr) health_->SetServingStatus(false);
}

void AsyncServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr || shut_down_) return;
  shut_down_ = true;
  health_->Shutdown();  // NOT_SERVING, and Watch streams end instead of holding the grace period
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void AsyncServer::StopPolling() {
  if (server_ == nullptr || pollers_.empty()) return;
  // After Shutdown every call is answered or cancelled, but one may still be finishing: refused
  // by an executor that has stopped, it starts its final operation from a completion, and an
  // operation started on a queue already shut down aborts the process. The wait is bounded: a
  // call that never ends would be a bug, and stopping then is the lesser harm.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (live_calls_.Count() > 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  if (const std::int64_t left = live_calls_.Count(); left > 0) {
    std::cerr << "hotpathd: " << left << " gRPC calls still in progress at stop\n";
  }
  for (auto& queue : queues_) queue->Shutdown();
  for (auto& poller : pollers_) poller.join();
  pollers_.clear();
}

}  // namespace hotpath::rpc
