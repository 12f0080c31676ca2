// hotpath-bench --method=staleness: how long a write through one replica takes to reach another
// replica's answers. Each probe updates one item's stock through --addr and, once that write is
// answered (committed), reads the item through --read_addr every --poll until the new stock shows.
// Staleness: from the write's answer to the first read that shows it.
#pragma once

#include <string>

#include "absl/time/time.h"

namespace hotpath::client {

struct StalenessOptions {
  std::string write_addr;   // replica A (writes)
  std::string read_addr;    // replica B (reads)
  int probes = 200;         // writes measured
  absl::Duration interval;  // between probes
  absl::Duration poll;      // between reads of B
  absl::Duration give_up;   // a probe not seen by then counts as this long, and as a miss
  bool json = false;        // one JSON object instead of text
};

// Prints the report; 0 when every probe was seen, 1 otherwise.
int RunStaleness(const StalenessOptions& options);

}  // namespace hotpath::client
