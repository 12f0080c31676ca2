// A latency histogram in the manner of HdrHistogram: exact below 2,048 ns, then 1,024 buckets per
// power of two (relative error under 0.1%), up to 2^42 ns (about 73 minutes). Record is a few
// instructions and allocation-free; one histogram per thread, merged at the end.
#pragma once

#include <cstdint>
#include <vector>

namespace hotpath::client {

class LatencyHistogram final {
 public:
  LatencyHistogram();

  void Record(std::int64_t nanos);
  void Merge(const LatencyHistogram& other);

  std::int64_t count() const { return count_; }
  std::int64_t max() const { return max_; }
  double mean() const {
    return count_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }
  // The smallest recorded value v such that a fraction q (0..1] of the samples are <= v (as the
  // upper edge of its bucket, never above max()).
  std::int64_t Percentile(double q) const;

 private:
  static constexpr int kSubBits = 10;  // 1,024 buckets per power of two
  static int Index(std::int64_t nanos);
  static std::int64_t UpperEdge(int index);

  std::vector<std::int64_t> buckets_;  // counts
  std::int64_t count_ = 0;             // samples
  std::int64_t sum_ = 0;               // of the samples, for the mean
  std::int64_t max_ = 0;               // the largest sample
};

}  // namespace hotpath::client
