#include "server/rpc/consistency.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace hotpath::rpc {
namespace {

TEST(ConsistencyTest, PositionsReadAsPostgreSQLWritesThem) {
  EXPECT_EQ(Consistency::Parse("0/1"), 1u);
  EXPECT_EQ(Consistency::Parse("2/1A3F0B28"), (2ull << 32) | 0x1A3F0B28u);
  EXPECT_EQ(Consistency::Parse("FFFFFFFF/FFFFFFFF"), ~0ull);
  EXPECT_EQ(Consistency::Parse("ab/cd"), (0xabull << 32) | 0xcd);
  for (const std::uint64_t position : {1ull, 0x1A3F0B28ull, (7ull << 32) | 9, ~0ull}) {
    EXPECT_EQ(Consistency::Parse(Consistency::Format(position)), position);
  }
  EXPECT_EQ(Consistency::Format((2ull << 32) | 0x1A3F0B28u), "2/1A3F0B28");
}

TEST(ConsistencyTest, AnythingElseIsNoPosition) {
  for (const char* text : {"", "/", "1/", "/1", "12", "g/1", "1/g", "123456789/1", "1/123456789",
                           "1/2/3", " 1/2", "1/2 ", "-1/2", "+1/2", "0x1/2", "0/0"}) {
    EXPECT_EQ(Consistency::Parse(text), 0u) << '"' << text << '"';
  }
}

TEST(ConsistencyTest, ACallAnswersWithItsHighestCommit) {
  Consistency consistency(5);
  EXPECT_EQ(consistency.read_after(), 5u);
  std::vector<std::thread> writers;
  for (std::uint64_t t = 1; t <= 4; ++t) {
    writers.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 1000; ++i) consistency.Committed(t * 1000 + i);
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(consistency.committed(), 4999u);
  EXPECT_EQ(Consistency::Current(), nullptr);
  {
    Consistency::Scope scope(&consistency);
    EXPECT_EQ(Consistency::Current(), &consistency);
  }
  EXPECT_EQ(Consistency::Current(), nullptr);
}

}  // namespace
}  // namespace hotpath::rpc
