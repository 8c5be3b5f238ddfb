#pragma once
// The seeded daily-log generator behind generate_history (agent/scenario/scenario.h):
// its random numbers, calendar names and template expansion. Internals of
// agent/scenario, public for its tests.
#include <cstdint>
#include <string>

#include "agent/scenario/scenario.h"

namespace mnemos::agent::history_detail {

// splitmix64: tiny, fast, and the same on every platform (std distributions are not).
class splitmix64 {
  public:
    explicit splitmix64(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, n) (modulo bias is negligible for the small n used here).
    uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
    int32_t between(int32_t lo, int32_t hi) {
        return lo + static_cast<int32_t>(below(static_cast<uint64_t>(hi - lo + 1)));
    }

  private:
    uint64_t state_;
};

struct day_names {
    std::string weekday;  // "Monday"
    std::string date;     // "3 March 2025"
};

day_names names_of_day(int64_t days_since_epoch);

// A template with its placeholders filled: {weekday}, {date}, {day} (1-based), {week} (1-based), or a random
// value of the generator's slot of that name (an unknown name becomes "").
std::string expand(const std::string& t, const history_generator& g, const day_names& dn, int32_t day, splitmix64& rng);

}  // namespace mnemos::agent::history_detail
