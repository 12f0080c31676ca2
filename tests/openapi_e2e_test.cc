// The OpenAPI documents against a live server, by tools nobody on the project wrote: a real
// validator checks both documents, and every documented operation is called as documented with
// each answer checked against its documented schema (tests/openapi/check.mjs, on Node with npm
// packages scripts/test installs).
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/test_env.h"

namespace hotpath::testing {
namespace {

using ::testing::HasSubstr;

class OpenApiTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    StartServer(Options());
  }
};

TEST_F(OpenApiTest, BothDocumentsAreValidAndEveryOperationAnswersAsDocumented) {
  for (int n = 1; n <= 3; ++n) CreateDemo(n);
  const std::string tools = absl::StrCat(HOTPATH_SOURCE_DIR, "/tests/openapi");
  int exit_code = -1;
  const std::string output =
      RunCommand(absl::StrCat("cd ", tools, " && timeout 120 node check.mjs http://127.0.0.1:",
                              server_->http_port(), " 2>&1"),
                 &exit_code);
  EXPECT_EQ(exit_code, 0) << output
                          << "\n(tests/openapi/node_modules comes from scripts/test's npm ci)";
  EXPECT_THAT(output, HasSubstr("ok: both documents valid, 9 operations called as documented"));
}

// The documents say what answers print: JSON names, 64-bit integers as strings, repeated query
// parameters repeated, PATCH's update mask, exports as NDJSON lines, errors.
TEST_F(OpenApiTest, TheDocumentsDescribeTheWireNotTheProto) {
  const std::string v3 = Http(server_->http_port(), "GET", "/openapi3.json").body;
  EXPECT_THAT(v3, HasSubstr(R"("openapi": "3.0.3")"));
  EXPECT_THAT(v3, HasSubstr(R"("priceCents": {)"));
  EXPECT_THAT(v3, ::testing::Not(HasSubstr("price_cents\": {")));
  EXPECT_THAT(v3, HasSubstr(R"("explode": true)"));
  EXPECT_THAT(v3, HasSubstr(R"("name": "updateMask")"));
  EXPECT_THAT(v3, HasSubstr(R"("application/x-ndjson")"));
  EXPECT_THAT(v3, HasSubstr(R"("#/components/schemas/google.rpc.Status")"));
  const std::string v2 = Http(server_->http_port(), "GET", "/openapi.json").body;
  EXPECT_THAT(v2, HasSubstr(R"("swagger": "2.0")"));
  EXPECT_THAT(v2, HasSubstr(R"("collectionFormat": "multi")"));
  EXPECT_THAT(v2, HasSubstr(R"("priceCents": {)"));
}

}  // namespace
}  // namespace hotpath::testing
