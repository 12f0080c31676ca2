#include "gateway/answer_memo.h"

#include <google/protobuf/wrappers.pb.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/gateway.h"
#include "gtest/gtest.h"
#include "server/cache/object_memo.h"

namespace hotpath::gateway {
namespace {

using google::protobuf::Message;
using google::protobuf::StringValue;

std::shared_ptr<const Message> Shared(const std::string& value) {
  auto message = std::make_shared<StringValue>();
  message->set_value(value);
  return message;
}

int kRoute, kOtherRoute;  // their addresses stand for two routes

TEST(AnswerMemoTest, KeepsABodyForTheSameObjectRouteAndEncoding) {
  AnswerMemo memo(128);
  const auto message = Shared("a");
  AnswerMemo::Body body;
  EXPECT_FALSE(memo.Find(&kRoute, message, false, &body));

  memo.Keep(&kRoute, message, false, AnswerMemo::Body{"{\"value\":\"a\"}", false});
  memo.Keep(&kRoute, message, true, AnswerMemo::Body{"gzip bytes", true});
  ASSERT_TRUE(memo.Find(&kRoute, message, false, &body));
  EXPECT_EQ(body.bytes, "{\"value\":\"a\"}");
  EXPECT_FALSE(body.gzipped);
  ASSERT_TRUE(memo.Find(&kRoute, message, true, &body));
  EXPECT_EQ(body.bytes, "gzip bytes");
  EXPECT_TRUE(body.gzipped);

  EXPECT_FALSE(memo.Find(&kOtherRoute, message, false, &body));
  EXPECT_FALSE(memo.Find(&kRoute, Shared("a"), false, &body)) << "an equal object is not the same";
}

TEST(AnswerMemoTest, NeverKeepsAMessageAlive) {
  AnswerMemo memo(64);
  auto message = Shared("a");
  const std::weak_ptr<const Message> watch = message;
  memo.Keep(&kRoute, message, false, AnswerMemo::Body{"a", false});
  message.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(AnswerMemoTest, AReplacedObjectIsRenderedAnewEvenAtTheSameAddress) {
  AnswerMemo memo(64);
  int same_address = 0;
  for (int i = 0; i < 200; ++i) {
    const void* previous;
    {
      const auto old = Shared("old");
      previous = old.get();
      memo.Keep(&kRoute, old, false, AnswerMemo::Body{"old", false});
    }
    const auto replacement = Shared("new");  // the allocator often reuses the freed block
    same_address += replacement.get() == previous;
    AnswerMemo::Body body;
    ASSERT_FALSE(memo.Find(&kRoute, replacement, false, &body)) << "stale body " << body.bytes;
  }
  RecordProperty("same_address", same_address);
}

TEST(AnswerMemoTest, AliasedPointersOfTheSameOwnerShareTheirBody) {
  // A cache may hand out an aliasing shared_ptr into a larger object it owns.
  struct Entry {
    StringValue message;
  };
  auto entry = std::make_shared<Entry>();
  const std::shared_ptr<const Message> first(entry, &entry->message);
  const std::shared_ptr<const Message> second(entry, &entry->message);
  AnswerMemo memo(64);
  memo.Keep(&kRoute, first, false, AnswerMemo::Body{"x", false});
  AnswerMemo::Body body;
  EXPECT_TRUE(memo.Find(&kRoute, second, false, &body));
}

TEST(AnswerMemoTest, ConcurrentThreadsOnlyEverSeeTheirObjectsOwnBody) {
  AnswerMemo memo(64);  // small: threads keep replacing each other's slots
  std::vector<std::shared_ptr<const Message>> messages;
  for (int i = 0; i < 256; ++i) messages.push_back(Shared(absl::StrCat(i)));
  std::atomic<int> wrong{0}, hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      // Each key twice in a row, so a thread finds what it just kept however the threads are
      // scheduled (one running alone would otherwise never hit: its 256 keys outnumber the slots).
      for (int n = 0; n < 20000; ++n) {
        const int k = n / 2;
        const auto& message = messages[(k * 7 + t * 13) % messages.size()];
        const bool gzipped = k % 2 == 0;
        const std::string expected = static_cast<const StringValue&>(*message).value();
        AnswerMemo::Body body;
        if (memo.Find(&kRoute, message, gzipped, &body)) {
          ++hits;
          if (body.bytes != expected || body.gzipped != gzipped) ++wrong;
        } else {
          memo.Keep(&kRoute, message, gzipped, AnswerMemo::Body{expected, gzipped});
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0);
}

// No client can fill memory with large answers: a body past the per-value limit is not kept, nor
// one that would take the bytes kept past the total.
TEST(AnswerMemoTest, KeepsNoBodyPastItsLimitsAndCountsWhatItHolds) {
  EXPECT_EQ(AnswerMemo::kMaxValueBytes, 64u << 10);  // the defaults README states
  EXPECT_EQ(AnswerMemo::kMaxBytes, 64u << 20);
  AnswerMemo memo(64, /*max_value_bytes=*/10, /*max_bytes=*/25);
  const auto large = Shared("large");
  memo.Keep(&kRoute, large, false, AnswerMemo::Body{std::string(11, 'x'), false});
  AnswerMemo::Body body;
  EXPECT_FALSE(memo.Find(&kRoute, large, false, &body));
  std::vector<std::shared_ptr<const Message>> kept;
  for (int i = 0; i < 10; ++i) {
    kept.push_back(Shared(absl::StrCat(i)));
    memo.Keep(&kRoute, kept.back(), false, AnswerMemo::Body{std::string(10, 'x'), false});
    EXPECT_LE(memo.bytes(), 25u);
  }
  std::vector<std::shared_ptr<const Message>> held;
  for (const auto& message : kept) {
    if (memo.Find(&kRoute, message, false, &body)) held.push_back(message);
  }
  ASSERT_GE(held.size(), 1u);
  EXPECT_LE(held.size(), 2u) << "25 bytes hold two bodies of 10 at most";
  EXPECT_EQ(memo.bytes(), 10 * held.size());
  // A smaller body replacing one in its slot gives bytes back.
  memo.Keep(&kRoute, held[0], false, AnswerMemo::Body{"y", false});
  EXPECT_EQ(memo.bytes(), 10 * held.size() - 9);
}

// Two objects never take each other's slot: a key's set has two, so two kept objects are both
// found, in a memo of the smallest size (with one slot per key, 1 pair in 64 collided there).
TEST(AnswerMemoTest, AnyTwoObjectsKeptAreBothFound) {
  std::vector<std::shared_ptr<const Message>> alive;  // so that every pair has new addresses
  for (int pair = 0; pair < 500; ++pair) {
    AnswerMemo memo(64);
    const auto a = alive.emplace_back(Shared(absl::StrCat("a", pair)));
    const auto b = alive.emplace_back(Shared(absl::StrCat("b", pair)));
    memo.Keep(&kRoute, a, false, AnswerMemo::Body{"A", false});
    memo.Keep(&kRoute, b, false, AnswerMemo::Body{"B", false});
    AnswerMemo::Body body;
    ASSERT_TRUE(memo.Find(&kRoute, a, false, &body)) << "pair " << pair;
    EXPECT_EQ(body.bytes, "A");
    ASSERT_TRUE(memo.Find(&kRoute, b, false, &body)) << "pair " << pair;
    EXPECT_EQ(body.bytes, "B");
    EXPECT_EQ(memo.bytes(), 2u);
  }
}

// The share of reads that find their body when 10,000 hot objects are read at random from a
// memo of `slots` slots, each miss kept (as a cached answer is).
double HotSetFound(std::size_t slots) {
  AnswerMemo memo(slots);
  std::vector<std::shared_ptr<const Message>> hot;
  for (int i = 0; i < 10000; ++i) hot.push_back(Shared(absl::StrCat(i)));
  std::mt19937 random(7);
  std::uniform_int_distribution<std::size_t> pick(0, hot.size() - 1);
  int found = 0;
  constexpr int kReads = 200000, kMeasured = 100000;
  for (int read = 0; read < kReads; ++read) {
    const auto& object = hot[pick(random)];
    AnswerMemo::Body body;
    if (memo.Find(&kRoute, object, false, &body)) {
      if (read >= kReads - kMeasured) ++found;
    } else {
      memo.Keep(&kRoute, object, false, AnswerMemo::Body{"x", false});
    }
  }
  return static_cast<double>(found) / kMeasured;
}

// A hot set of 10,000 objects read at random, each miss kept (as a cached answer is): in a memo
// of 16,384 slots about 86% of reads find their body (with one slot per key, 75% did).
TEST(AnswerMemoTest, TenThousandHotObjectsMostlyFindTheirBodies) {
  EXPECT_GE(HotSetFound(16384), 0.82);
}

// At the memos' default size (hotpathd's wire memo and the gateway's), about 95%.
TEST(AnswerMemoTest, TenThousandHotObjectsFindTheirBodiesAtTheDefaultSize) {
  EXPECT_GE(HotSetFound(cache::kDefaultMemoSlots), 0.93);
  EXPECT_EQ(GatewayOptions{}.answer_memo_slots, cache::kDefaultMemoSlots);
}

}  // namespace
}  // namespace hotpath::gateway
