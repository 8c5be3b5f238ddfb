#include "engine/src/summary_bound.h"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mnemos::engine {

float summary_bound_reference(const float* summary, const float* q, int g, int head_dim) {
    const float* mn = summary;
    const float* mx = summary + head_dim;
    float best = -INFINITY;
    for (int j = 0; j < g; ++j) {
        const float* qj = q + int64_t(j) * head_dim;
        float s = 0.0f;
        for (int i = 0; i < head_dim; ++i) s += std::max(qj[i] * mn[i], qj[i] * mx[i]);
        best = std::max(best, s);
    }
    return best;
}

void split_query(const float* q, int g, int head_dim, float* split) {
    for (int j = 0; j < g; ++j) {
        const float* qj = q + int64_t(j) * head_dim;
        float* neg = split + int64_t(j) * 2 * head_dim;
        float* pos = neg + head_dim;
        for (int i = 0; i < head_dim; ++i) {
            neg[i] = std::min(qj[i], 0.0f);
            pos[i] = std::max(qj[i], 0.0f);
        }
    }
}

namespace {

// dot(a, b) over n floats in 16 independent lanes (the compiler turns the lane loop into vector instructions
// without reassociating anything), then the lanes summed in a fixed order.
float dot16(const float* a, const float* b, int n) {
    constexpr int L = 16;
    float acc[L] = {};
    int i = 0;
    for (; i + L <= n; i += L)
        for (int l = 0; l < L; ++l) acc[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (; i < n; ++i) s += a[i] * b[i];
    for (int w = L / 2; w > 0; w /= 2)
        for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
    return s + acc[0];
}

#if defined(__x86_64__)
// The same with AVX2 and FMA: two 8-lane accumulators (16 lanes, fused multiply-adds), then a fixed-order sum.
__attribute__((target("avx2,fma"))) float dot16_avx2(const float* a, const float* b, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    const __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = 0.0f;
    for (; i < n; ++i) s += a[i] * b[i];
    return s + _mm_cvtss_f32(h);
}

bool has_avx2_fma() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
#endif

}  // namespace

float summary_bound(const float* summary, const float* split, int g, int head_dim) {
    float best = -INFINITY;
#if defined(__x86_64__)
    if (has_avx2_fma()) {
        for (int j = 0; j < g; ++j)
            best = std::max(best, dot16_avx2(split + int64_t(j) * 2 * head_dim, summary, 2 * head_dim));
        return best;
    }
#endif
    for (int j = 0; j < g; ++j) best = std::max(best, dot16(split + int64_t(j) * 2 * head_dim, summary, 2 * head_dim));
    return best;
}

}  // namespace mnemos::engine
