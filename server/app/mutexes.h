// Debian builds Abseil without NDEBUG, which leaves absl::Mutex's lock-order graph (its deadlock
// detection) on in release binaries: every Lock of every absl::Mutex, gRPC's included, takes one
// process-wide spin lock and updates the graph. That was about a tenth of a cached gRPC call's CPU
// in the server and in hotpath-bench (`bench/cost`, bench/NOTES.md). The binaries turn it off
// unless HOTPATH_MUTEX_DEADLOCK_DETECTION=true; the tests keep it, where it finds lock-order
// inversions.
#pragma once

namespace hotpath::app {

// Call first thing in main.
void ConfigureMutexDeadlockDetection();

}  // namespace hotpath::app
