// What a server that is about to stop listening does to its listening socket first.
#pragma once

#include "absl/time/time.h"

namespace hotpath::app {

// How long a listener about to close keeps accepting after DropNewConnections, for handshakes
// under way to complete (a round trip to a client).
inline constexpr absl::Duration kHandshakeWait = absl::Milliseconds(50);

// Makes a listening socket drop new connection attempts (SYNs) while the kernel still completes
// the handshakes under way. Closing a listening socket resets the connections queued for accept,
// and a client (a proxy, say) may already have sent a request on one that it cannot resend; so a
// listener about to close drops new SYNs, accepts what is queued or completes within a round trip,
// then closes. A client whose SYN was dropped tries again a second later and is refused then,
// nothing sent. False when the filter could not be attached (the caller just closes).
bool DropNewConnections(int listening_fd);

}  // namespace hotpath::app
