#pragma once
// Sparse attention for one forward step (see engine/attention.h): the plan
// of a sequence (sinks, window, how many pages to select), the per-page key
// summaries it selects from, the selection per layer (shared by its KV heads, or per KV head), and the
// attention of one query row over sinks + selected pages + window.
//
// Positions: in the step's virtual layout the sinks keep their positions
// [0, S), the k selected pages follow them in history order at S, S + page,
// ..., and the window comes right after at S + k * page; the queries sit at
// the window's end. The window keeps its relative distances, so its keys are
// read with the query as rotated at its real position; the sinks and each
// selected page are read with the query turned by that run's delta
// (real - virtual position of its keys minus the window's shift), which
// equals re-rotating the keys exactly.
//
// Summaries: per full page, layer and KV head the per-channel minimum and
// maximum of the page's keys with RoPE undone (Quest's bound on q . k, over
// position-free keys). A page is scored with the query turned to a nominal
// distance (window + half the selection), i.e. as it would be seen once
// selected: sum_i max(q_i * min_i, q_i * max_i), the maximum over the group's
// query heads; for a prefill chunk the queries of its rows are summed. Groups
// of 16 and of 256 pages carry the same bound over their pages, so the top k
// is found by a best-first search down that tree (exact: pages come out in
// descending score); at a million tokens it starts from 256 nodes instead of
// 65536 pages. Where the bounds are flat (nothing stands out, every group a
// hair above its pages) an exact search would score the whole history, so it
// turns deepest-first after k_search_budget scores (engine/src/summary_search.h):
// a step costs the budget, not the history, and a page whose bound stands out
// is still found first.
#include <cstdint>
#include <vector>

#include "engine/attention.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/src/rope_rotation.h"
#include "engine/src/summary_search.h"
#include "kernels/cpu/attention.h"

namespace mnemos::engine {

class sparse_attention {
  public:
    // options: as configured; they are rounded to pages and shrunk to fit the model's trained context
    // (effective() says what is used). n_ctx: the full-attention window of automatic mode.
    sparse_attention(const hparams& hp, const attention_options& options, int32_t page_size, int32_t n_ctx,
                     const rope_rotation& rope);

    const attention_options& effective() const { return opt_; }
    // Whether a sequence that will hold `end` tokens after this step attends sparsely.
    bool engages(int64_t end) const;
    // Most tokens a prefill chunk of a sparse sequence may have.
    int32_t max_chunk() const { return opt_.n_window / 2; }

    struct plan {
        bool active = false;
        int32_t n_sink_pages = 0;
        int32_t first_window_page = 0;      // pages [n_sink_pages, first_window_page) are candidates
        int32_t n_selected = 0;             // pages selected per layer and KV head
        int64_t shift = 0;                  // real minus virtual position of the window
        std::vector<int32_t> selected;      // [n_head_kv][n_selected] sequence page numbers, ascending (current layer)
        std::vector<float> angles;          // [n_head_kv][1 + n_selected][2 * n_pairs]: sinks, then each selected page
        std::vector<int32_t> wanted;        // scratch: this layer's selected pages, to bring back when parked
        std::vector<float> qs, turned, cs;  // scratch of select(), reused by every layer
        std::vector<float> split;           // scratch of select(): qs split for summary_bound()
        std::vector<std::pair<float, int32_t>> best;  // scratch of select(): the layer's top pages
        std::vector<summary_search_node> heap;        // scratch of select(): the search's frontier
    };
    // The plan of seq for a step that adds n_new tokens (inactive when full attention applies).
    plan make_plan(const kv_sequence& seq, int64_t n_new) const;
    // The same into p, reusing its buffers.
    void make_plan(const kv_sequence& seq, int64_t n_new, plan& p) const;
    // Computes the summaries of seq's pages [seq.n_summarized, n_pages) from the pool (pages resident) and
    // persists them to the pool's store, if any.
    void summarize(kv_sequence& seq, int32_t n_pages, const kv_cache& kv) const;
    // Selects the pages of layer il for every KV head (p.wanted: those of them that are parked).
    // q: the item's rows [n_rows, q_dim], rotated at pos[r].
    void select(plan& p, const kv_sequence& seq, int il, const float* q, const int64_t* pos, int64_t n_rows) const;
    // Parks seq's resident candidate pages (kv_cache::park): after each layer's attention, so that a sequence
    // holds only its sinks, its window and one layer's selection at a time. The parked pages stay in the
    // pool's cache until the pool needs them, so the next layer or step fetches them back cheaply.
    int32_t park_candidates(const plan& p, kv_sequence& seq, kv_cache& kv) const;
    // out [g, head_dim] for KV head kh of one row at position pos: attention over sinks, selected pages and
    // the window up to pos. q_group [g, head_dim] rotated at pos. scratch: scratch_floats() floats.
    void attend(kernels::isa level, const plan& p, const kv_sequence& seq, const kernels::paged_kv_view& view, int il,
                int64_t pos, const float* q_group, int kh, float* out, float* scratch) const;
    size_t scratch_floats(int64_t max_chunk_tokens) const;
    // Floats of summary per page (all layers and KV heads).
    int64_t summary_floats_per_page() const { return int64_t(hp_.n_layer) * hp_.n_head_kv * 2 * hp_.head_dim; }

    // Persisting summaries beside their blocks (block_store_i::persist_summary): a 4-byte layout version,
    // the float count, then the page's floats [n_layer][n_head_kv][2][head_dim].
    static constexpr uint32_t k_summary_version = 1;
    size_t summary_record_bytes() const { return 8 + size_t(summary_floats_per_page()) * sizeof(float); }
    // Loads the summaries of pages [seq.n_summarized, hashes.size()) from the store in batches, in order,
    // stopping at the first missing or malformed one. Returns seq.n_summarized afterwards.
    int32_t load_summaries(kv_sequence& seq, std::span<const block_hash> hashes, block_store_i& store) const;

    // Pages per summary group (kv_sequence::group_summary).
    static constexpr int32_t k_group = k_summary_group;
    // Summaries a selection may score below the top of the tree (groups of 256 pages) before its search turns
    // from best-first (exact top k) to deepest-first (engine/src/summary_search.h): this many, or 16 per page
    // selected when that is more. A history of up to about this many pages is always searched exactly.
    static constexpr int32_t k_search_budget = 512;

  private:
    void persist_summary(const kv_sequence& seq, int32_t pg, block_store_i& store) const;
    // Folds page pg's summary into its groups' (16 and 256 pages).
    void fold_into_group(kv_sequence& seq, int32_t pg) const;
    // The n_selected best candidate pages of layer il into p.best (search_top_pages). split [kh1 - kh0][g][2]
    // [head_dim] (split_query): the pages best for KV heads [kh0, kh1) together (their best bound).
    void top_pages(plan& p, const kv_sequence& seq, int il, int kh0, int kh1, const float* split, int g) const;

    const hparams& hp_;
    attention_options opt_;
    int32_t page_size_;
    int32_t n_ctx_;
    const rope_rotation& rope_;
};

}  // namespace mnemos::engine
