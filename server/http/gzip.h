// gzip for HTTP bodies (zlib), and reading Accept-Encoding.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hotpath::http {

// in as a gzip member, at compression level 1 (fast).
std::string GzipCompress(absl::string_view in);
// A gzip body, unpacked; INVALID_ARGUMENT when it is not gzip, RESOURCE_EXHAUSTED past max_bytes.
absl::StatusOr<std::string> GzipDecompress(absl::string_view in, std::size_t max_bytes);
// Whether an Accept-Encoding value admits gzip ("gzip", "gzip;q=0.5", "*"; not "gzip;q=0").
bool AcceptsGzip(absl::string_view accept_encoding);

}  // namespace hotpath::http
