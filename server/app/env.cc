#include "server/app/env.h"

#include <cstdlib>

#include "absl/strings/numbers.h"

namespace hotpath::app {

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

int EnvOr(const char* name, int fallback) {
  int value;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &value) ? value : fallback;
}

}  // namespace hotpath::app
