// Log-probabilities in OpenAI's reply shapes (logprobs_json.h).
#include "agent/server/src/logprobs_json.h"

#include <cmath>

namespace mnemos::agent::server_detail {

status parse_chat_logprobs(const json& b, logprob_request& out) {
    if (auto it = b.find("logprobs"); it != b.end() && !it->is_null()) {
        if (!it->is_boolean()) return make_error(errc::invalid_argument, "'logprobs' must be a boolean");
        out.on = it->get<bool>();
    }
    if (auto it = b.find("top_logprobs"); it != b.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > engine::k_max_top_logprobs)
            return make_error(errc::invalid_argument, "'top_logprobs' must be an integer in [0, " +
                                                          std::to_string(engine::k_max_top_logprobs) + "]");
        if (!out.on) return make_error(errc::invalid_argument, "'top_logprobs' needs 'logprobs': true");
        out.top = static_cast<int32_t>(it->get<int64_t>());
    }
    return {};
}

json logprob_value(float lp) { return std::isfinite(lp) ? json(lp) : json(-9999.0); }

namespace {

std::string piece_of(const engine::tokenizer& tk, engine::token_id t) { return tk.token_to_piece(t, true); }

json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
}

json chat_entry(const engine::tokenizer& tk, const engine::token_logprob& t) {
    const std::string piece = piece_of(tk, t.token);
    return {{"token", piece}, {"logprob", logprob_value(t.logprob)}, {"bytes", bytes_of(piece)}};
}

}  // namespace

json chat_logprobs_content(const engine::tokenizer& tk, std::span<const engine::sampled_logprobs> lps) {
    json content = json::array();
    for (const auto& lp : lps) {
        if (tk.is_eog(lp.chosen.token)) continue;
        json e = chat_entry(tk, lp.chosen);
        json top = json::array();
        for (const auto& t : lp.top) top.push_back(chat_entry(tk, t));
        e["top_logprobs"] = std::move(top);
        content.push_back(std::move(e));
    }
    return content;
}

void legacy_append(legacy_logprobs& out, const engine::tokenizer& tk, engine::token_id tok,
                   const engine::sampled_logprobs* lp) {
    const std::string piece = piece_of(tk, tok);
    out.tokens.push_back(piece);
    out.text_offset.push_back(out.offset);
    out.offset += piece.size();
    if (!lp) {
        out.token_logprobs.push_back(nullptr);
        out.top_logprobs.push_back(nullptr);
        return;
    }
    out.token_logprobs.push_back(logprob_value(lp->chosen.logprob));
    json top = json::object();
    for (const auto& t : lp->top) top[piece_of(tk, t.token)] = logprob_value(t.logprob);
    out.top_logprobs.push_back(std::move(top));
}

void legacy_append_generated(legacy_logprobs& out, const engine::tokenizer& tk,
                             std::span<const engine::sampled_logprobs> lps) {
    for (const auto& lp : lps)
        if (!tk.is_eog(lp.chosen.token)) legacy_append(out, tk, lp.chosen.token, &lp);
}

json legacy_json(const legacy_logprobs& l) {
    return {{"tokens", l.tokens},
            {"token_logprobs", l.token_logprobs},
            {"top_logprobs", l.top_logprobs},
            {"text_offset", l.text_offset}};
}

}  // namespace mnemos::agent::server_detail
