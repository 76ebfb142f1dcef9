// Metric cells (Counter, Gauge, Histogram), labelled families of them, and the Registry that renders them all in
// Prometheus text format 0.0.4. Cells are atomics: the data path only ever touches a cached cell reference.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgweir::metrics {

enum class MetricType { counter, gauge, histogram };
std::string_view to_string(MetricType type);

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double v) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  void sub(double v) noexcept { value_.fetch_sub(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Upper bounds in seconds for latencies inside a pooler: sub-millisecond hand-offs up to pool.timeout's range.
inline constexpr double k_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10, 30};

class Histogram {
 public:
  // `bounds` are the finite upper bounds, ascending; +Inf is implicit.
  explicit Histogram(std::span<const double> bounds);
  void observe(double seconds) noexcept;

  struct Snapshot {
    std::vector<double> bounds;               // finite upper bounds
    std::vector<std::uint64_t> cumulative;    // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  // Counts are summed from the buckets, so _count always equals the +Inf bucket even under concurrent observes.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (the last one is +Inf)
  std::atomic<std::uint64_t> sum_ns_{0};  // nanoseconds
};

class Writer;

// The part of a family the registry renders; the typed families below add `with`.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  virtual void write(Writer& out) const = 0;

 protected:
  // Values for `with`: exactly one per label name. A wrong count is a programming error: missing values render
  // as "" and extra ones are dropped, rather than failing on the data path.
  std::vector<std::string> normalise(std::span<const std::string_view> values) const;

 private:
  std::string name_, help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// One cell per distinct label-value tuple. Cells never move once made, so callers cache the reference `with`
// returns; the lookup itself takes a short mutex.
template <class Cell>
class Family : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;

  Cell& with(std::initializer_list<std::string_view> values = {}) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Cell& with(std::span<const std::string_view> values) {
    auto key = normalise(values);
    std::lock_guard lock(mutex_);
    auto it = cells_.find(key);
    if (it == cells_.end()) it = cells_.emplace(std::move(key), make_cell()).first;
    return *it->second;
  }

 protected:
  virtual std::unique_ptr<Cell> make_cell() const = 0;
  // Calls f(label values, cell) for every cell, in label order, under the family's mutex (cells are atomics, so
  // this is only as long as formatting the family's lines).
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, cell] : cells_) f(values, *cell);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Cell>, std::less<>> cells_;
};

class CounterFamily final : public Family<Counter> {
 public:
  using Family<Counter>::Family;
  void write(Writer& out) const override;

 protected:
  std::unique_ptr<Counter> make_cell() const override { return std::make_unique<Counter>(); }
};

class GaugeFamily final : public Family<Gauge> {
 public:
  using Family<Gauge>::Family;
  void write(Writer& out) const override;

 protected:
  std::unique_ptr<Gauge> make_cell() const override { return std::make_unique<Gauge>(); }
};

class HistogramFamily final : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);
  void write(Writer& out) const override;

 protected:
  std::unique_ptr<Histogram> make_cell() const override { return std::make_unique<Histogram>(bounds_); }

 private:
  std::vector<double> bounds_;
};

using Label = std::pair<std::string_view, std::string_view>;  // name, value

// Builds the exposition text. Samples may be emitted in any order: each family's lines are gathered under one
// HELP/TYPE header and families come out in the order they were first seen, as the text format requires.
class Writer {
 public:
  void counter(std::string_view name, std::string_view help, std::span<const Label> labels, double value);
  void counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels, double value) {
    counter(name, help, std::span<const Label>(labels.begin(), labels.size()), value);
  }
  void gauge(std::string_view name, std::string_view help, std::span<const Label> labels, double value);
  void gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels, double value) {
    gauge(name, help, std::span<const Label>(labels.begin(), labels.size()), value);
  }
  void histogram(std::string_view name, std::string_view help, std::span<const Label> labels,
                 const Histogram::Snapshot& h);

  // The whole exposition, families in first-seen order.
  std::string finish() const;

 private:
  std::string& family(std::string_view name, std::string_view help, MetricType type);
  void sample(std::string& out, std::string_view name, std::span<const Label> labels, const Label* extra,
              double value);

  struct Block {
    std::string name;
    std::string text;
  };
  std::vector<Block> blocks_;
};

// Text-format helpers, public for tests and collectors.
std::string escape_label_value(std::string_view value);  // \ " and newline
std::string escape_help(std::string_view help);          // \ and newline
std::string format_value(double value);                  // integers without a fraction; +Inf, -Inf, NaN
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

using Collector = std::function<void(Writer&)>;

class Registry {
 public:
  // Registering a name twice returns the existing family when type and labels match. A clash, an invalid name or
  // a counter not ending in _total throws std::logic_error: registration happens at start-up, not on the data path.
  CounterFamily& counter(std::string_view name, std::string_view help, std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                             std::span<const double> bounds = k_latency_buckets);

  // Called at every scrape, without any registry lock held, to emit values computed from snapshots.
  void add_collector(Collector collector);
  // Adds the process_* metrics read from /proc/self.
  void add_process_collector();

  std::string render() const;

 private:
  template <class F>
  F& add_family(std::string_view name, MetricType type, const std::vector<std::string>& label_names,
                const std::function<std::unique_ptr<F>()>& make);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
  std::vector<std::shared_ptr<const Collector>> collectors_;
};

// The standard process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds). A value that cannot
// be read is left out.
void write_process_metrics(Writer& out);

}  // namespace pgweir::metrics
