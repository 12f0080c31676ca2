// The HTTP server core without a gateway: what a handler may do with its Responder, and when.
#include "server/http/http_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hotpath::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// The Responder of the last request a handler kept instead of answering.
class KeptResponder {
 public:
  void Keep(Responder respond) {
    std::lock_guard lock(mutex_);
    kept_.emplace(std::move(respond));
    arrived_.notify_all();
  }
  Responder Wait() {
    std::unique_lock lock(mutex_);
    arrived_.wait(lock, [this] { return kept_.has_value(); });
    return *std::exchange(kept_, std::nullopt);
  }

 private:
  std::mutex mutex_;                 // guards kept_
  std::condition_variable arrived_;  // signalled by Keep
  std::optional<Responder> kept_;    // the last one kept
};

// A blocking client on one connection.
class Client {
 public:
  // receive_buffer: the socket's receive buffer in bytes, set before connecting (it bounds the
  // window the server may fill); 0: the system's default.
  explicit Client(int port, int receive_buffer = 0) : socket_(io_) {
    socket_.open(tcp::v4());
    if (receive_buffer > 0) {
      socket_.set_option(net::socket_base::receive_buffer_size(receive_buffer));
    }
    socket_.connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  }
  void Send(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }
  // Everything until the server closes the connection.
  std::string ReadToClose() {
    std::string all;
    boost::system::error_code ec;
    char buffer[4096];
    while (true) {
      const std::size_t n = socket_.read_some(net::buffer(buffer), ec);
      if (ec) return all;
      all.append(buffer, n);
    }
  }

 private:
  net::io_context io_;  // for the socket only; never run
  tcp::socket socket_;  // the connection
};

// The reasons a server gave for the answers it gave by itself (HttpServerOptions::on_refusal).
class Refusals {
 public:
  // Records into this object, which must outlive the server.
  void Watch(HttpServerOptions& options) {
    options.on_refusal = [this](Refusal why) {
      std::lock_guard lock(mutex_);
      reasons_.emplace_back(RefusalName(why));
    };
  }
  int Count(std::string_view reason) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count(reasons_.begin(), reasons_.end(), reason));
  }

 private:
  std::mutex mutex_;                  // guards reasons_
  std::vector<std::string> reasons_;  // in the order given
};

// The statuses a handler's observers saw (ObservingSink, as the HTTP metrics and the access log).
class Observed {
 public:
  // respond, observed.
  Responder Wrap(Responder respond) {
    return Responder(std::make_shared<Sink>(std::move(respond), this));
  }
  int Count(int status) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count(statuses_.begin(), statuses_.end(), status));
  }

 private:
  class Sink final : public ObservingSink {
   public:
    Sink(Responder inner, Observed* into)
        : ObservingSink(std::move(inner), std::make_shared<const std::string>("/route")),
          into_(into) {}
    void Answered(int status, const std::string&, Clock::duration) override {
      std::lock_guard lock(into_->mutex_);
      into_->statuses_.push_back(status);
    }

   private:
    Observed* into_;  // outlives the server
  };
  std::mutex mutex_;           // guards statuses_
  std::vector<int> statuses_;  // as observed
};

HttpServerOptions LocalOptions() {
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.threads = 2;
  return options;
}

Response Ok(std::string body) {
  Response response(boost::beast::http::status::ok, 11);
  response.body() = std::move(body);
  return response;
}

// A session a late answer keeps alive holds its loop, settings and handler: answering after the
// server is gone does nothing (the client saw the connection close), and never touches freed
// memory (the sanitizer builds check).
// A server whose handler keeps each Responder, a client with one request sent to it, and the
// Responder once the request arrived: then the server is destroyed, the Responder still held.
struct Orphaned {
  std::unique_ptr<Client> client;    // connected to the server that is gone
  std::optional<Responder> respond;  // for the request the client sent
};
Orphaned RespondAfterTheServerIsGone() {
  KeptResponder kept;
  auto server = std::make_unique<HttpServer>(
      LocalOptions(),
      [&kept](const Request&, Responder respond) { kept.Keep(std::move(respond)); });
  EXPECT_TRUE(server->Start().ok());
  Orphaned orphaned{std::make_unique<Client>(server->port()), std::nullopt};
  orphaned.client->Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  orphaned.respond.emplace(kept.Wait());
  server.reset();
  return orphaned;
}

TEST(HttpServerTest, AnAnswerAfterTheServerIsGoneIsDropped) {
  Orphaned orphaned = RespondAfterTheServerIsGone();
  (*orphaned.respond)(Ok("too late"));
  EXPECT_EQ(orphaned.client->ReadToClose(), "");
}

TEST(HttpServerTest, AStreamAfterTheServerIsGoneIsDropped) {
  Orphaned orphaned = RespondAfterTheServerIsGone();
  const Responder& respond = *orphaned.respond;
  bool written = true;
  respond.StartStream(Ok(""), [&written](bool ok) { written = ok; });
  respond.WriteChunk("line\n", [](bool) {});
  respond.FinishStream();
  EXPECT_EQ(orphaned.client->ReadToClose(), "");
  EXPECT_TRUE(written);  // never called: nothing was written
}

// A drain keeps a keep-alive connection that is idle when it begins open for idle_linger: a request
// a proxy sends on it in that moment is answered, with Connection: close, then the connection
// closes (closing it at once would lose the request, and a proxy cannot resend a POST). After
// the linger, idle connections close.
TEST(HttpServerTest, ADrainAnswersARequestOnAnIdleConnectionDuringItsLingerThenClosesIt) {
  HttpServerOptions options = LocalOptions();
  options.drain_idle_linger = absl::Seconds(1);
  HttpServer server(options, [](const Request& request, Responder respond) {
    respond(Ok(std::string(request.target())));
  });
  ASSERT_TRUE(server.Start().ok());
  Client pooled(server.port());  // idle when the drain begins
  Client quiet(server.port());   // sends nothing: closed at the linger's end
  pooled.Send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  absl::SleepFor(absl::Milliseconds(100));  // answered; the connection is idle again
  bool drained = false;
  const absl::Time began = absl::Now();
  std::thread drain([&] { drained = server.Drain(began + absl::Seconds(5)); });
  absl::SleepFor(absl::Milliseconds(200));
  pooled.Send("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  const std::string answers = pooled.ReadToClose();
  EXPECT_NE(answers.find("/first"), std::string::npos) << answers;
  EXPECT_NE(answers.find("/second"), std::string::npos) << answers;
  EXPECT_NE(answers.find("Connection: close"), std::string::npos) << answers;
  EXPECT_EQ(quiet.ReadToClose(), "");
  const absl::Duration quiet_closed = absl::Now() - began;
  drain.join();
  EXPECT_TRUE(drained);
  EXPECT_GE(quiet_closed, absl::Milliseconds(900));
  EXPECT_LT(quiet_closed, absl::Seconds(3));
  server.Stop();
}

// The write timeout runs while a write is on the wire, not while a stream's producer works on its
// next chunk: a producer slower than the timeout between chunks still completes its stream.
TEST(HttpServerTest, AStreamWhoseProducerPausesLongerThanTheWriteTimeoutCompletes) {
  HttpServerOptions options = LocalOptions();
  options.idle_timeout = absl::Milliseconds(100);
  options.header_timeout = absl::Milliseconds(100);
  std::thread producer;
  HttpServer server(options, [&producer](const Request&, Responder respond) {
    producer = std::thread([respond] {
      respond.StartStream(Ok(""), [respond](bool ok) {
        if (!ok) return respond.FinishStream();
        std::thread([respond] {
          absl::SleepFor(absl::Milliseconds(500));  // five write timeouts
          respond.WriteChunk("late chunk\n", [respond](bool) { respond.FinishStream(); });
        }).detach();
      });
    });
  });
  ASSERT_TRUE(server.Start().ok());
  Client client(server.port());
  client.Send("GET /export HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = client.ReadToClose();
  producer.join();
  EXPECT_NE(answer.find("late chunk"), std::string::npos) << answer;
  EXPECT_NE(answer.find("\r\n0\r\n\r\n"), std::string::npos) << answer;
}

// Bodies still arriving share max_receiving_body_bytes, each its declared length (a chunked one
// max_body_bytes) from its header to its last byte: one that does not fit is answered 503 before
// a byte of it is read, whatever its connection, and what a finished body held is free again.
TEST(HttpServerTest, BodiesStillArrivingShareABudgetAndOnePastItIsRefusedUnread) {
  HttpServerOptions options = LocalOptions();
  options.max_body_bytes = 1000;
  options.max_receiving_body_bytes = 2500;
  Refusals refusals;
  refusals.Watch(options);
  HttpServer server(options, [](const Request& request, Responder respond) {
    respond(Ok(absl::StrCat(std::string(request.target()), " ", request.body().size())));
  });
  ASSERT_TRUE(server.Start().ok());
  auto post = [](const std::string& target, std::size_t length) {
    return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                        "Content-Length: ", length, "\r\n\r\n");
  };
  const std::string chunked =
      "POST /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  Client first(server.port());
  Client second(server.port());
  first.Send(post("/first", 1000) + std::string(10, 'a'));
  second.Send(post("/second", 1000) + std::string(10, 'b'));
  absl::SleepFor(absl::Milliseconds(200));  // both headers read: 2,000 of 2,500 set aside

  Client past(server.port());
  past.Send(post("/past", 600));
  const std::string refused = past.ReadToClose();
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("\"code\":14"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--max_receiving_body_bytes"), std::string::npos) << refused;
  Client unknown_length(server.port());
  unknown_length.Send(chunked);
  EXPECT_EQ(unknown_length.ReadToClose().rfind("HTTP/1.1 503", 0), 0u);

  Client fits(server.port());
  fits.Send(post("/fits", 400) + std::string(400, 'c'));
  const std::string served = fits.ReadToClose();
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u) << served;
  EXPECT_NE(served.find("/fits 400"), std::string::npos) << served;
  Client no_body(server.port());
  no_body.Send("GET /no-body HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(no_body.ReadToClose().rfind("HTTP/1.1 200", 0), 0u);

  first.Send(std::string(990, 'a'));  // its body whole: its 1,000 are free again
  EXPECT_NE(first.ReadToClose().find("/first 1000"), std::string::npos);
  Client chunked_now(server.port());
  chunked_now.Send(chunked);
  const std::string chunked_served = chunked_now.ReadToClose();
  EXPECT_NE(chunked_served.find("/chunked 3"), std::string::npos) << chunked_served;
  server.Stop();
  EXPECT_EQ(refusals.Count("bodies_budget"), 2);
}

// Whole answers not yet written share max_unsent_answer_bytes: one that does not fit is replaced
// by a 503 that says why, the connection goes on, and what a written answer held is free again.
TEST(HttpServerTest, AnswersNotYetWrittenShareABudgetAndOnePastItIsA503) {
  HttpServerOptions options = LocalOptions();
  constexpr std::size_t kAnswer = 8 << 20;        // more than loopback's socket buffers take
  options.max_unsent_answer_bytes = 2 * kAnswer;  // two held, nothing left
  Refusals refusals;
  refusals.Watch(options);
  Observed observed;
  options.on_own_answer = [](const Request&, Response& answer) {
    answer.set("Access-Control-Allow-Origin", "https://shop.example");  // as the gateway's CORS
  };
  HttpServer server(options, [&observed](const Request& request, Responder respond) {
    Response answer = Ok(request.target() == "/small" ? "small" : std::string(kAnswer, 'x'));
    observed.Wrap(std::move(respond))(std::move(answer));
  });
  ASSERT_TRUE(server.Start().ok());
  const std::string get = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  Client unread(server.port(), 4096);
  unread.Send(get + get + get + "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  absl::SleepFor(absl::Milliseconds(300));  // all four answered: two held, two refused

  Client other(server.port());
  other.Send("GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string refused = other.ReadToClose();
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused.substr(0, 300);
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("\"code\":14"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--max_unsent_answer_bytes"), std::string::npos) << refused;
  // A browser's script on another origin may read it.
  EXPECT_NE(refused.find("Access-Control-Allow-Origin: https://shop.example"), std::string::npos)
      << refused;

  // Read at last: the two held answers whole, then the two that did not fit, in order.
  const std::string answers = unread.ReadToClose();
  std::vector<std::string> statuses;
  for (std::size_t at = answers.find("HTTP/1.1 "); at != std::string::npos;
       at = answers.find("HTTP/1.1 ", at + 1)) {
    statuses.push_back(answers.substr(at + 9, 3));
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"200", "200", "503", "503"}));
  EXPECT_GE(answers.size(), 2 * kAnswer);

  Client after(server.port());
  after.Send(get.substr(0, get.size() - 2) + "Connection: close\r\n\r\n");
  const std::string served = after.ReadToClose();
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u) << served.substr(0, 300);
  EXPECT_GE(served.size(), kAnswer);
  server.Stop();
  EXPECT_EQ(refusals.Count("answers_budget"), 3);
  // What the HTTP metrics and the access log count is what went out.
  EXPECT_EQ(observed.Count(503), 3);
  EXPECT_EQ(observed.Count(200), 3);
}

// A request that may change state is never answered 503 after it was handled (its client would
// retry what is done): it is promised 4 KiB of max_unsent_answer_bytes before its handler runs,
// or refused unhandled, and its answer is written whatever its size.
TEST(HttpServerTest, AWriteIsRefusedForAnswersOnlyBeforeItIsHandled) {
  HttpServerOptions options = LocalOptions();
  constexpr std::size_t kAnswer = 8 << 20;                // held by a client that reads nothing
  constexpr std::size_t kWritten = 12 << 10;              // a write's answer: more than is left
  options.max_unsent_answer_bytes = kAnswer + (8 << 10);  // room for two writes' promises
  Refusals refusals;
  refusals.Watch(options);
  options.on_own_answer = [](const Request&, Response& answer) { answer.set("X-Own", "yes"); };
  std::mutex mutex;
  std::condition_variable handled_changed;
  std::vector<Responder> writes;  // handled, not yet answered
  HttpServer server(options, [&](const Request& request, Responder respond) {
    if (request.method() == boost::beast::http::verb::get) {
      return respond(Ok(std::string(kAnswer, 'x')));
    }
    std::lock_guard lock(mutex);
    writes.push_back(std::move(respond));
    handled_changed.notify_all();
  });
  ASSERT_TRUE(server.Start().ok());
  Client unread(server.port(), 4096);
  unread.Send("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  absl::SleepFor(absl::Milliseconds(300));  // answered and held: 8 KiB left

  const std::string post =
      "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  Client first(server.port());
  Client second(server.port());
  first.Send(post);
  second.Send(post);
  {
    std::unique_lock lock(mutex);
    handled_changed.wait(lock, [&] { return writes.size() == 2; });
  }
  Client third(server.port());  // nothing left to promise
  third.Send(post);
  absl::SleepFor(absl::Milliseconds(300));  // refused, not handled
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(writes.size(), 2u);  // the third never reached the handler
    for (Responder& respond : writes) respond(Ok(std::string(kWritten, 'w')));
  }
  const std::string refused = third.ReadToClose();
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused.substr(0, 300);
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("\"code\":14"), std::string::npos) << refused;
  EXPECT_NE(refused.find("the request was not handled"), std::string::npos) << refused;
  EXPECT_NE(refused.find("X-Own: yes"), std::string::npos) << refused;
  for (Client* client : {&first, &second}) {
    const std::string answer = client->ReadToClose();
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer.substr(0, 300);
    EXPECT_GE(answer.size(), kWritten);
  }

  EXPECT_GE(unread.ReadToClose().size(), kAnswer);
  Client after(server.port());  // all given back: a big answer fits again
  after.Send("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string served = after.ReadToClose();
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u) << served.substr(0, 300);
  server.Stop();
  EXPECT_EQ(refusals.Count("answers_budget"), 1);
}

// The answers the server gives by itself to a request whose fields it read get what its owner adds
// to every answer (the gateway's CORS headers); a header it could not read whole gets nothing.
TEST(HttpServerTest, ItsOwnAnswersGetWhatTheOwnerAddsWhenTheRequestsFieldsWereRead) {
  HttpServerOptions options = LocalOptions();
  options.max_body_bytes = 1000;
  options.max_header_bytes = 2048;
  options.on_own_answer = [](const Request& request, Response& answer) {
    answer.set("X-Own", FieldValue(request, "Origin"));
  };
  HttpServer server(options, [](const Request&, Responder respond) { respond(Ok("handled")); });
  ASSERT_TRUE(server.Start().ok());
  const auto answer = [&](const std::string& request) {
    Client client(server.port());
    client.Send(request);
    return client.ReadToClose();
  };
  const std::string too_large = answer(
      "POST /items HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n"
      "Content-Length: 2000\r\n\r\n");
  EXPECT_EQ(too_large.rfind("HTTP/1.1 413", 0), 0u) << too_large;
  EXPECT_NE(too_large.find("X-Own: https://a.example"), std::string::npos) << too_large;
  const std::string unframed = answer(
      "POST /items HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n"
      "Transfer-Encoding: gzip, chunked\r\n\r\n");
  EXPECT_EQ(unframed.rfind("HTTP/1.1 501", 0), 0u) << unframed;
  EXPECT_NE(unframed.find("X-Own: https://b.example"), std::string::npos) << unframed;
  const std::string huge_header =
      answer(absl::StrCat("GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://c.example\r\nX-Pad: ",
                          std::string(4096, 'p'), "\r\n\r\n"));
  EXPECT_EQ(huge_header.rfind("HTTP/1.1 431", 0), 0u) << huge_header.substr(0, 300);
  EXPECT_EQ(huge_header.find("X-Own"), std::string::npos) << huge_header.substr(0, 300);
  const std::string handled = answer(
      "GET /items HTTP/1.1\r\nHost: x\r\nOrigin: https://d.example\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_EQ(handled.rfind("HTTP/1.1 200", 0), 0u) << handled;
  EXPECT_EQ(handled.find("X-Own"), std::string::npos) << handled;  // the handler's own business
  server.Stop();
}

TEST(HttpServerTest, ABodyBudgetSmallerThanOneBodyDoesNotStart) {
  HttpServerOptions options = LocalOptions();
  options.max_body_bytes = 1000;
  options.max_receiving_body_bytes = 999;
  HttpServer server(options, [](const Request&, Responder respond) { respond(Ok("")); });
  const absl::Status started = server.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(started.message().find("--max_receiving_body_bytes"), std::string::npos)
      << started.message();
}

}  // namespace
}  // namespace hotpath::http
