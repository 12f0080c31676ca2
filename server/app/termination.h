// SIGINT/SIGTERM taken synchronously by main: block them before any thread starts (so no other
// thread receives them), then wait.
#pragma once

namespace hotpath::app {

// Call first thing in main, before any thread is created.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM; returns its name.
const char* WaitForTerminationSignal();

}  // namespace hotpath::app
