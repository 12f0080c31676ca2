// A request's bytes as hotpath reads them, compressed or not.
//
// gRPC's own per-message decompression inflates a gzip message whole before anything checks its
// size: a 1 MiB request that inflates to 1 GiB took 1.6 GB of RSS and seconds of CPU before it was
// refused. The server turns it off (GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION), so a compressed
// message arrives as gRPC received it, and is inflated here, stopping at the size limit.
#pragma once

#include <grpc/compression.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace hotpath::rpc {

// The largest message, compressed or inflated, unless a server says otherwise: gRPC's default.
inline constexpr std::size_t kDefaultMaxMessageBytes = 4 * 1024 * 1024;

// When bytes holds a message gRPC left compressed: inflates it into *inflated and returns true,
// or RESOURCE_EXHAUSTED once it would pass max_bytes, INVALID_ARGUMENT when it is not valid
// gzip/deflate data. When it is not compressed: false, and *inflated is untouched.
absl::StatusOr<bool> InflateIfCompressed(grpc::ByteBuffer* bytes, std::size_t max_bytes,
                                         std::string* inflated);

// A message compressed already (gzip or deflate bytes of a serialized message), to send as it
// is: gRPC marks it compressed and does not compress it again. The call must name the same
// algorithm (ClientContext::set_compression_algorithm). For tests that send what any client could.
grpc::ByteBuffer PrecompressedMessage(const std::string& compressed,
                                      grpc_compression_algorithm algorithm);

}  // namespace hotpath::rpc
