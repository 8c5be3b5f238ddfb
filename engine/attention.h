#pragma once
// Attention over histories longer than the model's window (sparse attention).
//
// A sequence whose history exceeds its attention budget attends, in every
// layer, to its first pages (attention sinks), its most recent tokens (the
// window) and the k older pages whose key summaries promise the highest
// scores for the current queries (chosen per layer, once per
// decode step or prefill chunk). Pages keep their keys as written; the runs
// are re-positioned inside the model's trained window by turning the query
// of each run by the run's position delta (exact up to float rounding), so
// no key is rewritten and chained block hashes keep identifying blocks.
// A sequence within the budget gets full attention, bit-identical to an
// engine without this feature.
#include <cstdint>
#include <string_view>

namespace mnemos::engine {

enum class attention_mode {
    full,       // every query attends to every earlier token; sequences must fit n_ctx
    sparse,     // sparse as soon as a sequence exceeds the budget (sinks + window + pages)
    automatic,  // full attention within n_ctx, sparse beyond it
};
const char* attention_mode_name(attention_mode m);
// "full" | "sparse" | "auto"; false on anything else.
bool parse_attention_mode(std::string_view s, attention_mode* out);

struct attention_options {
    // Default: automatic
    attention_mode mode = attention_mode::automatic;
    // Tokens at the start of the history every query attends to (rounded up to whole pages).
    // Default: 64
    int32_t n_sink = 64;
    // Most recent tokens every query attends to (rounded up to whole pages; at least two pages). Prefill chunks of
    // a sparse sequence are at most half of it.
    // Default: 1024
    int32_t n_window = 1024;
    // Older pages selected per query and layer (0: sinks and window only, as StreamingLLM).
    // Default: 32
    int32_t n_pages = 32;
    // One selection per layer for all its KV heads (a page's score: the best of the heads') instead of one per
    // KV head. Measured (bench_long_context --approx): as close to full attention (KL within noise, often
    // lower) with n_head_kv times fewer pages to hold and read per step; per-head selections of a many-layer
    // model outgrow the pool's cache and are read back from the store every step.
    // Default: true
    bool shared_selection = true;

    // Tokens one sparse query attends to at most: sinks + window + selected pages.
    int32_t budget(int32_t page_size) const { return n_sink + n_window + n_pages * page_size; }
};

// What the last step of a sequence did (for reports such as mnemos.context).
struct attention_report {
    bool sparse = false;  // the last step attended sparsely
    int32_t n_sink = 0;   // effective settings (after rounding and fitting the trained window)
    int32_t n_window = 0;
    int32_t n_pages = 0;
    int32_t n_pages_resident = 0;  // pages of the sequence in the pool after the step
    int64_t n_pages_loaded = 0;    // pages brought back into the pool for this sequence (whole request)
};

}  // namespace mnemos::engine
