// What a call makes current on the thread that works for it (its Cancellation, its Consistency):
// the runtime sets it around the call's work, and code deep below (the database pool, a store)
// finds it without every signature in between carrying it.
#pragma once

#include <utility>

namespace hotpath::rpc {

template <class T>
class CallLocal {
 public:
  // The T of the call this thread is working for; null when none.
  static T* Current() { return current_; }
  // Makes value Current() on this thread while in scope (null allowed).
  class Scope final {
   public:
    explicit Scope(T* value) : previous_(std::exchange(current_, value)) {}
    ~Scope() { current_ = previous_; }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    T* previous_;  // restored on exit
  };

 private:
  static inline thread_local T* current_ = nullptr;  // see Current
};

}  // namespace hotpath::rpc
