#include "server/catalog/page_token.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace hotpath::catalog {
namespace {

TEST(PageToken, RoundTripsEveryField) {
  const PageTokenCodec codec("secret");
  const PageCursor cursor{.last_id = 4242, .last_category = "cat-7", .last_rank = 0.0607927f};
  auto decoded = codec.Decode(codec.Encode(cursor, "scope"), "scope");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->last_id, 4242);
  EXPECT_EQ(decoded->last_category, "cat-7");
  ASSERT_TRUE(decoded->last_rank.has_value());
  EXPECT_EQ(*decoded->last_rank, 0.0607927f);  // bit-exact: the SQL compares ranks for equality
}

TEST(PageToken, RefusesAnotherScope) {
  const PageTokenCodec codec("secret");
  const std::string token = codec.Encode({.last_id = 1}, "list|cat-1");
  EXPECT_EQ(codec.Decode(token, "list|cat-2").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PageToken, RefusesAnotherSecret) {
  const std::string token = PageTokenCodec("one").Encode({.last_id = 1}, "s");
  EXPECT_FALSE(PageTokenCodec("two").Decode(token, "s").ok());
}

TEST(PageToken, RefusesEveryAlteredByte) {
  const PageTokenCodec codec("secret");
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(codec.Encode({.last_id = 99}, "s"), &raw));
  for (std::size_t i = 0; i < raw.size(); ++i) {
    std::string altered = raw;
    altered[i] ^= 0x01;
    EXPECT_FALSE(codec.Decode(absl::WebSafeBase64Escape(altered), "s").ok()) << "byte " << i;
  }
}

TEST(PageToken, RefusesGarbage) {
  const PageTokenCodec codec("secret");
  for (const char* token : {"", "!!!", "AAAA", "bm90IGEgdG9rZW4", "%00"}) {
    const auto decoded = codec.Decode(token, "s");
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << token;
  }
  EXPECT_FALSE(codec.Decode(std::string(5000, 'A'), "s").ok());
}

TEST(PageToken, RandomSecretsDiffer) {
  const std::string token = PageTokenCodec("").Encode({.last_id = 1}, "s");
  EXPECT_FALSE(PageTokenCodec("").Decode(token, "s").ok());
}

}  // namespace
}  // namespace hotpath::catalog
