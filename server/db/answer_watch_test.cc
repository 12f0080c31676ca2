#include "server/db/answer_watch.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace hotpath::db {
namespace {

// A connected pair of sockets: [0] the watched end, [1] the silent "server".
class SocketPair final {
 public:
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  ~SocketPair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int client() const { return fds_[0]; }
  int server() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};  // the pair
};

// What a blocked libpq call does: waits for the server to send something, then reads it. The
// bytes read (0: the connection ended), or -1 if nothing came within limit.
long WaitForAnswer(int socket, absl::Duration limit) {
  pollfd ready{socket, POLLIN, 0};
  if (::poll(&ready, 1, static_cast<int>(absl::ToInt64Milliseconds(limit))) != 1) return -1;
  char byte;
  return ::recv(socket, &byte, 1, 0);
}

TEST(AnswerWatchTest, AWaitUnansweredPastItsCutTimeEndsAsALostConnection) {
  SocketPair pair;
  const std::int64_t cuts = AnswerWatch::Instance().cuts();
  const absl::Time start = absl::Now();
  Watched watched(pair.client(), start + absl::Milliseconds(100));
  EXPECT_EQ(WaitForAnswer(pair.client(), absl::Seconds(10)), 0);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(watched.cut());
  EXPECT_EQ(AnswerWatch::Instance().cuts(), cuts + 1);
}

TEST(AnswerWatchTest, AnAnsweredConnectionUnwatchedInTimeIsNotCut) {
  SocketPair pair;
  {
    Watched watched(pair.client(), absl::Now() + absl::Milliseconds(200));
    ASSERT_EQ(::send(pair.server(), "x", 1, 0), 1);
    EXPECT_EQ(WaitForAnswer(pair.client(), absl::Seconds(10)), 1);
  }
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_EQ(::send(pair.server(), "y", 1, 0), 1);
  EXPECT_EQ(WaitForAnswer(pair.client(), absl::Seconds(10)), 1);
}

TEST(AnswerWatchTest, AnEarlierCutTimeIsKeptThoughLaterOnesWereWatchedFirst) {
  SocketPair late;
  SocketPair soon;
  Watched watched_late(late.client(), absl::Now() + absl::Seconds(60));
  const absl::Time start = absl::Now();
  Watched watched_soon(soon.client(), start + absl::Milliseconds(100));
  EXPECT_EQ(WaitForAnswer(soon.client(), absl::Seconds(10)), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(watched_late.cut());
}

TEST(AnswerWatchTest, NothingIsWatchedWithoutABound) {
  SocketPair pair;
  Watched watched(pair.client(), absl::InfiniteFuture());
  EXPECT_EQ(WaitForAnswer(pair.client(), absl::Milliseconds(300)), -1);
  EXPECT_FALSE(watched.cut());
}

}  // namespace
}  // namespace hotpath::db
