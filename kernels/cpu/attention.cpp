#include "kernels/cpu/attention.h"

#include <cmath>
#include <vector>

namespace mnemos::kernels {

// kernels/cpu/attention_avx2.cpp; false when the shape is not supported there.
bool attention_group_avx2(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                          int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse);

void attention_group(isa level, const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                     int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse) {
    const int g = s.n_head / s.n_head_kv;
    if (level != isa::scalar && isa_supported(isa::avx2) &&
        attention_group_avx2(s, kv, pages, layer, n_kv, q, kh, out, scratch, lse))
        return;
    for (int j = 0; j < g; ++j)
        attention_head(isa::scalar, s, kv, pages, layer, n_kv, q + j * s.head_dim, kh * g + j, out + j * s.head_dim,
                       scratch, lse ? lse + j : nullptr);
}

void attention_head(isa level, const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                    int64_t n_kv, const float* q, int h, float* out, float* scratch, float* lse) {
    const int hd = s.head_dim;
    const int kv_h = h / (s.n_head / s.n_head_kv);
    const int64_t off = static_cast<int64_t>(kv_h) * hd;
    float qr[1024];
    for (int i = 0; i < hd; ++i) qr[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
    q = qr;
    float max_s = -INFINITY;
    for (int64_t t = 0; t < n_kv; ++t) {
        const float v = dot_f16_f32(level, hd, kv.k_row(pages, layer, t) + off, q) * s.scale;
        scratch[t] = v;
        max_s = v > max_s ? v : max_s;
    }
    float sum = 0.0f;
    for (int64_t t = 0; t < n_kv; ++t) {
        const float e = std::exp(scratch[t] - max_s);
        scratch[t] = e;
        sum += e;
    }
    for (int i = 0; i < hd; ++i) out[i] = 0.0f;
    if (lse) *lse = max_s + std::log(sum);
    const float inv = 1.0f / sum;
    for (int64_t t = 0; t < n_kv; ++t)
        axpy_f16(level, hd, fp16_to_fp32(fp32_to_fp16(scratch[t] * inv)), kv.v_row(pages, layer, t) + off, out);
}

void attention_head_reference(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                              int64_t n_kv, const float* q, int h, float* out) {
    const int hd = s.head_dim;
    const int kv_h = h / (s.n_head / s.n_head_kv);
    const int64_t off = static_cast<int64_t>(kv_h) * hd;
    std::vector<double> w(static_cast<size_t>(n_kv));
    double max_s = -INFINITY;
    for (int64_t t = 0; t < n_kv; ++t) {
        const uint16_t* k = kv.k_row(pages, layer, t) + off;
        double d = 0;
        for (int i = 0; i < hd; ++i) d += static_cast<double>(fp16_to_fp32(k[i])) * q[i];
        w[t] = d * s.scale;
        if (w[t] > max_s) max_s = w[t];
    }
    double sum = 0;
    for (auto& x : w) sum += (x = std::exp(x - max_s));
    for (int i = 0; i < hd; ++i) {
        double acc = 0;
        for (int64_t t = 0; t < n_kv; ++t) acc += w[t] * fp16_to_fp32(kv.v_row(pages, layer, t)[off + i]);
        out[i] = static_cast<float>(acc / sum);
    }
}

}  // namespace mnemos::kernels
