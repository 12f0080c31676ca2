// The asio event loop the calling thread runs, if any. Code that would otherwise block a thread
// (a database round trip) can start its I/O on this loop instead and be called back on it, so an
// event loop's thread never waits and no other thread is woken for the work.
#pragma once

#include <boost/asio/io_context.hpp>
#include <utility>

namespace hotpath::app {

class EventLoop final {
 public:
  // The loop this thread is running; null when the thread runs none.
  static boost::asio::io_context* Current() { return current_; }

  // Marks the calling thread as running io while in scope (the loop's thread, around io.run()).
  class Scope final {
   public:
    explicit Scope(boost::asio::io_context& io) : previous_(std::exchange(current_, &io)) {}
    ~Scope() { current_ = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    boost::asio::io_context* previous_;  // restored on exit
  };

 private:
  static inline thread_local boost::asio::io_context* current_ = nullptr;  // see Current
};

}  // namespace hotpath::app
