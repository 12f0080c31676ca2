// Threads started under a name of their own, for top -H, perf and gdb, and for whatever counts a
// process's threads by name.
#pragma once

#include <pthread.h>

#include <thread>
#include <utility>

namespace hotpath::app {

// Starts fn on a new thread named name (at most 15 characters: Linux's limit; a longer one leaves
// the parent's name). The name is set by the starting thread before this returns, so that nothing
// looking once the thread exists sees it under its parent's name: a thread naming itself is named
// only once it first runs, which on a busy or one-CPU machine can be well after its start returned.
template <class Fn>
std::thread NamedThread(const char* name, Fn&& fn) {
  std::thread thread(std::forward<Fn>(fn));
  pthread_setname_np(thread.native_handle(), name);
  return thread;
}

}  // namespace hotpath::app
