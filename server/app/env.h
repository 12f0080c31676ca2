// Environment fallbacks for flags: ABSL_FLAG(int, port, EnvOr("HOTPATH_PORT", 8080), ...).
#pragma once

#include <string>

#include "absl/time/time.h"

namespace hotpath::app {

// The variable's value when it is set and not empty, else fallback.
std::string EnvOr(const char* name, const char* fallback);
// The variable as an integer when it is set and parses, else fallback.
int EnvOr(const char* name, int fallback);
// The variable as a number ("0.75") when it is set and parses, else fallback.
double EnvOr(const char* name, double fallback);
// The variable as a boolean ("true"/"false", "1"/"0") when it is set and parses, else fallback.
bool EnvOr(const char* name, bool fallback);
// The variable as a duration ("60s", "250ms", "1h") when it is set and parses, else fallback.
absl::Duration EnvOr(const char* name, absl::Duration fallback);

}  // namespace hotpath::app
