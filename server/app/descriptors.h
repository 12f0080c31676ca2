// File descriptors are what an idle-connection flood exhausts first, and gRPC 1.51's listener
// stops accepting for good after one accept fails with EMFILE (CVE-2023-4785). The binaries raise
// their soft limit to the hard one at start, so that only the hard limit bounds connections, and
// the HTTP server keeps to half of it (HttpServerOptions::max_connections).
#pragma once

#include <cstdint>

namespace hotpath::app {

// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the soft limit now in force.
std::uint64_t RaiseDescriptorLimit();

}  // namespace hotpath::app
