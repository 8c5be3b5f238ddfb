#pragma once
// Rotation of RoPE'd vectors by a position delta: R(delta) applied to a
// vector rotated at position p gives (up to float rounding) the vector
// rotated at p + delta, since RoPE turns pair i by the angle pos * omega_i.
// Sparse attention uses it to re-position whole runs of keys without
// touching them (the query of the run is turned instead; q . R(d) k = R(-d)q . k),
// and to recover un-rotated keys for page summaries.
//
// The cos/sin of delta * omega_i come from three tables of 1024 steps
// (delta = hi * 2^20 + mid * 2^10 + lo, angles composed by two complex
// products), so a rotation costs no trigonometry: |delta| < 2^30.
#include <cstdint>
#include <vector>

#include "engine/model.h"

namespace mnemos::engine {

// y = x with each RoPE pair of the first n_rot dims of n_heads vectors of head_dim turned by (cos[i], sin[i])
// (normal: pairs (2i, 2i+1); neox: (i, i + n_rot/2)); dims past n_rot copied. x == y allowed.
void rotate_pairs(rope_kind kind, int32_t n_rot, int32_t head_dim, const float* cos, const float* sin, const float* x,
                  float* y, int32_t n_heads);

class rope_rotation {
  public:
    // omega [n_rot/2]: radians per position of pair i (scaling applied).
    rope_rotation(std::vector<double> omega, rope_kind kind, int32_t n_rot, int32_t head_dim);

    int32_t n_pairs() const { return static_cast<int32_t>(omega_.size()); }
    // cs [2 * n_pairs]: cos(delta * omega_i) then sin(delta * omega_i).
    void angles(int64_t delta, float* cs) const;
    // y = R(cs) x for n_heads vectors of head_dim (dims past n_rot copied). x == y allowed.
    void rotate(const float* cs, const float* x, float* y, int32_t n_heads) const;

  private:
    static constexpr int64_t k_steps = 1024;
    std::vector<double> omega_;
    rope_kind kind_;
    int32_t n_rot_, head_dim_;
    std::vector<float> table_;  // [3 levels][k_steps][2 * n_pairs] cos | sin of (step << 10*level) * omega
};

}  // namespace mnemos::engine
