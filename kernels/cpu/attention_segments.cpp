// Sparse attention over segments of the paged KV pool (see attention.h).
#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention.h"

namespace mnemos::kernels {

namespace {

// Scores of one query head over every segment into scores[]; returns their maximum.
float segment_scores(isa level, const attention_shape& s, const paged_kv_view& kv, const attention_segment* segs,
                     int n_segs, int layer, int64_t off, int j, float* scores) {
    const int hd = s.head_dim;
    float qr[1024];
    float max_s = -INFINITY;
    int64_t t_out = 0;
    for (int si = 0; si < n_segs; ++si) {
        const attention_segment& sg = segs[si];
        const float* q = sg.q + static_cast<int64_t>(j) * hd;
        for (int i = 0; i < hd; ++i) qr[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
        for (int64_t t = sg.first; t < sg.first + sg.n; ++t, ++t_out) {
            const float v = dot_f16_f32(level, hd, kv.k_row(sg.pages, layer, t) + off, qr) * s.scale;
            scores[t_out] = v;
            max_s = v > max_s ? v : max_s;
        }
    }
    return max_s;
}

}  // namespace

void attention_group_segments_one_softmax(isa level, const attention_shape& s, const paged_kv_view& kv,
                                          const attention_segment* segs, int n_segs, int layer, int kh, float* out,
                                          float* scratch) {
    const int hd = s.head_dim;
    const int g = s.n_head / s.n_head_kv;
    const int64_t off = static_cast<int64_t>(kh) * hd;
    for (int j = 0; j < g; ++j) {
        float* o = out + static_cast<int64_t>(j) * hd;
        for (int i = 0; i < hd; ++i) o[i] = 0.0f;
        const float max_s = segment_scores(level, s, kv, segs, n_segs, layer, off, j, scratch);
        if (max_s == -INFINITY) continue;  // no position at all
        int64_t n_all = 0;
        for (int si = 0; si < n_segs; ++si) n_all += segs[si].n;
        float sum = 0.0f;
        for (int64_t t = 0; t < n_all; ++t) {
            const float e = std::exp(scratch[t] - max_s);
            scratch[t] = e;
            sum += e;
        }
        const float inv = 1.0f / sum;
        int64_t t_in = 0;
        for (int si = 0; si < n_segs; ++si)
            for (int64_t t = segs[si].first; t < segs[si].first + segs[si].n; ++t, ++t_in)
                axpy_f16(level, hd, fp16_to_fp32(fp32_to_fp16(scratch[t_in] * inv)),
                         kv.v_row(segs[si].pages, layer, t) + off, o);
    }
}

void attention_group_segments(isa level, const attention_shape& s, const paged_kv_view& kv,
                              const attention_segment* segs, int n_segs, int layer, int kh, float* out,
                              float* scratch) {
    for (int si = 0; si < n_segs; ++si)
        if (segs[si].first % kv.page_size != 0)
            return attention_group_segments_one_softmax(level, s, kv, segs, n_segs, layer, kh, out, scratch);
    const int hd = s.head_dim;
    const int g = s.n_head / s.n_head_kv;
    const int64_t gd = int64_t(g) * hd;
    float* part = scratch;      // [g, hd] one segment's output
    float* lse = part + gd;     // [g]
    float* run_lse = lse + g;   // [g] the merged log-sum-exp so far
    float* work = run_lse + g;  // attention_group's scratch
    bool first = true;
    for (int si = 0; si < n_segs; ++si) {
        const attention_segment& sg = segs[si];
        if (sg.n <= 0) continue;
        attention_group(level, s, kv, sg.pages + sg.first / kv.page_size, layer, sg.n, sg.q, kh, first ? out : part,
                        work, first ? run_lse : lse);
        if (first) {
            first = false;
            continue;
        }
        // out = (e^run out + e^lse part) / (e^run + e^lse), per head.
        for (int j = 0; j < g; ++j) {
            const float m = std::max(run_lse[j], lse[j]);
            const float a = std::exp(run_lse[j] - m), b = std::exp(lse[j] - m);
            const float inv = 1.0f / (a + b);
            float* o = out + int64_t(j) * hd;
            const float* p = part + int64_t(j) * hd;
            for (int i = 0; i < hd; ++i) o[i] = (a * o[i] + b * p[i]) * inv;
            run_lse[j] = m + std::log(a + b);
        }
    }
    if (first)
        for (int64_t i = 0; i < gd; ++i) out[i] = 0.0f;
}

}  // namespace mnemos::kernels
