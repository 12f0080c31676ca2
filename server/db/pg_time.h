// PostgreSQL's text form of a timestamptz, read without asking the server to convert it.
//
// `extract(epoch FROM t)` is numeric arithmetic in PostgreSQL 14 and later: two such columns per
// row were a quarter of a 50-row list statement's cost (bench/NOTES.md, issue #19). The server's
// own text output of the timestamp is cheaper, and exact. It depends on two session settings,
// which PgPool pins on every connection it opens (pg_pool.h): TimeZone UTC and DateStyle ISO,
// so a timestamptz reads "2026-12-01 05:21:54.442703+00".
#pragma once

#include <cstdint>
#include <string_view>

namespace hotpath::db {

// Microseconds since 1970-01-01 00:00:00 UTC of a timestamptz printed with TimeZone UTC and
// DateStyle ISO: "YYYY-MM-DD HH:MM:SS[.f{1,6}]+00", a year of four or more digits, " BC" for
// years before 1 AD. Throws pqxx::conversion_error for anything else ("infinity", another zone or
// style, a year past 290000 whose microseconds would not fit), as libpqxx's own conversions do,
// so a store's usual exception boundary handles it.
std::int64_t TimestamptzMicros(std::string_view text);

}  // namespace hotpath::db
