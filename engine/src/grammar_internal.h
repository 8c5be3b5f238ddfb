#pragma once
// The compiled grammar's tables, shared by the compiler (grammar.cpp), the automaton
// (grammar_automaton.cpp) and the token mask builder (grammar_mask.cpp).
//
// Nodes (one per compiled schema):
//   string  a = minLength, b = maxLength (characters)
//   number  a = 1 for integer
//   literal a = trie of JSON-encoded literals (enum, const, true, false, null)
//   array   a = item node (-1: none after the prefix), b = minItems, c = maxItems, prefix = prefixItems nodes
//   object  a = object group (alternatives, keys, value nodes)
//   map     a = value node, b = key node (a string), c = most members, d = fewest members (an object
//           without "properties")
//   dfa     a = byte automaton (grammar::dfas_); quoted strings: b = minLength, c = maxLength (characters)
//   any_of  dispatch[first byte] -> node
//   lead    a = the document's node, b = most leading spaces/newlines (the root when max_leading_whitespace > 0)
//
// Frames (grammar_frame) keep each node's position: phase, counters, the trie
// node of a literal or key, and for objects the live alternatives and the keys
// seen. A byte goes to the top frame, which consumes it, rejects it, or asks to
// retry it after pushing a child, popping itself (a number or literal ends at the
// first byte that cannot continue it), or resolving an any_of.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/grammar.h"
#include "engine/src/grammar_dfa.h"

namespace mnemos::engine {

enum class node_kind : uint8_t { string, number, literal, array, object, map, any_of, lead, dfa };

struct grammar::node {
    node_kind kind = node_kind::string;
    int32_t a = 0, b = 0, c = 0, d = 0;
    std::vector<int32_t> dispatch;  // any_of: [256]
    std::vector<int32_t> prefix;    // array: prefixItems
};

struct grammar::trie {
    struct tnode {
        std::vector<std::pair<uint8_t, int32_t>> next;
        int32_t terminal = -1;  // literal index ending here
        uint64_t keys = 0;      // literals (< 64) in this subtree
    };
    std::vector<tnode> nodes;  // [0] root
    std::vector<std::string> literals;

    int32_t child(int32_t n, uint8_t b) const {
        for (const auto& [c, i] : nodes[static_cast<size_t>(n)].next)
            if (c == b) return i;
        return -1;
    }
};

struct grammar::obj_group {
    struct alt {
        uint64_t has = 0;        // keys it declares
        uint64_t required = 0;   // keys it requires
        int32_t min_props = 0;   // minProperties
        int32_t max_props = 64;  // maxProperties
    };
    std::vector<std::string> keys;
    int32_t key_trie = 0;
    std::vector<alt> alts;
    uint32_t init_live = 0;      // alternatives possible at '{' (those not cut by a bounded recursion)
    std::vector<int32_t> value;  // [key] value node, shared by the alternatives; -1: see value_per_alt
    // [key][alt] value node when the alternatives' schemas for a key differ (not by enum/const only): the key
    // is allowed only once the live alternatives agree on it (an earlier discriminating key decided).
    std::vector<std::vector<int32_t>> value_per_alt;
    uint64_t per_alt_keys = 0;  // keys with value_per_alt
    // [key][alt]: which literals (bit per literal, at most 64) of a discriminating key's union-literal value
    // each alternative accepts; empty when the alternatives share the key's schema.
    std::vector<std::vector<uint64_t>> accept;
};

}  // namespace mnemos::engine
