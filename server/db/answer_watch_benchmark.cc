// What bounding every lease costs (server/db/answer_watch.h): a Watch when a connection is leased
// and an Unwatch when it comes back, from as many threads at once as a busy replica's executor
// and event loops lease from. Against a statement's round trip (tens of microseconds at best).
#include <sys/socket.h>
#include <unistd.h>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "server/db/answer_watch.h"

namespace hotpath::db {
namespace {

void BM_WatchThenUnwatch(benchmark::State& state) {
  // A socket never cut: every entry is unwatched long before its time.
  static const int socket = [] {
    int pair[2];
    return ::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0 ? pair[0] : -1;
  }();
  AnswerWatch& watch = AnswerWatch::Instance();
  for (auto _ : state) {
    const AnswerWatch::Ticket ticket = watch.Watch(socket, absl::Now() + absl::Seconds(5));
    watch.Unwatch(ticket);
  }
}
BENCHMARK(BM_WatchThenUnwatch)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

}  // namespace
}  // namespace hotpath::db

BENCHMARK_MAIN();
