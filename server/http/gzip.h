// gzip for HTTP bodies (zlib), and reading Accept-Encoding.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct z_stream_s;  // zlib's, kept out of this header (zlib is the library's private dependency)

namespace hotpath::http {

// in as a gzip member, at compression level 1 (fast).
std::string GzipCompress(absl::string_view in);
// One gzip member written piece by piece, for an answer streamed in chunks (level 1, as
// GzipCompress, with a smaller window: a stream's state lives as long as its client takes).
// Output comes when zlib has a block's worth (Add may return nothing), and the rest with Finish;
// the member unpacks to the concatenated input.
class GzipStream final {
 public:
  GzipStream();
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Compressed bytes ready after in; may be empty.
  std::string Add(absl::string_view in);
  // The rest of the member, trailer included. Nothing may be added after.
  std::string Finish();

 private:
  std::string Deflate(absl::string_view in, int flush);

  std::unique_ptr<z_stream_s> z_;  // the member's deflate state
};

// A gzip body, unpacked; INVALID_ARGUMENT when it is not gzip, RESOURCE_EXHAUSTED past max_bytes.
absl::StatusOr<std::string> GzipDecompress(absl::string_view in, std::size_t max_bytes);
// Whether an Accept-Encoding value admits gzip ("gzip", "gzip;q=0.5", "*"; not "gzip;q=0").
bool AcceptsGzip(absl::string_view accept_encoding);

}  // namespace hotpath::http
