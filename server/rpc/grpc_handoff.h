// Telling ThreadSanitizer of the hand-offs it cannot see through gRPC.
//
// Debian's libgrpc is not built with TSan, so its own synchronisation is invisible to it. Handing
// a tag to gRPC happens before the tag comes back from a completion queue (HandingToGrpc
// releases, TakeBack acquires), and the accesses gRPC's inline code makes while filling or
// finishing an operation are its own business (ignored), so TSan judges only hotpath's code.
// Without TSan these are nothing.
#pragma once

namespace hotpath::rpc {

// GCC defines __SANITIZE_THREAD__ under -fsanitize=thread; clang 14 only answers
// __has_feature(thread_sanitizer).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HOTPATH_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(HOTPATH_TSAN)
extern "C" void __tsan_release(void* address);
extern "C" void __tsan_acquire(void* address);
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
class HandingToGrpc final {
 public:
  explicit HandingToGrpc(const void* tag) {
    __tsan_release(const_cast<void*>(tag));
    __tsan_ignore_thread_begin();
  }
  ~HandingToGrpc() { __tsan_ignore_thread_end(); }
};
inline void IgnoreGrpcBegin() { __tsan_ignore_thread_begin(); }
inline void IgnoreGrpcEnd() { __tsan_ignore_thread_end(); }
inline void TakeBack(const void* tag) { __tsan_acquire(const_cast<void*>(tag)); }
#else
class HandingToGrpc final {
 public:
  explicit HandingToGrpc(const void*) {}
};
inline void IgnoreGrpcBegin() {}
inline void IgnoreGrpcEnd() {}
inline void TakeBack(const void*) {}
#endif

}  // namespace hotpath::rpc
