#pragma once
// Token buckets per caller (an API key, or a client address under open access): server_options::
// requests_per_minute and api_key::requests_per_minute. A bucket holds up to per_minute tokens (bursts)
// and refills at per_minute / 60 tokens per second. The clock is injectable so tests can move time.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace mnemos::agent::server_detail {

class rate_limiter {
  public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

    // clock: the time source. Default (empty): std::chrono::steady_clock::now.
    explicit rate_limiter(clock_fn clock = {});

    // One request of caller id: 0 when it may go now (it takes a token), else the whole seconds (>= 1)
    // until a token is back; a refused request takes nothing. per_minute <= 0: unlimited (always 0).
    // A new id starts with a full bucket. Thread-safe.
    int64_t take(const std::string& id, int32_t per_minute);

  private:
    struct bucket {
        double tokens = 0;
        std::chrono::steady_clock::time_point last;  // when tokens was last refilled
    };
    // Under open access every client address gets a bucket: past this many they are all forgotten.
    static constexpr size_t k_max_buckets = 100000;

    clock_fn clock_;
    std::mutex mu_;  // guards buckets_
    std::map<std::string, bucket> buckets_;
};

}  // namespace mnemos::agent::server_detail
