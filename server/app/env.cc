#include "server/app/env.h"

#include <cstdlib>
#include <vector>

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

// The variable read by parse(text, &value) when it is set; else, or when it does not parse,
// fallback, and a variable that did not parse is remembered.
template <class T, class Parse>
T ParsedOr(const char* name, const T& fallback, const char* kind, Parse parse) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;  // empty counts as unset, as for strings
  T value{};
  if (parse(text, &value)) return value;
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
  return ParsedOr(name, fallback, "a whole number",
                  [](const char* text, int* value) { return absl::SimpleAtoi(text, value); });
}

double EnvOr(const char* name, double fallback) {
  return ParsedOr(name, fallback, "a number",
                  [](const char* text, double* value) { return absl::SimpleAtod(text, value); });
}

bool EnvOr(const char* name, bool fallback) {
  return ParsedOr(name, fallback, "true or false",
                  [](const char* text, bool* value) { return absl::SimpleAtob(text, value); });
}

absl::Duration EnvOr(const char* name, absl::Duration fallback) {
  return ParsedOr(
      name, fallback, "a duration (60s, 250ms, 1h)",
      [](const char* text, absl::Duration* value) { return absl::ParseDuration(text, value); });
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
