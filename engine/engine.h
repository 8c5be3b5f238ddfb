#pragma once
// The engine: a scheduler with continuous batching over one model and one
// paged KV pool. Requests are submitted from any thread; step() (called by
// one engine thread) admits them, reuses cached prefixes, batches the decode
// tokens of every running sequence together with chunks of pending prompts
// (chunked prefill: a long prompt never stalls the others), samples, and
// streams text back through callbacks.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/attention.h"
#include "engine/forward.h"
#include "engine/grammar.h"
#include "engine/kv_cache.h"
#include "engine/logprobs.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/status.h"

namespace mnemos::engine {

struct engine_options {
    // Threads for the kernels, counting the thread that calls step().
    // Default: 0 (all hardware threads)
    int32_t n_threads = 0;
    // Longest sequence (prompt + generated) in tokens.
    // Default: 0 (the model's training context, capped at 32768)
    int32_t n_ctx = 0;
    // Byte budget of the paged KV pool.
    // Default: 0 (enough for 4 sequences of n_ctx, capped at 2 GiB, at least one n_ctx)
    size_t kv_bytes = 0;
    // Tokens per forward step over all sequences (decode tokens + prefill chunks).
    // Default: 512
    int32_t max_batch_tokens = 512;
    // Sequences running at once; more wait in the queue.
    // Default: 64
    int32_t max_seqs = 64;
    // Reuse cached KV pages of common prefixes.
    // Default: true
    bool prefix_cache = true;
    // KV admission and preemption. true: a waiting sequence starts when the pages it needs now (its prompt and
    // one more token) fit beside what the running ones need now; when running sequences grow past the pool, the
    // youngest one holding pages is preempted: its pages are copied to host memory and freed, it goes back to
    // the head of the queue and resumes, with exactly those bytes copied back, as soon as its pages fit again
    // (before anything new starts). Its output is the same as without the pause; no request fails because the
    // pool is full. Host memory held this way: at most the pages of max_seqs sequences. false: a sequence
    // starts only when its most pages (prompt + max_tokens) fit beside the running ones' most; nothing is ever
    // preempted (fewer sequences run at once).
    // Default: true
    bool preempt = true;
    // Attention beyond the window (engine/attention.h). With mode full a sequence must fit n_ctx; otherwise a
    // sequence may grow past n_ctx (up to what the pool holds) and attends sparsely beyond the budget.
    // Default: automatic, 64 sinks, 1024-token window, 32 pages
    attention_options attention;
};

enum class finish_reason { eos, stop_string, length, cancelled, error };
const char* finish_reason_name(finish_reason r);

struct finish_info {
    finish_reason reason = finish_reason::eos;
    status error;                  // set when reason == error
    int32_t n_prompt = 0;          // prompt tokens
    int32_t n_reused = 0;          // prompt tokens whose KV came from the prefix cache
    int32_t n_generated = 0;       // sampled tokens (including a final EOS)
    std::vector<token_id> tokens;  // the sampled tokens
    // With request::logprobs: one entry per sampled token, in the order of tokens (engine/logprobs.h).
    std::vector<sampled_logprobs> logprobs;
    attention_report attention;  // how the sequence attended in its last step
};

struct request {
    std::vector<token_id> prompt;  // must be non-empty
    int32_t max_tokens = 256;      // generated tokens at most (0: prefill only)
    sampler_params sampling;
    std::vector<std::string> stop;  // stop strings (never emitted)
    bool ignore_eos = false;        // keep going after an end-of-generation token
    // Log-probabilities of the sampled tokens (engine/logprobs.h): the log-softmax of the model's raw logits at
    // each position, before penalties, temperature, top-k/p and grammar masks (the model's own distribution, what
    // OpenAI clients expect), with the top_logprobs (0..k_max_top_logprobs) most likely alternatives. Reported in
    // finish_info::logprobs and, as each token is sampled, to on_logprobs. Off: no cost at all.
    // Default: false, 0
    bool logprobs = false;
    int32_t top_logprobs = 0;
    // Streamed text: complete UTF-8, stop strings held back. Called on the engine thread.
    std::function<void(token_id token, std::string_view text)> on_token;
    // With logprobs: each sampled token's log-probabilities, right after it is sampled and before its on_token
    // (whose text may be held back, so the two need not align). Called on the engine thread.
    std::function<void(const sampled_logprobs& lp)> on_logprobs;
    // Prefill progress: prompt tokens whose KV exists (reused or computed) out
    // of the prompt, after each chunk. Called on the engine thread.
    std::function<void(int32_t n_done, int32_t n_prompt)> on_prefill;
    // Exactly once, last. Called on the engine thread.
    std::function<void(const finish_info& info)> on_finish;
    // When set, the logits [n_vocab] of every computed position are reported
    // in order: the prompt positions after the reused prefix
    // (finish_info::n_reused), then one per generated token but the last.
    std::function<void(int64_t pos, std::span<const float> logits)> on_logits;
    // Reuse cached KV of a common prefix (engine_options::prefix_cache). false: every prompt position is computed,
    // so on_logits reports all of them (e.g. the log-probabilities of the prompt's own tokens).
    // Default: true
    bool reuse_prefix = true;
    // Whose KV blocks it may reuse and share (engine/types.h cache_scope). Default: no isolation.
    cache_scope scope;
    // Schema-constrained decoding (engine/grammar.h). When set, every sampled token keeps the output inside
    // the grammar and an end-of-generation token is allowed only where the document is complete; a complete
    // document that cannot continue finishes the request (reason stop_string) unless constraint_trigger is set.
    std::shared_ptr<const grammar> constraint;
    // Empty: constrained from the first generated token. Otherwise the output is free until this text appears
    // in it (e.g. "<tool_call>"), constrained from the next byte until the document is complete, then free
    // again until the next occurrence.
    std::string constraint_trigger;
};

struct engine_stats {
    int64_t n_steps = 0;
    int64_t n_prefill_tokens = 0;   // prompt tokens computed
    int64_t n_decode_tokens = 0;    // generated tokens fed back
    int64_t n_reused_tokens = 0;    // prompt tokens served by the prefix cache
    int64_t n_admission_waits = 0;  // steps in which the next waiting sequence waited for KV pages
    int64_t n_preemptions = 0;      // sequences swapped out to host memory to make room for older ones
    int64_t n_resumptions = 0;      // preempted sequences swapped back in
    int64_t n_swapped_pages = 0;    // pages copied out to host memory by preemptions
    int64_t swapped_bytes = 0;      // bytes of host memory the preempted sequences hold now
    int32_t n_running = 0;
    int32_t n_waiting = 0;
};

class engine {
  public:
    // Errors: invalid_argument (options), out_of_memory (KV pool).
    static result<std::unique_ptr<engine>> create(std::shared_ptr<const model> m, const engine_options& options = {});
    ~engine();

    // Queues a request; returns its id. Thread-safe. A malformed request
    // (empty prompt, token outside the vocabulary, too long for n_ctx)
    // finishes with reason error on the next step.
    seq_id submit(request r);
    // Finishes a request with reason cancelled at the next step. Thread-safe.
    void cancel(seq_id id);

    // Runs one scheduling step; returns false when there was nothing to do.
    bool step();
    // Steps until no request is waiting or running.
    void run_until_idle();

    const model& mdl() const { return *model_; }
    kv_cache& kv() { return *kv_; }
    // Tokens per KV page: the block size of the prefix index and of the store's block hashes.
    int32_t page_size() const { return kv_->page_size(); }
    int32_t n_ctx() const { return n_ctx_; }
    // Longest sequence accepted: n_ctx with full attention, else what the KV pool can hold.
    int32_t max_sequence_tokens() const { return max_seq_; }
    // The attention settings in force (rounded to pages, fitted to the trained context).
    const attention_options& attention() const { return attention_; }
    engine_stats stats() const;

  private:
    struct sequence;
    engine() = default;
    void admit();
    // Moves cancelled waiting sequences out of the queue, finished with reason cancelled.
    void finish_cancelled_waiting();
    // Starts a new sequence taken from the queue: validation, sampler, prefix reuse.
    void start(sequence& q);
    // Pages s needs to make its next step: its prompt (or its tokens so far) and one more token, at most
    // pages_at_most(s). The admission measure with engine_options::preempt.
    int32_t pages_now(const sequence& s) const;
    // A planned batch: the forward items, their sequences, and the batch's token budget left.
    struct batch_plan {
        std::vector<forward_item> items;
        std::vector<sequence*> owners;
        std::vector<token_id> decode_tokens;  // reserved for every running sequence: items point into it
        int32_t budget = 0;
        std::vector<int32_t> headroom;  // per item: pages its sparse layers may fetch back in the forward pass
        int64_t headroom_total = 0;     // their sum: kept free while the batch is planned
    };
    void plan_batch(batch_plan& b);
    // Reserves n more tokens for s (the sequence at running_[index]); with preempt, when the pool is full,
    // preempts younger sequences holding pages until it fits. false: s waits this step (only older sequences
    // hold pages), or failed (it alone outgrows the pool).
    bool make_room(sequence& s, size_t index, int32_t n, batch_plan& b);
    // Swaps s out to host memory and takes it out of the batch being planned (it leaves running_ afterwards).
    void preempt(sequence& s, batch_plan& b);
    // Moves the preempted sequences from running_ to the head of waiting_, oldest first.
    void requeue_preempted();
    // Swaps a preempted sequence back in and returns it to running_ in age order; false when its pages do not fit.
    bool resume(std::unique_ptr<sequence>& s);
    // The most pages s may hold at once: its prompt plus max_tokens (full attention), or the sparse resident
    // budget (sinks, window, one selection, a chunk) when that is smaller.
    int32_t pages_at_most(const sequence& s) const;
    void finish(sequence& s, finish_reason reason, status error = {});
    void emit_token(sequence& s, token_id tok);
    void advance_constraint(sequence& s, token_id tok);
    // Appends tok's log-probabilities (from raw_logits_) to s.info and reports them to on_logprobs.
    void report_logprobs(sequence& s, token_id tok);

    std::shared_ptr<const model> model_;
    engine_options opt_;
    int32_t n_ctx_ = 0;
    int32_t max_seq_ = 0;
    attention_options attention_;
    std::unique_ptr<kernels::thread_pool> pool_;
    std::unique_ptr<kv_cache> kv_;
    std::unique_ptr<forward_context> fwd_;

    mutable std::mutex inbox_mu_;                  // guards inbox_, cancels_, next_id_
    std::deque<std::unique_ptr<sequence>> inbox_;  // submitted, not yet seen by step()
    std::vector<seq_id> cancels_;
    seq_id next_id_ = 1;

    std::deque<std::unique_ptr<sequence>> waiting_;   // seen, not admitted (max_seqs or pool full)
    std::vector<std::unique_ptr<sequence>> running_;  // admitted, in prefill or decode
    std::vector<float> logits_;
    std::vector<float> raw_logits_;  // a row before the sampler's penalties, for requests with logprobs
    engine_stats stats_;
    std::unique_ptr<token_mask_builder> masks_;  // built on the first constrained request
    std::vector<uint64_t> mask_;                 // allowed tokens of the sequence being sampled
};

}  // namespace mnemos::engine
