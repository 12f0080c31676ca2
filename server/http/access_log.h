// --access_log's lines on stderr, one JSON object each: one per gRPC call (a server interceptor,
// server/interceptors) and one per HTTP request (AccessLogged), whichever thread writes them.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "server/http/http_server.h"

namespace hotpath::http {

// The most of a value a client sent (a header, metadata) that a line prints: a client cannot make
// a line long.
inline constexpr std::size_t kMaxLoggedBytes = 256;

// The headers (HTTP) or metadata keys (gRPC) a proxy passes on that a line prints, and their
// names in it.
inline constexpr std::pair<const char*, const char*> kForwardedFields[] = {
    {"x-request-id", "request_id"}, {"x-forwarded-for", "forwarded_for"}};

// value as a line prints it: cut at kMaxLoggedBytes, anything but printable ASCII a '?'.
std::string LoggedValue(absl::string_view value);

// Writes line (ending in '\n') to stderr whole: lines from several threads never interleave.
void WriteAccessLine(const std::string& line);

// A responder that writes request's line when its answer, or its stream's end, goes out: time,
// HTTP method, target and route (route is read then: the handler fills it in), the peer, the
// x-request-id and x-forwarded-for a proxy passed on, status and duration. A request whose
// responder goes (its last copy) without an answer is written then, with status 499 as nginx
// writes for a client that closed first.
Responder AccessLogged(Responder inner, const Request& request,
                       std::shared_ptr<const std::string> route);

}  // namespace hotpath::http
