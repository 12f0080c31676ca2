#include "server/http/http_server.h"

#include <ctime>
#include <deque>
#include <mutex>
#include <optional>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"

namespace hotpath::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// The Date header, formatted once a second.
std::string HttpDate() {
  thread_local std::time_t cached_second = 0;
  thread_local char cached[64];
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return cached;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

class Session final : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions& options, const Handler& handler)
      : stream_(std::move(socket)), options_(options), handler_(handler) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  struct Slot {
    Request request;                  // what was asked
    std::optional<Response> response;  // the answer, once given
    bool head = false;                // a HEAD request: write the header only
    bool close_after = false;         // close the connection after writing this answer
  };

  void Read() {
    if (read_closed_) return;
    if (slots_.size() >= options_.max_pipeline) {
      paused_ = true;  // resumed when a response is written
      return;
    }
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    stream_.expires_after(ToChrono(slots_.empty() && buffer_.size() == 0 ? options_.idle_timeout
                                                                           : options_.header_timeout));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::eof) {
      read_closed_ = true;
      if (slots_.empty()) Close();
      return;
    }
    if (ec) {
      // A malformed or oversized request: answer it, then close (the stream is out of sync).
      read_closed_ = true;
      Request bad;
      bad.version(11);
      auto& slot = slots_.emplace_back();
      slot.close_after = true;
      if (ec == bhttp::error::body_limit) {
        slot.response = JsonError(bad, bhttp::status::payload_too_large, 3,
                                  absl::StrCat("request body exceeds ", options_.max_body_bytes, " bytes"));
      } else if (ec == bhttp::error::header_limit) {
        slot.response = JsonError(bad, bhttp::status::request_header_fields_too_large, 3,
                                  "request header too large");
      } else {
        slot.response = JsonError(bad, bhttp::status::bad_request, 3,
                                  absl::StrCat("malformed HTTP request: ", ec.message()));
      }
      Write();
      return;
    }
    auto& slot = slots_.emplace_back();
    slot.request = parser_->release();
    slot.head = slot.request.method() == bhttp::verb::head;
    slot.close_after = !slot.request.keep_alive();
    if (slot.close_after) read_closed_ = true;  // no request after one that asked to close
    // deque: a slot's address stays put while others are added at the back and removed in front.
    Slot* target = &slot;
    auto self = shared_from_this();
    auto answered = std::make_shared<std::once_flag>();
    handler_(slot.request, [self, target, answered](Response response) {
      std::call_once(*answered, [&] {
        net::post(self->stream_.get_executor(), [self, target, response = std::move(response)]() mutable {
          target->response = std::move(response);
          self->Write();
        });
      });
    });
    Read();
  }

  void Write() {
    if (writing_ || slots_.empty() || !slots_.front().response) return;
    Slot& slot = slots_.front();
    Response& response = *slot.response;
    response.version(slot.request.version() == 10 ? 10 : 11);
    response.set(bhttp::field::server, options_.server_name);
    response.set(bhttp::field::date, HttpDate());
    response.keep_alive(!slot.close_after);
    response.prepare_payload();
    writing_ = true;
    stream_.expires_after(ToChrono(options_.idle_timeout));
    auto self = shared_from_this();
    if (slot.head) {
      serializer_.emplace(response);
      bhttp::async_write_header(stream_, *serializer_, [self](beast::error_code ec, std::size_t) {
        self->OnWrite(ec);
      });
    } else {
      bhttp::async_write(stream_, response, [self](beast::error_code ec, std::size_t) {
        self->OnWrite(ec);
      });
    }
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    serializer_.reset();
    const bool close = ec || slots_.front().close_after;
    slots_.pop_front();
    if (close) {
      read_closed_ = true;
      // Answers still owed keep the session alive through their responders; they are dropped.
      if (slots_.empty() || ec) Close();
      return;
    }
    if (paused_) {
      paused_ = false;
      Read();
    }
    if (slots_.empty() && read_closed_) return Close();
    Write();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;                     // the connection
  const HttpServerOptions& options_;             // the server's settings
  const Handler& handler_;                       // the server's handler
  beast::flat_buffer buffer_;                    // bytes read and not yet parsed
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;  // the request being read
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer_;  // HEAD writes
  std::deque<Slot> slots_;                       // requests read, oldest first, until answered
  bool writing_ = false;                         // a write is in flight
  bool paused_ = false;                          // reading waits for the pipeline to drain
  bool read_closed_ = false;                     // no more requests will be read
};

}  // namespace

Response JsonError(const Request& request, bhttp::status status, int code,
                   const std::string& message) {
  Response response(status, request.version() == 0 ? 11 : request.version());
  response.set(bhttp::field::content_type, "application/json");
  response.body() = absl::StrCat("{\"code\":", code, ",\"message\":", JsonString(message),
                                 ",\"details\":[]}");
  return response;
}

class HttpServer::Listener final : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& io, const HttpServerOptions& options, const Handler& handler)
      : io_(io), acceptor_(net::make_strand(io)), options_(options), handler_(handler) {}

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
    acceptor_.async_accept(net::make_strand(io_), [self = shared_from_this()](
                                                      beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;  // closing
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), self->options_, self->handler_)->Start();
      }
      self->Accept();
    });
  }

  void Close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

 private:
  net::io_context& io_;              // where sessions run
  tcp::acceptor acceptor_;           // the listening socket
  const HttpServerOptions& options_;  // the server's settings
  const Handler& handler_;           // the server's handler
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)), io_(options_.threads) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  beast::error_code ec;
  const auto address = net::ip::make_address(options_.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad HTTP host ", options_.host));
  listener_ = std::make_shared<Listener>(io_, options_, handler_);
  ec = listener_->Open(tcp::endpoint(address, static_cast<unsigned short>(options_.port)));
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", options_.host, ":", options_.port, ": ", ec.message()));
  }
  port_ = listener_->port();
  listener_->Accept();
  for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { io_.run(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (threads_.empty()) return;
  listener_->Close();
  io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace hotpath::http
