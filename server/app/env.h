// Environment fallbacks for flags: ABSL_FLAG(int, port, EnvOr("HOTPATH_PORT", 8080), ...).
#pragma once

#include <string>

namespace hotpath::app {

// The variable's value when it is set and not empty, else fallback.
std::string EnvOr(const char* name, const char* fallback);
// The variable as an integer when it is set and parses, else fallback.
int EnvOr(const char* name, int fallback);

}  // namespace hotpath::app
