// Token masks: the vocabulary trie walked together with the grammar automaton. See engine/grammar.h.
#include <algorithm>

#include "engine/src/grammar_internal.h"
#include "engine/tokenizer.h"

namespace mnemos::engine {

namespace {

// Preorder trie over ids sorted by their pieces.
template <class Node>
void build_trie(const std::vector<std::string>& pieces, std::vector<token_id> ids, std::vector<Node>& nodes,
                std::vector<token_id>& toks, size_t& max_len) {
    std::sort(ids.begin(), ids.end(),
              [&](token_id a, token_id b) { return pieces[static_cast<size_t>(a)] < pieces[static_cast<size_t>(b)]; });
    toks.reserve(ids.size());
    // ids[lo, hi) share their first `d` bytes.
    const auto build = [&](auto&& self, size_t lo, size_t hi, size_t d) -> void {
        size_t i = lo;
        while (i < hi && pieces[static_cast<size_t>(ids[i])].size() == d) ++i;  // end at the parent
        while (i < hi) {
            const uint8_t c = static_cast<uint8_t>(pieces[static_cast<size_t>(ids[i])][d]);
            size_t j = i;
            while (j < hi && static_cast<uint8_t>(pieces[static_cast<size_t>(ids[j])][d]) == c) ++j;
            const size_t idx = nodes.size();
            nodes.push_back({0, static_cast<uint32_t>(toks.size()), 0, static_cast<uint16_t>(d + 1), c});
            size_t k = i;
            while (k < j && pieces[static_cast<size_t>(ids[k])].size() == d + 1) toks.push_back(ids[k++]);
            nodes[idx].tok_end = static_cast<uint32_t>(toks.size());
            max_len = std::max(max_len, d + 1);
            self(self, i, j, d + 1);
            nodes[idx].skip = static_cast<uint32_t>(nodes.size());
            i = j;
        }
    };
    build(build, 0, ids.size(), 0);
}

}  // namespace

token_mask_builder::token_mask_builder(const tokenizer& tok) : n_vocab_(tok.n_vocab()) {
    pieces_.resize(static_cast<size_t>(n_vocab_));
    std::vector<token_id> ids;
    for (token_id i = 0; i < n_vocab_; ++i) {
        if (tok.is_eog(i)) {
            eog_.push_back(i);
            continue;
        }
        pieces_[static_cast<size_t>(i)] = tok.token_to_piece(i, /*render_special=*/false);
        if (!pieces_[static_cast<size_t>(i)].empty()) ids.push_back(i);
    }
    size_t max_len = 0;
    build_trie(pieces_, ids, nodes_, toks_, max_len);

    // Plain string text, classified by the string automaton itself.
    grammar_options o;
    o.max_string_chars = 32000;
    auto sg = grammar::from_json_schema(R"({"type":"string"})", o);
    const size_t words = (static_cast<size_t>(n_vocab_) + 63) / 64;
    plain_upto_.assign(k_max_plain_chars + 1, std::vector<uint64_t>(words, 0));
    std::vector<token_id> rest;
    grammar_state open = (*sg)->start();
    open.accept_byte('"');
    const int32_t room0 = open.string_room();
    for (token_id id : ids) {
        grammar_state s = open;
        const int32_t room = s.accept_bytes(pieces_[static_cast<size_t>(id)]) ? s.string_room() : -1;
        const int32_t n_chars = room >= 0 ? room0 - room : -1;
        if (n_chars < 1 || n_chars > k_max_plain_chars) {
            rest.push_back(id);
            continue;
        }
        for (int32_t k = n_chars; k <= k_max_plain_chars; ++k)
            plain_upto_[static_cast<size_t>(k)][static_cast<size_t>(id) / 64] |= uint64_t(1) << (id % 64);
    }
    build_trie(pieces_, rest, rest_nodes_, rest_toks_, max_len);
    scratch_.resize(max_len + 1);
}

void token_mask_builder::walk(const std::vector<trie_node>& nodes, const std::vector<token_id>& toks,
                              std::vector<uint64_t>& mask) {
    const size_t n = nodes.size();
    size_t i = 0;
    while (i < n) {
        const trie_node& tn = nodes[i];
        grammar_state& s = scratch_[tn.depth];
        s = scratch_[tn.depth - 1];
        if (!s.accept_byte(tn.byte)) {
            i = tn.skip;
            continue;
        }
        for (uint32_t k = tn.tok_begin; k < tn.tok_end; ++k) {
            const token_id t = toks[k];
            mask[static_cast<size_t>(t) / 64] |= uint64_t(1) << (t % 64);
        }
        ++i;
    }
}

void token_mask_builder::fill(const grammar_state& state, std::vector<uint64_t>& mask) {
    mask.assign((static_cast<size_t>(n_vocab_) + 63) / 64, 0);
    if (!state.ok()) return;
    if (state.is_complete())
        for (token_id t : eog_) mask[static_cast<size_t>(t) / 64] |= uint64_t(1) << (t % 64);
    if (!state.can_continue()) return;
    scratch_[0] = state;
    const int32_t room = state.string_room();
    if (room < 0) return walk(nodes_, toks_, mask);
    const auto& plain = plain_upto_[static_cast<size_t>(std::min(room, k_max_plain_chars))];
    for (size_t w = 0; w < mask.size(); ++w) mask[w] |= plain[w];
    walk(rest_nodes_, rest_toks_, mask);
}

}  // namespace mnemos::engine
