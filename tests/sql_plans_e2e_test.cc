// What the pool's pinned session settings (server/db/pg_pool.h) promise, on a real PostgreSQL:
// timestamps read from the server's text are exactly the instants PostgreSQL computes, and every
// read statement of the catalog keeps its index with the generic plans the pool asks for.
#include <gtest/gtest.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <regex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "server/catalog/pg_item_store.h"
#include "server/db/pg_pool.h"
#include "server/db/pg_time.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

// Each timestamp as the pool's sessions print it, and PostgreSQL's own epoch microseconds for it.
std::vector<std::pair<std::string, std::int64_t>> Printed(pqxx::connection& c,
                                                          const std::string& timestamps) {
  pqxx::nontransaction tx(c);
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const auto& row :
       tx.exec("SELECT t::text, (extract(epoch FROM t) * 1000000)::bigint FROM (" + timestamps +
               ") AS s(t)")) {
    out.emplace_back(row[0].as<std::string>(), row[1].as<std::int64_t>());
  }
  return out;
}

TEST(PgTimeTest, ReadsEveryTimestampExactlyAsPostgresqlComputesIt) {
  TestDatabase database;
  pqxx::connection c(database.url());
  // Another zone and style first: the pinned settings must override them.
  pqxx::nontransaction(c).exec("SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY'");
  pqxx::nontransaction(c).exec(db::kPinnedSessionSettings);
  const auto edges = Printed(c, R"(VALUES
      (timestamptz '1970-01-01 00:00:00+00'), (timestamptz '1969-12-31 23:59:59.999999+00'),
      (timestamptz '2000-02-29 12:00:00.5+00'), (timestamptz '2026-12-01 05:21:54.442703+00'),
      (timestamptz '2026-12-01 05:21:54.05+00'), (timestamptz '2026-12-01 05:21:54.000001+00'),
      (timestamptz '1900-03-01 00:00:00+00'), (timestamptz '0001-01-01 00:00:00+00'),
      (timestamptz '0001-12-31 23:59:59.999999+00 BC'), (timestamptz '4713-01-01 00:00:00+00 BC'),
      (timestamptz '9999-12-31 23:59:59.999999+00'), (timestamptz '10000-01-01 00:00:00+00'),
      (timestamptz '200000-12-31 23:59:59.999999+00'))");
  ASSERT_EQ(edges.size(), 13u);
  EXPECT_EQ(edges[3].first, "2026-12-01 05:21:54.442703+00");
  for (const auto& [text, micros] : edges) EXPECT_EQ(db::TimestamptzMicros(text), micros) << text;
  // And instants spread over the range whose epoch microseconds fit in 64 bits, to the microsecond.
  const auto spread =
      Printed(c,
              "SELECT timestamptz '4713-01-01 00:00:00+00 BC' + random() * "
              "(timestamptz '200000-12-31 23:59:59+00' - timestamptz '4713-01-01 00:00:00+00 BC') "
              "FROM generate_series(1, 5000) UNION ALL "
              "SELECT now() - random() * interval '100 years' FROM generate_series(1, 5000)");
  ASSERT_EQ(spread.size(), 10000u);
  for (const auto& [text, micros] : spread) {
    ASSERT_EQ(db::TimestamptzMicros(text), micros) << text;
  }
}

TEST(PgTimeTest, WhatIsNotAPinnedTimestampIsAConversionError) {
  for (const char* text :
       {"infinity", "-infinity", "", "2026-12-01 05:21:54-03:30", "2026-12-01T05:21:54Z",
        "01/12/2026 05:21:54 UTC", "2026-12-01 05:21:54.+00", "2026-13-01 05:21:54+00",
        "2026-12-01 05:21:54+00 AD", "0000-01-01 00:00:00+00 BC", "294276-12-31 23:59:59.999999+00",
        "126-12-01 05:21:54+00"}) {
    EXPECT_THROW(db::TimestamptzMicros(text), pqxx::conversion_error) << text;
  }
}

// The plan of `EXPLAIN EXECUTE statement(arguments)`, one line per node.
std::string Plan(pqxx::connection& c, const std::string& statement, const std::string& arguments) {
  pqxx::nontransaction tx(c);
  std::string plan;
  for (const auto& row : tx.exec("EXPLAIN EXECUTE " + statement + "(" + arguments + ")")) {
    plan += row[0].as<std::string>() + "\n";
  }
  return plan;
}

TEST(SqlPlanTest, EveryReadStatementKeepsItsIndexWithGenericPlans) {
  TestDatabase database;
  database.Query(
      "INSERT INTO items (sku, name, description, category, price_cents, stock, tags, "
      "create_request_id) SELECT 'S-' || i, 'Item ' || i, 'word' || (i % 100) || ' lamp', "
      "'cat-' || (i % 20), i % 1000, i % 7, ARRAY['t' || (i % 5)], "
      "CASE WHEN i % 10 = 0 THEN 'r-' || i END FROM generate_series(1, 20000) AS i");
  database.Query("ANALYZE items");
  pqxx::connection c(database.url());
  pqxx::nontransaction(c).exec(db::kPinnedSessionSettings);
  for (const auto& statement : catalog::PgItemStore::Statements()) {
    c.prepare(statement.name, statement.sql);
    c.prepare_now(statement.name);
  }
  const std::string kAll = "0, 9223372036854775807";
  const std::vector<std::tuple<std::string, std::string, std::string>> reads = {
      {"get_item", "42", "items_pkey"},
      {"batch_get_items", "'{1,2,3}'", "items_pkey"},
      {"item_version", "42", "items_pkey"},
      {"item_by_request_id", "'r-10'", "items_create_request_id"},
      {"list_by_id", "0, " + kAll + ", 51", "items_pkey"},
      {"list_in_category", "'cat-3', 0, " + kAll + ", 51", "items_category_id"},
      {"list_in_category", "'no-such-category', 0, " + kAll + ", 51", "items_category_id"},
      {"list_by_category_order", "'', 0, " + kAll + ", 51", "items_category_id"},
      {"search_items", "'lamp', NULL, 0, 51", "items_search_vector"},
      {"category_stats", "'cat-3'", "items_category_id"},
  };
  for (const auto& [name, arguments, index] : reads) {
    const std::string plan = Plan(c, name, arguments);
    // A generic plan: the parameters stay parameters, the arguments do not appear.
    EXPECT_TRUE(std::regex_search(plan, std::regex(R"(\$[1-9])"))) << name << ":\n" << plan;
    EXPECT_NE(plan.find(index), std::string::npos) << name << ":\n" << plan;
    EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << name << ":\n" << plan;
  }
}

}  // namespace
}  // namespace hotpath::testing
