#include "server/db/pg_time.h"

#include <pqxx/except>
#include <string>

#include "absl/time/civil_time.h"

namespace hotpath::db {
namespace {

constexpr std::int64_t kLastYear = 290000;

[[noreturn]] void Refuse(std::string_view text) {
  throw pqxx::conversion_error("not a UTC ISO timestamptz: \"" + std::string(text.substr(0, 64)) +
                               "\"");
}

// Reads exactly `digits` decimal digits at `at`, advancing it.
std::int64_t Digits(std::string_view text, std::size_t& at, std::size_t digits) {
  if (at + digits > text.size()) Refuse(text);
  std::int64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') Refuse(text);
    value = value * 10 + (c - '0');
  }
  at += digits;
  return value;
}

void Expect(std::string_view text, std::size_t& at, char c) {
  if (at >= text.size() || text[at] != c) Refuse(text);
  ++at;
}

}  // namespace

std::int64_t TimestamptzMicros(std::string_view text) {
  std::size_t at = 0;
  std::size_t year_digits = 0;
  while (year_digits < text.size() && text[year_digits] >= '0' && text[year_digits] <= '9') {
    ++year_digits;
  }
  if (year_digits < 4 || year_digits > 6) Refuse(text);
  std::int64_t year = Digits(text, at, year_digits);
  Expect(text, at, '-');
  const std::int64_t month = Digits(text, at, 2);
  Expect(text, at, '-');
  const std::int64_t day = Digits(text, at, 2);
  Expect(text, at, ' ');
  const std::int64_t hour = Digits(text, at, 2);
  Expect(text, at, ':');
  const std::int64_t minute = Digits(text, at, 2);
  Expect(text, at, ':');
  const std::int64_t second = Digits(text, at, 2);
  std::int64_t micros = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::size_t digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 6) {
      micros = micros * 10 + (text[at] - '0');
      ++at;
      ++digits;
    }
    if (digits == 0) Refuse(text);
    for (; digits < 6; ++digits) micros *= 10;
  }
  Expect(text, at, '+');
  Expect(text, at, '0');
  Expect(text, at, '0');
  if (at < text.size()) {
    if (text.substr(at) != " BC" || year == 0) Refuse(text);
    year = 1 - year;  // 1 BC is year 0
    at = text.size();
  }
  // PostgreSQL's range ends in year 294276, but microseconds since 1970 pass 64 bits in 294247.
  if (year > kLastYear) Refuse(text);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    Refuse(text);
  }
  // absl's civil days run on 64-bit years (std::chrono's stop at 32767), in the proleptic
  // Gregorian calendar PostgreSQL uses for every date, year 0 being 1 BC.
  const std::int64_t days = absl::CivilDay(year, static_cast<int>(month), static_cast<int>(day)) -
                            absl::CivilDay(1970, 1, 1);
  return ((days * 24 + hour) * 60 + minute) * 60 * 1000000 + second * 1000000 + micros;
}

}  // namespace hotpath::db
