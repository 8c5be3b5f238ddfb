#pragma once
// Causal attention over the paged KV pool (CPU). The pool layout is the one
// of engine/kv_cache.h: f16 entries; page p of layer l holds
//   K [page_size, kv_dim] at base + p*page_stride + l*layer_stride
//   V [page_size, kv_dim] at that + v_offset
// kv_dim = n_head_kv * head_dim. The view is plain data so that a CUDA
// kernel can read the same pages.
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace mnemos::kernels {

struct paged_kv_view {
    const uint16_t* base = nullptr;  // the pool's first element
    int64_t page_stride = 0;         // elements between consecutive pages
    int64_t layer_stride = 0;        // elements between layers inside a page
    int64_t v_offset = 0;            // V relative to K inside a layer
    int32_t page_size = 16;          // tokens per page
    int32_t kv_dim = 0;              // n_head_kv * head_dim

    const uint16_t* k_row(const int32_t* pages, int layer, int64_t pos) const {
        return base + pages[pos / page_size] * page_stride + layer * layer_stride + (pos % page_size) * kv_dim;
    }
    const uint16_t* v_row(const int32_t* pages, int layer, int64_t pos) const {
        return k_row(pages, layer, pos) + v_offset;
    }
};

struct attention_shape {
    int32_t n_head = 0;     // query heads
    int32_t n_head_kv = 0;  // key/value heads (GQA: n_head % n_head_kv == 0)
    int32_t head_dim = 0;
    float scale = 1.0f;  // usually 1/sqrt(head_dim)
};

// One query row: out [n_head, head_dim] = softmax(q k^T * scale) v over the
// keys at positions [0, n_kv) of one sequence (page table `pages`), for one
// head `h`. q [head_dim]. scratch holds n_kv floats.
// lse, when not null, receives log(sum_t exp(score_t)) of the head (to merge attentions over disjoint runs).
void attention_head(isa level, const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                    int64_t n_kv, const float* q, int h, float* out, float* scratch, float* lse = nullptr);

// All query heads of one KV head at once (GQA group): q [g, head_dim] for the
// g = n_head / n_head_kv heads kh*g .. kh*g+g-1, out [g, head_dim]. Each K and
// V row is converted once for the whole group. Numerics follow the common
// f16-KV engines: q and the softmax weights are rounded to f16 before their
// products with K and V. scratch holds g * n_kv floats.
// lse [g], when not null, receives each head's log(sum_t exp(score_t)).
void attention_group(isa level, const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                     int64_t n_kv, const float* q, int kh, float* out, float* scratch, float* lse = nullptr);

// ---------------------------------------------------------------------------
// Sparse attention: a softmax over the union of a few runs of positions
// ---------------------------------------------------------------------------

// A run of consecutive positions [first, first + n) of one sequence's page
// table, attended with its own query group. Sparse attention re-positions
// runs (sinks, selected pages, the recent window) by rotating the query of
// each run instead of its keys, so every run carries its own query.
struct attention_segment {
    const int32_t* pages = nullptr;  // the sequence's page table (position i in pages[i / page_size])
    int64_t first = 0;               // first position of the run
    int64_t n = 0;                   // positions in the run (>= 0)
    const float* q = nullptr;        // [g, head_dim]: the group's queries as this run sees them
};

// out [g, head_dim] = softmax over every position of every segment of
// (q_seg . k * scale) times v, for the GQA group of KV head kh (g = n_head /
// n_head_kv query heads), one softmax across all segments. Numerics as
// attention_group: q and the softmax weights are rounded to f16. With one
// segment covering [0, n_kv) it equals attention_group(). When every segment
// starts on a page boundary each one is attended by attention_group() and the
// results merged by their log-sum-exp (the softmax weights are then rounded
// to f16 per segment); otherwise one softmax is taken over all positions.
// scratch holds g * (the sum of the segments' n) + 2 * g * (head_dim + 1)
// floats.
void attention_group_segments(isa level, const attention_shape& s, const paged_kv_view& kv,
                              const attention_segment* segs, int n_segs, int layer, int kh, float* out, float* scratch);
// The one-softmax form of attention_group_segments for any segments: the reference the merged form is
// tested against (scratch: the sum of the segments' n floats).
void attention_group_segments_one_softmax(isa level, const attention_shape& s, const paged_kv_view& kv,
                                          const attention_segment* segs, int n_segs, int layer, int kh, float* out,
                                          float* scratch);

// Reference in float: same contract, scalar and straightforward (tests).
void attention_head_reference(const attention_shape& s, const paged_kv_view& kv, const int32_t* pages, int layer,
                              int64_t n_kv, const float* q, int h, float* out);

}  // namespace mnemos::kernels
