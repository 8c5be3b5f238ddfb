// AVX2 attention over the paged f16 KV pool, one GQA group per call. Groups of 1, 2, 4 or 8 heads take a
// blocked path (8 scores reduced at once, [t][g] score layout); other group sizes the generic one.
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/avx2_util.h"

namespace mnemos::kernels {

// GCC at -O2 keeps short fixed-count loops rolled, which sends the register-blocked accumulators
// to the stack; these loops must unroll completely.
#define MNEMOS_UNROLL _Pragma("GCC unroll 16")

namespace {

using avx2::hsum;

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

inline __m256 load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 round_f16(__m256 v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT)); }

constexpr int k_max_group = 8;
constexpr int k_max_chunks = 32;  // head_dim up to 256

// Walks the K rows of one layer in position order without a division per row.
struct kv_cursor {
    const paged_kv_view& kv;
    const int32_t* pages;
    int layer;
    int64_t off;  // element offset of the head inside a row
    int64_t page = 0;
    int32_t in_page = 0;
    const uint16_t* page_base;

    kv_cursor(const paged_kv_view& v, const int32_t* p, int l, int64_t o) : kv(v), pages(p), layer(l), off(o) {
        page_base = kv.base + pages[0] * kv.page_stride + layer * kv.layer_stride + off;
    }
    // The K row at the cursor; advances it.
    const uint16_t* next() {
        if (in_page == kv.page_size) {  // moved lazily: never reads the page after the last row
            in_page = 0;
            ++page;
            page_base = kv.base + pages[page] * kv.page_stride + layer * kv.layer_stride + off;
        }
        return page_base + static_cast<int64_t>(in_page++) * kv.kv_dim;
    }
};

// lane i of the result = the sum of the 8 lanes of a[i].
inline __m256 hsum8x8(const __m256 (&a)[8]) {
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Reduces lanes with equal (lane % G) with op; every lane ends with its group's result.
template <int G, class Op>
inline __m256 reduce_groups(__m256 v, Op op) {
    if constexpr (G <= 4) v = op(v, _mm256_permute2f128_ps(v, v, 0x01));
    if constexpr (G <= 2) v = op(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    if constexpr (G <= 1) v = op(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return v;
}

// GQA group of G heads (8 % G == 0): scores of KB = 8 / G keys at a time with all 8 accumulators reduced
// together, scratch laid out [t][G] so that one block of scores is one vector; V in CP chunks of 8 at a time.
template <int G, int CP>
void attention_group_fast(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                          int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse) {
    constexpr int KB = 8 / G;
    const int hd = s.head_dim;
    const int nc = hd / 8;
    const int64_t off = static_cast<int64_t>(kh) * hd;
    alignas(32) float qr[G * k_max_chunks * 8];
    MNEMOS_UNROLL
    for (int j = 0; j < G; ++j)
        for (int c = 0; c < nc; ++c)
            _mm256_store_ps(qr + (j * nc + c) * 8, round_f16(_mm256_loadu_ps(q + j * hd + c * 8)));

    // Scores: scratch[t * G + j] = (f16(q_j) . k_t) * scale.
    const __m256 scale = _mm256_set1_ps(s.scale);
    __m256 mx8 = _mm256_set1_ps(-INFINITY);
    kv_cursor cur(kv, pages, layer, off);
    int64_t t = 0;
    for (; t + KB <= n_kv; t += KB) {
        const uint16_t* k[KB];
        MNEMOS_UNROLL
        for (int b = 0; b < KB; ++b) k[b] = cur.next();
        __m256 acc[8];
        MNEMOS_UNROLL
        for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
        for (int c = 0; c < nc; ++c) {
            __m256 kc[KB];
            MNEMOS_UNROLL
            for (int b = 0; b < KB; ++b) kc[b] = load_f16(k[b] + c * 8);
            MNEMOS_UNROLL
            for (int j = 0; j < G; ++j) {
                const __m256 qv = _mm256_load_ps(qr + (j * nc + c) * 8);
                MNEMOS_UNROLL
                for (int b = 0; b < KB; ++b) acc[b * G + j] = _mm256_fmadd_ps(qv, kc[b], acc[b * G + j]);
            }
        }
        const __m256 sc = _mm256_mul_ps(hsum8x8(acc), scale);
        _mm256_storeu_ps(scratch + t * G, sc);
        mx8 = _mm256_max_ps(mx8, sc);
    }
    alignas(32) float mx[8];
    _mm256_store_ps(mx, reduce_groups<G>(mx8, [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); }));
    for (; t < n_kv; ++t) {
        const uint16_t* k = cur.next();
        MNEMOS_UNROLL
        for (int j = 0; j < G; ++j) {
            __m256 acc = _mm256_setzero_ps();
            for (int c = 0; c < nc; ++c)
                acc = _mm256_fmadd_ps(_mm256_load_ps(qr + (j * nc + c) * 8), load_f16(k + c * 8), acc);
            const float v = hsum(acc) * s.scale;
            scratch[t * G + j] = v;
            mx[j] = v > mx[j] ? v : mx[j];
        }
    }
    for (int l = G; l < 8; ++l) mx[l] = mx[l % G];

    // Softmax weights per head (lane l belongs to head l % G), rounded to f16 once normalized.
    const int64_t n_all = n_kv * G;
    const __m256 m = _mm256_load_ps(mx);
    __m256 sum8 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n_all; i += 8) {
        const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(scratch + i), m));
        _mm256_storeu_ps(scratch + i, e);
        sum8 = _mm256_add_ps(sum8, e);
    }
    alignas(32) float sum[8];
    _mm256_store_ps(sum, reduce_groups<G>(sum8, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); }));
    for (; i < n_all; ++i) {
        const int j = static_cast<int>(i % G);
        sum[j] += (scratch[i] = std::exp(scratch[i] - mx[j]));
    }
    if (lse)
        for (int j = 0; j < G; ++j) lse[j] = mx[j] + std::log(sum[j]);
    alignas(32) float inv[8];
    MNEMOS_UNROLL
    for (int l = 0; l < 8; ++l) inv[l] = 1.0f / sum[l % G];
    const __m256 inv8 = _mm256_load_ps(inv);
    i = 0;
    for (; i + 8 <= n_all; i += 8)
        _mm256_storeu_ps(scratch + i, round_f16(_mm256_mul_ps(_mm256_loadu_ps(scratch + i), inv8)));
    for (; i < n_all; ++i) scratch[i] = fp16_to_fp32(fp32_to_fp16(scratch[i] / sum[i % G]));

    // out_j = sum_t w_j[t] v_t, CP 8-wide chunks of the head at a time.
    for (int c0 = 0; c0 < nc; c0 += CP) {
        __m256 acc[G][CP];
        MNEMOS_UNROLL
        for (int j = 0; j < G; ++j) MNEMOS_UNROLL
        for (int c = 0; c < CP; ++c) acc[j][c] = _mm256_setzero_ps();
        kv_cursor vcur(kv, pages, layer, off + kv.v_offset);
        for (int64_t tt = 0; tt < n_kv; ++tt) {
            const uint16_t* v = vcur.next() + c0 * 8;
            __m256 vc[CP];
            MNEMOS_UNROLL
            for (int c = 0; c < CP; ++c) vc[c] = load_f16(v + c * 8);
            MNEMOS_UNROLL
            for (int j = 0; j < G; ++j) {
                const __m256 w = _mm256_broadcast_ss(scratch + tt * G + j);
                MNEMOS_UNROLL
                for (int c = 0; c < CP; ++c) acc[j][c] = _mm256_fmadd_ps(w, vc[c], acc[j][c]);
            }
        }
        MNEMOS_UNROLL
        for (int j = 0; j < G; ++j) MNEMOS_UNROLL
        for (int c = 0; c < CP; ++c) _mm256_storeu_ps(out + j * hd + (c0 + c) * 8, acc[j][c]);
    }
}

template <int G>
bool attention_group_fast_cp(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                             int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse) {
    const int nc = s.head_dim / 8;
    if constexpr (8 / G >= 4) {
        if (nc % 4 == 0) return attention_group_fast<G, 4>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse), true;
    }
    if constexpr (8 / G >= 2) {
        if (nc % 2 == 0) return attention_group_fast<G, 2>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse), true;
    }
    attention_group_fast<G, 1>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse);
    return true;
}

}  // namespace

bool attention_group_avx2(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                          int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse) {
    const int hd = s.head_dim;
    const int g = s.n_head / s.n_head_kv;
    if (hd % 8 != 0 || hd / 8 > k_max_chunks || g > k_max_group) return false;
    if (n_kv > 0) {
        switch (g) {
            case 1:
                return attention_group_fast_cp<1>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse);
            case 2:
                return attention_group_fast_cp<2>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse);
            case 4:
                return attention_group_fast_cp<4>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse);
            case 8:
                return attention_group_fast_cp<8>(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse);
            default:
                break;
        }
    }
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
        if (lse) lse[j] = mx[j] + std::log(sum);
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
