// Block codec: fp16 (verbatim) and int8 (v1: symmetric, one f32 scale per
// group; v2: K per channel, V per token, asymmetric uint8) with a versioned
// header and a CRC-32C over key + value. See memory/codec.h.
#include "memory/codec.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mnemos::memory {

const char* kv_codec_name(kv_codec c) {
    switch (c) {
        case kv_codec::fp16:
            return "fp16";
        case kv_codec::int8:
            return "int8";
    }
    return "unknown";
}

namespace {

// -- CRC-32C ---------------------------------------------------------------

struct crc_table {
    uint32_t t[256];
    crc_table() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            t[i] = c;
        }
    }
};

uint32_t crc32c_soft(const uint8_t* p, size_t n, uint32_t crc) {
    static const crc_table table;
    for (size_t i = 0; i < n; ++i) crc = table.t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

// Shifting a raw CRC register over n zero bytes is linear over GF(2): a 32 x
// 32 bit matrix, applied below byte by byte through four 256-entry tables.
// Three streams over consecutive stretches of a buffer are then joined as
// crc(a || b) = shift_|b|(crc(a)) ^ crc_from_0(b) (raw registers, no inversion).
struct crc_shift_table {
    uint32_t t[4][256];

    // Matrix rows: mat[i] is the image of bit i.
    static uint32_t times(const uint32_t* mat, uint32_t v) {
        uint32_t sum = 0;
        for (; v; v >>= 1, ++mat)
            if (v & 1) sum ^= *mat;
        return sum;
    }
    static void square(uint32_t* out, const uint32_t* mat) {
        for (int i = 0; i < 32; ++i) out[i] = times(mat, mat[i]);
    }
    // The operator for n_bytes zero bytes (a power of two).
    explicit crc_shift_table(size_t n_bytes) {
        uint32_t op[32], sq[32];
        op[0] = 0x82F63B78u;  // one zero bit (reflected CRC-32C polynomial)
        for (int i = 1; i < 32; ++i) op[i] = 1u << (i - 1);
        for (size_t bits = 1; bits < 8 * n_bytes; bits *= 2) {  // square up to 8 * n_bytes zero bits
            square(sq, op);
            std::memcpy(op, sq, sizeof op);
        }
        for (uint32_t b = 0; b < 256; ++b)
            for (int k = 0; k < 4; ++k) t[k][b] = times(op, b << (8 * k));
    }
    uint32_t shift(uint32_t c) const {
        return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
    }
};

constexpr size_t crc_long = 8192, crc_short = 256;  // stretch lengths of the three-stream loops

// Three independent crc32 instructions in flight (latency 3, throughput 1 per cycle).
template <size_t L>
__attribute__((target("sse4.2"))) uint64_t crc32c_3way(const uint8_t*& p, size_t& n, uint64_t c0,
                                                       const crc_shift_table& shift) {
    while (n >= 3 * L) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < L; i += 8) {
            uint64_t a, b, d;
            std::memcpy(&a, p + i, 8);
            std::memcpy(&b, p + L + i, 8);
            std::memcpy(&d, p + 2 * L + i, 8);
            c0 = _mm_crc32_u64(c0, a);
            c1 = _mm_crc32_u64(c1, b);
            c2 = _mm_crc32_u64(c2, d);
        }
        c0 = shift.shift(uint32_t(c0)) ^ uint32_t(c1);
        c0 = shift.shift(uint32_t(c0)) ^ uint32_t(c2);
        p += 3 * L;
        n -= 3 * L;
    }
    return c0;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_hw(const uint8_t* p, size_t n, uint32_t crc) {
    static const crc_shift_table shift_long(crc_long), shift_short(crc_short);
    uint64_t c = crc;
    c = crc32c_3way<crc_long>(p, n, c, shift_long);
    c = crc32c_3way<crc_short>(p, n, c, shift_short);
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = uint32_t(c);
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

const bool has_sse42 = __builtin_cpu_supports("sse4.2");
// CPUID.1:ECX.F16C (Clang before 16 has no "f16c" in __builtin_cpu_supports). The int8 decoder also uses FMA.
bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
const bool has_f16c = cpu_has_f16c() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");

// -- copies into the KV pool --------------------------------------------------

// Copies n bytes to a 32-byte aligned dst with non-temporal stores: the pool's
// pages are written once and read later by the forward pass, so they bypass
// the cache (no read-for-ownership of the destination). decode_block ends its
// copies with an sfence, before the pages are used by any thread.
__attribute__((target("avx2"))) void stream_copy_avx2(uint8_t* dst, const uint8_t* src, size_t n) {
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 64));
        const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 96));
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), a);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32), b);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 64), c);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 96), d);
    }
    if (i < n) std::memcpy(dst + i, src + i, n - i);
}

const bool has_avx2 = __builtin_cpu_supports("avx2");

void copy_to_page(uint8_t* dst, const uint8_t* src, size_t n) {
    if (has_avx2 && reinterpret_cast<uintptr_t>(dst) % 32 == 0)
        stream_copy_avx2(dst, src, n);
    else
        std::memcpy(dst, src, n);
}

// -- f16 <-> f32 -------------------------------------------------------------

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_half(float f) {  // round to nearest even
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) return uint16_t(sign | 0x7c00 | (x > 0x7f800000u ? 0x200 : 0));
    if (x >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // overflow
    if (x < 0x38800000u) {                                 // subnormal or zero
        if (x < 0x33000000u) return uint16_t(sign);
        const uint32_t e = x >> 23, m = (x & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;
        uint32_t r = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) ++r;
        return uint16_t(sign | r);
    }
    uint32_t r = x - ((127 - 15) << 23);
    r += 0xfff + ((r >> 13) & 1);
    return uint16_t(sign | (r >> 13));
}

// round(v) saturated to [-127, 127]; NaN (a NaN element, or inf * 0 when the scale is infinite) gives 0.
// Converting a NaN or out-of-range float to int is undefined, so the clamp comes first.
int8_t to_q8(float v) {
    if (v != v) return 0;
    return int8_t(std::nearbyint(std::clamp(v, -127.0f, 127.0f)));
}

// Max |x| over n f16 values.
float max_abs_f16(const uint16_t* x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(half_to_float(x[i])));
    return m;
}

__attribute__((target("avx2,f16c,fma"))) void encode_int8_avx2(const uint16_t* x, size_t n_elems, size_t group,
                                                               float* scales, int8_t* q) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t g = 0; g * group < n_elems; ++g) {
        const uint16_t* xs = x + g * group;
        size_t i = 0;
        __m256 vmax = _mm256_setzero_ps();
        for (; i + 8 <= group; i += 8) {
            __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xs + i)));
            vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, absmask));
        }
        float tmp[8];
        _mm256_storeu_ps(tmp, vmax);
        float m = 0;
        for (float t : tmp) m = std::max(m, t);
        for (; i < group; ++i) m = std::max(m, std::fabs(half_to_float(xs[i])));
        const float s = m / 127.0f;
        scales[g] = s;
        const float inv = s > 0 ? 1.0f / s : 0.0f;
        int8_t* qs = q + g * group;
        i = 0;
        const __m256 vinv = _mm256_set1_ps(inv);
        for (; i + 8 <= group; i += 8) {
            __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xs + i)));
            __m256i r = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            int32_t ri[8];
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(ri), r);
            for (int k = 0; k < 8; ++k) qs[i + k] = int8_t(std::clamp(ri[k], -127, 127));
        }
        for (; i < group; ++i) qs[i] = to_q8(half_to_float(xs[i]) * inv);
    }
}

void encode_int8_ref(const uint16_t* x, size_t n_elems, size_t group, float* scales, int8_t* q) {
    for (size_t g = 0; g * group < n_elems; ++g) {
        const uint16_t* xs = x + g * group;
        const float s = max_abs_f16(xs, group) / 127.0f;
        scales[g] = s;
        const float inv = s > 0 ? 1.0f / s : 0.0f;
        for (size_t i = 0; i < group; ++i) q[g * group + i] = to_q8(half_to_float(xs[i]) * inv);
    }
}

__attribute__((target("avx2,f16c,fma"))) void decode_int8_avx2(const float* scales, const int8_t* q, size_t n_elems,
                                                               size_t group, uint16_t* x) {
    for (size_t g = 0; g * group < n_elems; ++g) {
        const __m256 vs = _mm256_set1_ps(scales[g]);
        const int8_t* qs = q + g * group;
        uint16_t* xs = x + g * group;
        size_t i = 0;
        for (; i + 8 <= group; i += 8) {
            int64_t raw;
            std::memcpy(&raw, qs + i, 8);
            __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(raw)));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(xs + i),
                             _mm256_cvtps_ph(_mm256_mul_ps(v, vs), _MM_FROUND_TO_NEAREST_INT));
        }
        for (; i < group; ++i) xs[i] = float_to_half(float(qs[i]) * scales[g]);
    }
}

void decode_int8_ref(const float* scales, const int8_t* q, size_t n_elems, size_t group, uint16_t* x) {
    for (size_t i = 0; i < n_elems; ++i) x[i] = float_to_half(float(q[i]) * scales[i / group]);
}

size_t effective_group(kv_codec codec, int32_t group, size_t n_elems) {
    if (codec != kv_codec::int8) return 0;
    size_t g = group > 0 ? size_t(group) : 64;
    if (n_elems % g) g = 64;
    if (n_elems % g) g = 1;
    return g;
}

// Version 2 int8 needs group == kv_dim with the page n_layer x (K, V) x [n_tokens][kv_dim].
bool v2_fits(int64_t group, size_t n_elems, size_t n_tokens) {
    return group > 0 && n_tokens > 0 && n_elems % (2 * n_tokens * size_t(group)) == 0;
}

// The version encode_block writes for these arguments.
uint16_t write_version(kv_codec codec, int32_t group, size_t n_elems, size_t n_tokens, uint16_t asked) {
    if (asked < 2) return 1;
    if (codec == kv_codec::int8 && !v2_fits(group, n_elems, n_tokens)) return 1;
    return 2;
}

// group: v1 int8 elements per scale; v2 int8 kv_dim.
size_t payload_bytes(uint16_t version, kv_codec codec, size_t group, size_t raw_bytes, size_t n_tokens) {
    if (codec == kv_codec::fp16) return raw_bytes;
    const size_t n = raw_bytes / 2;
    if (version == 1) return n / group * sizeof(float) + n;
    const size_t n_layer = n / (2 * n_tokens * group);
    return n_layer * (group + n_tokens) * 2 * sizeof(uint16_t) + n;
}

// -- version 2 int8: asymmetric uint8 ranges ---------------------------------

struct range_q {
    uint16_t lo_h = 0, s_h = 0;  // stored
    double lo = 0, s = 0;        // their values
};

// The range of values in [lo, hi] (f16 values): lo exact, step s >= (hi - lo) / 255.
range_q make_range(float lo, float hi) {
    range_q r;
    r.lo_h = float_to_half(lo);
    r.lo = half_to_float(r.lo_h);
    const double span = std::max(0.0, double(hi) - r.lo);
    r.s_h = float_to_half(float(span / 255.0));
    // Round the step up so that (x - lo) / s <= 255 never clamps.
    while (double(half_to_float(r.s_h)) * 255.0 < span && r.s_h < 0x7bff) ++r.s_h;
    r.s = half_to_float(r.s_h);
    return r;
}

uint8_t quantize(float x, const range_q& r) {
    if (!(r.s > 0)) return 0;
    const double q = std::nearbyint((double(x) - r.lo) / r.s);
    if (q != q) return 0;  // a NaN element, or an infinite range: no UB converting NaN to an integer
    return uint8_t(std::clamp(q, 0.0, 255.0));
}

__attribute__((target("avx2,f16c"))) void f16_to_f32_avx2(const uint16_t* x, size_t n, float* y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
    for (; i < n; ++i) y[i] = half_to_float(x[i]);
}

void f16_to_f32(const uint16_t* x, size_t n, float* y) {
    if (has_f16c) return f16_to_f32_avx2(x, n, y);
    for (size_t i = 0; i < n; ++i) y[i] = half_to_float(x[i]);
}

// Encodes one page (n elements, f32) as version 2 into params (2 x u16 per
// range) and q.
void encode_v2(const float* x, size_t n, size_t n_tokens, size_t kv_dim, uint16_t* params, uint8_t* q) {
    const size_t T = n_tokens, k = kv_dim, per_layer = 2 * T * k;
    std::vector<float> lo(k), hi(k);
    std::vector<range_q> ranges(k);
    for (size_t l = 0; l * per_layer < n; ++l) {
        const float* xk = x + l * per_layer;
        const float* xv = xk + T * k;
        uint8_t* qk = q + l * per_layer;
        uint8_t* qv = qk + T * k;
        uint16_t* pl = params + l * (k + T) * 2;
        // K: one range per channel over the block's tokens.
        std::copy(xk, xk + k, lo.begin());
        std::copy(xk, xk + k, hi.begin());
        for (size_t t = 1; t < T; ++t)
            for (size_t c = 0; c < k; ++c) {
                lo[c] = std::min(lo[c], xk[t * k + c]);
                hi[c] = std::max(hi[c], xk[t * k + c]);
            }
        for (size_t c = 0; c < k; ++c) {
            ranges[c] = make_range(lo[c], hi[c]);
            pl[2 * c] = ranges[c].lo_h;
            pl[2 * c + 1] = ranges[c].s_h;
        }
        for (size_t t = 0; t < T; ++t)
            for (size_t c = 0; c < k; ++c) qk[t * k + c] = quantize(xk[t * k + c], ranges[c]);
        // V: one range per token row.
        for (size_t t = 0; t < T; ++t) {
            const float* row = xv + t * k;
            const auto [mn, mx] = std::minmax_element(row, row + k);
            const range_q r = make_range(*mn, *mx);
            pl[2 * (k + t)] = r.lo_h;
            pl[2 * (k + t) + 1] = r.s_h;
            for (size_t c = 0; c < k; ++c) qv[t * k + c] = quantize(row[c], r);
        }
    }
}

// One row of n: x'_i = lo_i + q_i * s_i (per_elem) or lo + q_i * s (lo[0], s[0]).
__attribute__((target("avx2,f16c,fma"))) void dequant_row_avx2(const uint8_t* q, size_t n, const float* lo,
                                                               const float* s, bool per_elem, uint16_t* out) {
    size_t i = 0;
    const __m256 blo = _mm256_set1_ps(lo[0]), bs = _mm256_set1_ps(s[0]);
    if (reinterpret_cast<uintptr_t>(out) % 32 == 0) {
        // 16 elements (32 bytes) per non-temporal store into the pool's aligned rows, as copy_to_page does.
        for (; i + 16 <= n; i += 16) {
            const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i));
            const __m256 v0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(raw));
            const __m256 v1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(raw, 8)));
            const __m256 lo0 = per_elem ? _mm256_loadu_ps(lo + i) : blo;
            const __m256 lo1 = per_elem ? _mm256_loadu_ps(lo + i + 8) : blo;
            const __m256 s0 = per_elem ? _mm256_loadu_ps(s + i) : bs;
            const __m256 s1 = per_elem ? _mm256_loadu_ps(s + i + 8) : bs;
            const __m128i h0 = _mm256_cvtps_ph(_mm256_fmadd_ps(v0, s0, lo0), _MM_FROUND_TO_NEAREST_INT);
            const __m128i h1 = _mm256_cvtps_ph(_mm256_fmadd_ps(v1, s1, lo1), _MM_FROUND_TO_NEAREST_INT);
            _mm256_stream_si256(reinterpret_cast<__m256i*>(out + i), _mm256_set_m128i(h1, h0));
        }
    }
    for (; i + 8 <= n; i += 8) {
        int64_t raw;
        std::memcpy(&raw, q + i, 8);
        const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw)));
        const __m256 vlo = per_elem ? _mm256_loadu_ps(lo + i) : blo;
        const __m256 vs = per_elem ? _mm256_loadu_ps(s + i) : bs;
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_fmadd_ps(v, vs, vlo), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; ++i) {
        const size_t j = per_elem ? i : 0;
        out[i] = float_to_half(std::fma(float(q[i]), s[j], lo[j]));
    }
}

void dequant_row_ref(const uint8_t* q, size_t n, const float* lo, const float* s, bool per_elem, uint16_t* out) {
    for (size_t i = 0; i < n; ++i) {
        const size_t j = per_elem ? i : 0;
        out[i] = float_to_half(std::fma(float(q[i]), s[j], lo[j]));  // q * s is exact: same as the AVX2 path
    }
}

void decode_v2(const uint16_t* params, const uint8_t* q, size_t n, size_t n_tokens, size_t kv_dim, uint16_t* x) {
    const size_t T = n_tokens, k = kv_dim, per_layer = 2 * T * k;
    auto row = has_f16c ? dequant_row_avx2 : dequant_row_ref;
    std::vector<float> klo(k), ks(k);
    for (size_t l = 0; l * per_layer < n; ++l) {
        const uint16_t* pl = params + l * (k + T) * 2;
        for (size_t c = 0; c < k; ++c) {
            klo[c] = half_to_float(pl[2 * c]);
            ks[c] = half_to_float(pl[2 * c + 1]);
        }
        const uint8_t* qk = q + l * per_layer;
        uint16_t* xk = x + l * per_layer;
        for (size_t t = 0; t < T; ++t) row(qk + t * k, k, klo.data(), ks.data(), true, xk + t * k);
        for (size_t t = 0; t < T; ++t) {
            const float vlo = half_to_float(pl[2 * (k + t)]), vs = half_to_float(pl[2 * (k + t) + 1]);
            row(qk + (T + t) * k, k, &vlo, &vs, false, xk + (T + t) * k);
        }
    }
}

template <class T>
void put(std::string& s, size_t off, T v) {
    std::memcpy(s.data() + off, &v, sizeof v);
}
template <class T>
T get(std::string_view s, size_t off) {
    T v;
    std::memcpy(&v, s.data() + off, sizeof v);
    return v;
}

uint32_t value_crc(const engine::block_hash& hash, std::string_view body) {
    return crc32c(body.data(), body.size(), crc32c(hash.bytes.data(), hash.bytes.size()));
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
    const auto* p = static_cast<const uint8_t*>(data);
    crc = ~crc;
    crc = has_sse42 ? crc32c_hw(p, n, crc) : crc32c_soft(p, n, crc);
    return ~crc;
}

size_t encoded_block_bytes(kv_codec codec, int32_t group, size_t raw_bytes, size_t n_tokens, uint16_t version) {
    const uint16_t ver = write_version(codec, group, raw_bytes / 2, n_tokens, version);
    const size_t g = ver == 2 && codec == kv_codec::int8 ? size_t(group) : effective_group(codec, group, raw_bytes / 2);
    return block_header_bytes + 4 * n_tokens + payload_bytes(ver, codec, g, raw_bytes, n_tokens) + 4;
}

std::string encode_block(kv_codec codec, int32_t group, const engine::block_hash& hash,
                         const engine::block_hash& parent, std::span<const engine::token_id> tokens,
                         std::span<const uint8_t> page, int64_t written_ms, uint16_t version) {
    const size_t n_elems = page.size() / 2;
    const uint16_t ver = write_version(codec, group, n_elems, tokens.size(), version);
    const size_t g = ver == 2 && codec == kv_codec::int8 ? size_t(group) : effective_group(codec, group, n_elems);
    const size_t pay = payload_bytes(ver, codec, g, page.size(), tokens.size());
    const size_t tok_off = block_header_bytes, pay_off = tok_off + 4 * tokens.size();
    std::string v(pay_off + pay + 4, '\0');
    std::memcpy(v.data(), "MNKV", 4);
    put<uint16_t>(v, 4, ver);
    put<uint8_t>(v, 6, uint8_t(codec));
    put<uint32_t>(v, 8, uint32_t(tokens.size()));
    put<uint32_t>(v, 12, uint32_t(g));
    put<uint64_t>(v, 16, uint64_t(page.size()));
    put<int64_t>(v, 24, written_ms);
    std::memcpy(v.data() + 32, parent.bytes.data(), 32);
    put<uint64_t>(v, 64, uint64_t(pay));
    if (!tokens.empty()) std::memcpy(v.data() + tok_off, tokens.data(), 4 * tokens.size());
    if (codec == kv_codec::fp16) {
        if (!page.empty()) std::memcpy(v.data() + pay_off, page.data(), page.size());
    } else if (ver == 2) {
        std::vector<uint16_t> x(n_elems);  // aligned copy of the page
        if (n_elems) std::memcpy(x.data(), page.data(), n_elems * 2);
        std::vector<float> xf(n_elems);
        f16_to_f32(x.data(), n_elems, xf.data());
        const size_t n_params = pay - n_elems;  // bytes
        std::vector<uint16_t> params(n_params / 2);
        encode_v2(xf.data(), n_elems, tokens.size(), g, params.data(),
                  reinterpret_cast<uint8_t*>(v.data() + pay_off + n_params));
        if (n_params) std::memcpy(v.data() + pay_off, params.data(), n_params);
    } else {
        std::vector<uint16_t> x(n_elems);  // aligned copy of the page
        if (n_elems) std::memcpy(x.data(), page.data(), n_elems * 2);
        std::vector<float> sc(n_elems / g);  // copied in after: the payload is not float-aligned
        auto* q = reinterpret_cast<int8_t*>(v.data() + pay_off + sc.size() * sizeof(float));
        if (has_f16c)
            encode_int8_avx2(x.data(), n_elems, g, sc.data(), q);
        else
            encode_int8_ref(x.data(), n_elems, g, sc.data(), q);
        if (!sc.empty()) std::memcpy(v.data() + pay_off, sc.data(), sc.size() * sizeof(float));
    }
    put<uint32_t>(v, v.size() - 4, value_crc(hash, std::string_view(v).substr(0, v.size() - 4)));
    return v;
}

namespace {

// Parses and checks value's header and sizes (not its checksum, not its tokens).
result<block_info> parse_header(std::string_view v) {
    if (v.size() < block_header_bytes + 4) return make_error(errc::corrupt, "kv block shorter than its header");
    if (std::memcmp(v.data(), "MNKV", 4) != 0) return make_error(errc::corrupt, "kv block: bad magic");
    const uint16_t ver = get<uint16_t>(v, 4);
    if (ver != 1 && ver != 2) return make_error(errc::corrupt, "kv block: unknown version " + std::to_string(ver));
    block_info info;
    info.version = ver;
    const uint8_t c = get<uint8_t>(v, 6);
    if (c != uint8_t(kv_codec::fp16) && c != uint8_t(kv_codec::int8))
        return make_error(errc::corrupt, "kv block: unknown codec " + std::to_string(c));
    info.codec = kv_codec(c);
    info.n_tokens = get<uint32_t>(v, 8);
    info.group = get<uint32_t>(v, 12);
    info.raw_bytes = get<uint64_t>(v, 16);
    info.written_ms = get<int64_t>(v, 24);
    std::memcpy(info.parent.bytes.data(), v.data() + 32, 32);
    const uint64_t pay = get<uint64_t>(v, 64);
    if (info.n_tokens > (1u << 20) || info.raw_bytes > (uint64_t(1) << 40) || (info.raw_bytes & 1))
        return make_error(errc::corrupt, "kv block: implausible sizes");
    if (info.codec == kv_codec::int8 && ver == 1 && (info.group == 0 || (info.raw_bytes / 2) % info.group))
        return make_error(errc::corrupt, "kv block: bad int8 group");
    if (info.codec == kv_codec::int8 && ver == 2 && !v2_fits(info.group, info.raw_bytes / 2, info.n_tokens))
        return make_error(errc::corrupt, "kv block: int8 kv_dim does not fit the page");
    if (info.codec == kv_codec::fp16 && info.group != 0) return make_error(errc::corrupt, "kv block: bad fp16 group");
    if (pay != payload_bytes(ver, info.codec, info.group, info.raw_bytes, info.n_tokens))
        return make_error(errc::corrupt, "kv block: payload size does not match the header");
    if (v.size() != block_header_bytes + 4 * uint64_t(info.n_tokens) + pay + 4)
        return make_error(errc::corrupt, "kv block: value size " + std::to_string(v.size()) +
                                             " does not match the header (truncated?)");
    return info;
}

status checksum_mismatch() { return make_error(errc::corrupt, "kv block: checksum mismatch"); }

void copy_tokens(std::string_view v, block_info& info) {
    info.tokens.resize(info.n_tokens);
    if (info.n_tokens) std::memcpy(info.tokens.data(), v.data() + block_header_bytes, 4 * size_t(info.n_tokens));
}

}  // namespace

result<block_info> inspect_block(const engine::block_hash& hash, std::string_view v) {
    auto info = parse_header(v);
    if (!info) return info.error();
    if (get<uint32_t>(v, v.size() - 4) != value_crc(hash, v.substr(0, v.size() - 4))) return checksum_mismatch();
    copy_tokens(v, *info);
    return info;
}

status decode_block(const engine::block_hash& hash, std::string_view v, std::span<uint8_t> out, block_info* info_out) {
    auto info = parse_header(v);
    if (!info) return info.error();
    if (out.size() != info->raw_bytes)
        return make_error(errc::invalid_argument, "kv block holds " + std::to_string(info->raw_bytes) +
                                                      " page bytes, the pool wants " + std::to_string(out.size()));
    const size_t pay_off = block_header_bytes + 4 * size_t(info->n_tokens);
    const uint32_t stored_crc = get<uint32_t>(v, v.size() - 4);
    if (info->codec == kv_codec::fp16) {
        // One pass: checksum a chunk while it is in cache, then copy it out. out is written before the
        // checksum is known; on a mismatch its contents are unspecified (the caller drops the page).
        constexpr size_t chunk = size_t(32) << 10;
        uint32_t crc = crc32c(v.data(), pay_off, crc32c(hash.bytes.data(), hash.bytes.size()));
        for (size_t off = 0; off < out.size(); off += chunk) {
            const size_t n = std::min(chunk, out.size() - off);
            crc = crc32c(v.data() + pay_off + off, n, crc);
            copy_to_page(out.data() + off, reinterpret_cast<const uint8_t*>(v.data()) + pay_off + off, n);
        }
        _mm_sfence();
        if (crc != stored_crc) return checksum_mismatch();
    } else {
        if (stored_crc != value_crc(hash, v.substr(0, v.size() - 4))) return checksum_mismatch();
        // Decode straight into out (the pool's pages are aligned); through a copy only when it is not.
        const size_t n = out.size() / 2;
        std::vector<uint16_t> x;
        uint16_t* dst = reinterpret_cast<uint16_t*>(out.data());
        if (reinterpret_cast<uintptr_t>(out.data()) % alignof(uint16_t) != 0) {
            x.resize(n);
            dst = x.data();
        }
        if (info->version == 2) {
            const size_t n_params = payload_bytes(2, kv_codec::int8, info->group, out.size(), info->n_tokens) - n;
            std::vector<uint16_t> params(n_params / 2);
            if (n_params) std::memcpy(params.data(), v.data() + pay_off, n_params);
            const auto* q = reinterpret_cast<const uint8_t*>(v.data() + pay_off + n_params);
            decode_v2(params.data(), q, n, info->n_tokens, info->group, dst);
        } else {
            const size_t g = info->group;
            std::vector<float> sc(n / g);
            if (!sc.empty()) std::memcpy(sc.data(), v.data() + pay_off, sc.size() * sizeof(float));  // empty page
            const auto* q = reinterpret_cast<const int8_t*>(v.data() + pay_off + sc.size() * sizeof(float));
            if (has_f16c)
                decode_int8_avx2(sc.data(), q, n, g, dst);
            else
                decode_int8_ref(sc.data(), q, n, g, dst);
        }
        _mm_sfence();  // after the non-temporal stores of dequant_row_avx2
        if (dst != reinterpret_cast<uint16_t*>(out.data()) && n) std::memcpy(out.data(), dst, out.size());
    }
    if (info_out) {
        copy_tokens(v, *info);
        *info_out = std::move(*info);
    }
    return ok_status();
}

std::string encode_summary(const engine::block_hash& hash, std::span<const uint8_t> payload) {
    std::string v(16 + payload.size(), '\0');
    const uint32_t n = uint32_t(payload.size());
    const uint16_t version = 1, reserved = 0;
    const uint32_t crc = crc32c(payload.data(), payload.size(), crc32c(hash.bytes.data(), hash.bytes.size()));
    std::memcpy(v.data(), "MSUM", 4);
    std::memcpy(v.data() + 4, &version, 2);
    std::memcpy(v.data() + 6, &reserved, 2);
    std::memcpy(v.data() + 8, &n, 4);
    std::memcpy(v.data() + 12, &crc, 4);
    if (!payload.empty()) std::memcpy(v.data() + 16, payload.data(), payload.size());
    return v;
}

bool decode_summary(const engine::block_hash& hash, std::string_view v, std::span<uint8_t> out) {
    if (v.size() < 16 || std::memcmp(v.data(), "MSUM", 4) != 0) return false;
    uint16_t version = 0;
    uint32_t n = 0, crc = 0;
    std::memcpy(&version, v.data() + 4, 2);
    std::memcpy(&n, v.data() + 8, 4);
    std::memcpy(&crc, v.data() + 12, 4);
    if (version != 1 || n != out.size() || v.size() != 16 + size_t(n)) return false;
    const auto* payload = reinterpret_cast<const uint8_t*>(v.data() + 16);
    if (crc32c(payload, n, crc32c(hash.bytes.data(), hash.bytes.size())) != crc) return false;
    if (n) std::memcpy(out.data(), payload, n);
    return true;
}

}  // namespace mnemos::memory
