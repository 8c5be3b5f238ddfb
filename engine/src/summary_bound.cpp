#include "engine/src/summary_bound.h"

#include <algorithm>
#include <cmath>

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

}  // namespace

float summary_bound(const float* summary, const float* split, int g, int head_dim) {
    float best = -INFINITY;
    for (int j = 0; j < g; ++j) best = std::max(best, dot16(split + int64_t(j) * 2 * head_dim, summary, 2 * head_dim));
    return best;
}

}  // namespace mnemos::engine
