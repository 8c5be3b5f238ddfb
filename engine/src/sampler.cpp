#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace mnemos::engine {

namespace {

// Orders candidates most likely first; ties go to the lowest id.
bool more_likely(const std::pair<float, token_id>& a, const std::pair<float, token_id>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

bool is_allowed(const uint64_t* allowed, size_t i) { return !allowed || ((allowed[i >> 6] >> (i & 63)) & 1u); }

}  // namespace

sampler::sampler(const sampler_params& p) : params_(p), rng_(p.seed) {}

void sampler::reset(uint64_t seed) { rng_.seed(seed); }

double sampler::next_uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void sampler::apply_penalties(std::span<float> logits, std::span<const token_id> history) {
    const sampler_params& p = params_;
    if (p.repeat_last_n == 0 || history.empty()) return;
    if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
    size_t n_window = history.size();
    if (p.repeat_last_n > 0) n_window = std::min(n_window, static_cast<size_t>(p.repeat_last_n));
    window_.assign(history.end() - static_cast<std::ptrdiff_t>(n_window), history.end());
    std::sort(window_.begin(), window_.end());
    const auto n_vocab = static_cast<token_id>(logits.size());
    for (size_t i = 0; i < window_.size();) {
        const token_id t = window_[i];
        size_t j = i;
        while (j < window_.size() && window_[j] == t) ++j;
        const float n_seen = static_cast<float>(j - i);
        i = j;
        if (t < 0 || t >= n_vocab) continue;
        float& l = logits[static_cast<size_t>(t)];
        if (p.repeat_penalty != 1.0f) l = l > 0.0f ? l / p.repeat_penalty : l * p.repeat_penalty;
        l -= n_seen * p.frequency_penalty + p.presence_penalty;
    }
}

token_id sampler::sample(std::span<float> logits, std::span<const token_id> history, const uint64_t* allowed) {
    apply_penalties(logits, history);

    const sampler_params& p = params_;
    const size_t n_vocab = logits.size();

    if (p.temperature <= 0.0f) {
        token_id best = -1;
        float best_logit = 0.0f;
        for (size_t i = 0; i < n_vocab; ++i) {
            const float l = logits[i];
            if (std::isnan(l) || !is_allowed(allowed, i)) continue;
            if (best < 0 || l > best_logit) {
                best = static_cast<token_id>(i);
                best_logit = l;
            }
        }
        return best;
    }

    candidates_.clear();
    const bool use_top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < n_vocab;
    if (use_top_k) {
        // top-k in one pass: a heap of the k best seen so far, its least likely on top,
        // so most tokens are rejected by one comparison (no sort of the vocabulary).
        const auto k = static_cast<size_t>(p.top_k);
        candidates_.reserve(k);
        for (size_t i = 0; i < n_vocab; ++i) {
            const float l = logits[i];
            if (std::isnan(l) || !is_allowed(allowed, i)) continue;
            const std::pair<float, token_id> c(l, static_cast<token_id>(i));
            if (candidates_.size() < k) {
                candidates_.push_back(c);
                std::push_heap(candidates_.begin(), candidates_.end(), more_likely);
            } else if (more_likely(c, candidates_.front())) {
                std::pop_heap(candidates_.begin(), candidates_.end(), more_likely);
                candidates_.back() = c;
                std::push_heap(candidates_.begin(), candidates_.end(), more_likely);
            }
        }
        std::sort_heap(candidates_.begin(), candidates_.end(), more_likely);  // most likely first
        if (candidates_.empty()) return -1;
    } else {
        for (size_t i = 0; i < n_vocab; ++i) {
            const float l = logits[i];
            if (std::isnan(l) || !is_allowed(allowed, i)) continue;
            candidates_.emplace_back(l, static_cast<token_id>(i));
        }
        if (candidates_.empty()) return -1;
        if (p.top_p < 1.0f) {
            std::sort(candidates_.begin(), candidates_.end(), more_likely);
        } else {
            // Only the maximum must be known below; put it first.
            auto best = std::min_element(candidates_.begin(), candidates_.end(), more_likely);
            std::iter_swap(candidates_.begin(), best);
        }
    }

    // softmax with temperature; candidates_[0] holds the largest logit.
    const float max_logit = candidates_[0].first;
    if (!std::isfinite(max_logit)) return candidates_[0].second;  // +inf wins outright; -inf: all are -inf
    double sum = 0.0;
    for (auto& c : candidates_) {
        const double e = std::exp(static_cast<double>(c.first - max_logit) / p.temperature);
        c.first = static_cast<float>(e);
        sum += e;
    }
    for (auto& c : candidates_) c.first = static_cast<float>(c.first / sum);

    // top-p over the sorted candidates; keeps at least one.
    if (p.top_p < 1.0f) {
        double cum = 0.0;
        size_t n_keep = candidates_.size();
        for (size_t i = 0; i < candidates_.size(); ++i) {
            cum += candidates_[i].first;
            if (cum >= p.top_p) {
                n_keep = i + 1;
                break;
            }
        }
        candidates_.resize(n_keep);
    }

    // min-p relative to the most likely candidate (always first, always kept).
    if (p.min_p > 0.0f) {
        const float threshold = p.min_p * candidates_[0].first;
        auto keep_end = std::remove_if(candidates_.begin() + 1, candidates_.end(),
                                       [threshold](const auto& c) { return c.first < threshold; });
        candidates_.erase(keep_end, candidates_.end());
    }

    double total = 0.0;
    for (const auto& c : candidates_) total += c.first;
    double r = next_uniform() * total;
    token_id last_possible = candidates_[0].second;
    for (const auto& c : candidates_) {
        if (c.first <= 0.0f) continue;
        last_possible = c.second;
        r -= c.first;
        if (r < 0.0) return c.second;
    }
    return last_possible;  // rounding left r at or just above 0
}

}  // namespace mnemos::engine
