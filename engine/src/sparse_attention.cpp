#include "engine/src/sparse_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/src/summary_bound.h"
#include "kernels/cpu/kernels.h"

namespace mnemos::engine {

namespace {

int32_t round_up(int32_t n, int32_t page) { return (n + page - 1) / page * page; }

}  // namespace

sparse_attention::sparse_attention(const hparams& hp, const attention_options& options, int32_t page_size,
                                   int32_t n_ctx, const rope_rotation& rope)
    : hp_(hp), opt_(options), page_size_(page_size), n_ctx_(n_ctx), rope_(rope) {
    const int32_t ps = page_size;
    opt_.n_sink = round_up(std::max(0, opt_.n_sink), ps);
    opt_.n_window = std::max(2 * ps, round_up(opt_.n_window, ps));
    opt_.n_pages = std::clamp(opt_.n_pages, 0, 510);  // 0: sinks and window only; attend() keeps its runs on the stack
    // Virtual positions reach sinks + selection + window + one page of slack: keep them inside the trained context.
    const int32_t trained = hp.n_ctx_train > 0 ? hp.n_ctx_train : n_ctx;
    const int32_t room = trained - ps;
    if (opt_.budget(ps) > room) {
        opt_.n_sink = std::min(opt_.n_sink, std::max(0, room / 8 / ps * ps));
        opt_.n_window = std::min(opt_.n_window, std::max(2 * ps, (room - opt_.n_sink) / 2 / ps * ps));
        opt_.n_pages = std::min(opt_.n_pages, std::max(0, (room - opt_.n_sink - opt_.n_window) / ps));
    }
}

bool sparse_attention::engages(int64_t end) const {
    switch (opt_.mode) {
        case attention_mode::full:
            return false;
        case attention_mode::sparse:
            return end > opt_.budget(page_size_);
        case attention_mode::automatic:
            return end > n_ctx_;
    }
    return false;
}

sparse_attention::plan sparse_attention::make_plan(const kv_sequence& seq, int64_t n_new) const {
    plan p;
    make_plan(seq, n_new, p);
    return p;
}

void sparse_attention::make_plan(const kv_sequence& seq, int64_t n_new, plan& p) const {
    // The settings are reset; the buffers keep their capacity (a decode step allocates nothing).
    p.active = false;
    p.n_sink_pages = p.first_window_page = p.n_selected = 0;
    p.shift = 0;
    p.selected.clear();
    p.angles.clear();
    p.wanted.clear();
    const int32_t ps = page_size_;
    const int64_t end = seq.n_tokens + n_new;
    if (!engages(end)) return;
    p.n_sink_pages = opt_.n_sink / ps;
    // The window covers the last n_window tokens of the step and every new token.
    const int64_t window_start = std::min<int64_t>(end - opt_.n_window, seq.n_tokens);
    p.first_window_page = static_cast<int32_t>(std::max<int64_t>(0, window_start) / ps);
    const int32_t n_candidates = p.first_window_page - p.n_sink_pages;
    if (n_candidates <= 0) return;  // everything is sink or window: full attention
    p.active = true;
    p.n_selected = std::min(opt_.n_pages, n_candidates);
    p.shift = int64_t(p.first_window_page) * ps - (opt_.n_sink + int64_t(p.n_selected) * ps);
    p.selected.assign(size_t(hp_.n_head_kv) * p.n_selected, 0);
    p.angles.assign(size_t(hp_.n_head_kv) * (1 + p.n_selected) * 2 * rope_.n_pairs(), 0.0f);
}

void sparse_attention::summarize(kv_sequence& seq, int32_t n_pages, const kv_cache& kv) const {
    if (seq.n_summarized >= n_pages) return;
    const int32_t ps = page_size_, hd = hp_.head_dim, nkv = hp_.n_head_kv, kv_dim = hp_.kv_dim();
    const int64_t per_page = summary_floats_per_page();
    seq.key_summary.resize(size_t(n_pages) * per_page);
    std::vector<float> row(static_cast<size_t>(kv_dim)), cs(static_cast<size_t>(2 * rope_.n_pairs()));
    for (int32_t pg = seq.n_summarized; pg < n_pages; ++pg) {
        float* page_sum = &seq.key_summary[size_t(pg) * per_page];
        for (int il = 0; il < hp_.n_layer; ++il) {
            float* layer_sum = page_sum + int64_t(il) * nkv * 2 * hd;
            for (int kh = 0; kh < nkv; ++kh) {
                std::fill_n(layer_sum + int64_t(kh) * 2 * hd, hd, INFINITY);
                std::fill_n(layer_sum + int64_t(kh) * 2 * hd + hd, hd, -INFINITY);
            }
            const uint16_t* k = kv.k_ptr(seq.pages[size_t(pg)], il);
            for (int32_t t = 0; t < ps; ++t) {
                for (int i = 0; i < kv_dim; ++i) row[size_t(i)] = kernels::fp16_to_fp32(k[int64_t(t) * kv_dim + i]);
                rope_.angles(-(int64_t(pg) * ps + t), cs.data());
                rope_.rotate(cs.data(), row.data(), row.data(), nkv);
                for (int kh = 0; kh < nkv; ++kh) {
                    float* mn = layer_sum + int64_t(kh) * 2 * hd;
                    float* mx = mn + hd;
                    const float* r = &row[size_t(kh) * hd];
                    for (int i = 0; i < hd; ++i) mn[i] = std::min(mn[i], r[i]), mx[i] = std::max(mx[i], r[i]);
                }
            }
        }
    }
    for (int32_t pg = seq.n_summarized; pg < n_pages; ++pg) {
        fold_into_group(seq, pg);
        if (kv.store() && size_t(pg) < seq.hashes.size()) persist_summary(seq, pg, *kv.store());
    }
    seq.n_summarized = n_pages;
}

void sparse_attention::persist_summary(const kv_sequence& seq, int32_t pg, block_store_i& store) const {
    const int64_t per_page = summary_floats_per_page();
    std::vector<uint8_t> rec(summary_record_bytes());
    const uint32_t head[2] = {k_summary_version, uint32_t(per_page)};
    std::memcpy(rec.data(), head, 8);
    std::memcpy(rec.data() + 8, &seq.key_summary[size_t(pg) * per_page], size_t(per_page) * sizeof(float));
    store.persist_summary(seq.hashes[size_t(pg)], rec);
}

int32_t sparse_attention::load_summaries(kv_sequence& seq, std::span<const block_hash> hashes,
                                         block_store_i& store) const {
    const int64_t per_page = summary_floats_per_page();
    const size_t rec_bytes = summary_record_bytes(), batch = 1024;
    std::vector<uint8_t> buf(batch * rec_bytes), ok(batch);
    std::vector<std::span<uint8_t>> outs(batch);
    for (size_t i = 0; i < batch; ++i) outs[i] = {buf.data() + i * rec_bytes, rec_bytes};
    while (size_t(seq.n_summarized) < hashes.size()) {
        const size_t first = size_t(seq.n_summarized), n = std::min(batch, hashes.size() - first);
        store.load_summaries(hashes.subspan(first, n), std::span(outs).first(n), std::span(ok).first(n));
        seq.key_summary.resize((first + n) * size_t(per_page));
        size_t got = 0;
        for (; got < n && ok[got]; ++got) {
            uint32_t head[2];
            std::memcpy(head, outs[got].data(), 8);
            if (head[0] != k_summary_version || head[1] != uint32_t(per_page)) break;
            std::memcpy(&seq.key_summary[(first + got) * size_t(per_page)], outs[got].data() + 8,
                        size_t(per_page) * sizeof(float));
            fold_into_group(seq, int32_t(first + got));
        }
        seq.n_summarized = int32_t(first + got);
        seq.key_summary.resize(size_t(seq.n_summarized) * size_t(per_page));
        if (got < n) break;
    }
    return seq.n_summarized;
}

namespace {

// Folds a page summary into a level's record (min of mins, max of maxes); the first page of a node copies.
void fold_summary(std::vector<float>& level, int32_t node, bool first, const float* src, int64_t per_page, int64_t hd) {
    if (level.size() < size_t(node + 1) * per_page) level.resize(size_t(node + 1) * per_page);
    float* dst = &level[size_t(node) * per_page];
    if (first) {
        std::copy(src, src + per_page, dst);
        return;
    }
    for (int64_t blk = 0; blk < per_page; blk += 2 * hd)
        for (int64_t i = 0; i < hd; ++i) {
            dst[blk + i] = std::min(dst[blk + i], src[blk + i]);
            dst[blk + hd + i] = std::max(dst[blk + hd + i], src[blk + hd + i]);
        }
}

}  // namespace

void sparse_attention::fold_into_group(kv_sequence& seq, int32_t pg) const {
    const int64_t per_page = summary_floats_per_page(), hd = hp_.head_dim;
    const float* src = &seq.key_summary[size_t(pg) * per_page];
    fold_summary(seq.group_summary, pg / k_group, pg % k_group == 0, src, per_page, hd);
    fold_summary(seq.super_summary, pg / (k_group * k_group), pg % (k_group * k_group) == 0, src, per_page, hd);
}

void sparse_attention::top_pages(plan& p, const kv_sequence& seq, int il, int kh0, int kh1, const float* split,
                                 int g) const {
    summary_tree tree;
    tree.levels[0] = seq.key_summary.data();
    tree.levels[1] = seq.group_summary.data();
    tree.levels[2] = seq.super_summary.data();
    tree.record_floats = summary_floats_per_page();
    tree.offset = (int64_t(il) * hp_.n_head_kv + kh0) * 2 * hp_.head_dim;
    tree.head_dim = hp_.head_dim;
    summary_search s;
    s.first = p.n_sink_pages, s.last = p.first_window_page;
    s.k = p.n_selected;
    s.n_heads = kh1 - kh0;
    s.split = split;
    s.g = g;
    s.budget = std::max(k_search_budget, 16 * p.n_selected);
    search_top_pages(tree, s, p.heap, p.best);
}

void sparse_attention::select(plan& p, const kv_sequence& seq, int il, const float* q, const int64_t* pos,
                              int64_t n_rows) const {
    if (!p.active) return;
    const int32_t ps = page_size_, hd = hp_.head_dim, nkv = hp_.n_head_kv;
    const int g = hp_.n_head / nkv;
    const int64_t q_dim = hp_.q_dim(), gd = int64_t(g) * hd;
    const int64_t nominal = opt_.n_window + int64_t(p.n_selected) * ps / 2;
    const int64_t np2 = 2 * rope_.n_pairs();
    p.wanted.clear();
    for (int kh = 0; kh < nkv; ++kh) rope_.angles(-p.shift, &p.angles[size_t(kh) * (1 + p.n_selected) * np2]);
    if (p.n_selected == 0) return;  // sinks and window only
    // Each group's queries as a page at the nominal distance would see them, summed over the rows (a prefill
    // chunk shares one selection; the scale does not change the ranking). qs [n_head_kv][g][head_dim].
    std::vector<float>& qs = p.qs;  // scratch kept in the plan: no allocation per layer
    std::vector<float>& turned = p.turned;
    std::vector<float>& cs = p.cs;
    qs.assign(static_cast<size_t>(nkv * gd), 0.0f);
    turned.resize(static_cast<size_t>(gd));
    cs.resize(static_cast<size_t>(np2));
    for (int64_t r = 0; r < n_rows; ++r) {
        rope_.angles(nominal - pos[r], cs.data());
        for (int kh = 0; kh < nkv; ++kh) {
            rope_.rotate(cs.data(), q + r * q_dim + kh * gd, turned.data(), g);
            for (int64_t i = 0; i < gd; ++i) qs[size_t(kh * gd + i)] += turned[size_t(i)];
        }
    }
    p.split.resize(qs.size() * 2);
    split_query(qs.data(), nkv * g, hd, p.split.data());
    std::vector<std::pair<float, int32_t>>& best = p.best;
    for (int kh = 0; kh < nkv; ++kh) {
        if (!opt_.shared_selection || kh == 0) {
            const int kh1 = opt_.shared_selection ? nkv : kh + 1;
            top_pages(p, seq, il, kh, kh1, &p.split[size_t(kh * 2 * gd)], g);
            std::sort(best.begin(), best.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
        }
        int32_t* sel = p.selected.data() + size_t(kh) * p.n_selected;
        float* ang = &p.angles[size_t(kh) * (1 + p.n_selected) * np2];
        for (int32_t i = 0; i < p.n_selected; ++i) {
            sel[i] = best[size_t(i)].second;
            if (seq.pages[size_t(sel[i])] < 0 && (kh == 0 || !opt_.shared_selection)) p.wanted.push_back(sel[i]);
            const int64_t real = int64_t(sel[i]) * ps, virt = opt_.n_sink + int64_t(i) * ps;
            rope_.angles(real - virt - p.shift, ang + (1 + i) * np2);
        }
    }
}

void sparse_attention::attend(kernels::isa level, const plan& p, const kv_sequence& seq,
                              const kernels::paged_kv_view& view, int il, int64_t pos, const float* q_group, int kh,
                              float* out, float* scratch) const {
    const int32_t ps = page_size_, hd = hp_.head_dim;
    const int g = hp_.n_head / hp_.n_head_kv;
    const int64_t gd = int64_t(g) * hd, np2 = 2 * rope_.n_pairs();
    const float* ang = &p.angles[size_t(kh) * (1 + p.n_selected) * np2];
    const int32_t* sel = p.selected.data() + size_t(kh) * p.n_selected;  // empty when nothing is selected
    kernels::attention_segment segs[2 + 512];
    int n = 0;
    float* turned = scratch;
    if (p.n_sink_pages > 0) {
        rope_.rotate(ang, q_group, turned, g);
        segs[n++] = {seq.pages.data(), 0, int64_t(p.n_sink_pages) * ps, turned};
    }
    for (int32_t i = 0; i < p.n_selected; ++i) {
        float* qi = turned + (1 + i) * gd;
        rope_.rotate(ang + (1 + i) * np2, q_group, qi, g);
        segs[n++] = {seq.pages.data(), int64_t(sel[i]) * ps, ps, qi};
    }
    const int64_t w0 = int64_t(p.first_window_page) * ps;
    segs[n++] = {seq.pages.data(), w0, pos - w0 + 1, q_group};
    kernels::attention_group_segments(level, {hp_.n_head, hp_.n_head_kv, hd, 1.0f / std::sqrt(float(hd))}, view, segs,
                                      n, il, kh, out, turned + (1 + p.n_selected) * gd);
}

int32_t sparse_attention::park_candidates(const plan& p, kv_sequence& seq, kv_cache& kv) const {
    if (!p.active) return 0;
    int32_t n = 0;
    // This layer's selection, then the candidates not looked at before (pages that left the window, pages a
    // prefix match left resident): each step costs its selection, not the history.
    for (int32_t k : p.selected)
        if (seq.pages[size_t(k)] >= 0) n += kv.park(seq, k);
    for (int32_t k = std::max(seq.park_cursor, p.n_sink_pages); k < p.first_window_page; ++k)
        if (seq.pages[size_t(k)] >= 0) n += kv.park(seq, k);
    seq.park_cursor = std::max(seq.park_cursor, p.first_window_page);
    return n;
}

size_t sparse_attention::scratch_floats(int64_t max_chunk_tokens) const {
    const int g = hp_.n_head / hp_.n_head_kv;
    const int64_t positions = opt_.budget(page_size_) + opt_.n_window + 2 * page_size_ + max_chunk_tokens;
    const int64_t gd = int64_t(g) * hp_.head_dim;
    // Turned queries (sinks + each page), then attention_group_segments' scratch.
    return size_t((1 + opt_.n_pages) * gd + gd + 2 * g + int64_t(g) * positions);
}

}  // namespace mnemos::engine
