// Reference dot products of one weight row with one activation row. Integer
// products are summed exactly inside a block; blocks are summed in float.
#include "kernels/cpu/internal.h"

namespace mnemos::kernels {

namespace {

float dot_f32(int64_t n, const float* w, const float* x) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += w[i] * x[i];
    return s;
}

float dot_f16(int64_t n, const uint16_t* w, const float* x) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += fp16_to_fp32(w[i]) * x[i];
    return s;
}

float dot_bf16(int64_t n, const uint16_t* w, const float* x) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += bf16_to_fp32(w[i]) * x[i];
    return s;
}

float dot_q8_0(int64_t n, const block_q8_0* w, const block_q8_0* x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / qk8_0; ++b) {
        int32_t isum = 0;
        for (int j = 0; j < qk8_0; ++j) isum += w[b].qs[j] * x[b].qs[j];
        s += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum);
    }
    return s;
}

float dot_q4_0(int64_t n, const block_q4_0* w, const block_q8_0* x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / qk4_0; ++b) {
        int32_t isum = 0;
        for (int j = 0; j < qk4_0 / 2; ++j) {
            isum += ((w[b].qs[j] & 0x0f) - 8) * x[b].qs[j];
            isum += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        s += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum);
    }
    return s;
}

float dot_q4_k(int64_t n, const block_q4_k* w, const block_q8_k* x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / qk_k; ++b) {
        uint8_t sc[8], mn[8];
        unpack_q4_k_scales(w[b].scales, sc, mn);
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; ++c) {
            int32_t lo = 0, hi = 0;
            for (int l = 0; l < 32; ++l) {
                lo += (w[b].qs[32 * c + l] & 0x0f) * x[b].qs[64 * c + l];
                hi += (w[b].qs[32 * c + l] >> 4) * x[b].qs[64 * c + 32 + l];
            }
            sumi += sc[2 * c] * lo + sc[2 * c + 1] * hi;
        }
        for (int j = 0; j < 8; ++j) summ += mn[j] * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        const float d = fp16_to_fp32(w[b].d) * x[b].d;
        const float dmin = fp16_to_fp32(w[b].dmin) * x[b].d;
        s += d * static_cast<float>(sumi) - dmin * static_cast<float>(summ);
    }
    return s;
}

float dot_q6_k(int64_t n, const block_q6_k* w, const block_q8_k* x) {
    float s = 0.0f;
    for (int64_t b = 0; b < n / qk_k; ++b) {
        int32_t sumi = 0;
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = w[b].ql + 64 * h;
            const uint8_t* qh = w[b].qh + 32 * h;
            const int8_t* q8 = x[b].qs + 128 * h;
            const int8_t* sc = w[b].scales + 8 * h;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                sumi += sc[is] * q1 * q8[l] + sc[is + 2] * q2 * q8[l + 32] + sc[is + 4] * q3 * q8[l + 64] +
                        sc[is + 6] * q4 * q8[l + 96];
            }
        }
        s += fp16_to_fp32(w[b].d) * x[b].d * static_cast<float>(sumi);
    }
    return s;
}

}  // namespace

float vec_dot_ref(ggml_type wt, int64_t n, const void* w, const void* x) {
    switch (wt) {
        case ggml_type::f32:
            return dot_f32(n, static_cast<const float*>(w), static_cast<const float*>(x));
        case ggml_type::f16:
            return dot_f16(n, static_cast<const uint16_t*>(w), static_cast<const float*>(x));
        case ggml_type::bf16:
            return dot_bf16(n, static_cast<const uint16_t*>(w), static_cast<const float*>(x));
        case ggml_type::q8_0:
            return dot_q8_0(n, static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(x));
        case ggml_type::q4_0:
            return dot_q4_0(n, static_cast<const block_q4_0*>(w), static_cast<const block_q8_0*>(x));
        case ggml_type::q4_k:
            return dot_q4_k(n, static_cast<const block_q4_k*>(w), static_cast<const block_q8_k*>(x));
        case ggml_type::q6_k:
            return dot_q6_k(n, static_cast<const block_q6_k*>(w), static_cast<const block_q8_k*>(x));
        default:
            return 0.0f;  // unsupported weight type
    }
}

}  // namespace mnemos::kernels
