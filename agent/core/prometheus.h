#pragma once
// Prometheus text exposition (format 0.0.4): labelled counters and histograms that any thread may update while
// another renders them. Used by the engine runner (every turn, whoever starts it) and by the server (requests).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mnemos::agent::prom {

// The values of a family's labels, in the order of its label names.
using label_values = std::vector<std::string>;

// A label value as the text format writes it between quotes: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view v);
// A sample value: integers without a fraction, others in the shortest form that reads back exactly; "+Inf".
std::string format_value(double v);
// "# HELP name help\n# TYPE name type\n".
void write_header(std::string& out, std::string_view name, std::string_view type, std::string_view help);
// An unlabelled gauge or counter: its header and its one sample.
void write_single(std::string& out, std::string_view name, std::string_view type, std::string_view help, double v);

// A counter with labels: one series per distinct label_values.
class counter_family {
  public:
    counter_family(std::string name, std::string help, std::vector<std::string> label_names);
    // Adds n (>= 0) to the series of v; v must have one value per label name (else ignored).
    void add(const label_values& v, double n = 1);
    // The series of v (0 when it never was added to), and the sum over all series.
    double value(const label_values& v) const;
    double total() const;
    // HELP, TYPE and one line per series, in label order.
    void write(std::string& out) const;

  private:
    std::string name_, help_;
    std::vector<std::string> label_names_;
    mutable std::mutex mu_;  // guards series_
    std::map<label_values, double> series_;
};

// A histogram with labels: cumulative buckets (le="..." and le="+Inf"), _sum and _count per series.
class histogram_family {
  public:
    // upper_bounds: strictly increasing, without +Inf (always added).
    histogram_family(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> upper_bounds);
    // Counts x in the series of v; v must have one value per label name (else ignored).
    void observe(const label_values& v, double x);
    // Observations of the series of v, and over all series.
    uint64_t count(const label_values& v) const;
    uint64_t total_count() const;
    void write(std::string& out) const;

  private:
    struct series {
        std::vector<uint64_t> in_bucket;  // [bounds + 1]: observations in each bucket (not cumulative); last: +Inf
        uint64_t count = 0;
        double sum = 0;
    };
    std::string name_, help_;
    std::vector<std::string> label_names_;
    std::vector<double> bounds_;
    mutable std::mutex mu_;  // guards series_
    std::map<label_values, series> series_;
};

// Bucket bounds in seconds: latencies of whole requests and turns, of one token, and of waits.
const std::vector<double>& latency_buckets();
const std::vector<double>& token_buckets();
const std::vector<double>& wait_buckets();

}  // namespace mnemos::agent::prom
