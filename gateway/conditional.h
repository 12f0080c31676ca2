// HTTP conditional requests (RFC 9110 section 13) over AIP-154 etags: a resource message's string
// field named `etag`. The gateway knows nothing of items: any message with such a field gets an
// ETag header, If-None-Match (-> 304 on GET and HEAD) and If-Match (-> the request's etag, so the
// service checks it atomically with the write; a mismatch is 412).
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gateway/transcoder.h"

namespace hotpath::gateway {

// The value of message's top-level `etag` string field; "" when it has none (or it is empty).
std::string EtagOf(const google::protobuf::Message& message);

// The strong entity tag of an etag value: its value in double quotes.
std::string EntityTag(absl::string_view etag);

// If-None-Match (a list of entity tags, or "*") names etag; weak comparison (W/ is ignored).
bool NoneMatch(absl::string_view if_none_match, absl::string_view etag);

// If-Match on a write: the one entity tag it names becomes the request's etag (the request's own
// `etag` field, else that of the message its body binds to), which the service compares with the
// stored one. "*" (any current representation) changes nothing. FAILED_PRECONDITION for a weak
// tag (never a strong match), a method other than PATCH, PUT or DELETE, or a request without an
// etag field; INVALID_ARGUMENT for a list, a malformed tag, or a body etag that differs.
absl::Status ApplyIfMatch(absl::string_view if_match, const HttpBinding& binding,
                          google::protobuf::Message* request);

}  // namespace hotpath::gateway
