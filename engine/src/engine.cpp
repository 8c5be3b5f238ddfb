#include "engine/engine.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "engine/src/engine_sequence.h"
#include "engine/stop_matcher.h"
#include "engine/tokenizer.h"

namespace mnemos::engine {

const char* finish_reason_name(finish_reason r) {
    switch (r) {
        case finish_reason::eos:
            return "eos";
        case finish_reason::stop_string:
            return "stop";
        case finish_reason::length:
            return "length";
        case finish_reason::cancelled:
            return "cancelled";
        case finish_reason::error:
            return "error";
    }
    return "?";
}

result<std::unique_ptr<engine>> engine::create(std::shared_ptr<const model> m, const engine_options& options) {
    if (!m) return make_error(errc::invalid_argument, "engine::create: no model");
    if (options.max_batch_tokens < 1 || options.max_seqs < 1 || options.n_ctx < 0 || options.n_threads < 0)
        return make_error(errc::invalid_argument, "engine options: max_batch_tokens, max_seqs must be >= 1");
    std::unique_ptr<engine> e(new engine());
    e->model_ = std::move(m);
    e->opt_ = options;
    const hparams& hp = e->model_->hp();
    e->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : std::min(hp.n_ctx_train, 32768);

    kv_cache_options ko;
    ko.n_layer = hp.n_layer;
    ko.n_head_kv = hp.n_head_kv;
    ko.head_dim = hp.head_dim;
    ko.page_size = 16;
    ko.fingerprint = e->model_->fingerprint();
    const size_t page_bytes =
        static_cast<size_t>(hp.n_layer) * 2 * static_cast<size_t>(ko.page_size) * hp.kv_dim() * sizeof(uint16_t);
    const size_t one_seq = (static_cast<size_t>(e->n_ctx_) / ko.page_size + 2) * page_bytes;
    size_t budget = options.kv_bytes;
    if (budget == 0) budget = std::max(one_seq, std::min<size_t>(4 * one_seq, size_t(2) << 30));
    ko.max_bytes = budget;
    auto kv = kv_cache::open(ko);
    if (!kv) return kv.error();
    e->kv_ = std::move(kv.value());
    e->pool_ = std::make_unique<kernels::thread_pool>(options.n_threads);
    e->fwd_ = std::make_unique<forward_context>(*e->model_, *e->kv_, *e->pool_);
    e->attention_ = options.attention;
    e->max_seq_ = e->n_ctx_;
    if (options.attention.mode != attention_mode::full) {
        e->attention_ = e->fwd_->set_attention(options.attention, e->n_ctx_);
        // Sparse sequences keep only sinks, window and selected pages in the pool; the rest is parked in the store
        // (or the host-memory tier without one): the length is bounded by memory for summaries, not by the pool.
        e->max_seq_ = std::max(e->n_ctx_, int32_t(1) << 30);
    }
    return e;
}

engine::~engine() = default;

seq_id engine::submit(request r) {
    auto s = std::make_unique<sequence>();
    s->req = std::move(r);
    std::lock_guard<std::mutex> lock(inbox_mu_);
    s->id = next_id_++;
    const seq_id id = s->id;
    inbox_.push_back(std::move(s));
    return id;
}

void engine::cancel(seq_id id) {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    cancels_.push_back(id);
}

engine_stats engine::stats() const {
    engine_stats st = stats_;
    st.n_running = static_cast<int32_t>(running_.size());
    st.n_waiting = static_cast<int32_t>(waiting_.size());
    for (const auto& s : waiting_) st.swapped_bytes += static_cast<int64_t>(s->kv.swapped_bytes.size());
    return st;
}

void engine::finish(sequence& s, finish_reason reason, status error) {
    if (s.done) return;
    s.done = true;
    if (s.stops && s.req.on_token) {
        // Release text held back for a possible stop string or a split character.
        std::string tail = s.dec ? s.dec->flush() : std::string();
        std::string out = s.stops->stopped() ? std::string() : s.stops->push(tail) + s.stops->flush();
        if (!out.empty()) s.req.on_token(-1, out);
    }
    s.info.reason = reason;
    s.info.error = std::move(error);
    s.info.attention = fwd_->last_attention(s.kv);
    kv_->release(s.kv);
    if (s.req.on_finish) s.req.on_finish(s.info);
}

void engine::emit_token(sequence& s, token_id tok) {
    s.info.tokens.push_back(tok);
    s.info.n_generated++;
    s.history.push_back(tok);
    const tokenizer& tk = model_->tok();
    if (tk.is_eog(tok) && !s.req.ignore_eos) return finish(s, finish_reason::eos);
    const std::string text = s.stops->push(s.dec->push(tok));
    if (s.req.on_token) s.req.on_token(tok, text);
    if (s.stops->stopped()) return finish(s, finish_reason::stop_string);
    if (s.info.n_generated >= s.req.max_tokens) return finish(s, finish_reason::length);
    if (static_cast<int32_t>(s.history.size()) >= max_seq_) return finish(s, finish_reason::length);
    s.pending = tok;
}

void engine::report_logprobs(sequence& s, token_id tok) {
    s.info.logprobs.push_back(logprobs_of(raw_logits_, tok, s.req.top_logprobs));
    if (s.req.on_logprobs) s.req.on_logprobs(s.info.logprobs.back());
}

void engine::advance_constraint(sequence& s, token_id tok) {
    const tokenizer& tk = model_->tok();
    if (!s.req.constraint || tk.is_eog(tok)) return;
    if (s.gstate) {
        s.gstate->accept_bytes(masks_ ? masks_->piece(tok) : tk.token_to_piece(tok, false));  // allowed by the mask
        if (s.gstate->is_complete() && !s.gstate->can_continue()) {
            s.gstate.reset();
            if (s.req.constraint_trigger.empty()) s.grammar_done = true;
        }
        return;
    }
    const std::string& trig = s.req.constraint_trigger;
    if (trig.empty()) return;
    s.trigger_tail += tk.token_to_piece(tok, /*render_special=*/true);
    const size_t p = s.trigger_tail.find(trig);
    if (p == std::string::npos) {
        if (s.trigger_tail.size() > trig.size()) s.trigger_tail.erase(0, s.trigger_tail.size() - trig.size());
        return;
    }
    const std::string rest = s.trigger_tail.substr(p + trig.size());
    s.trigger_tail.clear();
    s.gstate = s.req.constraint->start();
    // Bytes after the trigger in the same token: when the grammar rejects them the output stays free.
    if (!rest.empty() && !s.gstate->accept_bytes(rest)) s.gstate.reset();
}

int32_t engine::pages_at_most(const sequence& s) const {
    const int64_t page = kv_->page_size();
    const int64_t max_tokens = std::max<int64_t>(0, s.req.max_tokens);
    const int64_t end = std::min<int64_t>(int64_t(s.req.prompt.size()) + max_tokens + 1, max_seq_);
    int64_t pages = (end + page - 1) / page;
    // A sparse sequence keeps its sinks, window, one layer's selection and a chunk in flight resident.
    if (fwd_->sparse_engages(end)) {
        const int64_t resident = (int64_t(attention_.n_sink) + attention_.n_window + fwd_->sparse_max_chunk()) / page +
                                 attention_.n_pages + 2;
        pages = std::min(pages, resident);
    }
    return static_cast<int32_t>(pages);
}

void engine::admit() {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        while (!inbox_.empty()) {
            waiting_.push_back(std::move(inbox_.front()));
            inbox_.pop_front();
        }
        for (seq_id id : cancels_) {
            for (auto& s : waiting_)
                if (s->id == id) s->cancelled = true;
            for (auto& s : running_)
                if (s->id == id) s->cancelled = true;
        }
        cancels_.clear();
    }
    finish_cancelled_waiting();
    // The KV measure of admission: with preempt what each sequence needs now (growth past the pool preempts),
    // else the most it may ever hold (the pool can never run out).
    auto need = [&](const sequence& s) { return opt_.preempt ? pages_now(s) : pages_at_most(s); };
    int32_t committed = 0;  // pages the running sequences need
    for (const auto& r : running_)
        if (!r->done) committed += need(*r);
    while (!waiting_.empty() && static_cast<int32_t>(running_.size()) < opt_.max_seqs) {
        // Admission by KV budget, in order (preempted sequences first): a sequence starts only when its pages fit
        // beside those of the running ones; it waits otherwise (never fails for a full pool while others can
        // finish). One that would not fit an empty pool starts alone when nothing runs (and fails there if it
        // must).
        const int32_t n = need(*waiting_.front());
        if (committed > 0 && committed + n > kv_->n_pages()) {
            stats_.n_admission_waits++;
            break;
        }
        if (waiting_.front()->preempted) {
            if (!resume(waiting_.front())) {
                stats_.n_admission_waits++;
                break;
            }
            waiting_.pop_front();
            committed += n;
            continue;
        }
        committed += n;
        std::unique_ptr<sequence> s = std::move(waiting_.front());
        waiting_.pop_front();
        sequence& q = *s;
        running_.push_back(std::move(s));
        start(q);
    }
}

void engine::finish_cancelled_waiting() {
    for (auto& s : waiting_) {
        if (!s->cancelled) continue;
        s->info.n_prompt = static_cast<int32_t>(s->req.prompt.size());
        finish(*s, finish_reason::cancelled);
    }
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), [](const auto& s) { return s->done; }),
                   waiting_.end());
}

void engine::start(sequence& q) {
    const int32_t n_vocab = model_->hp().n_vocab;
    q.info.n_prompt = static_cast<int32_t>(q.req.prompt.size());
    if (q.req.prompt.empty())
        return finish(q, finish_reason::error, make_error(errc::invalid_argument, "empty prompt"));
    if (q.info.n_prompt >= max_seq_) {
        const std::string limit =
            max_seq_ > n_ctx_ ? " tokens the KV pool holds (raise its size: kv_bytes, --kv-mb)" : " tokens";
        return finish(q, finish_reason::error,
                      make_error(errc::invalid_argument, "prompt of " + std::to_string(q.info.n_prompt) +
                                                             " tokens does not fit the context of " +
                                                             std::to_string(max_seq_) + limit));
    }
    const auto bad =
        std::find_if(q.req.prompt.begin(), q.req.prompt.end(), [&](token_id t) { return t < 0 || t >= n_vocab; });
    if (bad != q.req.prompt.end())
        return finish(
            q, finish_reason::error,
            make_error(errc::invalid_argument, "prompt token " + std::to_string(*bad) + " is outside the vocabulary"));
    q.smp = std::make_unique<sampler>(q.req.sampling);
    q.dec = std::make_unique<stream_decoder>(model_->tok());
    q.stops = std::make_unique<stop_matcher>(q.req.stop);
    q.history = q.req.prompt;
    if (q.req.constraint && q.req.constraint_trigger.empty()) q.gstate = q.req.constraint->start();
    q.kv.scope = q.req.scope;
    if (opt_.prefix_cache && q.req.reuse_prefix) {
        // A long history: what the first step will not need stays parked (or is parked once read).
        kv_cache::match_hooks hooks;
        if (fwd_->sparse_engages(q.info.n_prompt)) hooks = fwd_->sparse_resume_hooks(q.kv, q.req.prompt);
        q.n_done = kv_->match_prefix(q.kv, q.req.prompt, hooks);
        q.info.n_reused = q.n_done;
        stats_.n_reused_tokens += q.n_done;
    }
}

bool engine::step() {
    admit();
    // Drop finished sequences; cancel the ones asked for.
    for (auto& s : running_)
        if (s->cancelled && !s->done) finish(*s, finish_reason::cancelled);
    running_.erase(std::remove_if(running_.begin(), running_.end(), [](const auto& s) { return s->done; }),
                   running_.end());
    if (running_.empty()) return !waiting_.empty();

    batch_plan plan;
    plan_batch(plan);
    requeue_preempted();
    const std::vector<forward_item>& items = plan.items;
    const std::vector<sequence*>& owners = plan.owners;
    if (items.empty()) {
        if (!running_.empty() && !opt_.preempt) {
            // Nothing fits in the pool: fail the youngest sequence rather than hang.
            finish(*running_.back(), finish_reason::error,
                   make_error(errc::out_of_memory, "KV pool exhausted (" + std::to_string(kv_->n_pages()) + " pages)"));
        }
        return true;
    }

    status st = fwd_->run(items, logits_);
    stats_.n_steps++;
    if (!st.ok()) {
        for (sequence* s : owners) finish(*s, finish_reason::error, st);
        return true;
    }

    const int32_t V = model_->hp().n_vocab;
    size_t row = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        sequence& s = *owners[i];
        const forward_item& it = items[i];
        const int32_t n = static_cast<int32_t>(it.tokens.size());
        const bool decoding = s.pending >= 0;
        if (decoding) {
            stats_.n_decode_tokens += 1;
            s.pending = -1;
        } else {
            stats_.n_prefill_tokens += n;
            s.n_done += n;
            if (s.req.on_prefill) s.req.on_prefill(s.n_done, s.info.n_prompt);
        }
        // Positions of the logits rows: the last n_logits tokens of this item.
        const int64_t first_pos = s.kv.n_tokens - it.n_logits;
        for (int32_t j = 0; j < it.n_logits; ++j) {
            std::span<float> lg(logits_.data() + (row + j) * V, V);
            if (s.req.on_logits) s.req.on_logits(first_pos + j, lg);
        }
        if (it.n_logits > 0 && !s.done && !s.cancelled && (decoding || s.n_done == s.info.n_prompt)) {
            std::span<float> lg(logits_.data() + (row + it.n_logits - 1) * V, V);
            if (s.req.max_tokens <= 0) {
                finish(s, finish_reason::length);
            } else {
                const uint64_t* allowed = nullptr;
                if (s.gstate) {
                    if (!masks_) masks_ = std::make_unique<token_mask_builder>(model_->tok());
                    masks_->fill(*s.gstate, mask_);
                    allowed = mask_.data();
                }
                // The sampler changes lg in place (penalties): the raw row is kept for the log-probabilities.
                if (s.req.logprobs) raw_logits_.assign(lg.begin(), lg.end());
                const token_id tok = s.smp->sample(lg, s.history, allowed);
                if (s.req.logprobs && tok >= 0) report_logprobs(s, tok);
                if (tok < 0) {
                    finish(s, finish_reason::error, make_error(errc::internal, "no token is allowed by the grammar"));
                } else {
                    advance_constraint(s, tok);
                    emit_token(s, tok);
                    if (s.grammar_done) finish(s, finish_reason::stop_string);
                }
            }
        }
        row += it.n_logits;
    }
    return true;
}

void engine::run_until_idle() {
    while (step()) {
    }
}

}  // namespace mnemos::engine
