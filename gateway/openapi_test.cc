#include "gateway/openapi.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hotpath::gateway {
namespace {

using ::testing::HasSubstr;

TEST(MergeOpenApiTest, AddsTheOthersPathsDefinitionsAndTagsKeepingTheFirstsOwn) {
  const auto merged = MergeOpenApi({
      R"({"swagger": "2.0", "paths": {"/a": {"get": {}}}, "definitions": {"A": {"type": "object"}},
          "tags": [{"name": "A"}]})",
      R"({"swagger": "2.0", "paths": {"/a": {"post": {}}, "/b": {"get": {"x": "}\"{"}}},
          "definitions": {"B": {}}, "tags": [{"name": "B"}]})",
      "",
  });
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_THAT(*merged, HasSubstr(R"("/a": {"get": {}})"));             // the first's, kept
  EXPECT_THAT(*merged, ::testing::Not(HasSubstr(R"("post")")));        // not replaced
  EXPECT_THAT(*merged, HasSubstr(R"("/b": {"get": {"x": "}\"{"}})"));  // strings kept whole
  EXPECT_THAT(*merged, HasSubstr(R"("B": {})"));
  EXPECT_THAT(*merged, HasSubstr(R"({"name": "B"})"));
  // Still one well-formed object.
  EXPECT_TRUE(MergeOpenApi({*merged, "{}"}).ok());
}

TEST(MergeOpenApiTest, AddsWhatTheFirstLacks) {
  const auto merged = MergeOpenApi({R"({"swagger": "2.0"})", R"({"paths": {"/b": {}}})"});
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(*merged, R"({"swagger": "2.0","paths":{"/b": {}}})");
}

TEST(MergeOpenApiTest, OneDocumentComesBackAsItIsAndBrokenOnesAreRefused) {
  EXPECT_EQ(*MergeOpenApi({"", R"({"x": 1})"}), R"({"x": 1})");
  EXPECT_FALSE(MergeOpenApi({R"({"x": 1})", R"({"paths": {"/b": )"}).ok());
  EXPECT_FALSE(MergeOpenApi({R"([1])", R"({})"}).ok());
}

}  // namespace
}  // namespace hotpath::gateway
