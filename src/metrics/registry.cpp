// The metric registry and the Prometheus text format 0.0.4 writer: cells, families, HELP/TYPE grouping, escaping and
// number formatting.
#include "pgweir/metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace pgweir::metrics {

std::string_view to_string(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

// ---------------------------------------------------------------------------------------------
// Histogram

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double seconds) noexcept {
  // le is inclusive: a value equal to a bound belongs to that bound's bucket. Searched from the smallest bound up:
  // the relay observes every query and transaction, and most of them land in the first bucket or two.
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  // The sum in whole nanoseconds: one atomic add, where a double needs a compare-and-swap loop.
  constexpr double k_max_seconds = 1e10;  // 317 years; 2^64 ns is 584
  const double ns = !(seconds > 0) ? 0 : std::min(seconds, k_max_seconds) * 1e9 + 0.5;  // NaN counts 0
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Families

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}

std::vector<std::string> FamilyBase::normalise(std::span<const std::string_view> values) const {
  std::vector<std::string> out;
  out.reserve(label_names_.size());
  for (std::size_t i = 0; i < label_names_.size(); ++i)
    out.emplace_back(i < values.size() ? values[i] : std::string_view{});
  return out;
}

namespace {

// Pairs a family's label names with one cell's values, for the writer.
std::vector<Label> zip_labels(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  std::vector<Label> labels;
  labels.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

}  // namespace

void CounterFamily::write(Writer& out) const {
  for_each([&](const std::vector<std::string>& values, const Counter& c) {
    out.counter(name(), help(), zip_labels(label_names(), values), static_cast<double>(c.value()));
  });
}

void GaugeFamily::write(Writer& out) const {
  for_each([&](const std::vector<std::string>& values, const Gauge& g) {
    out.gauge(name(), help(), zip_labels(label_names(), values), g.value());
  });
}

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> bounds)
    : Family<Histogram>(std::move(name), std::move(help), MetricType::histogram, std::move(label_names)),
      bounds_(std::move(bounds)) {}

void HistogramFamily::write(Writer& out) const {
  for_each([&](const std::vector<std::string>& values, const Histogram& h) {
    out.histogram(name(), help(), zip_labels(label_names(), values), h.snapshot());
  });
}

// ---------------------------------------------------------------------------------------------
// Text format

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counts are the common case; print them exactly, without an exponent, while a double holds them exactly.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<long long>(value));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

namespace {

bool name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool colon_ok) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, colon_ok)) return false;
  return true;
}

}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }
bool valid_label_name(std::string_view name) { return valid_name(name, false) && !name.starts_with("__"); }

std::string& Writer::family(std::string_view name, std::string_view help, MetricType type) {
  for (auto& b : blocks_)
    if (b.name == name) return b.text;
  auto& b = blocks_.emplace_back();
  b.name = name;
  b.text = "# HELP ";
  b.text += name;
  b.text += ' ';
  b.text += escape_help(help);
  b.text += "\n# TYPE ";
  b.text += name;
  b.text += ' ';
  b.text += to_string(type);
  b.text += '\n';
  return b.text;
}

void Writer::sample(std::string& out, std::string_view name, std::span<const Label> labels, const Label* extra,
                    double value) {
  out += name;
  if (!labels.empty() || extra) {
    out += '{';
    bool first = true;
    auto put = [&](const Label& l) {
      if (!first) out += ',';
      first = false;
      out += l.first;
      out += "=\"";
      out += escape_label_value(l.second);
      out += '"';
    };
    for (const auto& l : labels) put(l);
    if (extra) put(*extra);
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

void Writer::counter(std::string_view name, std::string_view help, std::span<const Label> labels, double value) {
  sample(family(name, help, MetricType::counter), name, labels, nullptr, value);
}

void Writer::gauge(std::string_view name, std::string_view help, std::span<const Label> labels, double value) {
  sample(family(name, help, MetricType::gauge), name, labels, nullptr, value);
}

void Writer::histogram(std::string_view name, std::string_view help, std::span<const Label> labels,
                       const Histogram::Snapshot& h) {
  std::string& out = family(name, help, MetricType::histogram);
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < h.cumulative.size(); ++i) {
    const std::string le = i < h.bounds.size() ? format_value(h.bounds[i]) : "+Inf";
    const Label extra{"le", le};
    sample(out, bucket, labels, &extra, static_cast<double>(h.cumulative[i]));
  }
  sample(out, std::string(name) + "_sum", labels, nullptr, h.sum);
  sample(out, std::string(name) + "_count", labels, nullptr, static_cast<double>(h.count));
}

std::string Writer::finish() const {
  std::string out;
  for (const auto& b : blocks_) out += b.text;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Registry

template <class F>
F& Registry::add_family(std::string_view name, MetricType type, const std::vector<std::string>& label_names,
                        const std::function<std::unique_ptr<F>()>& make) {
  if (!valid_metric_name(name)) throw std::logic_error("invalid metric name: " + std::string(name));
  for (const auto& l : label_names)
    if (!valid_label_name(l) || l == "le") throw std::logic_error("invalid label name: " + l);
  if (type == MetricType::counter && !name.ends_with("_total"))
    throw std::logic_error("counter name must end in _total: " + std::string(name));
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->name() != name) continue;
    auto* typed = dynamic_cast<F*>(f.get());
    if (!typed || f->type() != type || f->label_names() != label_names)
      throw std::logic_error("metric registered twice with different type or labels: " + std::string(name));
    return *typed;
  }
  auto family = make();
  F& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

CounterFamily& Registry::counter(std::string_view name, std::string_view help, std::vector<std::string> label_names) {
  auto& f = add_family<CounterFamily>(name, MetricType::counter, label_names, [&] {
    return std::make_unique<CounterFamily>(std::string(name), std::string(help), MetricType::counter, label_names);
  });
  if (label_names.empty()) f.with();  // an unlabelled metric is exposed (as 0) before its first update
  return f;
}

GaugeFamily& Registry::gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names) {
  auto& f = add_family<GaugeFamily>(name, MetricType::gauge, label_names, [&] {
    return std::make_unique<GaugeFamily>(std::string(name), std::string(help), MetricType::gauge, label_names);
  });
  if (label_names.empty()) f.with();
  return f;
}

HistogramFamily& Registry::histogram(std::string_view name, std::string_view help,
                                     std::vector<std::string> label_names, std::span<const double> bounds) {
  std::vector<double> b(bounds.begin(), bounds.end());
  if (!std::is_sorted(b.begin(), b.end()) || std::adjacent_find(b.begin(), b.end()) != b.end() ||
      std::any_of(b.begin(), b.end(), [](double x) { return !std::isfinite(x); }))
    throw std::logic_error("histogram buckets must be finite and strictly ascending: " + std::string(name));
  auto& f = add_family<HistogramFamily>(name, MetricType::histogram, label_names, [&] {
    return std::make_unique<HistogramFamily>(std::string(name), std::string(help), label_names, b);
  });
  if (label_names.empty()) f.with();
  return f;
}

void Registry::add_collector(Collector collector) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::make_shared<const Collector>(std::move(collector)));
}

void Registry::add_process_collector() { add_collector([](Writer& w) { write_process_metrics(w); }); }

std::string Registry::render() const {
  // Families are never removed, so raw pointers taken under the lock stay valid after it is released.
  std::vector<const FamilyBase*> families;
  std::vector<std::shared_ptr<const Collector>> collectors;
  {
    std::lock_guard lock(mutex_);
    families.reserve(families_.size());
    for (const auto& f : families_) families.push_back(f.get());
    collectors = collectors_;
  }
  Writer w;
  for (const auto* f : families) f->write(w);
  for (const auto& c : collectors) (*c)(w);
  return w.finish();
}

}  // namespace pgweir::metrics
