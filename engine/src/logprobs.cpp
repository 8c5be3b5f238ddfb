// Log-softmax of one logits row (engine/logprobs.h).
#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mnemos::engine {

namespace {

// a ranks before b: higher logit, then lower id.
bool ranks_before(const token_logprob& a, const token_logprob& b) {
    return a.logprob > b.logprob || (a.logprob == b.logprob && a.token < b.token);
}

// The n most likely (logit, id) of logits, best first; a bounded insertion keeps this O(n_vocab * n).
std::vector<token_logprob> top_logits(std::span<const float> logits, size_t n) {
    std::vector<token_logprob> top;
    if (n == 0) return top;
    top.reserve(n + 1);
    for (size_t i = 0; i < logits.size(); ++i) {
        const float l = logits[i];
        if (std::isnan(l)) continue;
        const token_logprob c{static_cast<token_id>(i), l};
        if (top.size() == n && !ranks_before(c, top.back())) continue;
        top.insert(std::upper_bound(top.begin(), top.end(), c, ranks_before), c);
        if (top.size() > n) top.pop_back();
    }
    return top;
}

}  // namespace

sampled_logprobs logprobs_of(std::span<const float> logits, token_id chosen, int32_t n_top) {
    constexpr float neg_inf = -std::numeric_limits<float>::infinity();
    float max = neg_inf;
    for (float l : logits)
        if (!std::isnan(l)) max = std::max(max, l);
    double sum = 0;
    if (max > neg_inf)
        for (float l : logits)
            if (!std::isnan(l)) sum += std::exp(double(l) - max);
    // log Z = max + log(sum exp(l - max)); with every logit -inf (or NaN) nothing is possible.
    const double log_z = max > neg_inf ? double(max) + std::log(sum) : std::numeric_limits<double>::infinity();
    auto logprob = [&](float l) { return std::isnan(l) ? neg_inf : static_cast<float>(double(l) - log_z); };

    sampled_logprobs out;
    out.chosen.token = chosen;
    const bool in_vocab = chosen >= 0 && static_cast<size_t>(chosen) < logits.size();
    out.chosen.logprob = in_vocab ? logprob(logits[static_cast<size_t>(chosen)]) : neg_inf;
    const size_t n = std::min<size_t>(logits.size(), static_cast<size_t>(std::clamp(n_top, 0, k_max_top_logprobs)));
    out.top = top_logits(logits, n);
    for (auto& t : out.top) t.logprob = logprob(t.logprob);
    return out;
}

}  // namespace mnemos::engine
