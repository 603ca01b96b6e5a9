#pragma once
// The server's counters and latency histograms, rendered as Prometheus text (format 0.0.4)
// together with the scheduler's gauges. Thread-safe: handlers record from their own threads.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "torchless/engine/scheduler.h"

namespace torchless::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size()) {}
  void observe(double value);
  // The _bucket, _sum and _count lines of metric `name`.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound: observations <= it (cumulative at render)
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  Metrics();
  void count_response(int status);
  void count_cancelled();
  void observe_time_to_first_token(double seconds);
  void observe_time_per_token(double seconds);
  std::string render(const SchedulerStats& stats) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_;  // by HTTP status
  uint64_t cancelled_ = 0;
  Histogram ttft_;
  Histogram per_token_;
};

}  // namespace torchless::server
