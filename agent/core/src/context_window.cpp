// turn_plan, fit_to_window, context_window (agent/core/context_window.h).
#include "agent/core/context_window.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mnemos::agent {

using json = nlohmann::json;

void finish_turn_plan(const engine::model& m, bool first_is_system, turn_plan& plan) {
    const auto& tok = m.tok();
    const auto gen = tok.encode(m.chat().generation_prompt(), plan.prompt.empty() && tok.add_bos_default(), true);
    plan.prompt.insert(plan.prompt.end(), gen.begin(), gen.end());
    plan.stop = m.chat().stop_strings();
    if (first_is_system && !plan.message_starts.empty())
        plan.n_first =
            plan.message_starts.size() > 1 ? plan.message_starts[1] : static_cast<int32_t>(plan.prompt.size());
    else
        plan.n_first = !plan.prompt.empty() && tok.bos() >= 0 && plan.prompt[0] == tok.bos() ? 1 : 0;
}

turn_plan plan_for_messages(const engine::model& m, std::span<const engine::chat_message> messages) {
    turn_plan plan;
    const auto& tok = m.tok();
    for (size_t i = 0; i < messages.size(); ++i) {
        plan.message_starts.push_back(static_cast<int32_t>(plan.prompt.size()));
        const auto t = m.chat().encode_message(tok, messages, i, plan.prompt.empty() && tok.add_bos_default());
        plan.prompt.insert(plan.prompt.end(), t.begin(), t.end());
    }
    finish_turn_plan(m, !messages.empty() && messages[0].role == "system", plan);
    return plan;
}

json context_window_json(const context_window& c) {
    json j = {{"truncated", c.truncated},
              {"n_kept_first", c.n_kept_first},
              {"n_dropped", c.n_dropped},
              {"n_kept_recent", c.n_kept_recent},
              {"attention", c.sparse ? "sparse" : "full"}};
    if (c.sparse) {
        j["sink_tokens"] = c.n_sink;
        j["window_tokens"] = c.n_window;
        j["pages_per_query"] = c.n_pages;
        j["pages_resident"] = c.n_pages_resident;
        j["pages_loaded"] = c.n_pages_loaded;
    }
    return j;
}

void note_attention(context_window& c, const engine::attention_report& r) {
    if (!r.sparse) return;
    c.sparse = true;
    c.n_sink = r.n_sink, c.n_window = r.n_window, c.n_pages = r.n_pages;
    c.n_pages_resident = r.n_pages_resident;
    c.n_pages_loaded = r.n_pages_loaded;
}

status fit_to_window(turn_plan& plan, int32_t n_ctx, int32_t reserve, int32_t page_size) {
    const int32_t n_prompt = static_cast<int32_t>(plan.prompt.size());
    reserve = std::clamp(reserve, 1, std::max(1, n_ctx / 2));
    plan.context = {};
    plan.context.n_kept_recent = n_prompt;
    if (n_prompt + reserve <= n_ctx) return {};
    const int32_t budget = n_ctx - reserve;  // prompt tokens we may keep
    const int32_t page = std::max(1, page_size);
    // The first block: the system message (its KV is shared and cached), kept whole: a message is never cut.
    const int32_t first = std::clamp(plan.n_first, 0, n_prompt);
    const int32_t recent_budget = budget - first;
    const int32_t min_cut = n_prompt - recent_budget;  // the earliest token that must still be kept
    if (recent_budget < page || min_cut <= first)
        return make_error(errc::context_exceeded, "the window holds " + std::to_string(n_ctx) +
                                                      " tokens, too few to keep a prompt of " +
                                                      std::to_string(n_prompt) + " and reply");
    // The cut sits on a coarse grid anchored at `first`, so it stays put while the history grows by a step.
    const int32_t step = std::max(page, recent_budget / 4 / page * page);
    int32_t cut = first + (min_cut - first + step - 1) / step * step;
    // Prefer a message start within half a step after the grid point (fixed tokens: stable across turns).
    auto it = std::lower_bound(plan.message_starts.begin(), plan.message_starts.end(), cut);
    if (it != plan.message_starts.end() && *it < cut + step / 2 && *it < n_prompt) cut = *it;
    // Old history is dropped, never part of the newest message.
    if (cut >= n_prompt || (!plan.message_starts.empty() && cut > plan.message_starts.back()))
        return make_error(errc::context_exceeded, "the last message does not fit in the " + std::to_string(n_ctx) +
                                                      "-token window with room for a reply");
    std::vector<engine::token_id> kept(plan.prompt.begin(), plan.prompt.begin() + first);
    kept.insert(kept.end(), plan.prompt.begin() + cut, plan.prompt.end());
    plan.prompt = std::move(kept);
    std::vector<int32_t> starts;
    for (int32_t st : plan.message_starts) {
        if (st < first)
            starts.push_back(st);
        else if (st >= cut)
            starts.push_back(st - cut + first);
    }
    plan.message_starts = std::move(starts);
    plan.n_first = first;
    plan.context = {true, first, cut - first, n_prompt - cut};
    return {};
}

}  // namespace mnemos::agent
