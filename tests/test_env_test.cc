// The test environment's own promises that the other tests lean on.
#include "tests/test_env.h"

#include <set>

#include "gtest/gtest.h"

namespace hotpath::testing {
namespace {

// nginx refuses a configuration that listens twice on one port, and a test asks for four ports
// in a row: bind() to port 0 once handed the same port out twice (CI, ScaleOutTest).
TEST(FreePortTest, NeverReturnsAPortTwice) {
  std::set<int> ports;
  for (int i = 0; i < 2000; ++i) {
    const int port = FreePort();
    ASSERT_NE(port, 0);
    ASSERT_TRUE(ports.insert(port).second) << "port " << port << " returned twice, call " << i;
  }
}

}  // namespace
}  // namespace hotpath::testing
