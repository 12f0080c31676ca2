#include "server/http/access_log.h"

#include <algorithm>
#include <iostream>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/http/json_quote.h"
#include "server/http/process_time.h"

namespace hotpath::http {
namespace {

// Beast's string_view (Boost's) as Abseil's.
absl::string_view View(boost::beast::string_view text) { return {text.data(), text.size()}; }

class AccessLogSink final : public ObservingSink {
 public:
  AccessLogSink(Responder inner, const Request& request, std::shared_ptr<const std::string> route)
      : ObservingSink(std::move(inner), std::move(route)) {
    line_ = absl::StrCat(R"("http_method":)", JsonQuote(LoggedValue(View(request.method_string()))),
                         R"(,"target":)", JsonQuote(LoggedValue(View(request.target()))));
    // Every line of each, as the gateway passes them on (RFC 9110 5.3).
    for (const auto& [header, field] : kForwardedFields) {
      if (request.find(header) != request.end()) {
        absl::StrAppend(&line_, ",\"", field,
                        "\":", JsonQuote(LoggedValue(FieldValue(request, header))));
      }
    }
  }
  ~AccessLogSink() override {
    if (!written_) Observe(499);
  }

 private:
  void Answered(int status, const std::string& route, Clock::duration elapsed) override {
    if (std::exchange(written_, true)) return;
    const std::string_view peer = Peer();
    WriteAccessLine(absl::StrCat(
        R"({"time":")", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()),
        "\",", line_, R"(,"route":)", JsonQuote(route), R"(,"peer":)",
        JsonQuote(absl::string_view(peer.data(), peer.size())), R"(,"status":)", status,
        R"(,"duration_seconds":)", FormatProcessTime(elapsed), "}\n"));
  }

  std::string line_;      // the request's fields, "name":value,...
  bool written_ = false;  // the line went out
};

}  // namespace

std::string LoggedValue(absl::string_view value) {
  std::string logged(value.substr(0, kMaxLoggedBytes));
  for (char& c : logged) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return logged;
}

void WriteAccessLine(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cerr << line << std::flush;
}

Responder AccessLogged(Responder inner, const Request& request,
                       std::shared_ptr<const std::string> route) {
  return Responder(std::make_shared<AccessLogSink>(std::move(inner), request, std::move(route)));
}

}  // namespace hotpath::http
