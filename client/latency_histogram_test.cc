#include "client/latency_histogram.h"

#include <random>

#include "gtest/gtest.h"

namespace hotpath::client {
namespace {

TEST(LatencyHistogram, ExactForSmallValues) {
  LatencyHistogram h;
  for (int v = 1; v <= 1000; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 1000);
  EXPECT_EQ(h.Percentile(0.5), 500);
  EXPECT_EQ(h.Percentile(0.99), 990);
  EXPECT_EQ(h.Percentile(1.0), 1000);
  EXPECT_DOUBLE_EQ(h.mean(), 500.5);
}

TEST(LatencyHistogram, RelativeErrorUnderAThousandth) {
  LatencyHistogram h;
  std::mt19937_64 random(7);
  std::vector<std::int64_t> values;
  for (int i = 0; i < 100000; ++i) {
    const auto v =
        static_cast<std::int64_t>(std::exp(std::uniform_real_distribution<>(7, 25)(random)));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact = values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    const auto got = h.Percentile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(static_cast<double>(got - exact), exact * 0.001 + 1) << q;
  }
  EXPECT_EQ(h.Percentile(1.0), values.back());
  EXPECT_EQ(h.max(), values.back());
}

TEST(LatencyHistogram, MergesAndClampsHugeValues) {
  LatencyHistogram a, b;
  a.Record(1000);
  b.Record(5'000'000'000'000'000);  // beyond the range: the last bucket
  a.Merge(b);
  EXPECT_EQ(a.count(), 2);
  EXPECT_EQ(a.Percentile(1.0), 5'000'000'000'000'000);
  EXPECT_EQ(a.Percentile(0.5), 1000);
}

}  // namespace
}  // namespace hotpath::client
