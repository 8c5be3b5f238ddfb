#include "engine/src/summary_search.h"

#include <algorithm>
#include <cmath>

#include "engine/src/summary_bound.h"

namespace mnemos::engine {

int32_t search_top_pages(const summary_tree& tree, const summary_search& s, std::vector<summary_search_node>& heap,
                         std::vector<std::pair<float, int32_t>>& best) {
    using node = summary_search_node;
    const int64_t hd = tree.head_dim, g2d = int64_t(s.g) * 2 * hd;
    auto best_first = [](const node& a, const node& b) {  // max-heap: the highest bound, then the deepest node
        return a.bound < b.bound || (a.bound == b.bound && a.level > b.level);
    };
    auto deepest_first = [](const node& a, const node& b) {
        return a.level > b.level || (a.level == b.level && a.bound < b.bound);
    };
    heap.clear();
    best.clear();
    int32_t n_scored = 0, n_below_top = 0;
    auto push = [&](int32_t level, int32_t idx, auto&& order) {
        const int32_t span = level == 0 ? 1 : level == 1 ? k_summary_group : k_summary_group * k_summary_group;
        if (std::max(s.first, idx * span) >= std::min(s.last, (idx + 1) * span)) return;  // no candidate below
        const float* rec = tree.levels[level] + size_t(idx) * size_t(tree.record_floats) + tree.offset;
        float b = -INFINITY;
        for (int32_t h = 0; h < s.n_heads; ++h)
            b = std::max(b, summary_bound(rec + h * 2 * hd, s.split + h * g2d, s.g, int(hd)));
        heap.push_back({b, level, idx});
        std::push_heap(heap.begin(), heap.end(), order);
        ++n_scored;
        n_below_top += level < 2;
    };
    auto search = [&](auto&& order, bool budgeted) {
        while (!heap.empty() && int32_t(best.size()) < s.k && (!budgeted || n_below_top < s.budget)) {
            std::pop_heap(heap.begin(), heap.end(), order);
            const node n = heap.back();
            heap.pop_back();
            if (n.level == 0)
                best.emplace_back(n.bound, n.idx);
            else
                for (int32_t c = 0; c < k_summary_group; ++c) push(n.level - 1, n.idx * k_summary_group + c, order);
        }
    };
    if (s.k <= 0 || s.first >= s.last) return 0;
    const int32_t top_span = k_summary_group * k_summary_group;
    for (int32_t idx = s.first / top_span; idx <= (s.last - 1) / top_span; ++idx) push(2, idx, best_first);
    search(best_first, true);
    if (int32_t(best.size()) < s.k) {
        std::make_heap(heap.begin(), heap.end(), deepest_first);
        search(deepest_first, false);
    }
    return n_scored;
}

}  // namespace mnemos::engine
