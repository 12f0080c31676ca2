#include "server/app/mutexes.h"

#include "absl/synchronization/mutex.h"
#include "server/app/env.h"

namespace hotpath::app {

void ConfigureMutexDeadlockDetection() {
  const bool on = EnvOr("HOTPATH_MUTEX_DEADLOCK_DETECTION", "false") == "true";
  absl::SetMutexDeadlockDetectionMode(on ? absl::OnDeadlockCycle::kAbort
                                         : absl::OnDeadlockCycle::kIgnore);
}

}  // namespace hotpath::app
