// The scheduler's batch planning and preemption (engine/engine.h, engine_options::preempt): when the running
// sequences outgrow the KV pool, the youngest one holding pages is swapped out to host memory and waits at the
// head of the queue; it comes back with the same bytes when its pages fit, so its output does not change.
#include <algorithm>
#include <string>

#include "engine/engine.h"
#include "engine/src/engine_sequence.h"

namespace mnemos::engine {

int32_t engine::pages_now(const sequence& s) const {
    const int64_t page = kv_->page_size();
    const int64_t tokens = std::max<int64_t>(s.kv.n_tokens, int64_t(s.req.prompt.size())) + 1;
    return static_cast<int32_t>(std::min<int64_t>(pages_at_most(s), (tokens + page - 1) / page));
}

void engine::plan_batch(batch_plan& b) {
    // Decode tokens first (one per sequence), then prompt chunks; oldest first, so the oldest always progresses.
    b.budget = opt_.max_batch_tokens;
    b.decode_tokens.reserve(running_.size());
    for (size_t i = 0; i < running_.size(); ++i) {
        sequence& s = *running_[i];
        if (s.done || s.preempted || s.pending < 0 || b.budget < 1) continue;
        if (!make_room(s, i, 1, b)) continue;
        b.decode_tokens.push_back(s.pending);
        b.items.push_back({&s.kv, std::span<const token_id>(&b.decode_tokens.back(), 1), 1});
        b.owners.push_back(&s);
        b.budget -= 1;
    }
    for (size_t i = 0; i < running_.size(); ++i) {
        sequence& s = *running_[i];
        if (s.done || s.preempted || s.pending >= 0 || s.n_done >= s.info.n_prompt || b.budget < 1) continue;
        int32_t n = std::min(b.budget, s.info.n_prompt - s.n_done);
        if (fwd_->sparse_engages(int64_t(s.kv.n_tokens) + n)) n = std::min(n, fwd_->sparse_max_chunk());
        if (opt_.preempt) {
            // A smaller chunk when that fits the free pages: nothing is preempted for a prompt that can advance.
            const int64_t page = kv_->page_size();
            const int64_t free_pages = std::max<int64_t>(0, int64_t(kv_->stats().n_free) - b.headroom_total);
            const int64_t fit = int64_t(s.kv.pages.size()) * page - s.kv.n_tokens + free_pages * page;
            if (fit >= 1) n = static_cast<int32_t>(std::min<int64_t>(n, fit));
        }
        if (!make_room(s, i, n, b)) continue;
        const bool last_chunk = s.n_done + n == s.info.n_prompt;
        const int32_t n_logits = s.req.on_logits ? n : (last_chunk ? 1 : 0);
        b.items.push_back({&s.kv, std::span<const token_id>(s.req.prompt.data() + s.n_done, n), n_logits});
        b.owners.push_back(&s);
        b.budget -= n;
    }
}

bool engine::make_room(sequence& s, size_t index, int32_t n, batch_plan& b) {
    if (!opt_.preempt) {
        if (!kv_->reserve(s.kv, n).ok()) return false;  // retried next step, after others finish
        b.headroom.push_back(0);
        return true;
    }
    // Pages the reservation takes, and for a sequence attending sparsely the pages its layers may fetch back
    // during the forward pass (up to its resident budget): both must be free beside what the sequences planned
    // before it may fetch.
    const int64_t page = kv_->page_size();
    const int64_t end = int64_t(s.kv.n_tokens) + n;
    const int64_t new_pages = std::max<int64_t>(0, (end + page - 1) / page - int64_t(s.kv.pages.size()));
    const int64_t headroom = fwd_->sparse_engages(end)
                                 ? std::max<int64_t>(0, int64_t(pages_at_most(s)) - kv_->n_resident(s.kv) - new_pages)
                                 : 0;
    auto holds_pages = [&](const sequence& r) { return !r.done && !r.preempted && kv_->n_resident(r.kv) > 0; };
    while (int64_t(kv_->stats().n_free) < new_pages + headroom + b.headroom_total) {
        sequence* victim = nullptr;
        for (size_t j = running_.size(); j-- > index + 1 && !victim;)
            if (holds_pages(*running_[j])) victim = running_[j].get();
        if (victim) {
            preempt(*victim, b);
            continue;
        }
        for (size_t j = 0; j < index; ++j)
            if (holds_pages(*running_[j])) return false;  // only older sequences hold pages: s waits for them
        finish(s, finish_reason::error,
               make_error(errc::out_of_memory,
                          "KV pool exhausted: a sequence of " + std::to_string(end) +
                              " tokens does not fit the pool of " + std::to_string(kv_->n_pages()) + " pages of " +
                              std::to_string(page) + " tokens (raise its size: kv_bytes, --kv-mb)"));
        return false;
    }
    if (!kv_->reserve(s.kv, n).ok()) return false;  // not expected: the pages were counted free
    b.headroom.push_back(static_cast<int32_t>(headroom));
    b.headroom_total += headroom;
    return true;
}

void engine::preempt(sequence& s, batch_plan& b) {
    for (size_t j = 0; j < b.owners.size();) {
        if (b.owners[j] != &s) {
            ++j;
            continue;
        }
        b.budget += static_cast<int32_t>(b.items[j].tokens.size());
        b.headroom_total -= b.headroom[j];
        b.items.erase(b.items.begin() + static_cast<std::ptrdiff_t>(j));
        b.owners.erase(b.owners.begin() + static_cast<std::ptrdiff_t>(j));
        b.headroom.erase(b.headroom.begin() + static_cast<std::ptrdiff_t>(j));
    }
    stats_.n_swapped_pages += kv_->swap_out(s.kv);
    stats_.n_preemptions++;
    s.preempted = true;
}

void engine::requeue_preempted() {
    for (auto& sp : running_) {
        if (!sp->preempted) continue;
        // Preempted sequences wait at the head of the queue in age (id) order, before anything not yet started.
        const seq_id id = sp->id;
        const auto pos =
            std::find_if(waiting_.begin(), waiting_.end(), [&](const auto& w) { return !w->preempted || w->id > id; });
        waiting_.insert(pos, std::move(sp));
    }
    running_.erase(std::remove(running_.begin(), running_.end(), nullptr), running_.end());
}

bool engine::resume(std::unique_ptr<sequence>& sp) {
    if (!kv_->swap_in(sp->kv).ok()) return false;
    sp->preempted = false;
    stats_.n_resumptions++;
    // running_ stays in age order: preemption picks its victims from the young end.
    const auto pos =
        std::upper_bound(running_.begin(), running_.end(), sp->id, [](seq_id id, const auto& r) { return id < r->id; });
    running_.insert(pos, std::move(sp));
    return true;
}

}  // namespace mnemos::engine
