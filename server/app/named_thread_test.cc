#include "server/app/named_thread.h"

#include <pthread.h>

#include <future>
#include <string>

#include "gtest/gtest.h"

namespace hotpath::app {
namespace {

std::string NameOf(std::thread& thread) {
  char name[16] = {};
  EXPECT_EQ(pthread_getname_np(thread.native_handle(), name, sizeof(name)), 0);
  return name;
}

// The name is there as soon as NamedThread returns, before the thread has run any of its work:
// held at its start, it is already under its own name, not its parent's.
TEST(NamedThread, IsNamedBeforeItRuns) {
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::thread thread = NamedThread("hotpath-test", [gate] { gate.wait(); });
  EXPECT_EQ(NameOf(thread), "hotpath-test");
  go.set_value();
  thread.join();
}

TEST(NamedThread, RunsItsWork) {
  int ran = 0;
  std::thread thread = NamedThread("hotpath-test", [&ran] { ran = 1; });
  thread.join();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace hotpath::app
