#include "server/db/host_order.h"

#include <libpq-fe.h>

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace hotpath::db {
namespace {

// What libpq reads from conninfo: each parameter given, by keyword.
std::map<std::string, std::string> Parsed(const std::string& conninfo) {
  std::map<std::string, std::string> parsed;
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    parsed["error"] = error != nullptr ? error : "?";
    PQfreemem(error);
    return parsed;
  }
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val != nullptr) parsed[option->keyword] = option->val;
  }
  PQconninfoFree(options);
  return parsed;
}

TEST(HostOrderTest, UntilAHostIsReachedTheUrlIsUsedAsItIs) {
  const std::string url = "host=db1,db2 port=5432,5433 target_session_attrs=read-write";
  HostOrder order(url);
  EXPECT_EQ(order.Ordered(), url);
  order.Reached("db1", "5432");
  EXPECT_EQ(order.Ordered(), url);
}

TEST(HostOrderTest, TheHostLastReachedComesFirstTheOthersInTheirOrder) {
  HostOrder order("host=db1,db2,db3 port=1,2,3 dbname=catalog target_session_attrs=read-write");
  order.Reached("db2", "2");
  EXPECT_EQ(order.first(), 1);
  const auto parsed = Parsed(order.Ordered());
  EXPECT_EQ(parsed.at("host"), "db2,db3,db1");
  EXPECT_EQ(parsed.at("port"), "2,3,1");
  EXPECT_EQ(parsed.at("dbname"), "catalog");
  EXPECT_EQ(parsed.at("target_session_attrs"), "read-write");
  order.Reached("db1", "1");
  EXPECT_EQ(Parsed(order.Ordered()).at("host"), "db1,db2,db3");
}

TEST(HostOrderTest, AUrlKeepsEveryParameter) {
  HostOrder order(
      "postgresql://app:p%20w%27d@db1:5432,db2:5433/catalog?target_session_attrs=read-write"
      "&sslmode=disable");
  order.Reached("db2", "5433");
  const auto parsed = Parsed(order.Ordered());
  EXPECT_EQ(parsed.at("host"), "db2,db1");
  EXPECT_EQ(parsed.at("port"), "5433,5432");
  EXPECT_EQ(parsed.at("user"), "app");
  EXPECT_EQ(parsed.at("password"), "p w'd");
  EXPECT_EQ(parsed.at("dbname"), "catalog");
  EXPECT_EQ(parsed.at("sslmode"), "disable");
  EXPECT_EQ(parsed.at("target_session_attrs"), "read-write");
}

TEST(HostOrderTest, QuotesAndBackslashesSurvive) {
  HostOrder order(R"(host=db1,db2 dbname='it\'s a \\ name')");
  order.Reached("db2", "5432");
  const auto parsed = Parsed(order.Ordered());
  EXPECT_EQ(parsed.at("host"), "db2,db1");
  EXPECT_EQ(parsed.at("dbname"), R"(it's a \ name)");
  EXPECT_EQ(parsed.count("port"), 0);
}

TEST(HostOrderTest, OnePortForAllAndOneHostOnSeveralPorts) {
  HostOrder one_port("host=db1,db2 port=6432");
  one_port.Reached("db2", "6432");
  EXPECT_EQ(Parsed(one_port.Ordered()).at("host"), "db2,db1");
  EXPECT_EQ(Parsed(one_port.Ordered()).at("port"), "6432");

  HostOrder ports("host=/tmp/pg,/tmp/pg port=5432,5433");
  ports.Reached("/tmp/pg", "5433");
  EXPECT_EQ(ports.first(), 1);
  EXPECT_EQ(Parsed(ports.Ordered()).at("port"), "5433,5432");
}

TEST(HostOrderTest, AddressesWithoutNames) {
  HostOrder order("hostaddr=127.0.0.1,127.0.0.2 port=1,2");
  order.Reached("127.0.0.2", "2");
  const auto parsed = Parsed(order.Ordered());
  EXPECT_EQ(parsed.at("hostaddr"), "127.0.0.2,127.0.0.1");
  EXPECT_EQ(parsed.at("port"), "2,1");
  EXPECT_EQ(parsed.count("host"), 0);
}

TEST(HostOrderTest, NeitherAHostNotListedNorOneUrlLibpqRefusesMovesAnything) {
  HostOrder order("host=db1,db2");
  order.Reached("db3", "5432");
  order.Reached("", "5432");
  EXPECT_EQ(order.first(), 0);
  HostOrder single("host=db1");
  single.Reached("db1", "5432");
  EXPECT_EQ(single.Ordered(), "host=db1");
  HostOrder unparsable("host=db1,db2 port=1,2,3");  // libpq: "could not match 3 port numbers"
  unparsable.Reached("db2", "2");
  EXPECT_EQ(unparsable.Ordered(), "host=db1,db2 port=1,2,3");
  HostOrder broken("host='db1");
  broken.Reached("db1", "5432");
  EXPECT_EQ(broken.Ordered(), "host='db1");
}

}  // namespace
}  // namespace hotpath::db
