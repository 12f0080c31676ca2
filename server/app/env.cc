#include "server/app/env.h"

#include <cstdlib>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/reflection.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace hotpath::app {
namespace {

// The variables that did not parse: each one's name, text and the kind it should have been.
struct Unparsed {
  std::string name;
  std::string text;
  const char* kind;
};

absl::Mutex& UnparsedMutex() {
  static absl::Mutex* const mutex = new absl::Mutex;
  return *mutex;
}
std::vector<Unparsed>& UnparsedList() {
  static auto* const list = new std::vector<Unparsed>;
  return *list;
}

// value when text parsed, else fallback, with text remembered.
template <class T>
T ParsedOr(const char* name, const char* text, bool parsed, const T& value, const T& fallback,
           const char* kind) {
  if (text == nullptr || *text == '\0') return fallback;  // empty counts as unset, as for strings
  if (parsed) return value;
  absl::MutexLock lock(&UnparsedMutex());
  UnparsedList().push_back({name, text, kind});
  return fallback;
}

}  // namespace

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

int EnvOr(const char* name, int fallback) {
  int value = 0;
  const char* text = std::getenv(name);
  return ParsedOr(name, text, text != nullptr && absl::SimpleAtoi(text, &value), value, fallback,
                  "a whole number");
}

double EnvOr(const char* name, double fallback) {
  double value = 0;
  const char* text = std::getenv(name);
  return ParsedOr(name, text, text != nullptr && absl::SimpleAtod(text, &value), value, fallback,
                  "a number");
}

bool EnvOr(const char* name, bool fallback) {
  bool value = false;
  const char* text = std::getenv(name);
  return ParsedOr(name, text, text != nullptr && absl::SimpleAtob(text, &value), value, fallback,
                  "true or false");
}

absl::Duration EnvOr(const char* name, absl::Duration fallback) {
  absl::Duration value;
  const char* text = std::getenv(name);
  return ParsedOr(name, text, text != nullptr && absl::ParseDuration(text, &value), value, fallback,
                  "a duration (60s, 250ms, 1h)");
}

absl::Status CheckEnvironment() {
  // A flag's default, and so its variable, is read when the flag is first used.
  for (const auto& [name, flag] : absl::GetAllFlags()) (void)flag->DefaultValue();
  absl::MutexLock lock(&UnparsedMutex());
  if (UnparsedList().empty()) return absl::OkStatus();
  const Unparsed& first = UnparsedList().front();
  return absl::InvalidArgumentError(
      absl::StrCat(first.name, " is \"", absl::CHexEscape(first.text), "\", not ", first.kind));
}

}  // namespace hotpath::app
