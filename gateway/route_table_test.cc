#include "gateway/route_table.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hotpath::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(PathTemplate, ParsesEveryForm) {
  auto t = PathTemplate::Parse("/v1/{name=shelves/*/books/*}:publish");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->segments.size(), 5u);
  EXPECT_EQ(t->verb, "publish");
  ASSERT_EQ(t->variables.size(), 1u);
  EXPECT_EQ(t->variables[0].field_path, "name");
  EXPECT_EQ(t->variables[0].first_segment, 1);
  EXPECT_EQ(t->variables[0].end_segment, 5);

  auto dotted = PathTemplate::Parse("/v1/items/{item.id}");
  ASSERT_TRUE(dotted.ok());
  EXPECT_EQ(dotted->variables[0].field_path, "item.id");

  auto rest = PathTemplate::Parse("/v1/files/{path=**}");
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->variables[0].end_segment, -1);
}

TEST(PathTemplate, RejectsMalformedTemplates) {
  for (const char* bad : {"", "v1/items", "/v1/{id", "/v1/{}", "/v1/{a={b}}", "/v1/**/x",
                          "/v1/items:", "/v1//x", "/v1/{id}}"}) {
    EXPECT_FALSE(PathTemplate::Parse(bad).ok()) << bad;
  }
}

struct Case {
  const char* method;
  const char* path;
  const char* want;                                           // target name, "" for none
  std::vector<std::pair<std::string, std::string>> bindings;  // expected variables
  std::set<std::string> allowed;                              // when want is ""
};

class RouteTableTest : public ::testing::TestWithParam<Case> {
 protected:
  static RouteTable<std::string>& Table() {
    static RouteTable<std::string>* table = [] {
      auto* t = new RouteTable<std::string>();
      const std::vector<std::tuple<const char*, const char*, const char*>> routes = {
          {"GET", "/v1/items", "List"},
          {"POST", "/v1/items", "Create"},
          {"GET", "/v1/items/{id}", "Get"},
          {"PATCH", "/v1/items/{item.id}", "Update"},
          {"DELETE", "/v1/items/{id}", "Delete"},
          {"GET", "/v1/items:search", "Search"},
          {"GET", "/v1/items:batchGet", "BatchGet"},
          {"GET", "/v1/items/{id}:history", "History"},
          {"GET", "/v1/categories/{category}/stats", "Stats"},
          {"GET", "/v1/{name=shelves/*/books/*}", "GetBook"},
          {"GET", "/v1/files/{path=**}", "File"},
          {"GET", "/v1/items/special", "Special"},
      };
      for (const auto& [method, path, name] : routes) {
        EXPECT_TRUE(t->Add(method, *PathTemplate::Parse(path), name).ok()) << path;
      }
      return t;
    }();
    return *table;
  }
};

TEST_P(RouteTableTest, Matches) {
  const Case& c = GetParam();
  auto match = Table().Find(c.method, c.path);
  if (std::string(c.want).empty()) {
    EXPECT_EQ(match.target, nullptr) << *match.target;
    EXPECT_EQ(match.allowed, c.allowed);
    return;
  }
  ASSERT_NE(match.target, nullptr) << c.method << " " << c.path;
  EXPECT_EQ(*match.target, c.want);
  EXPECT_EQ(match.bindings, c.bindings);
}

INSTANTIATE_TEST_SUITE_P(
    Routes, RouteTableTest,
    ::testing::Values(
        Case{"GET", "/v1/items", "List", {}, {}}, Case{"POST", "/v1/items", "Create", {}, {}},
        Case{"GET", "/v1/items/42", "Get", {{"id", "42"}}, {}},
        Case{"PATCH", "/v1/items/42", "Update", {{"item.id", "42"}}, {}},
        Case{"DELETE", "/v1/items/7", "Delete", {{"id", "7"}}, {}},
        Case{"GET", "/v1/items:search", "Search", {}, {}},
        Case{"GET", "/v1/items:batchGet", "BatchGet", {}, {}},
        Case{"GET", "/v1/items/9:history", "History", {{"id", "9"}}, {}},
        Case{"GET", "/v1/items/special", "Special", {}, {}},  // a literal beats {id}
        Case{"GET", "/v1/categories/cat-3/stats", "Stats", {{"category", "cat-3"}}, {}},
        Case{"GET", "/v1/categories/a%20b/stats", "Stats", {{"category", "a b"}}, {}},
        Case{"GET", "/v1/categories/%2E%2E%2Fetc/stats", "Stats", {{"category", "../etc"}}, {}},
        Case{"GET", "/v1/shelves/s1/books/b2", "GetBook", {{"name", "shelves/s1/books/b2"}}, {}},
        Case{"GET", "/v1/files/a/b/c.txt", "File", {{"path", "a/b/c.txt"}}, {}},
        Case{"PUT", "/v1/items/42", "", {}, {"DELETE", "GET", "PATCH"}},  // 405 with Allow
        Case{"DELETE", "/v1/items", "", {}, {"GET", "POST"}},
        Case{"GET", "/v1/items/42/extra", "", {}, {}},  // 404
        Case{"GET", "/v1/items:unknown", "", {}, {}}, Case{"GET", "/v2/items", "", {}, {}},
        Case{"GET", "/", "", {}, {}}, Case{"GET", "", "", {}, {}},
        Case{"GET", "/v1/categories/%zz/stats", "", {}, {}},  // bad escape: no match
        Case{"GET", "/v1/items:", "", {}, {}},                // an empty verb is no verb
        Case{"GET", "/v1/shelves/s1/books", "", {}, {}}),
    [](const ::testing::TestParamInfo<Case>& info) { return "Case" + std::to_string(info.index); });

TEST(RouteTable, ReportsBrokenEscapesInVariables) {
  RouteTable<int> table;
  ASSERT_TRUE(table.Add("GET", *PathTemplate::Parse("/v1/items/{id}"), 1).ok());
  ASSERT_TRUE(table.Add("DELETE", *PathTemplate::Parse("/v1/items/{id}"), 2).ok());
  auto match = table.Find("GET", "/v1/items/%");
  EXPECT_EQ(match.target, nullptr);
  EXPECT_TRUE(match.malformed);
  EXPECT_FALSE(table.Find("GET", "/v1/items/%41").malformed);
}

TEST(RouteTable, RefusesClashingRoutes) {
  RouteTable<int> table;
  ASSERT_TRUE(table.Add("GET", *PathTemplate::Parse("/v1/items/{id}"), 1).ok());
  EXPECT_EQ(table.Add("GET", *PathTemplate::Parse("/v1/items/{other}"), 2).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(table.Add("GET", *PathTemplate::Parse("/v1/items/{id}:verb"), 3).ok());
}

TEST(PercentDecode, DecodesAndRefusesBrokenEscapes) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb+c", &out, false));
  EXPECT_EQ(out, "a/b+c");
  EXPECT_TRUE(PercentDecode("a+b%20c", &out, true));
  EXPECT_EQ(out, "a b c");
  EXPECT_FALSE(PercentDecode("%", &out, false));
  EXPECT_FALSE(PercentDecode("%4", &out, false));
  EXPECT_FALSE(PercentDecode("%g0", &out, false));
}

}  // namespace
}  // namespace hotpath::gateway
