#pragma once
// Byte automata for the grammar's regular parts (string patterns and formats, bounded numbers):
// an NFA builder, subset construction, products (intersection, difference), JSON-string quoting,
// and the compact table the grammar steps through.
//
// Strings are matched in their JSON-encoded form: one canonical encoding per character
// (\" \\ \n \r \t \b \f as escapes, other control characters never produced, everything else
// as raw UTF-8). Every state then lies either between characters ("boundary") or inside one,
// so a string automaton can count characters exactly.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/status.h"

namespace mnemos::engine {

// Nondeterministic automaton over bytes with epsilon moves. States inside a character are marked `mid`.
struct byte_nfa {
    struct edge {
        uint8_t lo, hi;  // byte range [lo, hi]
        int32_t to;
    };
    std::vector<std::vector<edge>> edges;   // [state]
    std::vector<std::vector<int32_t>> eps;  // [state]
    std::vector<uint8_t> mid;               // [state] inside a character

    int32_t add_state(bool in_char = false);
    void add_edge(int32_t from, uint8_t lo, uint8_t hi, int32_t to) { edges[size_t(from)].push_back({lo, hi, to}); }
    void add_eps(int32_t from, int32_t to) { eps[size_t(from)].push_back(to); }
    size_t size() const { return edges.size(); }
};

// Deterministic automaton with a full 256-byte table per state (the working form; -1 = no move).
struct raw_dfa {
    std::vector<std::array<int32_t, 256>> next;
    std::vector<uint8_t> accept;
    std::vector<uint8_t> boundary;  // between characters (a byte leaving it starts a character)
    int32_t start = 0;
    size_t size() const { return next.size(); }
};

// The compact form stepped by the grammar: bytes mapped to classes, [state * n_cls + cls] -> state.
struct byte_dfa {
    static constexpr int32_t k_unbounded = INT32_MAX;
    std::array<uint8_t, 256> cls{};
    int32_t n_cls = 0;
    std::vector<int32_t> next;
    std::vector<uint8_t> accept;
    std::vector<uint8_t> counts;      // [state] a byte leaving it (other than a closing quote) starts a character
    std::vector<int32_t> min_chars;   // [state] fewest characters still needed to reach acceptance
    std::vector<int32_t> max_chars;   // [state] most characters still possible (k_unbounded on a cycle)
    std::vector<uint8_t> final_only;  // [state] accepting with no move out
    int32_t start = 0;
    bool quoted = false;  // a whole JSON string literal, quotes included

    int32_t step(int32_t s, uint8_t b) const { return next[size_t(s) * size_t(n_cls) + cls[b]]; }
};

// Subset construction from `start`. Fails (returns false) past max_states DFA states.
bool nfa_to_dfa(const byte_nfa& n, int32_t start, int32_t accept, size_t max_states, raw_dfa& out);

enum class dfa_op { intersect, difference, unite };
// Product automaton (a op b); both must read the same encoding. Fails past max_states.
bool dfa_product(const raw_dfa& a, const raw_dfa& b, dfa_op op, size_t max_states, raw_dfa& out);

// Folds automata one by one into `acc` with `op` (the first is taken as is): the union of alternatives,
// the intersection of constraints. Errors: unsupported "<what> need too many automaton states" past
// max_states.
struct dfa_fold {
    dfa_op op;
    size_t max_states;
    const char* what;  // "the string alternatives"
    raw_dfa acc;
    bool have = false;
    status add(raw_dfa d);
};

// Removes states unreachable from the start or unable to reach acceptance. Returns false when nothing is
// accepted at all.
bool dfa_prune(raw_dfa& d);

// Wraps a string-content automaton into a whole JSON string: '"' content '"'.
raw_dfa dfa_quote(const raw_dfa& content);

// The compact table, with per-state character distances to acceptance.
byte_dfa dfa_finalize(const raw_dfa& d, bool quoted);

}  // namespace mnemos::engine
