#include "engine/forward.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "kernels/cpu/attention.h"

namespace mnemos::engine {

namespace {

void rmsnorm(const float* x, const float* w, float* y, int n, float eps) {
    float ss = 0.0f;
    for (int i = 0; i < n; ++i) ss += x[i] * x[i];
    const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

template <class T>
void grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
}

}  // namespace

forward_context::forward_context(const model& m, kv_cache& kv, kernels::thread_pool& pool)
    : m_(m), kv_(kv), pool_(pool), isa_(kernels::best_isa()) {
    const hparams& hp = m.hp();
    const int half = hp.n_rot / 2;
    inv_freq_.resize(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i)
        inv_freq_[i] = std::pow(hp.rope_freq_base, -2.0f * static_cast<float>(i) / static_cast<float>(hp.n_rot));
    const auto& ff = m.weights().rope_freqs;
    if (!ff.empty()) {
        for (int i = 0; i < half; ++i) inv_freq_[i] /= ff[i];
    } else if (hp.scaling == rope_scaling::llama3) {
        // Llama 3.1: long wavelengths are slowed by the factor, short ones kept, a smooth ramp between.
        const float lo_wl = static_cast<float>(hp.rope_orig_ctx) / hp.llama3_low_freq_factor;
        const float hi_wl = static_cast<float>(hp.rope_orig_ctx) / hp.llama3_high_freq_factor;
        for (int i = 0; i < half; ++i) {
            const float wl = 2.0f * static_cast<float>(M_PI) / inv_freq_[i];
            if (wl < hi_wl) continue;
            if (wl > lo_wl) {
                inv_freq_[i] /= hp.rope_scale_factor;
            } else {
                const float smooth = (static_cast<float>(hp.rope_orig_ctx) / wl - hp.llama3_low_freq_factor) /
                                     (hp.llama3_high_freq_factor - hp.llama3_low_freq_factor);
                inv_freq_[i] = (1.0f - smooth) * inv_freq_[i] / hp.rope_scale_factor + smooth * inv_freq_[i];
            }
        }
    }
    freq_mult_.resize(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i)
        freq_mult_[i] =
            inv_freq_[i] / std::pow(hp.rope_freq_base, -2.0f * static_cast<float>(i) / static_cast<float>(hp.n_rot));
    if (hp.scaling == rope_scaling::linear || hp.scaling == rope_scaling::yarn)
        freq_scale_ = 1.0f / hp.rope_scale_factor;
    if (hp.scaling == rope_scaling::yarn) {
        auto corr_dim = [&](float n_rot_beta) {
            return static_cast<float>(hp.n_rot) *
                   std::log(static_cast<float>(hp.rope_orig_ctx) / (n_rot_beta * 2.0f * static_cast<float>(M_PI))) /
                   (2.0f * std::log(hp.rope_freq_base));
        };
        yarn_corr_lo_ = std::max(0.0f, std::floor(corr_dim(hp.yarn_beta_fast)));
        yarn_corr_hi_ = std::min(static_cast<float>(hp.n_rot - 1), std::ceil(corr_dim(hp.yarn_beta_slow)));
        yarn_mscale_ = hp.yarn_attn_factor * (1.0f + 0.1f * std::log(1.0f / freq_scale_));
    }
}

void forward_context::rope_cache(int64_t pos, float* cos_out, float* sin_out) const {
    const hparams& hp = m_.hp();
    const int half = hp.n_rot / 2;
    // theta_i = pos * base^(-2i/n_rot), computed as a running product in float
    // like other engines do, so that angles agree to the last bit at long positions.
    const float theta_scale = std::pow(hp.rope_freq_base, -2.0f / static_cast<float>(hp.n_rot));
    float theta_base = static_cast<float>(pos);
    for (int i = 0; i < half; ++i, theta_base *= theta_scale) {
        const float theta_extrap = theta_base * freq_mult_[i];
        float theta = freq_scale_ * theta_extrap;
        float mscale = 1.0f;
        if (hp.scaling == rope_scaling::yarn) {
            const float y = (static_cast<float>(i) - yarn_corr_lo_) / std::max(0.001f, yarn_corr_hi_ - yarn_corr_lo_);
            const float ramp = 1.0f - std::min(1.0f, std::max(0.0f, y));
            theta = theta * (1.0f - ramp) + theta_extrap * ramp;
            mscale = yarn_mscale_;
        }
        cos_out[i] = std::cos(theta) * mscale;
        sin_out[i] = std::sin(theta) * mscale;
    }
}

void forward_context::apply_rope(float* x, int n_heads, int64_t pos) const {
    const hparams& hp = m_.hp();
    float cs[512], sn[512];
    rope_cache(pos, cs, sn);
    rotate_pairs(hp.rope, hp.n_rot, hp.head_dim, cs, sn, x, x, n_heads);
}

std::vector<double> forward_context::rope_omegas() const {
    const hparams& hp = m_.hp();
    const int half = hp.n_rot / 2;
    std::vector<double> omega(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) {
        const double base = std::pow(static_cast<double>(hp.rope_freq_base), -2.0 * i / hp.n_rot) * freq_mult_[i];
        double scale = freq_scale_;
        if (hp.scaling == rope_scaling::yarn) {
            const float y = (static_cast<float>(i) - yarn_corr_lo_) / std::max(0.001f, yarn_corr_hi_ - yarn_corr_lo_);
            const double ramp = 1.0 - std::min(1.0f, std::max(0.0f, y));
            scale = freq_scale_ * (1.0 - ramp) + ramp;
        }
        omega[static_cast<size_t>(i)] = base * scale;
    }
    return omega;
}

attention_options forward_context::set_attention(const attention_options& options, int32_t n_ctx) {
    const hparams& hp = m_.hp();
    sparse_.reset();
    if (!rope_delta_) rope_delta_ = std::make_unique<rope_rotation>(rope_omegas(), hp.rope, hp.n_rot, hp.head_dim);
    sparse_ = std::make_unique<sparse_attention>(hp, options, kv_.page_size(), n_ctx, *rope_delta_);
    return sparse_->effective();
}

bool forward_context::sparse_engages(int64_t end) const { return sparse_ && sparse_->engages(end); }

int32_t forward_context::sparse_max_chunk() const { return sparse_ ? sparse_->max_chunk() : 0; }

status forward_context::attend_layer(std::span<const forward_item> items, int il, int64_t T, int64_t max_kv) {
    const hparams& hp = m_.hp();
    const paged_kv_layout lay = kv_.layout();
    const int Q = hp.q_dim();
    const kernels::paged_kv_view view{kv_.data(),   lay.page_stride, lay.layer_stride,
                                      lay.v_offset, lay.page_size,   lay.kv_dim};
    const kernels::attention_shape ash{hp.n_head, hp.n_head_kv, hp.head_dim,
                                       1.0f / std::sqrt(static_cast<float>(hp.head_dim))};
    bool any_sparse = false;
    for (size_t ii = 0; ii < items.size(); ++ii) {
        if (!plans_[ii].active) continue;
        any_sparse = true;
        sparse_->select(plans_[ii], *items[ii].seq, il, &q_[first_row_[ii] * Q], &pos_[first_row_[ii]],
                        static_cast<int64_t>(items[ii].tokens.size()));
        // Selected pages that were parked come back (from the pool's cache, the store or the host tier).
        if (!plans_[ii].wanted.empty())
            if (auto st = kv_.fetch(*items[ii].seq, plans_[ii].wanted, &items[ii].seq->n_pages_loaded); !st.ok())
                return st;
    }
    // One task per (token, KV head) covering that head's GQA group; causal per sequence.
    std::atomic<int64_t> next{0};
    const int64_t n_tasks = T * hp.n_head_kv;
    const int64_t group_dim = static_cast<int64_t>(hp.n_head / hp.n_head_kv) * hp.head_dim;
    auto attend = [&](int ith, int) {
        float* sc = scratch_[static_cast<size_t>(ith)].data();
        for (;;) {
            const int64_t task = next.fetch_add(1, std::memory_order_relaxed);
            if (task >= n_tasks) break;
            const int64_t r = task / hp.n_head_kv;
            const int kh = static_cast<int>(task % hp.n_head_kv);
            const size_t ii = static_cast<size_t>(item_of_[r]);
            const kv_sequence& s = *items[ii].seq;
            const float* q = &q_[r * Q + kh * group_dim];
            float* out = &att_[r * Q + kh * group_dim];
            if (plans_[ii].active)
                sparse_->attend(isa_, plans_[ii], s, view, il, pos_[r], q, kh, out, sc);
            else
                kernels::attention_group(isa_, ash, view, s.pages.data(), il, pos_[r] + 1, q, kh, out, sc);
        }
    };
    // Small attention (a short decode context) finishes faster inline than a pool hand-off costs.
    if (!any_sparse && T * max_kv * Q < 65536)
        attend(0, 1);
    else
        pool_.run(attend);
    for (size_t ii = 0; ii < items.size(); ++ii) sparse_park(plans_[ii], *items[ii].seq);
    return {};
}

status forward_context::fetch_unselected(const sparse_attention::plan& p, kv_sequence& seq) {
    std::vector<int32_t> parked;
    const int32_t n_pages = static_cast<int32_t>(seq.pages.size());
    auto want = [&](int32_t from, int32_t to) {
        for (int32_t k = from; k < to; ++k)
            if (seq.pages[size_t(k)] < 0) parked.push_back(k);
    };
    if (p.active) {  // sinks and window (not the whole history: a step costs its budget)
        want(0, std::min(p.n_sink_pages, n_pages));
        want(p.first_window_page, n_pages);
    } else {
        want(0, n_pages);
    }
    if (parked.empty()) return {};
    return kv_.fetch(seq, parked, &seq.n_pages_loaded);
}

kv_cache::match_hooks forward_context::sparse_resume_hooks(kv_sequence& seq, std::span<const token_id> prompt) {
    kv_cache::match_hooks hooks;
    if (!sparse_) return hooks;
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    hooks.on_page = [this, n_prompt](kv_sequence& s, int32_t k) { sparse_prefix_page(s, k, n_prompt); };
    block_store_i* store = kv_.store();
    if (!store) return hooks;
    const attention_options& o = sparse_->effective();
    const int32_t ps = kv_.page_size();
    const int32_t first_window_page = static_cast<int32_t>((n_prompt - o.n_window) / ps - 1);
    if (first_window_page <= 0) return hooks;
    std::vector<block_hash>& hashes = hooks.hashes;  // match_prefix reuses them
    hashes.resize(static_cast<size_t>(first_window_page));
    block_hash parent = kv_.options().fingerprint;
    for (int32_t k = 0; k < first_window_page; ++k)
        parent = hashes[size_t(k)] =
            kv_cache::scoped_hash(parent, prompt.subspan(size_t(k) * ps, size_t(ps)), k, seq.scope);
    const int32_t n_known = sparse_->load_summaries(seq, hashes, *store);
    const int32_t n_sink_pages = o.n_sink / ps;
    hooks.take_parked = [n_known, n_sink_pages](int32_t k) { return k >= n_sink_pages && k < n_known; };
    return hooks;
}

void forward_context::sparse_prefix_page(kv_sequence& seq, int32_t k, int64_t n_prompt) {
    if (!sparse_) return;
    sparse_->summarize(seq, k + 1, kv_);
    const attention_options& o = sparse_->effective();
    const int32_t ps = kv_.page_size();
    const int64_t first_window_page = (n_prompt - o.n_window) / ps - 1;  // a page of slack before the window
    if (k >= o.n_sink / ps && k < first_window_page) kv_.park(seq, k);
}

void forward_context::sparse_park(const sparse_attention::plan& p, kv_sequence& seq) {
    if (p.active) sparse_->park_candidates(p, seq, kv_);
}

attention_report forward_context::last_attention(const kv_sequence& seq) const {
    attention_report rep;
    if (!sparse_) return rep;
    const attention_options& o = sparse_->effective();
    rep.sparse = sparse_->engages(seq.n_tokens);
    rep.n_sink = o.n_sink, rep.n_window = o.n_window, rep.n_pages = o.n_pages;
    rep.n_pages_resident = kv_.n_resident(seq);
    rep.n_pages_loaded = seq.n_pages_loaded;
    return rep;
}

status forward_context::run(std::span<const forward_item> items, std::vector<float>& logits) {
    const hparams& hp = m_.hp();
    const model_weights& W = m_.weights();
    const int E = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab;
    const paged_kv_layout lay = kv_.layout();

    // Validate everything before touching any state.
    int64_t T = 0, n_out = 0;
    for (const forward_item& it : items) {
        if (!it.seq) return make_error(errc::invalid_argument, "forward item without a sequence");
        const int64_t n = static_cast<int64_t>(it.tokens.size());
        if (it.n_logits < 0 || it.n_logits > n)
            return make_error(errc::invalid_argument, "n_logits outside [0, number of tokens]");
        for (token_id t : it.tokens)
            if (t < 0 || t >= V)
                return make_error(errc::invalid_argument, "token id " + std::to_string(t) +
                                                              " outside the vocabulary [0, " + std::to_string(V) + ")");
        const int64_t end = it.seq->n_tokens + n;
        if (end > static_cast<int64_t>(it.seq->pages.size()) * lay.page_size)
            return make_error(errc::invalid_argument, "KV pages not reserved for " + std::to_string(end) + " tokens");
        T += n;
        n_out += it.n_logits;
    }
    if (T == 0) {
        logits.clear();
        return {};
    }

    grow(x_, T * E), grow(xn_, T * E), grow(q_, T * Q), grow(k_, T * KV), grow(v_, T * KV), grow(att_, T * Q);
    grow(g_, T * F), grow(u_, T * F);
    pos_.resize(T);
    item_of_.resize(T);
    {
        int64_t r = 0;
        for (size_t ii = 0; ii < items.size(); ++ii)
            for (size_t j = 0; j < items[ii].tokens.size(); ++j, ++r) {
                pos_[r] = items[ii].seq->n_tokens + static_cast<int64_t>(j);
                item_of_[r] = static_cast<int32_t>(ii);
                const token_id tok = items[ii].tokens[j];
                kernels::dequantize_row(W.token_embd.type,
                                        static_cast<const uint8_t*>(W.token_embd.data) + W.token_embd.row_bytes * tok,
                                        &x_[r * E], E);
            }
    }

    int64_t max_kv = 0;
    first_row_.resize(items.size());
    plans_.resize(items.size());
    {
        int64_t r = 0;
        for (size_t ii = 0; ii < items.size(); ++ii) {
            const forward_item& it = items[ii];
            first_row_[ii] = r;
            r += static_cast<int64_t>(it.tokens.size());
            if (sparse_)
                sparse_->make_plan(*it.seq, static_cast<int64_t>(it.tokens.size()), plans_[ii]);
            else
                plans_[ii] = sparse_attention::plan{};
            if (plans_[ii].active)
                sparse_->summarize(*it.seq, plans_[ii].first_window_page, kv_);
            else
                max_kv = std::max<int64_t>(max_kv, it.seq->n_tokens + static_cast<int64_t>(it.tokens.size()));
            // Pages read without selection (sinks and window; every page under full attention) must be resident.
            if (auto st = fetch_unselected(plans_[ii], *it.seq); !st.ok()) return st;
        }
    }
    size_t scratch_n = static_cast<size_t>(max_kv * (hp.n_head / hp.n_head_kv));
    if (sparse_) scratch_n = std::max(scratch_n, sparse_->scratch_floats(T));
    scratch_.resize(static_cast<size_t>(pool_.n_threads()));
    for (auto& sc : scratch_) grow(sc, scratch_n);

    for (int il = 0; il < hp.n_layer; ++il) {
        const layer_weights& L = W.layers[static_cast<size_t>(il)];
        for (int64_t r = 0; r < T; ++r) rmsnorm(&x_[r * E], L.attn_norm.data(), &xn_[r * E], E, hp.rms_eps);
        {  // Q, K and V in one dispatch (same results as three matmuls)
            const kernels::matmul_target qkv[3] = {{L.wq, q_.data(), Q}, {L.wk, k_.data(), KV}, {L.wv, v_.data(), KV}};
            kernels::matmul_multi(qkv, 3, xn_.data(), T, pool_, isa_);
        }
        for (int64_t r = 0; r < T; ++r) {
            float* q = &q_[r * Q];
            float* k = &k_[r * KV];
            float* v = &v_[r * KV];
            if (hp.qkv_bias) {
                for (int i = 0; i < Q; ++i) q[i] += L.bq[i];
                for (int i = 0; i < KV; ++i) k[i] += L.bk[i], v[i] += L.bv[i];
            }
            apply_rope(q, hp.n_head, pos_[r]);
            apply_rope(k, hp.n_head_kv, pos_[r]);
            const kv_sequence& s = *items[static_cast<size_t>(item_of_[r])].seq;
            const int64_t p = pos_[r];
            uint16_t* kd = kv_.k_ptr(s.pages[p / lay.page_size], il) + (p % lay.page_size) * KV;
            uint16_t* vd = kv_.v_ptr(s.pages[p / lay.page_size], il) + (p % lay.page_size) * KV;
            kernels::convert_f32_to_f16(isa_, KV, k, kd);
            kernels::convert_f32_to_f16(isa_, KV, v, vd);
        }
        if (auto st = attend_layer(items, il, T, max_kv); !st.ok()) return st;
        kernels::matmul(L.wo, att_.data(), T, xn_.data(), E, pool_, isa_);
        for (int64_t i = 0; i < T * E; ++i) x_[i] += xn_[i];

        for (int64_t r = 0; r < T; ++r) rmsnorm(&x_[r * E], L.ffn_norm.data(), &xn_[r * E], E, hp.rms_eps);
        {
            const kernels::matmul_target gu[2] = {{L.gate, g_.data(), F}, {L.up, u_.data(), F}};
            kernels::matmul_multi(gu, 2, xn_.data(), T, pool_, isa_);
        }
        for (int64_t i = 0; i < T * F; ++i) {
            const float a = g_[i];
            g_[i] = a / (1.0f + std::exp(-a)) * u_[i];
        }
        kernels::matmul(L.down, g_.data(), T, xn_.data(), E, pool_, isa_);
        for (int64_t i = 0; i < T * E; ++i) x_[i] += xn_[i];
    }

    // Final norm on the rows that want logits only.
    grow(sel_, n_out * E);
    {
        int64_t r = 0, o = 0;
        for (const forward_item& it : items) {
            const int64_t n = static_cast<int64_t>(it.tokens.size());
            for (int64_t j = n - it.n_logits; j < n; ++j, ++o)
                rmsnorm(&x_[(r + j) * E], W.output_norm.data(), &sel_[o * E], E, hp.rms_eps);
            r += n;
        }
    }
    logits.resize(static_cast<size_t>(n_out) * V);
    if (n_out > 0) kernels::matmul(W.output, sel_.data(), n_out, logits.data(), V, pool_, isa_);

    for (const forward_item& it : items) kv_.commit(*it.seq, it.tokens);
    return {};
}

}  // namespace mnemos::engine
