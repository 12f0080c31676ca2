// Page tokens: arbitrary text must decode to an error or a cursor, never crash; and a cursor
// built from the input must survive Encode then Decode unchanged.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "server/catalog/page_token.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const hotpath::catalog::PageTokenCodec* codec =
      new hotpath::catalog::PageTokenCodec("fuzz-secret");
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)codec->Decode(input, "scope");

  if (size < 13) return 0;
  hotpath::catalog::PageCursor cursor;
  std::memcpy(&cursor.last_id, data, 8);
  float rank;
  std::memcpy(&rank, data + 8, 4);
  if ((data[12] & 1) != 0 && std::isfinite(rank)) cursor.last_rank = rank;
  cursor.last_category = input.substr(13);
  if (cursor.last_category.find('\x1f') != std::string::npos) return 0;  // never in a category
  const std::string token = codec->Encode(cursor, "scope");
  auto decoded = codec->Decode(token, "scope");
  if (token.size() > 1024) return 0;  // refused by design: longer than any real cursor
  if (!decoded.ok() || decoded->last_id != cursor.last_id ||
      decoded->last_category != cursor.last_category ||
      decoded->last_rank.has_value() != cursor.last_rank.has_value() ||
      (cursor.last_rank && *decoded->last_rank != *cursor.last_rank)) {
    std::abort();  // a cursor that does not survive its own token
  }
  if (codec->Decode(token, "other scope").ok()) std::abort();
  return 0;
}
