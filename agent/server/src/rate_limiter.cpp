// Token buckets (agent/server/rate_limiter.h).
#include "agent/server/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace mnemos::agent::server_detail {

rate_limiter::rate_limiter(clock_fn clock) : clock_(std::move(clock)) {
    if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

int64_t rate_limiter::take(const std::string& id, int32_t per_minute) {
    if (per_minute <= 0) return 0;
    const auto now = clock_();
    std::lock_guard lk(mu_);
    if (buckets_.size() > k_max_buckets) buckets_.clear();
    auto [it, fresh] = buckets_.try_emplace(id, bucket{static_cast<double>(per_minute), now});
    bucket& b = it->second;
    const double rate = per_minute / 60.0;  // tokens per second
    b.tokens = std::min<double>(per_minute, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate);
    b.last = now;
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return 0;
    }
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - b.tokens) / rate)));
}

}  // namespace mnemos::agent::server_detail
