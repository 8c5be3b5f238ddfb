#pragma once
// The search for the k pages of a history whose key summaries (engine/src/summary_bound.h) promise the highest
// scores, over a three-level tree: pages, groups of 16 pages and groups of 256 pages, each group's summary the
// per-channel min of its pages' mins and max of their maxes, so a node's bound is at least every page bound
// below it.
//
// Best-first from the groups of 256: pages come out in descending bound, so the first k are the top k (exact).
// When the bounds are flat (keys that differ by little more than rounding, so that every group's bound is a
// hair above its pages' and nothing is pruned) that search would score the whole history; after `budget`
// scores below the top level it turns deepest-first instead: the best pages found so far, then the best pages
// of the best groups found, which costs a few groups per page still wanted. A history whose tree has at most
// about `budget` nodes below the top level is always searched exactly.
#include <cstdint>
#include <utility>
#include <vector>

namespace mnemos::engine {

// Pages per group of the summary tree, at both levels.
inline constexpr int32_t k_summary_group = 16;

struct summary_tree {
    // Node summaries of each level: [nodes][record_floats]; [0] pages, [1] groups of 16, [2] groups of 256.
    const float* levels[3] = {nullptr, nullptr, nullptr};
    int64_t record_floats = 0;  // floats per node (every layer and KV head)
    int64_t offset = 0;         // from a node's record to the [n_heads][2][head_dim] block that is searched
    int32_t head_dim = 0;
};

struct summary_search_node {
    float bound;
    int32_t level, idx;  // level 0: page idx; 1: group of 16 pages; 2: group of 256 pages
};

struct summary_search {
    int32_t first = 0, last = 0;   // candidate pages [first, last)
    int32_t k = 0;                 // pages wanted (at most last - first)
    int32_t n_heads = 1;           // heads of the block scored together: a node's bound is the best of theirs
    const float* split = nullptr;  // [n_heads][g][2][head_dim]: the split queries (split_query)
    int32_t g = 1;                 // query heads per head of the block
    int32_t budget = 512;          // scores below the top level before the search turns deepest-first
};

// The k pages into best as (bound, page), in the order found; heap is scratch. Returns the summaries scored.
int32_t search_top_pages(const summary_tree& tree, const summary_search& s, std::vector<summary_search_node>& heap,
                         std::vector<std::pair<float, int32_t>>& best);

}  // namespace mnemos::engine
