// Environment fallbacks for flags: ABSL_FLAG(int, port, EnvOr("HOTPATH_PORT", 8080), ...).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace hotpath::app {

// A variable that is set but does not parse as its flag's kind leaves the flag at its fallback,
// and is remembered: CheckEnvironment names it. (HOTPATH_CACHE_ENABLED=flase used to leave the
// cache on without a word, HOTPATH_ITEM_CACHE_TTL=5 the default TTL.)

// The variable's value when it is set and not empty, else fallback.
std::string EnvOr(const char* name, const char* fallback);
// The variable as an integer when it is set and parses, else fallback. (Set means set and not
// empty, for every kind.)
int EnvOr(const char* name, int fallback);
// The variable as a number ("0.75") when it is set and parses, else fallback.
double EnvOr(const char* name, double fallback);
// The variable as a boolean ("true"/"false", "1"/"0") when it is set and parses, else fallback.
bool EnvOr(const char* name, bool fallback);
// The variable as a duration ("60s", "250ms", "1h") when it is set and parses, else fallback.
absl::Duration EnvOr(const char* name, absl::Duration fallback);

// OK, or InvalidArgument naming the first variable above that was set to what its flag cannot
// take: `HOTPATH_POOL_MAX is "abc", not a whole number`. Evaluates every flag's default first, so
// that no variable is left unread; call it after absl::ParseCommandLine, before anything opens.
absl::Status CheckEnvironment();

}  // namespace hotpath::app
