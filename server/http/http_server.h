// The one HTTP/1.1 server of the process, on Boost.Beast: /metrics, /healthz and /readyz today, the
// JSON gateway's routes on the same port.
//
// listener -> session -> handler -> respond: the handler knows nothing of sockets. It gets the
// request and a Responder to call exactly once, now or later, from any thread; the session writes
// responses in request order, so pipelined requests are answered in order, and stops reading while
// `max_pipeline` responses are outstanding (back-pressure). Keep-alive, header and idle timeouts,
// Date/Server/Content-Length headers and HEAD are handled here, not by handlers.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace hotpath::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// Answers one request, from any thread: either a whole response (call it once), or a stream
// (StartStream, then WriteChunk any number of times, then FinishStream). A stream has at most one
// write in flight: the next may start once on_written ran; on_written(false) means the client is
// gone and the stream should stop (FinishStream is still welcome).
class Responder {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    // Answers with response, or with the server's own refusal in its place; calls decided with
    // the status that goes out, before it goes (a sink in front of another observes it there).
    virtual void Whole(Response response, absl::FunctionRef<void(int status)> decided) = 0;
    virtual void Start(Response header, std::function<void(bool)> on_written) = 0;
    virtual void Chunk(std::string data, std::function<void(bool)> on_written) = 0;
    virtual void Finish() = 0;
    // on_gone runs (once, on any thread) if the client goes away before being answered.
    virtual void OnClientGone(std::function<void()> on_gone) {}
    // The address of the connection's other end (IP, no port); empty if not known. A sink that
    // wraps another passes its answer on.
    virtual std::string_view Peer() const { return {}; }
  };
  explicit Responder(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {}

  void operator()(Response response) const {
    sink_->Whole(std::move(response), [](int) {});
  }
  // Answers, as operator(), and calls decided with the status that goes out, before it goes: a
  // 503 in response's place when the server has no room for it
  // (HttpServerOptions::max_unsent_answer_bytes). For a sink in front of another.
  void Answer(Response response, absl::FunctionRef<void(int status)> decided) const {
    sink_->Whole(std::move(response), decided);
  }
  // header's body is ignored; the stream is sent with chunked transfer encoding.
  void StartStream(Response header, std::function<void(bool)> on_written) const {
    sink_->Start(std::move(header), std::move(on_written));
  }
  void WriteChunk(std::string data, std::function<void(bool)> on_written) const {
    sink_->Chunk(std::move(data), std::move(on_written));
  }
  void FinishStream() const { sink_->Finish(); }
  // Tells on_gone when the client closes its connection before the answer is written (then
  // work done for it can stop). At most one per request; runs at once if the client is gone.
  void OnClientGone(std::function<void()> on_gone) const {
    sink_->OnClientGone(std::move(on_gone));
  }
  // Who sent the request: the connection's peer address (a proxy's, behind one); valid while the
  // responder lives.
  std::string_view peer() const { return sink_->Peer(); }

 private:
  std::shared_ptr<Sink> sink_;  // the session's slot for this request
};

// A sink in front of another responder: passes everything on, and calls Answered as the answer, or
// a stream's end, goes out (the HTTP metrics, the access log) with its status, the request's route
// template ("unmatched" when no route took it; the handler fills route in while handling) and the
// time since the request arrived.
class ObservingSink : public Responder::Sink {
 public:
  ObservingSink(Responder inner, std::shared_ptr<const std::string> route)
      : inner_(std::move(inner)), route_(std::move(route)) {}

  void Whole(Response response, absl::FunctionRef<void(int status)> decided) final {
    inner_.Answer(std::move(response), [&](int status) {
      Observe(status);
      decided(status);
    });
  }
  void Start(Response header, std::function<void(bool)> on_written) final {
    status_ = header.result_int();
    inner_.StartStream(std::move(header), std::move(on_written));
  }
  void Chunk(std::string data, std::function<void(bool)> on_written) final {
    inner_.WriteChunk(std::move(data), std::move(on_written));
  }
  void Finish() final {
    Observe(status_);
    inner_.FinishStream();
  }
  void OnClientGone(std::function<void()> on_gone) final {
    inner_.OnClientGone(std::move(on_gone));
  }
  std::string_view Peer() const final { return inner_.peer(); }

 protected:
  using Clock = std::chrono::steady_clock;
  virtual void Answered(int status, const std::string& route, Clock::duration elapsed) = 0;
  // Calls Answered with status now (a subclass too, for a request it sees go unanswered).
  void Observe(int status) {
    static const std::string kUnmatched = "unmatched";
    Answered(status, route_->empty() ? kUnmatched : *route_, Clock::now() - start_);
  }

 private:
  Responder inner_;                               // the real answer
  std::shared_ptr<const std::string> route_;      // the route template, filled by the handler
  int status_ = 200;                              // a stream's status
  const Clock::time_point start_ = Clock::now();  // when the request arrived
};

// A route and the RPC it calls: what the gateway serves, what the HTTP metrics label requests with.
struct RouteRpc {
  std::string http_method;   // "GET"
  std::string route;         // the path template, "/v1/items/{id}"
  std::string grpc_service;  // "hotpath.catalog.v1.CatalogService"
  std::string grpc_method;   // "GetItem"
};

// The request stays valid until the response (or the stream) is finished. A HEAD request arrives
// as HEAD; the server drops the body of its response and keeps the Content-Length.
using Handler = std::function<void(const Request& request, Responder respond)>;

// Why the server answered a request itself (HttpServerOptions::on_refusal).
enum class Refusal {
  kMalformed,       // 400: a request that does not parse
  kFraming,         // 400 or 501: a transfer coding not served
  kHost,            // 400: no valid Host
  kBodyTooLarge,    // 413
  kHeaderTooLarge,  // 431
  kBodiesBudget,    // 503: max_receiving_body_bytes
  kAnswersBudget,   // 503: max_unsent_answer_bytes (a read's after, a write's before its handler)
  kConnections,     // 503: max_connections
};
inline constexpr std::size_t kRefusals = static_cast<std::size_t>(Refusal::kConnections) + 1;
// Its name, as the metrics label it: "malformed", "framing", "host", "body_too_large",
// "header_too_large", "bodies_budget", "answers_budget", "connections".
std::string_view RefusalName(Refusal why);

struct HttpServerOptions {
  // Listen address and port; port 0 picks a free one (see HttpServer::port).
  std::string host = "0.0.0.0";
  int port = 8080;
  // Event-loop threads; each connection stays on one of them. 0: two per usable core
  // (app::UsableCores: the affinity mask and the cgroup's CPU quota), which answered
  // a fifth to a third more cached GETs than one per core on two cores shared with the load
  // generator (bench/cost, bench/NOTES.md). Default 1.
  int threads = 1;
  // Largest request body accepted; larger ones get 413. Default 1 MiB.
  std::size_t max_body_bytes = 1 << 20;
  // Bytes set aside, across every connection, for request bodies still arriving: a body takes
  // its declared length (a chunked one max_body_bytes) from its header to its last byte, and one
  // that does not fit is answered 503 (Retry-After: 1) before a byte of it is read. So bodies
  // left unfinished hold at most this much, however many connections send them. At least
  // max_body_bytes (Start fails otherwise). Default 64 MiB.
  std::size_t max_receiving_body_bytes = 64 << 20;
  // Bytes set aside, across every connection, for whole answers not yet written: an answer takes
  // its body's size from when it is given to when its last byte is written (or its connection
  // closes), and one that does not fit is replaced by a 503 (Retry-After: 1). So answers a client
  // does not read (its window full, more requests pipelined behind) hold at most this much, however
  // many connections leave theirs unread; a client that reads its answers holds its own for as
  // long as writing it takes. A stream's chunks are not counted: it has one at a time. A request
  // that may change state (not GET, HEAD, OPTIONS or TRACE) is never answered 503 after it was
  // handled, as its client would retry what is done: it takes 4 KiB before its handler runs, or
  // is answered 503 without being handled, and its answer then takes its own size in their place
  // even past the limit (by at most its size less 4 KiB). Default 64 MiB.
  std::size_t max_unsent_answer_bytes = 64 << 20;
  // Largest request header block; larger ones get 431. Default 16 KiB.
  std::size_t max_header_bytes = 16 << 10;
  // Time a client has to send a whole request once its first byte arrived. Default 10 s.
  absl::Duration header_timeout = absl::Seconds(10);
  // Time a keep-alive connection may sit idle between requests. Default 60 s.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Pipelined requests answered but not yet written before the session stops reading. Default 16.
  std::size_t max_pipeline = 16;
  // Open connections at most; past it a new connection is answered 503 and closed at once, so
  // idle clients cannot use up the process's file descriptors (the gRPC listener shares them).
  // Never more than half the descriptor limit (RLIMIT_NOFILE) allows. Default 10,000.
  std::size_t max_connections = 10000;
  // On Drain, how long keep-alive connections idle when it begins stay open for a request already
  // on its way (a proxy may have sent one on its pooled connection), at most a quarter of the time
  // left to the drain's deadline. A proxy that round-robins stops choosing a server at its first
  // refused connection, within a few of its requests to it. Default 1 s.
  absl::Duration drain_idle_linger = absl::Seconds(1);
  // Called for each answer the server gives by itself instead of a handler's, with why (Refusal),
  // on an event-loop thread (a read's kAnswersBudget on the thread that answers it). None of these
  // reach a handler's observers but a read's kAnswersBudget, which they see as the 503 that goes
  // out (Responder::Answer tells them). Must be safe to call from several threads at once.
  std::function<void(Refusal why)> on_refusal;
  // Called on each of those answers whose request's fields were read whole (all but a header too
  // large, one that does not parse, and a connection refused at max_connections), before it goes
  // out, to add what the owner's handler adds to every answer: CORS headers, so that a browser's
  // script reads a 413 or a 503 and its Retry-After instead of a network error. On an event-loop
  // thread, or a read's kAnswersBudget on the thread that answers it: safe to call from several
  // threads at once.
  std::function<void(const Request& request, Response& answer)> on_own_answer;
  // Value of the Server header.
  std::string server_name = "hotpath";
  // HTTPS: PEM certificate chain and private key files. Empty: plaintext HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// A JSON error body {"code":N,"message":"..."} with the given HTTP status; code is the gRPC code
// (google.rpc.Status), as grpc-gateway writes its errors.
Response JsonError(const Request& request, boost::beast::http::status status, int code,
                   const std::string& message);

// Every line of the header field name, joined with ", " as RFC 9110 5.3 combines a list field's
// lines ("Accept-Encoding: br" and "Accept-Encoding: gzip" read as "br, gzip"); empty when absent.
// A proxy in front reads a field split over lines this way, so a handler must not read one line.
std::string FieldValue(const Request& request, std::string_view name);

class HttpServer final {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();

  // Binds and starts accepting.
  absl::Status Start();
  int port() const { return port_; }
  // Connections open right now.
  std::size_t connections() const;
  // Graceful: stops accepting; for drain_idle_linger, a request that still comes on an open
  // connection is answered (with Connection: close) and its connection closed, so a client or
  // proxy that sent one on a pooled keep-alive connection as the drain began gets its answer
  // (closing an idle connection under it would lose the request: a proxy cannot resend a POST).
  // Then idle connections close; every request already read is answered (with Connection:
  // close); waits until each connection is closed or deadline. False when connections were still
  // open at the deadline. Call Stop afterwards.
  bool Drain(absl::Time deadline);
  // Stops accepting and closes every connection at once; joins the threads.
  void Stop();

  class SessionBase;
  class Registry;
  class Loop;
  struct Shared;

 private:
  class Listener;

  // Options, handler and the open sessions; shared with every session, which may outlive this.
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<Loop>> loops_;        // the event loops, one thread each; shared too
  std::shared_ptr<boost::asio::ssl::context> tls_;  // HTTPS settings; null for plaintext
  std::shared_ptr<Listener> listener_;              // accepts connections
  bool started_ = false;                            // Start succeeded and Stop has not run
  int port_ = 0;                                    // the bound port
};

}  // namespace hotpath::http
