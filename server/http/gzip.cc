#include "server/http/gzip.h"

#include <zlib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hotpath::http {

namespace {

// One deflate state per thread, reset for each response: deflateInit2 allocates and clears about
// 256 KiB (window and hash chains), fresh pages each time, which cost more than compressing a
// 50-item page. windowBits 15 + 16: a gzip header and trailer instead of zlib's. Level 1, as
// nginx's default gzip_comp_level: for JSON it keeps most of the size win at a fraction of level
// 6's CPU (zlib was a quarter of the server's CPU on 50-item lists at level 6).
class Deflater final {
 public:
  Deflater() { ready_ = deflateInit2(&z_, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK; }
  ~Deflater() {
    if (ready_) deflateEnd(&z_);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  std::string Compress(absl::string_view in) {
    if (!ready_ || deflateReset(&z_) != Z_OK) return OneShot(in);
    return Run(z_, in);
  }

 private:
  static std::string Run(z_stream& z, absl::string_view in) {
    std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    return out;
  }
  // Without the thread's state (zlib could not allocate it): a stream of its own.
  static std::string OneShot(absl::string_view in) {
    z_stream z{};
    deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out = Run(z, in);
    deflateEnd(&z);
    return out;
  }

  z_stream z_{};        // the thread's deflate state
  bool ready_ = false;  // deflateInit2 succeeded
};

}  // namespace

std::string GzipCompress(absl::string_view in) {
  thread_local Deflater deflater;
  return deflater.Compress(in);
}

// A stream's state lives as long as its answer, its client's pace: an 8 KiB window and memLevel 5
// take ~48 KiB instead of the default's ~256 KiB, for a member ~9% larger on demo exports
// (bench/stalled_exports). Level 1, as GzipCompress.
GzipStream::GzipStream() : z_(std::make_unique<z_stream>()) {
  deflateInit2(z_.get(), 1, Z_DEFLATED, 13 + 16, 5, Z_DEFAULT_STRATEGY);
}

GzipStream::~GzipStream() { deflateEnd(z_.get()); }

std::string GzipStream::Add(absl::string_view in) { return Deflate(in, Z_NO_FLUSH); }

std::string GzipStream::Finish() { return Deflate({}, Z_FINISH); }

std::string GzipStream::Deflate(absl::string_view in, int flush) {
  z_stream& z = *z_;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buffer[16384];
  // Until zlib took every input byte and, when finishing, wrote the trailer: it asks for more room
  // by filling the buffer.
  do {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    if (deflate(&z, flush) == Z_STREAM_ERROR) break;
    out.append(buffer, sizeof buffer - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

absl::StatusOr<std::string> GzipDecompress(absl::string_view in, std::size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return absl::InternalError("zlib unavailable");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buffer[16384];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return absl::InvalidArgumentError("request body is not valid gzip");
    }
    out.append(buffer, sizeof buffer - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return absl::ResourceExhaustedError("request body exceeds the size limit once unpacked");
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      inflateEnd(&z);
      return absl::InvalidArgumentError("request body is truncated gzip");
    }
  }
  inflateEnd(&z);
  return out;
}

bool AcceptsGzip(absl::string_view accept_encoding) {
  for (absl::string_view item : absl::StrSplit(accept_encoding, ',')) {
    const std::pair<absl::string_view, absl::string_view> coding_params =
        absl::StrSplit(item, absl::MaxSplits(';', 1));
    const absl::string_view coding = absl::StripAsciiWhitespace(coding_params.first);
    if (!absl::EqualsIgnoreCase(coding, "gzip") && coding != "*") continue;
    double q = 1;
    for (absl::string_view param : absl::StrSplit(coding_params.second, ';', absl::SkipEmpty())) {
      param = absl::StripAsciiWhitespace(param);
      if (absl::ConsumePrefix(&param, "q=") && !absl::SimpleAtod(param, &q)) q = 0;
    }
    if (q > 0) return true;
  }
  return false;
}

}  // namespace hotpath::http
