#include "server/http/http_server.h"

#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <ctime>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/app/event_loop.h"
#include "server/app/handoff_batch.h"
#include "server/app/listening_socket.h"
#include "server/app/named_thread.h"
#include "server/app/usable_cores.h"
#include "server/http/json_quote.h"

namespace hotpath::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
// Sockets bound to one loop's io_context: no type-erased executor, no strand (a loop is one
// thread).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using TlsStream = beast::ssl_stream<Socket>;
using SteadyClock = std::chrono::steady_clock;

// The Date header, formatted once a second per thread.
beast::string_view HttpDate() {
  thread_local std::time_t cached_second = 0;
  thread_local char cached[64];
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {cached, 29};  // "Sun, 06 Nov 1994 08:49:37 GMT"
}

SteadyClock::duration ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// A whole response's status line and header block, as Beast's serializer would write them.
void SerializeHeader(const Response& response, std::string& out) {
  out.clear();
  const beast::string_view reason = response.reason();
  absl::StrAppend(&out, response.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", response.result_int(),
                  " ", absl::string_view(reason.data(), reason.size()), "\r\n");
  for (const auto& field : response) {
    const beast::string_view name = field.name_string();
    const beast::string_view value = field.value();
    absl::StrAppend(&out, absl::string_view(name.data(), name.size()), ": ",
                    absl::string_view(value.data(), value.size()), "\r\n");
  }
  out += "\r\n";
}

// Why a request's framing cannot be trusted (RFC 9112 6.1, 6.3), or nullopt when it can: the only
// transfer coding served is a lone "chunked". Anything else read as "no body" would let the body
// be parsed as the next request (request smuggling), so it is answered and the connection closed.
struct FramingRefusal {
  bhttp::status status;
  std::string message;
};
std::optional<FramingRefusal> CheckFraming(const Request& request) {
  auto [first, last] = request.equal_range(bhttp::field::transfer_encoding);
  if (first == last) return std::nullopt;
  std::vector<std::string> codings;
  for (auto it = first; it != last; ++it) {
    const beast::string_view value = it->value();
    for (absl::string_view token :
         absl::StrSplit(absl::string_view(value.data(), value.size()), ',')) {
      token = absl::StripAsciiWhitespace(token);
      if (!token.empty()) codings.push_back(absl::AsciiStrToLower(token));
    }
  }
  if (request.version() < 11) {
    return FramingRefusal{bhttp::status::bad_request,
                          "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  if (codings.empty() || codings.back() != "chunked") {
    return FramingRefusal{bhttp::status::bad_request,
                          "Transfer-Encoding must end with chunked (RFC 9112 6.3)"};
  }
  if (codings.size() > 1) {
    return FramingRefusal{bhttp::status::not_implemented,
                          absl::StrCat("transfer coding \"", codings.front(),
                                       "\" is not supported; send the body chunked only")};
  }
  return std::nullopt;
}

// Why a request's Host cannot be trusted (RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1
// request without one, and to any request with two or with an invalid value), or nullopt. Two
// Hosts, or one that is not a host, let a proxy or cache in front and this server each take a
// different one for the request's authority. hotpath routes on the path alone; the check is for
// what sits in front.
std::optional<std::string> CheckHost(const Request& request) {
  auto [first, last] = request.equal_range(bhttp::field::host);
  if (first == last) {
    if (request.version() < 11) return std::nullopt;
    return "an HTTP/1.1 request needs a Host header (RFC 9112 3.2)";
  }
  if (std::next(first) != last)
    return "a request takes one Host header, not several (RFC 9112 3.2)";
  const beast::string_view host = first->value();
  // uri-host [":" port]: a reg-name (unreserved, sub-delims, pct-encoded), an IPv4 address or
  // an IP-literal in brackets; empty when the target has no authority.
  const bool valid = std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("-._~!$&'()*+,;=:[]%").find(c) != absl::string_view::npos;
  });
  if (!valid) return "the Host header is not a host[:port] (RFC 9112 3.2)";
  return std::nullopt;
}

// The client waits for "100 Continue" before sending the body (RFC 9110 10.1.1).
bool ExpectsContinue(const Request& request) {
  auto it = request.find(bhttp::field::expect);
  if (it == request.end() || request.version() < 11) return false;
  const beast::string_view value = it->value();
  return absl::EqualsIgnoreCase(absl::string_view(value.data(), value.size()), "100-continue");
}

// An absolute-form target ("http://host/v1/items/1?x", RFC 9112 3.2.2) as the origin form that
// routes know ("/v1/items/1?x"); any other target as it is.
void ToOriginForm(Request& request) {
  const beast::string_view target = request.target();
  const absl::string_view view(target.data(), target.size());
  const std::size_t scheme_end = view.find("://");
  if (view.empty() || view.front() == '/' || scheme_end == absl::string_view::npos) return;
  const absl::string_view scheme = view.substr(0, scheme_end);
  if (!absl::EqualsIgnoreCase(scheme, "http") && !absl::EqualsIgnoreCase(scheme, "https")) return;
  const absl::string_view rest = view.substr(scheme_end + 3);
  const std::size_t path = rest.find_first_of("/?");
  std::string origin = path == absl::string_view::npos ? "/" : std::string(rest.substr(path));
  if (origin.front() == '?') origin.insert(0, "/");
  request.target(origin);
}

// A request that cannot change anything on the server (RFC 9110 9.2.1): answering it again is
// harmless, so its answer may be refused after it was handled.
bool IsSafe(bhttp::verb method) {
  return method == bhttp::verb::get || method == bhttp::verb::head ||
         method == bhttp::verb::options || method == bhttp::verb::trace;
}

// Room in HttpServerOptions::max_unsent_answer_bytes promised to the answer of a request that may
// change state before it is handled: a write's answer is an item, a few hundred bytes.
constexpr std::size_t kPromisedAnswerBytes = 4096;

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// The server's own 503 (code 14, UNAVAILABLE), with Retry-After: 1.
Response Unavailable(const Request& request, const std::string& message) {
  Response response = JsonError(request, bhttp::status::service_unavailable, 14, message);
  response.set(bhttp::field::retry_after, "1");
  return response;
}

// Tells the server's owner why it answered a request itself (HttpServerOptions::on_refusal).
void Refused(const HttpServerOptions& options, Refusal why) {
  if (options.on_refusal) options.on_refusal(why);
}

}  // namespace

// What a drain and the timeout sweep need of a session, whatever its stream.
class HttpServer::SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Answers what it has read and the next request, if one comes, with Connection: close, then
  // closes; an idle connection stays open for that request.
  virtual void Quiesce() = 0;
  // Reads no further request, answers what it has read (with Connection: close), then closes.
  virtual void Drain() = 0;
  // On the session's loop: closes the connection if its I/O deadline has passed.
  virtual void CheckDeadline(SteadyClock::time_point now) = 0;
  // Once its loop stopped (so on any thread): closes the connection. A late answer may still
  // hold the session; it is dropped.
  virtual void CloseStopped() = 0;
};

// The open sessions, so a drain can reach them and know when they are gone.
class HttpServer::Registry {
 public:
  std::uint64_t Add(std::weak_ptr<SessionBase> session) {
    std::lock_guard lock(mutex_);
    sessions_.emplace(next_, std::move(session));
    return next_++;
  }
  void Remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return sessions_.size();
  }
  std::vector<std::shared_ptr<SessionBase>> Live() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<SessionBase>> live;
    for (auto& [id, weak] : sessions_) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
    return live;
  }

 private:
  std::mutex mutex_;                                                        // guards the below
  std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> sessions_;  // by id
  std::uint64_t next_ = 0;  // id of the next session
};

// One event-loop thread and the connections it owns. Each connection lives on one loop for its
// whole life, so its handlers never run concurrently and need no strand or lock; timeouts are
// deadlines in the session that one sweep timer per loop checks, instead of a timer armed and
// cancelled around every read and write.
//
// Shared by the server and its sessions: a session a late answer still holds keeps its socket's
// io_context alive. Once stopped, answers posted from other threads are dropped and what was queued
// is destroyed (so a session queued on a stopped loop cannot keep the loop, and itself, alive).
class HttpServer::Loop final : public app::HandoffBatch::Queue,
                               public std::enable_shared_from_this<HttpServer::Loop> {
 public:
  explicit Loop(absl::Duration sweep_period)
      : io_(1), sweep_period_(ToChrono(sweep_period)), sweep_timer_(io_) {}
  ~Loop() { Stop(); }

  net::io_context& io() { return io_; }

  // On this loop: the sweep checks the session's deadline from now on.
  void Watch(std::weak_ptr<SessionBase> session) { sessions_.push_back(std::move(session)); }

  // Runs fn on this loop: at once when called on it, else queued; dropped once the loop stopped.
  template <class Fn>
  void Dispatch(Fn fn) {
    if (io_.get_executor().running_in_this_thread()) return fn();
    Post(std::move(fn));
  }
  // From a thread with a HandoffBatch open, fn waits in it; the batch's close hands it over.
  template <class Fn>
  void Post(Fn fn) {
    if (app::HandoffBatch::Open()) return app::HandoffBatch::Add(shared_from_this(), std::move(fn));
    std::lock_guard lock(mutex_);
    if (!stopped_) net::post(io_.get_executor(), std::move(fn));
  }
  void HandOff(std::vector<app::HandoffBatch::Work> work) override {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    net::post(io_.get_executor(), [work = std::move(work)]() mutable {
      for (app::HandoffBatch::Work& each : work) std::move(each)();
    });
  }

  void Start() {
    Sweep();
    thread_ = app::NamedThread("hotpath-http", [this] {
      const app::EventLoop::Scope loop(io_);  // database reads may wait on this loop
      io_.run();
    });
  }
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    io_.stop();
    if (thread_.joinable()) thread_.join();
    io_.shutdown();  // destroys the handlers still queued, and the sessions only they held
  }

 private:
  // An io_context whose pending handlers can be destroyed before it is (as its destructor does).
  class Context : public net::io_context {  // not final: asio derives from it to inspect it
   public:
    using net::io_context::io_context;
    using net::io_context::shutdown;
  };

  void Sweep() {
    sweep_timer_.expires_after(sweep_period_);
    sweep_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      const SteadyClock::time_point now = SteadyClock::now();
      std::erase_if(sessions_, [now](const std::weak_ptr<SessionBase>& weak) {
        auto session = weak.lock();
        if (session == nullptr) return true;
        session->CheckDeadline(now);
        return false;
      });
      Sweep();
    });
  }

  Context io_;                                        // this loop's connections and timers
  const SteadyClock::duration sweep_period_;          // how often deadlines are checked
  net::steady_timer sweep_timer_;                     // drives Sweep
  std::vector<std::weak_ptr<SessionBase>> sessions_;  // this loop's sessions; only on the loop
  std::thread thread_;                                // runs io_
  std::mutex mutex_;                                  // orders Post against Stop
  bool stopped_ = false;                              // Stop ran: nothing more is queued
};

// Bytes set aside on every connection of a server: for request bodies still arriving
// (HttpServerOptions::max_receiving_body_bytes), for answers not yet written
// (max_unsent_answer_bytes).
class ByteBudget final {
 public:
  explicit ByteBudget(std::size_t limit) : limit_(limit) {}
  // Sets bytes aside; false, and nothing set aside, when they would pass the limit.
  bool Take(std::size_t bytes) {
    std::size_t held = held_.load(std::memory_order_relaxed);
    do {
      if (held > limit_ || bytes > limit_ - held) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    return true;
  }
  // Sets bytes aside even past the limit (what was promised before its size was known).
  void TakeAnyway(std::size_t bytes) { held_.fetch_add(bytes, std::memory_order_relaxed); }
  void Give(std::size_t bytes) { held_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  const std::size_t limit_;           // never passed
  std::atomic<std::size_t> held_{0};  // set aside now
};

// What every session of one server uses besides its loop: shared, so a session that a late
// answer keeps alive after the server is gone still has its settings, handler and registry.
struct HttpServer::Shared {
  Shared(HttpServerOptions options, Handler handler)
      : options(std::move(options)), handler(std::move(handler)) {}

  const HttpServerOptions options;                      // as given to the server
  const Handler handler;                                // answers requests
  Registry registry;                                    // the open sessions
  ByteBudget bodies{options.max_receiving_body_bytes};  // for bodies still arriving
  ByteBudget answers{options.max_unsent_answer_bytes};  // for answers not yet written
};

namespace {

using SessionBase = HttpServer::SessionBase;
using Registry = HttpServer::Registry;
using Loop = HttpServer::Loop;

// Stream: Socket (plaintext) or TlsStream (HTTPS).
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // All shared: a session may outlive the server by a late answer.
  Session(Socket socket, std::shared_ptr<Loop> loop,
          std::shared_ptr<HttpServer::Shared> shared) requires std::is_same_v<Stream, Socket>
      : loop_(std::move(loop)), shared_(std::move(shared)), stream_(std::move(socket)) {
    SetPeer();
  }
  Session(Socket socket, std::shared_ptr<Loop> loop, std::shared_ptr<HttpServer::Shared> shared,
          std::shared_ptr<ssl::context> tls) requires std::is_same_v<Stream, TlsStream>
      : loop_(std::move(loop)),
        shared_(std::move(shared)),
        tls_(std::move(tls)),
        stream_(std::move(socket), *tls_) {
    SetPeer();
  }
  ~Session() override {
    GiveBodyBack();
    for (Slot& slot : slots_) GiveAnswerBack(slot);
    shared_->registry.Remove(id_);
  }

  // Makes the session reachable by a drain.
  void Register() { id_ = shared_->registry.Add(this->shared_from_this()); }

  void Quiesce() override {
    loop_->Post([self = this->shared_from_this()] {
      self->draining_ = true;  // what is read from now on closes the connection once answered
      for (auto& slot : self->slots_) slot.close_after = true;
      if (!self->slots_.empty()) self->read_closed_ = true;
    });
  }

  void Drain() override {
    loop_->Post([self = this->shared_from_this()] {
      self->draining_ = true;
      self->read_closed_ = true;
      for (auto& slot : self->slots_) slot.close_after = true;
      // Idle (or mid-way through an unanswered header): nothing accepted is lost by closing.
      if (self->slots_.empty()) self->Close();
    });
  }

  void CloseStopped() override { Close(); }

  void CheckDeadline(SteadyClock::time_point now) override {
    if (now < read_deadline_ && now < write_deadline_) return;
    // As a timed-out Beast stream does: the pending operations end with operation_aborted.
    read_closed_ = true;
    Close();
  }

  void Start() {
    loop_->Dispatch([self = this->shared_from_this()] {
      self->loop_->Watch(self);
      if constexpr (std::is_same_v<Stream, TlsStream>) {
        // The handshake gets the request timeout, like a header that trickles in.
        self->read_deadline_ = Deadline(self->shared_->options.header_timeout);
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->Close();
          self->Read();
        });
      } else {
        self->Read();
      }
    });
  }

 private:
  // What is on the wire. Each write ends in one place: kContinue in OnHeader's callback (then the
  // body is read), kWhole and kLastChunk in OnWrite (the front slot is done), kStreamHeader and
  // kChunk in OnStreamWrite (the producer is told, the stream goes on).
  enum class Writing {
    kNothing,       // free: Write may start the front slot's next write
    kContinue,      // "100 Continue"
    kWhole,         // a whole answer, header and body in one gathered write
    kStreamHeader,  // a stream's header
    kChunk,         // one chunk of a stream
    kLastChunk,     // a stream's last chunk (for HEAD: nothing, posted)
  };

  // One request and what has been answered for it so far. Touched only on the session's loop.
  struct Slot {
    Request request;                        // what was asked
    std::optional<Response> response;       // a whole answer, once given
    std::optional<Response> stream_header;  // a streamed answer's header, once started
    bool header_sent = false;               // the stream's header is on the wire
    std::optional<std::string> chunk;       // the stream's next chunk, waiting for its turn
    std::function<void(bool)> on_written;   // runs when the header or chunk is written
    bool finish = false;                    // the stream is complete: send the last chunk
    bool head = false;                      // a HEAD request: write the header only
    bool close_after = false;               // close the connection after this answer
    std::function<void()> on_gone;          // runs if the client leaves before the answer
    bool linger = false;                    // after this answer, drain what the client still sends
    std::size_t held = 0;                   // what the answer set aside in shared_->answers
  };

  // Carries a handler's answers onto the session's loop: at once when the handler answers on
  // the loop (a cache hit), posted when it answers from another thread; dropped once the server
  // stopped.
  class SlotSink final : public Responder::Sink {
   public:
    SlotSink(std::shared_ptr<Session> session, Slot* slot)
        : session_(std::move(session)), slot_(slot) {}
    void Whole(Response response, absl::FunctionRef<void(int)> decided) override {
      const std::size_t taken = session_->TakeAnswer(*slot_, response);
      decided(response.result_int());
      session_->loop_->Dispatch(
          [session = session_, slot = slot_, response = std::move(response), taken]() mutable {
            session->Answer(*slot, std::move(response), taken);
          });
    }
    // Streams always post: a producer that answers on_written at once would otherwise recurse.
    void Start(Response header, std::function<void(bool)> on_written) override {
      Post([header = std::move(header), on_written = std::move(on_written)](Slot& slot) mutable {
        if (slot.response || slot.stream_header) return;
        slot.stream_header = std::move(header);
        slot.on_written = std::move(on_written);
      });
    }
    void Chunk(std::string data, std::function<void(bool)> on_written) override {
      Post([data = std::move(data), on_written = std::move(on_written)](Slot& slot) mutable {
        slot.chunk = std::move(data);
        slot.on_written = std::move(on_written);
      });
    }
    void Finish() override {
      Post([](Slot& slot) { slot.finish = true; });
    }
    std::string_view Peer() const override { return session_->peer_; }
    void OnClientGone(std::function<void()> on_gone) override {
      session_->loop_->Dispatch(
          [session = session_, slot = slot_, on_gone = std::move(on_gone)]() mutable {
            if (session->client_gone_) return on_gone();
            if (!slot->response && !slot->stream_header) slot->on_gone = std::move(on_gone);
          });
    }

   private:
    template <class Fn>
    void Post(Fn fn) {
      session_->loop_->Post([session = session_, slot = slot_, fn = std::move(fn)]() mutable {
        fn(*slot);
        session->Write();
      });
    }
    std::shared_ptr<Session> session_;  // kept alive while an answer is owed
    Slot* slot_;                        // stable: slots live in a deque, removed only in front
  };

  void SetPeer() {
    beast::error_code ec;
    const tcp::endpoint remote = beast::get_lowest_layer(stream_).remote_endpoint(ec);
    if (!ec) peer_ = remote.address().to_string();
  }

  static SteadyClock::time_point Deadline(absl::Duration timeout) {
    return SteadyClock::now() + ToChrono(timeout);
  }

  void Read() {
    if (read_closed_) return WatchDeparture();
    if (slots_.size() >= shared_->options.max_pipeline) {
      paused_ = true;  // resumed when an answer is written
      return WatchDeparture();
    }
    if (buffer_.size() > 0) return ReadRequest();  // a pipelined request has begun already
    // Nothing pending: wait for the next request's first bytes under the idle timeout; from then
    // on the request timeout applies (a header that trickles in is cut short).
    read_deadline_ = Deadline(shared_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->OnRead(ec);
                              self->buffer_.commit(n);
                              self->ReadRequest();
                            });
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(shared_->options.max_header_bytes));
    read_deadline_ = Deadline(shared_->options.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                               self->OnHeader(ec);
                             });
  }

  // The header is in: refuse what cannot be framed before a byte of the body is read, invite a
  // client that expects it to send the body, then read the rest.
  void OnHeader(beast::error_code ec) {
    if (ec) return OnRead(ec);
    if (auto refusal = CheckFraming(parser_->get())) {
      return Refuse(refusal->status, std::move(refusal->message), Refusal::kFraming,
                    &parser_->get());
    }
    if (auto refusal = CheckHost(parser_->get())) {
      return Refuse(bhttp::status::bad_request, std::move(*refusal), Refusal::kHost,
                    &parser_->get());
    }
    if (parser_->is_done()) return OnRead({});
    // Set aside before a byte of it is read, or refused (also before a 100 Continue).
    const std::size_t body =
        std::min<std::uint64_t>(parser_->content_length().value_or(shared_->options.max_body_bytes),
                                shared_->options.max_body_bytes);
    if (!shared_->bodies.Take(body)) {
      return Refuse(bhttp::status::service_unavailable,
                    "too many request bodies are arriving at once (--max_receiving_body_bytes)",
                    Refusal::kBodiesBudget, &parser_->get());
    }
    body_held_ = body;
    auto read_body = [self = this->shared_from_this()] {
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code ec, std::size_t) { self->OnRead(ec); });
    };
    // Only when nothing else is being written: an interim answer must not overtake the answers
    // to requests pipelined before this one (a client that waits for it sends none).
    if (ExpectsContinue(parser_->get()) && slots_.empty() && writing_ == Writing::kNothing) {
      BeginWrite(Writing::kContinue);
      net::async_write(
          stream_, net::buffer(kContinue, sizeof kContinue - 1),
          [self = this->shared_from_this(), read_body](beast::error_code ec, std::size_t) {
            self->EndWrite();
            if (ec) return self->OnRead(net::error::connection_reset);
            read_body();
          });
      return;
    }
    read_body();
  }

  // Answers a request that cannot be read on (malformed, oversized, unframeable), then closes.
  // why: what HttpServerOptions::on_refusal is told; header: the request's fields when they were
  // read whole (for HttpServerOptions::on_own_answer), else null.
  void Refuse(bhttp::status status, std::string message, Refusal why, const Request* header) {
    Refused(shared_->options, why);
    read_closed_ = true;
    Request bad;
    bad.version(11);
    auto& slot = slots_.emplace_back();
    slot.close_after = true;
    // The client is likely still sending (a body or headers past the limit): read and drop the
    // rest for a while after answering, so it gets to read the answer instead of a reset.
    slot.linger = true;
    if (status == bhttp::status::service_unavailable) {
      slot.response = Unavailable(bad, message);
    } else {
      const int code = status == bhttp::status::not_implemented ? 12  // UNIMPLEMENTED
                                                                : 3;  // INVALID_ARGUMENT
      slot.response = JsonError(bad, status, code, message);
    }
    if (header != nullptr) Decorate(*header, *slot.response);
    Write();
  }

  // A whole answer takes its size from the server's budget for answers not yet written, or is
  // replaced by a 503 that says why (not counted: it is small, and a connection has at most
  // max_pipeline of them): what it took. An answer promised room before its request was handled
  // (a write's: it reports what was done, and a 503 would invite a retry of what is done already)
  // takes its size even past the limit, and gives the promise back when it is in place (Answer).
  // On the handler's thread, before the answer is handed to the loop, so that whoever observes
  // the answer sees the status that goes out.
  std::size_t TakeAnswer(const Slot& slot, Response& response) {
    const std::size_t bytes = response.body().size();
    if (!IsSafe(slot.request.method())) {  // promised room before its handler ran (OnRead)
      shared_->answers.TakeAnyway(bytes);
      return bytes;
    }
    if (shared_->answers.Take(bytes)) return bytes;
    response = NoRoomForAnswer(slot.request, /*handled=*/true);
    return 0;
  }
  // The 503 for a request whose answer max_unsent_answer_bytes has no room for, reported to
  // on_refusal; handled: whether its handler ran (a read's) or not (a write's).
  Response NoRoomForAnswer(const Request& request, bool handled) {
    Refused(shared_->options, Refusal::kAnswersBudget);
    Response response =
        Unavailable(request, absl::StrCat("too many answers are waiting for their clients to read "
                                          "them (--max_unsent_answer_bytes)",
                                          handled ? "" : "; the request was not handled"));
    Decorate(request, response);
    return response;
  }
  // What the server's owner adds to the answers the server gives by itself
  // (HttpServerOptions::on_own_answer: CORS headers, so that a browser's script reads a refusal
  // and its Retry-After instead of a network error).
  void Decorate(const Request& request, Response& response) const {
    if (shared_->options.on_own_answer) shared_->options.on_own_answer(request, response);
  }
  // On the loop: the answer, with what it took from the budget (TakeAnswer), goes in its slot
  // unless the request was answered already.
  void Answer(Slot& slot, Response response, std::size_t taken) {
    if (slot.response || slot.stream_header) {
      shared_->answers.Give(taken);
    } else {
      if (slot.held != 0) shared_->answers.Give(slot.held);  // the promise
      slot.held = taken;
      slot.response = std::move(response);
    }
    Write();
  }
  // A whole answer written (or its connection gone) gives back what it set aside.
  void GiveAnswerBack(Slot& slot) {
    if (slot.held != 0) shared_->answers.Give(std::exchange(slot.held, 0));
  }

  // The body being read (or no longer) gives back what it set aside.
  void GiveBodyBack() {
    if (body_held_ != 0) shared_->bodies.Give(std::exchange(body_held_, 0));
  }

  void OnRead(beast::error_code ec) {
    GiveBodyBack();
    read_deadline_ = SteadyClock::time_point::max();
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::eof ||
        ec == net::error::bad_descriptor) {
      read_closed_ = true;
      if (ec != net::error::operation_aborted && ec != net::error::bad_descriptor) ClientGone();
      if (slots_.empty()) Close();
      return;
    }
    if (ec) {
      // A malformed or oversized request: answer it, then close (the stream is out of sync).
      if (ec == bhttp::error::body_limit) {  // checked once the fields are in, or in a chunk
        return Refuse(
            bhttp::status::payload_too_large,
            absl::StrCat("request body exceeds ", shared_->options.max_body_bytes, " bytes"),
            Refusal::kBodyTooLarge, &parser_->get());
      }
      if (ec == bhttp::error::header_limit) {
        return Refuse(bhttp::status::request_header_fields_too_large, "request header too large",
                      Refusal::kHeaderTooLarge, nullptr);
      }
      return Refuse(bhttp::status::bad_request,
                    absl::StrCat("malformed HTTP request: ", ec.message()), Refusal::kMalformed,
                    parser_->is_header_done() ? &parser_->get() : nullptr);
    }
    auto& slot = slots_.emplace_back();
    slot.request = parser_->release();
    ToOriginForm(slot.request);
    slot.head = slot.request.method() == bhttp::verb::head;
    slot.close_after = draining_ || !slot.request.keep_alive();
    if (slot.close_after) read_closed_ = true;  // nothing is read after a request that closes
    if (!IsSafe(slot.request.method())) {
      // Its answer will say what was done, so room for it is promised before it is handled; when
      // there is none, it is not handled, and the 503 says so.
      if (!shared_->answers.Take(kPromisedAnswerBytes)) {
        slot.response = NoRoomForAnswer(slot.request, /*handled=*/false);
        Write();
        return Read();
      }
      slot.held = kPromisedAnswerBytes;
    }
    shared_->handler(slot.request,
                     Responder(std::make_shared<SlotSink>(this->shared_from_this(), &slot)));
    Read();
  }

  // Reading stopped with requests unanswered (the pipeline is full, or the last request closes
  // the connection): a client leaving now would go unnoticed until an answer's write failed, and
  // the work for what it left would run on (16 pages of a pipeline, each built for nobody). So
  // the socket is watched while so: a reset, or the end of what the client sends (what a read
  // sees as end_of_stream), is a departure.
  void WatchDeparture() {
    if (watching_ || client_gone_ || !Unanswered()) return;
    auto& socket = beast::get_lowest_layer(stream_);
    if (!socket.is_open()) return;
    // Asked now, then again at each readiness: the reactor reports changes only, and one that
    // came before the wait was queued is not reported to it.
    pollfd events{socket.native_handle(), POLLRDHUP, 0};
    if (::poll(&events, 1, 0) == 1 && (events.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      read_closed_ = true;
      return ClientGone();
    }
    watching_ = true;
    socket.async_wait(Socket::wait_read, [self = this->shared_from_this()](beast::error_code ec) {
      self->watching_ = false;
      if (!ec && (self->paused_ || self->read_closed_)) self->WatchDeparture();
    });
  }
  // Some request has no answer yet.
  bool Unanswered() const {
    return std::any_of(slots_.begin(), slots_.end(),
                       [](const Slot& slot) { return !slot.response && !slot.stream_header; });
  }

  // The client closed its side while requests were unanswered: whoever works on them may stop.
  void ClientGone() {
    client_gone_ = true;
    for (auto& slot : slots_) {
      if (auto on_gone = std::exchange(slot.on_gone, nullptr)) on_gone();
    }
  }

  void Prepare(Slot& slot, bhttp::response_header<>& header) {
    header.version(slot.request.version() == 10 ? 10 : 11);
    header.set(bhttp::field::server, shared_->options.server_name);
    header.set(bhttp::field::date, HttpDate());
  }

  // The one write in flight starts, under the write timeout.
  void BeginWrite(Writing what) {
    writing_ = what;
    write_deadline_ = Deadline(shared_->options.idle_timeout);
  }
  // The write in flight ended (its buffers may be reused).
  void EndWrite() {
    writing_ = Writing::kNothing;
    write_deadline_ = SteadyClock::time_point::max();
  }

  // Writes whatever the front slot has ready; one write at a time.
  void Write() {
    if (writing_ != Writing::kNothing || slots_.empty()) return;
    Slot& slot = slots_.front();
    auto self = this->shared_from_this();
    auto done = [self](beast::error_code ec, std::size_t) { self->OnWrite(ec); };
    if (slot.response) {
      Response& response = *slot.response;
      Prepare(slot, response.base());
      response.keep_alive(!slot.close_after);
      response.prepare_payload();
      BeginWrite(Writing::kWhole);
      // One gathered write of the header block and the body.
      SerializeHeader(response, header_);
      const std::array<net::const_buffer, 2> buffers{
          net::buffer(header_), slot.head ? net::const_buffer() : net::buffer(response.body())};
      net::async_write(stream_, buffers, done);
      return;
    }
    if (!slot.stream_header) return;  // not answered yet
    if (!slot.header_sent) {
      stream_header_.emplace(std::move(*slot.stream_header));
      Prepare(slot, stream_header_->base());
      stream_header_->keep_alive(!slot.close_after);
      stream_header_->body().clear();
      stream_header_->chunked(true);
      BeginWrite(Writing::kStreamHeader);
      header_serializer_.emplace(*stream_header_);
      bhttp::async_write_header(stream_, *header_serializer_,
                                [self](beast::error_code ec, std::size_t) {
                                  self->header_serializer_.reset();
                                  self->slots_.front().header_sent = true;
                                  self->OnStreamWrite(ec);
                                });
      return;
    }
    if (slot.chunk && !slot.head) {
      chunk_ = std::move(*slot.chunk);
      slot.chunk.reset();
      BeginWrite(Writing::kChunk);
      net::async_write(stream_, bhttp::make_chunk(net::buffer(chunk_)),
                       [self](beast::error_code ec, std::size_t) { self->OnStreamWrite(ec); });
      return;
    }
    if (slot.chunk && slot.head) {  // HEAD: swallow chunks
      slot.chunk.reset();
      if (auto callback = std::exchange(slot.on_written, nullptr)) callback(true);
    }
    if (slot.finish) {
      BeginWrite(Writing::kLastChunk);
      if (slot.head) {
        net::post(stream_.get_executor(), [self] { self->OnWrite({}); });
      } else {
        net::async_write(stream_, bhttp::make_chunk_last(), done);
      }
    }
  }

  // The end of a stream's header or of one chunk.
  void OnStreamWrite(beast::error_code ec) {
    EndWrite();
    Slot& slot = slots_.front();
    if (ec) {
      // The client is gone: tell the producer, and stop.
      read_closed_ = true;
      if (auto callback = std::exchange(slot.on_written, nullptr)) callback(false);
      Close();
      return;
    }
    if (auto callback = std::exchange(slot.on_written, nullptr)) callback(true);
    Write();
  }

  // The end of a whole answer or of a stream: the front slot is done.
  void OnWrite(beast::error_code ec) {
    EndWrite();
    stream_header_.reset();
    if (ec) ClientGone();
    const bool close = ec || slots_.front().close_after;
    const bool linger = !ec && slots_.front().linger;
    GiveAnswerBack(slots_.front());
    slots_.pop_front();
    if (close) {
      read_closed_ = true;
      linger ? LingeringClose() : Close();
      return;
    }
    if (paused_) {
      paused_ = false;
      Read();
    }
    if (slots_.empty() && read_closed_) return Close();
    Write();
  }

  // Half-closes, then reads and drops what the client still sends (at most 1 MiB, 2 s) before
  // closing: closing with unread data would reset the connection and lose the answer.
  void LingeringClose() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).shutdown(tcp::socket::shutdown_send, ignored);
    read_deadline_ = Deadline(absl::Seconds(2));
    Discard(1 << 20);
  }
  void Discard(std::size_t budget) {
    beast::get_lowest_layer(stream_).async_read_some(
        net::buffer(discard_, sizeof discard_),
        [self = this->shared_from_this(), budget](beast::error_code ec, std::size_t n) {
          if (ec || n >= budget) return self->Close();
          self->Discard(budget - n);
        });
  }

  void Close() {
    // The connection is what a drain waits for, not this object (a late answer may hold it).
    shared_->registry.Remove(id_);
    read_deadline_ = write_deadline_ = SteadyClock::time_point::max();
    // No TLS close_notify: the peer sees the TCP close (as with most HTTP servers on keep-alive).
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream_);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  // Declared first, destroyed last: the socket's io_context outlives the socket.
  std::shared_ptr<Loop> loop_;                  // the event loop it lives on
  std::shared_ptr<HttpServer::Shared> shared_;  // the server's settings, handler and registry
  std::shared_ptr<ssl::context> tls_;           // HTTPS settings (null for plaintext)
  Stream stream_;                               // the connection
  std::string peer_;                            // its other end's address, for Responder::peer
  std::uint64_t id_ = 0;                        // this session's key in registry_
  // When the pending read / write gives up (checked by the loop's sweep); max: none pending.
  SteadyClock::time_point read_deadline_ = SteadyClock::time_point::max();
  SteadyClock::time_point write_deadline_ = SteadyClock::time_point::max();
  bool draining_ = false;      // the server is stopping: answer and close
  bool client_gone_ = false;   // the client closed its side of the connection
  char discard_[4096];         // where a lingering close drops the client's last bytes
  beast::flat_buffer buffer_;  // bytes read and not yet parsed
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;  // the request being read
  std::size_t body_held_ = 0;  // what its body set aside in shared_->bodies, until read
  // The write state: what is on the wire (one write at a time), and the buffers it reads.
  Writing writing_ = Writing::kNothing;
  std::string header_;                     // kWhole: the answer's header block
  std::optional<Response> stream_header_;  // kStreamHeader to kLastChunk: the stream's header
  std::optional<bhttp::response_serializer<bhttp::string_body>> header_serializer_;  // its writer
  std::string chunk_;         // kChunk: the chunk
  std::deque<Slot> slots_;    // requests read, oldest first, until answered
  bool paused_ = false;       // reading waits for the pipeline to drain
  bool watching_ = false;     // a wait for the client's departure is queued (WatchDeparture)
  bool read_closed_ = false;  // no more requests will be read
};

}  // namespace

std::string FieldValue(const Request& request, std::string_view name) {
  auto [first, last] = request.equal_range(beast::string_view(name.data(), name.size()));
  std::string value;
  for (auto it = first; it != last; ++it) {
    if (it != first) value += ", ";
    value.append(it->value().data(), it->value().size());
  }
  return value;
}

Response JsonError(const Request& request, bhttp::status status, int code,
                   const std::string& message) {
  Response response(status, request.version() == 0 ? 11 : request.version());
  response.set(bhttp::field::content_type, "application/json");
  response.body() =
      absl::StrCat("{\"code\":", code, ",\"message\":", JsonQuote(message), ",\"details\":[]}");
  return response;
}

// HttpServerOptions::max_connections, and never more than half the descriptors the process may
// open: the rest stay for gRPC's listener and connections, the database and files.
std::size_t MaxConnections(std::size_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return wanted;
  return std::min<std::size_t>(wanted, std::max<rlim_t>(16, limit.rlim_cur / 2));
}

// A connection past HttpServerOptions::max_connections: one try at a 503 without waiting (the
// kernel's send buffer takes it), then closed. Plaintext only: a TLS client would read garbage,
// and sees the close instead.
void TurnAway(Socket socket, bool plaintext) {
  static const std::string kBusy = [] {
    Request shape;
    shape.version(11);
    Response response = Unavailable(shape, "too many open connections");
    response.keep_alive(false);
    response.prepare_payload();
    std::string bytes;
    SerializeHeader(response, bytes);
    return bytes + response.body();
  }();
  beast::error_code ignored;
  if (plaintext) {
    socket.non_blocking(true, ignored);
    socket.send(net::buffer(kBusy), 0, ignored);
  }
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

// Accepts on the first loop and hands connections to the loops in turn.
class HttpServer::Listener final : public std::enable_shared_from_this<Listener> {
 public:
  // tls: null for plaintext.
  Listener(std::vector<std::shared_ptr<Loop>> loops, std::shared_ptr<Shared> shared,
           std::shared_ptr<ssl::context> tls)
      : loops_(std::move(loops)),
        shared_(std::move(shared)),
        tls_(std::move(tls)),
        acceptor_(loops_.front()->io()),
        max_connections_(MaxConnections(shared_->options.max_connections)) {}

  beast::error_code Open(const tcp::endpoint& endpoint) {
    beast::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    return ec;
  }
  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    std::shared_ptr<Loop> loop = loops_[next_loop_++ % loops_.size()];
    net::io_context& io = loop->io();
    acceptor_.async_accept(
        io.get_executor(), [self = this->shared_from_this(), loop = std::move(loop)](
                               beast::error_code ec, Socket socket) mutable {
          if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;  // closing
          if (ec) {
            // Out of descriptors (EMFILE, ENFILE) or memory: the connection stays queued, so an
            // accept at once would fail again at once. Try again a little later instead of
            // spinning.
            self->retry_timer_.expires_after(std::chrono::milliseconds(50));
            self->retry_timer_.async_wait([self](beast::error_code wait_ec) {
              if (!wait_ec && self->acceptor_.is_open()) self->Accept();
            });
            return;
          }
          if (self->shared_->registry.size() >= self->max_connections_) {
            Refused(self->shared_->options, Refusal::kConnections);
            TurnAway(std::move(socket), self->tls_ == nullptr);
          } else {
            socket.set_option(tcp::no_delay(true), ec);
            if (self->tls_ != nullptr) {
              self->Open(std::make_shared<Session<TlsStream>>(std::move(socket), std::move(loop),
                                                              self->shared_, self->tls_));
            } else {
              self->Open(std::make_shared<Session<Socket>>(std::move(socket), std::move(loop),
                                                           self->shared_));
            }
          }
          self->Accept();
        });
  }

  void Close() {
    loops_.front()->Post([self = this->shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

  // Closes without resetting a connection the kernel already let in (a proxy may have sent a
  // request on it): new SYNs are dropped, the accept loop takes what is queued or completes within
  // app::kHandshakeWait, then the socket closes. Returns once it is closed; not on a loop's thread.
  void CloseAfterQueued() {
    if (app::DropNewConnections(acceptor_.native_handle())) absl::SleepFor(app::kHandshakeWait);
    std::promise<void> closed;
    loops_.front()->Post([self = this->shared_from_this(), &closed] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
      closed.set_value();
    });
    closed.get_future().wait();
  }

 private:
  template <class SessionType>
  static void Open(std::shared_ptr<SessionType> session) {
    session->Register();
    session->Start();
  }

  const std::vector<std::shared_ptr<Loop>> loops_;  // where sessions run; the first one accepts
  std::shared_ptr<Shared> shared_;                  // settings, handler and open sessions
  std::shared_ptr<ssl::context> tls_;               // certificate and key; null for plaintext
  tcp::acceptor acceptor_;                          // the listening socket, on the first loop
  std::size_t next_loop_ = 0;                       // the loop the next connection goes to
  std::size_t max_connections_ = 0;                 // see HttpServerOptions::max_connections
  net::steady_timer retry_timer_{acceptor_.get_executor()};  // spaces accepts that failed
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : shared_(std::make_shared<Shared>(std::move(options), std::move(handler))) {
  const HttpServerOptions& settings = shared_->options;
  // Deadlines are checked four times per the shortest timeout, at most once a second.
  const absl::Duration sweep =
      std::clamp(std::min(settings.header_timeout, settings.idle_timeout) / 4,
                 absl::Milliseconds(10), absl::Seconds(1));
  const int threads = settings.threads > 0 ? settings.threads : 2 * app::UsableCores();
  for (int i = 0; i < threads; ++i) loops_.push_back(std::make_shared<Loop>(sweep));
}

HttpServer::~HttpServer() { Stop(); }

std::string_view RefusalName(Refusal why) {
  static constexpr std::array<std::string_view, kRefusals> kNames = {
      "malformed",        "framing",       "host",           "body_too_large",
      "header_too_large", "bodies_budget", "answers_budget", "connections"};
  return kNames[static_cast<std::size_t>(why)];
}

std::size_t HttpServer::connections() const { return shared_->registry.size(); }

absl::Status HttpServer::Start() {
  if (shared_->options.max_receiving_body_bytes < shared_->options.max_body_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_receiving_body_bytes (", shared_->options.max_receiving_body_bytes,
        ") must be at least --max_body_bytes (", shared_->options.max_body_bytes, ")"));
  }
  beast::error_code ec;
  const auto address = net::ip::make_address(shared_->options.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad HTTP host ", shared_->options.host));
  if (!shared_->options.tls_cert_file.empty()) {
    tls_ = std::make_shared<ssl::context>(ssl::context::tls_server);
    tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    tls_->use_certificate_chain_file(shared_->options.tls_cert_file, ec);
    if (!ec) tls_->use_private_key_file(shared_->options.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("HTTPS certificate ", shared_->options.tls_cert_file, " / key ",
                       shared_->options.tls_key_file, ": ", ec.message()));
    }
  }
  listener_ = std::make_shared<Listener>(loops_, shared_, tls_);
  ec = listener_->Open(tcp::endpoint(address, static_cast<unsigned short>(shared_->options.port)));
  if (ec) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", shared_->options.host, ":",
                                               shared_->options.port, ": ", ec.message()));
  }
  port_ = listener_->port();
  // Every loop runs before the first connection is taken: one that came in earlier could be handed
  // to a loop whose thread has not started, and a readiness probe could be answered while the
  // server is still starting. The acceptor is used on its own loop only.
  for (auto& loop : loops_) loop->Start();
  loops_.front()->Post([listener = listener_] { listener->Accept(); });
  started_ = true;
  return absl::OkStatus();
}

bool HttpServer::Drain(absl::Time deadline) {
  if (!started_) return true;
  listener_->CloseAfterQueued();
  const absl::Time now = absl::Now();
  const absl::Time linger_end =
      now + std::min(shared_->options.drain_idle_linger, (deadline - now) / 4);
  if (linger_end > absl::Now()) {
    for (const auto& session : shared_->registry.Live()) session->Quiesce();
    while (shared_->registry.size() > 0 && absl::Now() < linger_end) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  for (const auto& session : shared_->registry.Live()) session->Drain();
  while (shared_->registry.size() > 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

void HttpServer::Stop() {
  if (!started_) return;
  listener_->Close();
  for (auto& loop : loops_) loop->Stop();
  for (const auto& session : shared_->registry.Live()) session->CloseStopped();
  started_ = false;
}

}  // namespace hotpath::http
