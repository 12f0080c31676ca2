#include "client/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace hotpath::client {
namespace {

constexpr int kLinear = 2 << 10;  // values below this are their own bucket
constexpr int kMaxExponent = 42;  // 2^42 ns

}  // namespace

LatencyHistogram::LatencyHistogram()
    : buckets_(kLinear + (kMaxExponent - (kSubBits + 1)) * (1 << kSubBits) + 1, 0) {}

int LatencyHistogram::Index(std::int64_t nanos) {
  if (nanos < kLinear) return static_cast<int>(std::max<std::int64_t>(0, nanos));
  const int magnitude = 63 - std::countl_zero(static_cast<std::uint64_t>(nanos));  // >= 11
  if (magnitude >= kMaxExponent) return kLinear + (kMaxExponent - (kSubBits + 1)) * (1 << kSubBits);
  const int shift = magnitude - kSubBits;
  const int sub = static_cast<int>(nanos >> shift) - (1 << kSubBits);  // 0..1023
  return kLinear + (magnitude - (kSubBits + 1)) * (1 << kSubBits) + sub;
}

std::int64_t LatencyHistogram::UpperEdge(int index) {
  if (index < kLinear) return index;
  const int offset = index - kLinear;
  const int magnitude = offset / (1 << kSubBits) + kSubBits + 1;
  const int sub = offset % (1 << kSubBits);
  const int shift = magnitude - kSubBits;
  return ((static_cast<std::int64_t>(sub + (1 << kSubBits)) + 1) << shift) - 1;
}

void LatencyHistogram::Record(std::int64_t nanos) {
  ++buckets_[static_cast<std::size_t>(Index(nanos))];
  ++count_;
  sum_ += nanos;
  max_ = std::max(max_, nanos);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

std::int64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<std::int64_t>(std::ceil(q * static_cast<double>(count_)));
  std::int64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= std::max<std::int64_t>(1, rank)) {
      if (i + 1 == buckets_.size()) return max_;  // the overflow bucket has no upper edge
      return std::min(UpperEdge(static_cast<int>(i)), max_);
    }
  }
  return max_;
}

}  // namespace hotpath::client
