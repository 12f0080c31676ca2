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

double EnvOr(const char* name, double fallback) {
  double value;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtod(text, &value) ? value : fallback;
}

bool EnvOr(const char* name, bool fallback) {
  bool value;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtob(text, &value) ? value : fallback;
}

absl::Duration EnvOr(const char* name, absl::Duration fallback) {
  absl::Duration value;
  const char* text = std::getenv(name);
  return text != nullptr && absl::ParseDuration(text, &value) ? value : fallback;
}

}  // namespace hotpath::app
