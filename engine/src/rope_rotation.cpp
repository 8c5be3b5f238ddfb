#include "engine/src/rope_rotation.h"

#include <cmath>
#include <cstdlib>

namespace mnemos::engine {

rope_rotation::rope_rotation(std::vector<double> omega, rope_kind kind, int32_t n_rot, int32_t head_dim)
    : omega_(std::move(omega)), kind_(kind), n_rot_(n_rot), head_dim_(head_dim) {
    const int64_t np = n_pairs();
    table_.resize(static_cast<size_t>(3 * k_steps * 2 * np));
    for (int level = 0; level < 3; ++level)
        for (int64_t step = 0; step < k_steps; ++step) {
            float* row = &table_[static_cast<size_t>((level * k_steps + step) * 2 * np)];
            const double pos = static_cast<double>(step << (10 * level));
            for (int64_t i = 0; i < np; ++i) {
                const double a = std::fmod(pos * omega_[static_cast<size_t>(i)], 2.0 * M_PI);
                row[i] = static_cast<float>(std::cos(a));
                row[np + i] = static_cast<float>(std::sin(a));
            }
        }
}

void rope_rotation::angles(int64_t delta, float* cs) const {
    const int64_t np = n_pairs();
    const uint64_t d = static_cast<uint64_t>(delta < 0 ? -delta : delta);
    const float* lo = &table_[static_cast<size_t>((0 * k_steps + (d & 1023)) * 2 * np)];
    const float* mid = &table_[static_cast<size_t>((1 * k_steps + ((d >> 10) & 1023)) * 2 * np)];
    const float* hi = &table_[static_cast<size_t>((2 * k_steps + ((d >> 20) & 1023)) * 2 * np)];
    const float sign = delta < 0 ? -1.0f : 1.0f;
    for (int64_t i = 0; i < np; ++i) {
        const float c1 = lo[i] * mid[i] - lo[np + i] * mid[np + i];
        const float s1 = lo[i] * mid[np + i] + lo[np + i] * mid[i];
        cs[i] = c1 * hi[i] - s1 * hi[np + i];
        cs[np + i] = sign * (c1 * hi[np + i] + s1 * hi[i]);
    }
}

void rotate_pairs(rope_kind kind, int32_t n_rot, int32_t head_dim, const float* cs, const float* sn, const float* x,
                  float* y, int32_t n_heads) {
    const int32_t half = n_rot / 2;
    for (int32_t h = 0; h < n_heads; ++h) {
        const float* a = x + static_cast<int64_t>(h) * head_dim;
        float* b = y + static_cast<int64_t>(h) * head_dim;
        if (a != b)
            for (int32_t i = n_rot; i < head_dim; ++i) b[i] = a[i];
        const int32_t step = kind == rope_kind::normal ? 2 : 1, other = kind == rope_kind::normal ? 1 : half;
        for (int32_t i = 0; i < half; ++i) {
            const int32_t j = i * step;
            const float u = a[j], v = a[j + other];
            b[j] = u * cs[i] - v * sn[i];
            b[j + other] = u * sn[i] + v * cs[i];
        }
    }
}

void rope_rotation::rotate(const float* cs, const float* x, float* y, int32_t n_heads) const {
    rotate_pairs(kind_, n_rot_, head_dim_, cs, cs + n_pairs(), x, y, n_heads);
}

}  // namespace mnemos::engine
