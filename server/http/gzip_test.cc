#include "server/http/gzip.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace hotpath::http {
namespace {

// Pieces of any size, compressible or not, make one member that unpacks to their concatenation.
TEST(GzipStream, PiecesMakeOneMemberOfTheirConcatenation) {
  std::mt19937 random(7);
  std::string whole;
  GzipStream stream;
  std::string member;
  for (int i = 0; i < 2000; ++i) {
    std::string piece(random() % 3000, '\0');
    for (char& c : piece) c = static_cast<char>(i % 2 == 0 ? 'a' + random() % 4 : random());
    whole += piece;
    member += stream.Add(piece);
  }
  member += stream.Finish();
  auto unpacked = GzipDecompress(member, whole.size());
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(*unpacked, whole);
}

TEST(GzipStream, NothingAddedIsAnEmptyMember) {
  GzipStream stream;
  auto unpacked = GzipDecompress(stream.Finish(), 1);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(*unpacked, "");
}

TEST(AcceptsGzip, ReadsQualities) {
  EXPECT_TRUE(AcceptsGzip("gzip, deflate"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_TRUE(AcceptsGzip("br;q=1, gzip;q=0.5"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip(""));
}

}  // namespace
}  // namespace hotpath::http
