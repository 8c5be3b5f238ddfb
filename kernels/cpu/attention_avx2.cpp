// AVX2 attention over the paged f16 KV pool, one GQA group per call.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/attention.h"

namespace mnemos::kernels {

namespace {

inline float hsum(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

// exp(x) for x <= 0 (softmax arguments), relative error ~2e-7: x = n ln2 + r,
// |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n through the exponent bits.
inline __m256 exp_ps(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.3981999507e-3f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 round_f16(__m256 v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }

constexpr int k_max_group = 8;
constexpr int k_max_chunks = 32;  // head_dim up to 256

}  // namespace

bool attention_group_avx2(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                          int64_t n_kv, const float* q, int kh, float* out, float* scratch) {
    const int hd = s.head_dim;
    const int g = s.n_head / s.n_head_kv;
    if (hd % 8 != 0 || hd / 8 > k_max_chunks || g > k_max_group) return false;
    const int nc = hd / 8;
    const int64_t off = static_cast<int64_t>(kh) * hd;

    // Scores: scratch[j * n_kv + t] = (f16(q_j) . k_t) * scale.
    __m256 qv[k_max_group][k_max_chunks > 8 ? 8 : k_max_chunks];
    const bool q_in_regs = nc <= 8;
    alignas(32) float qr[k_max_group * k_max_chunks * 8];
    for (int j = 0; j < g; ++j)
        for (int c = 0; c < nc; ++c) {
            const __m256 v = round_f16(_mm256_loadu_ps(q + j * hd + c * 8));
            _mm256_store_ps(qr + (j * nc + c) * 8, v);
            if (q_in_regs) qv[j][c] = v;
        }
    float mx[k_max_group];
    for (int j = 0; j < g; ++j) mx[j] = -INFINITY;
    for (int64_t t = 0; t < n_kv; ++t) {
        const uint16_t* k = kv.k_row(pages, layer, t) + off;
        __m256 acc[k_max_group];
        for (int j = 0; j < g; ++j) acc[j] = _mm256_setzero_ps();
        for (int c = 0; c < nc; ++c) {
            const __m256 kc = load_f16(k + c * 8);
            for (int j = 0; j < g; ++j)
                acc[j] = _mm256_fmadd_ps(q_in_regs ? qv[j][c] : _mm256_load_ps(qr + (j * nc + c) * 8), kc, acc[j]);
        }
        for (int j = 0; j < g; ++j) {
            const float v = hsum(acc[j]) * s.scale;
            scratch[j * n_kv + t] = v;
            mx[j] = v > mx[j] ? v : mx[j];
        }
    }
    // Softmax weights, rounded to f16 once normalized.
    for (int j = 0; j < g; ++j) {
        float* w = scratch + j * n_kv;
        const __m256 m = _mm256_set1_ps(mx[j]);
        __m256 sum8 = _mm256_setzero_ps();
        int64_t t = 0;
        for (; t + 8 <= n_kv; t += 8) {
            const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(w + t), m));
            _mm256_storeu_ps(w + t, e);
            sum8 = _mm256_add_ps(sum8, e);
        }
        float sum = hsum(sum8);
        for (; t < n_kv; ++t) sum += (w[t] = std::exp(w[t] - mx[j]));
        const __m256 inv = _mm256_set1_ps(1.0f / sum);
        t = 0;
        for (; t + 8 <= n_kv; t += 8) _mm256_storeu_ps(w + t, round_f16(_mm256_mul_ps(_mm256_loadu_ps(w + t), inv)));
        for (; t < n_kv; ++t) w[t] = fp16_to_fp32(fp32_to_fp16(w[t] / sum));
    }
    // out_j = sum_t w_j[t] v_t, one 8-wide chunk of the head at a time.
    for (int c = 0; c < nc; ++c) {
        __m256 acc[k_max_group];
        for (int j = 0; j < g; ++j) acc[j] = _mm256_setzero_ps();
        for (int64_t t = 0; t < n_kv; ++t) {
            const __m256 vc = load_f16(kv.v_row(pages, layer, t) + off + c * 8);
            for (int j = 0; j < g; ++j) acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(scratch[j * n_kv + t]), vc, acc[j]);
        }
        for (int j = 0; j < g; ++j) _mm256_storeu_ps(out + j * hd + c * 8, acc[j]);
    }
    return true;
}

}  // namespace mnemos::kernels
