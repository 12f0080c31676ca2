#include "server/rpc/async_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/app/named_thread.h"
#include "server/app/usable_cores.h"
#include "server/rpc/call_base.h"
#include "server/rpc/connection_listener.h"
#include "server/rpc/cq_handoff.h"
#include "server/rpc/health.h"
#include "server/rpc/reflection.h"
#include "server/rpc/tls.h"

namespace hotpath::rpc {

void PollCompletionQueue(grpc::ServerCompletionQueue* cq) {
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
      reflection_(std::make_unique<ReflectionService>()),
      modules_(std::move(modules)),
      interceptors_(std::move(interceptors)) {
  modules_.push_back(health_.get());
  std::vector<std::string> names;
  for (RpcModule* module : modules_) names.push_back(module->name());
  reflection_->SetServices(std::move(names));
  modules_.push_back(reflection_.get());
  calls_.live_calls = &live_calls_;
  calls_.max_message_bytes = static_cast<std::size_t>(options_.max_message_bytes);
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
  grpc::ServerBuilder builder;
  const bool plaintext = options_.tls_cert_file.empty();
  if (plaintext) {
    // Plaintext connections come through a listener of ours, which can stop before the server.
    auto listener = ConnectionListener::Bind(options_.address);
    if (!listener.ok()) return listener.status();
    listener_ = *std::move(listener);
    port_ = listener_->port();
  } else {
    builder.AddListeningPort(options_.address, *credentials, &port_);
  }
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  // Compressed requests are inflated by ParseMessage, bounded (message_bytes.h), not by gRPC.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, 0);
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
  if (queue_count <= 0) queue_count = app::UsableCores();
  for (int i = 0; i < queue_count; ++i) queues_.push_back(builder.AddCompletionQueue());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    listener_.reset();
    return absl::UnavailableError(absl::StrCat("could not listen on ", options_.address));
  }
  for (auto& queue : queues_) {
    calls_.handoffs.emplace_back(queue.get(), std::make_shared<CqHandoff>(queue.get()));
  }
  for (auto& queue : queues_) {
    for (RpcModule* module : modules_) module->Arm(queue.get(), calls_);
  }
  for (auto& queue : queues_) {
    pollers_.push_back(
        app::NamedThread("hotpath-cq", [queue = queue.get()] { PollCompletionQueue(queue); }));
  }
  if (listener_ != nullptr) listener_->Start(server_.get());
  for (RpcModule* module : modules_) {
    if (module != health_.get() && module != reflection_.get()) {
      health_->SetServingStatus(module->name(), true);
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> AsyncServer::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  return server_->InProcessChannel(args);
}

absl::Status AsyncServer::CheckListener(absl::Duration timeout) const {
  if (server_ == nullptr) return absl::UnavailableError("gRPC server not started");
  // The listening host, or loopback when it listens on every address.
  std::string host = HostOf(options_.address);
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "localhost") host = "127.0.0.1";
  sockaddr_storage address{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port_));
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port_));
    length = sizeof *v6;
  } else {
    return absl::OkStatus();  // a host name: not checked
  }
  const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError("no descriptor left to check the gRPC listener");
  const absl::Time deadline = absl::Now() + timeout;
  auto wait_for = [&](short events) {
    pollfd entry{fd, events, 0};
    const int ms = static_cast<int>(
        std::max<std::int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    return poll(&entry, 1, ms) == 1;
  };
  bool answered = false;
  // The client connection preface and an empty SETTINGS frame (RFC 9113 3.4).
  static constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
  // Non-blocking throughout: with a full backlog even connect would wait.
  int error = 0;
  socklen_t error_length = sizeof error;
  const bool connected =
      (connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0 || errno == EINPROGRESS) &&
      wait_for(POLLOUT) && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_length) == 0 &&
      error == 0;
  if (connected && send(fd, kPreface, sizeof kPreface - 1, MSG_NOSIGNAL) > 0 && wait_for(POLLIN)) {
    char byte;
    answered = recv(fd, &byte, 1, MSG_DONTWAIT) >= 0;  // bytes, or the server's close
  }
  close(fd);
  if (answered) return absl::OkStatus();
  return absl::UnavailableError("the gRPC listener takes no new connections");
}

void AsyncServer::SetNotServing() {
  if (server_ != nullptr) health_->SetServingStatus(false);
}

void AsyncServer::StopAccepting(absl::Time until) {
  if (server_ == nullptr || listener_ == nullptr) return;
  listener_->Close();
  // Every open connection was accepted before now, so gRPC sends its GOAWAY by now + age (plus
  // gRPC's 10% jitter); its calls then finish, or the client leaves (a second, usually less).
  const absl::Duration age = options_.connections.max_connection_age;
  if (age == absl::InfiniteDuration()) return;
  const absl::Time aged = absl::Now() + age * 1.1 + absl::Seconds(1);
  if (aged > until) return;
  while (listener_->OpenConnections() > 0 && absl::Now() < aged) {
    absl::SleepFor(absl::Milliseconds(10));
  }
}

void AsyncServer::Shutdown(absl::Duration grace) {
  if (server_ == nullptr || shut_down_) return;
  shut_down_ = true;
  if (listener_ != nullptr) listener_->Close();  // before the server: it hands connections to it
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
