#include "server/rpc/message_bytes.h"

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

// gRPC's own friend of ByteBuffer (byte_buffer.h declares it, for peeking at the core buffer;
// no gRPC library defines it): the one way to see that a message arrived compressed.
namespace grpc::internal {
class GrpcByteBufferPeer final {
 public:
  explicit GrpcByteBufferPeer(ByteBuffer* bytes) : bytes_(bytes) {}
  grpc_byte_buffer* c_buffer() { return bytes_->c_buffer(); }
  grpc_byte_buffer** c_buffer_ptr() { return bytes_->c_buffer_ptr(); }

 private:
  ByteBuffer* bytes_;
};
}  // namespace grpc::internal

namespace hotpath::rpc {

absl::StatusOr<bool> InflateIfCompressed(grpc::ByteBuffer* bytes, std::size_t max_bytes,
                                         std::string* inflated) {
  grpc_byte_buffer* raw = grpc::internal::GrpcByteBufferPeer(bytes).c_buffer();
  if (raw == nullptr || raw->type != GRPC_BB_RAW ||
      raw->data.raw.compression == GRPC_COMPRESS_NONE) {
    return false;
  }
  if (raw->data.raw.compression != GRPC_COMPRESS_GZIP &&
      raw->data.raw.compression != GRPC_COMPRESS_DEFLATE) {
    return absl::UnimplementedError("request compressed with an unsupported algorithm");
  }
  z_stream stream{};
  // 15 + 32: a zlib ("deflate") or gzip header, detected from the data.
  if (inflateInit2(&stream, 15 + 32) != Z_OK) return absl::InternalError("inflateInit2 failed");
  const grpc_slice_buffer& slices = raw->data.raw.slice_buffer;
  inflated->clear();
  char out[16384];
  int result = Z_OK;
  bool failed = false;
  for (std::size_t i = 0; i < slices.count && result != Z_STREAM_END && !failed; ++i) {
    stream.next_in = GRPC_SLICE_START_PTR(slices.slices[i]);
    stream.avail_in = static_cast<uInt>(GRPC_SLICE_LENGTH(slices.slices[i]));
    // Until this slice is used up and zlib holds no more output for us (a full out buffer).
    do {
      stream.next_out = reinterpret_cast<Bytef*>(out);
      stream.avail_out = sizeof out;
      result = inflate(&stream, Z_NO_FLUSH);
      if (result != Z_OK && result != Z_STREAM_END && result != Z_BUF_ERROR) {
        failed = true;
        break;
      }
      const std::size_t produced = sizeof out - stream.avail_out;
      if (inflated->size() + produced > max_bytes) {
        inflateEnd(&stream);
        inflated->clear();
        return absl::ResourceExhaustedError(absl::StrCat(
            "the request message inflates past ", max_bytes, " bytes, the largest accepted"));
      }
      inflated->append(out, produced);
      if (result == Z_BUF_ERROR) break;  // no progress possible: wants more input
    } while (result != Z_STREAM_END && (stream.avail_in > 0 || stream.avail_out == 0));
  }
  inflateEnd(&stream);
  if (result != Z_STREAM_END) {
    inflated->clear();
    return absl::InvalidArgumentError("the request message is not valid compressed data");
  }
  return true;
}

grpc::ByteBuffer PrecompressedMessage(const std::string& compressed,
                                      grpc_compression_algorithm algorithm) {
  grpc_slice slice = grpc_slice_from_copied_buffer(compressed.data(), compressed.size());
  grpc::ByteBuffer bytes;
  *grpc::internal::GrpcByteBufferPeer(&bytes).c_buffer_ptr() =
      grpc_raw_compressed_byte_buffer_create(&slice, 1, algorithm);
  grpc_slice_unref(slice);
  return bytes;
}

}  // namespace hotpath::rpc
