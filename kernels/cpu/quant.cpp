// Reference quantizers and dequantizers for the GGML block formats.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

// Round to nearest, ties to even (the default FP environment).
inline int nearest_int(float v) { return static_cast<int>(std::nearbyint(v)); }

// ---------------------------------------------------------------------------
// dequantize
// ---------------------------------------------------------------------------

void dequantize_q8_0(const block_q8_0* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n / qk8_0; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < qk8_0; ++j) y[i * qk8_0 + j] = d * static_cast<float>(b[i].qs[j]);
    }
}

void dequantize_q4_0(const block_q4_0* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n / qk4_0; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < qk4_0 / 2; ++j) {
            y[i * qk4_0 + j] = d * static_cast<float>((b[i].qs[j] & 0x0f) - 8);
            y[i * qk4_0 + j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
        }
    }
}

void dequantize_q8_k(const block_q8_k* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i)
        for (int j = 0; j < qk_k; ++j) y[i * qk_k + j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

void dequantize_q4_k(const block_q4_k* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const float dmin = fp16_to_fp32(b[i].dmin);
        uint8_t sc[8], mn[8];
        unpack_q4_k_scales(b[i].scales, sc, mn);
        const uint8_t* q = b[i].qs;
        float* out = y + i * qk_k;
        for (int c = 0; c < 4; ++c) {  // chunks of 64 elements, 32 bytes of qs
            const float d1 = d * sc[2 * c], m1 = dmin * mn[2 * c];
            const float d2 = d * sc[2 * c + 1], m2 = dmin * mn[2 * c + 1];
            for (int l = 0; l < 32; ++l) out[64 * c + l] = d1 * static_cast<float>(q[32 * c + l] & 0x0f) - m1;
            for (int l = 0; l < 32; ++l) out[64 * c + 32 + l] = d2 * static_cast<float>(q[32 * c + l] >> 4) - m2;
        }
    }
}

// The 6-bit value (0..63) of element e (0..255) of a q6_k block.
inline int q6_k_value(const block_q6_k& b, int e) {
    const int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
    const uint8_t ql = b.ql[64 * half + l + 32 * (quarter & 1)];
    const int lo = quarter < 2 ? (ql & 0x0f) : (ql >> 4);
    const int hi = (b.qh[32 * half + l] >> (2 * quarter)) & 3;
    return lo | (hi << 4);
}

void dequantize_q6_k(const block_q6_k* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        for (int e = 0; e < qk_k; ++e)
            y[i * qk_k + e] =
                d * static_cast<float>(b[i].scales[e / 16]) * static_cast<float>(q6_k_value(b[i], e) - 32);
    }
}

// ---------------------------------------------------------------------------
// quantize
// ---------------------------------------------------------------------------

void quantize_q8_0(const float* x, block_q8_0* b, int64_t n) {
    for (int64_t i = 0; i < n / qk8_0; ++i) {
        const float* xb = x + i * qk8_0;
        float amax = 0.0f;
        for (int j = 0; j < qk8_0; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk8_0; ++j) b[i].qs[j] = static_cast<int8_t>(nearest_int(xb[j] * id));
    }
}

void quantize_q4_0(const float* x, block_q4_0* b, int64_t n) {
    for (int64_t i = 0; i < n / qk4_0; ++i) {
        const float* xb = x + i * qk4_0;
        float amax = 0.0f, vmax = 0.0f;  // vmax: the value with the largest magnitude, signed
        for (int j = 0; j < qk4_0; ++j) {
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                vmax = xb[j];
            }
        }
        const float d = vmax / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = fp32_to_fp16(d);
        for (int j = 0; j < qk4_0 / 2; ++j) {
            const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j] * id + 8.5f)));
            const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(xb[j + 16] * id + 8.5f)));
            b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

void quantize_q8_k(const float* x, block_q8_k* b, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const float* xb = x + i * qk_k;
        float amax = 0.0f, vmax = 0.0f;
        for (int j = 0; j < qk_k; ++j) {
            if (std::fabs(xb[j]) > amax) {
                amax = std::fabs(xb[j]);
                vmax = xb[j];
            }
        }
        if (amax == 0.0f) {
            std::memset(&b[i], 0, sizeof(block_q8_k));
            continue;
        }
        const float iscale = -127.0f / vmax;
        for (int j = 0; j < qk_k; ++j) b[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * xb[j])));
        for (int g = 0; g < qk_k / 16; ++g) {
            int s = 0;
            for (int j = 0; j < 16; ++j) s += b[i].qs[16 * g + j];
            b[i].bsums[g] = static_cast<int16_t>(s);
        }
        b[i].d = 1.0f / iscale;
    }
}

void quantize_q4_k(const float* x, block_q4_k* b, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const float* xb = x + i * qk_k;
        // Per sub-block of 32: x ~= scale * q - mn, q in 0..15, mn >= 0.
        float scale[8], mn[8];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 8; ++s) {
            float lo = xb[32 * s], hi = xb[32 * s];
            for (int j = 1; j < 32; ++j) {
                lo = std::min(lo, xb[32 * s + j]);
                hi = std::max(hi, xb[32 * s + j]);
            }
            lo = std::min(lo, 0.0f);
            scale[s] = (hi - lo) / 15.0f;
            mn[s] = -lo;
            max_scale = std::max(max_scale, scale[s]);
            max_min = std::max(max_min, mn[s]);
        }
        const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
        const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
        uint8_t ls[8], lm[8];
        for (int s = 0; s < 8; ++s) {
            ls[s] = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scale[s])));
            lm[s] = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mn[s])));
        }
        // Pack the 6-bit scales and mins (inverse of unpack_q4_k_scales).
        for (int j = 0; j < 4; ++j) {
            b[i].scales[j] = static_cast<uint8_t>((ls[j] & 63) | ((ls[j + 4] >> 4) << 6));
            b[i].scales[j + 4] = static_cast<uint8_t>((lm[j] & 63) | ((lm[j + 4] >> 4) << 6));
            b[i].scales[j + 8] = static_cast<uint8_t>((ls[j + 4] & 0x0f) | ((lm[j + 4] & 0x0f) << 4));
        }
        b[i].d = fp32_to_fp16(max_scale / 63.0f);
        b[i].dmin = fp32_to_fp16(max_min / 63.0f);
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        uint8_t q[qk_k];
        for (int s = 0; s < 8; ++s) {
            const float dd = d * ls[s], dm = dmin * lm[s];
            for (int j = 0; j < 32; ++j) {
                const int v = dd != 0.0f ? nearest_int((xb[32 * s + j] + dm) / dd) : 0;
                q[32 * s + j] = static_cast<uint8_t>(std::clamp(v, 0, 15));
            }
        }
        for (int c = 0; c < 4; ++c)
            for (int l = 0; l < 32; ++l)
                b[i].qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
}

void quantize_q6_k(const float* x, block_q6_k* b, int64_t n) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const float* xb = x + i * qk_k;
        // Per sub-block of 16: x ~= scale * q, q in -32..31 (scale signed, the largest value maps to -32).
        float scale[16];
        float max_abs_scale = 0.0f, max_scale = 0.0f;
        for (int s = 0; s < 16; ++s) {
            float amax = 0.0f, vmax = 0.0f;
            for (int j = 0; j < 16; ++j) {
                if (std::fabs(xb[16 * s + j]) > amax) {
                    amax = std::fabs(xb[16 * s + j]);
                    vmax = xb[16 * s + j];
                }
            }
            scale[s] = vmax / -32.0f;
            if (std::fabs(scale[s]) > max_abs_scale) {
                max_abs_scale = std::fabs(scale[s]);
                max_scale = scale[s];
            }
        }
        uint8_t q[qk_k];
        if (max_abs_scale == 0.0f) {
            std::memset(&b[i], 0, sizeof(block_q6_k));
            std::memset(q, 32, sizeof(q));
        } else {
            const float iscale = -128.0f / max_scale;
            b[i].d = fp32_to_fp16(1.0f / iscale);
            const float d = fp16_to_fp32(b[i].d);
            for (int s = 0; s < 16; ++s) {
                b[i].scales[s] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scale[s])));
                const float dd = d * b[i].scales[s];
                for (int j = 0; j < 16; ++j) {
                    const int v = dd != 0.0f ? nearest_int(xb[16 * s + j] / dd) : 0;
                    q[16 * s + j] = static_cast<uint8_t>(std::clamp(v, -32, 31) + 32);
                }
            }
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* qq = q + 128 * h;
            for (int l = 0; l < 32; ++l) {
                b[i].ql[64 * h + l] = static_cast<uint8_t>((qq[l] & 0x0f) | ((qq[l + 64] & 0x0f) << 4));
                b[i].ql[64 * h + l + 32] = static_cast<uint8_t>((qq[l + 32] & 0x0f) | ((qq[l + 96] & 0x0f) << 4));
                b[i].qh[32 * h + l] = static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                                           ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
    }
}

}  // namespace

void dequantize_row(ggml_type t, const void* src, float* dst, int64_t n) {
    switch (t) {
        case ggml_type::f32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case ggml_type::f16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
            return;
        }
        case ggml_type::bf16: {
            const auto* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
            return;
        }
        case ggml_type::q8_0:
            dequantize_q8_0(static_cast<const block_q8_0*>(src), dst, n);
            return;
        case ggml_type::q4_0:
            dequantize_q4_0(static_cast<const block_q4_0*>(src), dst, n);
            return;
        case ggml_type::q8_k:
            dequantize_q8_k(static_cast<const block_q8_k*>(src), dst, n);
            return;
        case ggml_type::q4_k:
            dequantize_q4_k(static_cast<const block_q4_k*>(src), dst, n);
            return;
        case ggml_type::q6_k:
            dequantize_q6_k(static_cast<const block_q6_k*>(src), dst, n);
            return;
        default:
            std::memset(dst, 0, static_cast<size_t>(n) * 4);
            return;  // unsupported type
    }
}

void quantize_row(ggml_type t, const float* src, void* dst, int64_t n) {
    switch (t) {
        case ggml_type::f32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case ggml_type::f16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
            return;
        }
        case ggml_type::bf16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
            return;
        }
        case ggml_type::q8_0:
            quantize_q8_0(src, static_cast<block_q8_0*>(dst), n);
            return;
        case ggml_type::q4_0:
            quantize_q4_0(src, static_cast<block_q4_0*>(dst), n);
            return;
        case ggml_type::q8_k:
            quantize_q8_k(src, static_cast<block_q8_k*>(dst), n);
            return;
        case ggml_type::q4_k:
            quantize_q4_k(src, static_cast<block_q4_k*>(dst), n);
            return;
        case ggml_type::q6_k:
            quantize_q6_k(src, static_cast<block_q6_k*>(dst), n);
            return;
        default:
            return;  // unsupported type: nothing written
    }
}

ggml_type vec_dot_type(ggml_type w) {
    switch (w) {
        case ggml_type::q4_0:
        case ggml_type::q8_0:
            return ggml_type::q8_0;
        case ggml_type::q4_k:
        case ggml_type::q6_k:
            return ggml_type::q8_k;
        default:
            return ggml_type::f32;
    }
}

}  // namespace mnemos::kernels
