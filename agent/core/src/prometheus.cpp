// Prometheus text exposition (agent/core/prometheus.h).
#include "agent/core/prometheus.h"

#include <charconv>
#include <cmath>

namespace mnemos::agent::prom {

namespace {

// `{a="x",b="y"` with extra appended (e.g. le="0.5"), then `}`; "" when there are no labels at all.
std::string label_text(const std::vector<std::string>& names, const label_values& v, std::string_view extra = {}) {
    if (names.empty() && extra.empty()) return {};
    std::string s = "{";
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) s += ',';
        s += names[i] + "=\"" + escape_label_value(v[i]) + '"';
    }
    if (!extra.empty()) {
        if (!names.empty()) s += ',';
        s += extra;
    }
    return s + '}';
}

}  // namespace

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string format_value(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc{} ? std::string(buf, end) : std::to_string(v);
}

void write_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out.append(name).append(" ").append(type).append("\n");
}

void write_single(std::string& out, std::string_view name, std::string_view type, std::string_view help, double v) {
    write_header(out, name, type, help);
    out.append(name).append(" ").append(format_value(v)).append("\n");
}

counter_family::counter_family(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void counter_family::add(const label_values& v, double n) {
    if (v.size() != label_names_.size() || !(n >= 0)) return;
    std::lock_guard lk(mu_);
    series_[v] += n;
}

double counter_family::value(const label_values& v) const {
    std::lock_guard lk(mu_);
    auto it = series_.find(v);
    return it == series_.end() ? 0 : it->second;
}

double counter_family::total() const {
    std::lock_guard lk(mu_);
    double t = 0;
    for (const auto& [v, n] : series_) t += n;
    return t;
}

void counter_family::write(std::string& out) const {
    write_header(out, name_, "counter", help_);
    std::lock_guard lk(mu_);
    for (const auto& [v, n] : series_) out += name_ + label_text(label_names_, v) + ' ' + format_value(n) + '\n';
}

histogram_family::histogram_family(std::string name, std::string help, std::vector<std::string> label_names,
                                   std::vector<double> upper_bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(upper_bounds)) {}

void histogram_family::observe(const label_values& v, double x) {
    if (v.size() != label_names_.size() || std::isnan(x)) return;
    size_t b = 0;
    while (b < bounds_.size() && x > bounds_[b]) ++b;  // le: the first bound >= x
    std::lock_guard lk(mu_);
    series& s = series_[v];
    if (s.in_bucket.empty()) s.in_bucket.assign(bounds_.size() + 1, 0);
    s.in_bucket[b]++;
    s.count++;
    s.sum += x;
}

uint64_t histogram_family::count(const label_values& v) const {
    std::lock_guard lk(mu_);
    auto it = series_.find(v);
    return it == series_.end() ? 0 : it->second.count;
}

uint64_t histogram_family::total_count() const {
    std::lock_guard lk(mu_);
    uint64_t n = 0;
    for (const auto& [v, s] : series_) n += s.count;
    return n;
}

void histogram_family::write(std::string& out) const {
    write_header(out, name_, "histogram", help_);
    std::lock_guard lk(mu_);
    for (const auto& [v, s] : series_) {
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= bounds_.size(); ++b) {
            cumulative += s.in_bucket[b];
            const std::string le = "le=\"" + (b < bounds_.size() ? format_value(bounds_[b]) : "+Inf") + '"';
            out += name_ + "_bucket" + label_text(label_names_, v, le) + ' ' + std::to_string(cumulative) + '\n';
        }
        out += name_ + "_sum" + label_text(label_names_, v) + ' ' + format_value(s.sum) + '\n';
        out += name_ + "_count" + label_text(label_names_, v) + ' ' + std::to_string(s.count) + '\n';
    }
}

const std::vector<double>& latency_buckets() {
    static const std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    return b;
}

const std::vector<double>& token_buckets() {
    static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    return b;
}

const std::vector<double>& wait_buckets() {
    static const std::vector<double> b = {0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120};
    return b;
}

}  // namespace mnemos::agent::prom
