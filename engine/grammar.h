#pragma once
// Schema-constrained decoding: a JSON Schema (a subset) compiled into a
// deterministic pushdown automaton over bytes, and a token mask builder that
// walks a trie of the vocabulary's token bytes together with the automaton
// (state copied along the walk, subtrees pruned at the first rejected byte).
//
// Supported schema subset (engine/src/grammar_schema_*.cpp, grammar_regex*.cpp):
//   type: object, array, string, number, integer, boolean, null, or a list of them.
//   object: properties, required, minProperties, maxProperties; additionalProperties false (implied when
//     there are properties; additionalProperties true or a schema beside properties is read as false:
//     only the declared keys are written, a conservative choice); without properties, additionalProperties
//     (a schema) and propertyNames (a string schema) make a map.
//   array: items, prefixItems (and draft-7 items as an array with additionalItems), minItems, maxItems.
//   string: minLength, maxLength, pattern (ECMAScript subset, see grammar_regex.h), format (date, time,
//     date-time, uuid, email, ipv4, uri; see grammar_schema_string.cpp for which are exact).
//   number, integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf (integers), enforced
//     by the automaton (see grammar_schema_scalar.h for what is exact and what is conservative).
//   enum, const of any JSON values; anyOf, oneOf (as anyOf: exact when the alternatives are disjoint);
//   allOf (merged); $ref to "#..." JSON pointers with $defs/definitions, recursion unrolled
//   grammar_options::max_recursion levels (see grammar_schema_normalize.h); {} and true (any JSON value).
//   Ignored annotations: description, title, default, examples, deprecated, readOnly, writeOnly, $schema,
//   $id, $comment. Any other keyword is an error naming it and its path.
// anyOf alternatives are told apart by their first byte; several object alternatives are merged and told
// apart by their keys and by enum/const values of shared keys; number alternatives (and string
// alternatives with pattern or format) are united into one automaton.
//
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "engine/types.h"

namespace mnemos::engine {

class tokenizer;

struct grammar_options {
    // Longest string (in characters) when the schema gives no maxLength; also caps maxLength.
    // Default: 256
    int32_t max_string_chars = 256;
    // Most items of an array when the schema gives no maxItems; also caps maxItems.
    // Default: 32
    int32_t max_array_items = 32;
    // Most members of an object or items of an array inside an "any JSON value" ({}).
    // Default: 16
    int32_t max_any_items = 16;
    // Nesting levels of objects/arrays inside an "any JSON value"; deeper only scalars.
    // Default: 3
    int32_t max_any_depth = 3;
    // Digits of the integer part, the fraction and the exponent of a number (two exponent digits keep every
    // number within a double's range).
    // Default: 15, 15, 2
    int32_t max_int_digits = 15;
    int32_t max_frac_digits = 15;
    int32_t max_exp_digits = 2;
    // Spaces or newlines allowed before the document (e.g. the "\n" models write after "<tool_call>").
    // Default: 0
    int32_t max_leading_whitespace = 0;
    // Times a $ref may be expanded inside itself (recursive schemas); deeper, the recursion is cut (an array
    // of it stays empty, an optional property of it is left out).
    // Default: 8
    int32_t max_recursion = 8;
};

class grammar_state;
struct byte_dfa;

// An immutable compiled grammar; share it between requests (thread-safe to read).
class grammar {
  public:
    // Compiles a JSON Schema. Errors: invalid_argument when the text is not JSON or a keyword has a value
    // of the wrong kind; unsupported for a keyword outside the subset (or anyOf alternatives that cannot
    // be told apart). Messages name the keyword and the path ("#/properties/args/items: ...").
    static result<std::shared_ptr<const grammar>> from_json_schema(std::string_view schema_json,
                                                                   const grammar_options& options = {});
    // The initial state (nothing consumed). The grammar must outlive the state.
    grammar_state start() const;

    struct node;       // compiled schema node (grammar.cpp)
    struct trie;       // literal/key byte trie (grammar.cpp)
    struct obj_group;  // object alternatives (grammar.cpp)
    ~grammar();

  private:
    friend class grammar_state;
    friend struct grammar_builder;
    friend struct grammar_ops;
    grammar();
    std::vector<node> nodes_;         // compiled schema nodes
    std::vector<trie> tries_;         // literal sets and key sets
    std::vector<obj_group> objects_;  // object groups
    std::vector<byte_dfa> dfas_;      // patterns, formats, bounded numbers
    grammar_options opt_;
    int32_t root_ = 0;  // node of the whole document
};

// One frame of the automaton's stack (plain data; see grammar.cpp for the meaning of the fields).
struct grammar_frame {
    uint64_t seen = 0;       // object: keys seen (bit per key of the group)
    uint32_t live = 0;       // object: alternatives still possible
    int32_t pos = 0;         // literal/key trie node; array/string/number counters
    int32_t node = 0;        // grammar node index
    int16_t count = 0;       // items, characters
    int16_t key = -1;        // object: current key index
    uint8_t phase = 0;       // where in the node's syntax
    uint8_t sub = 0;         // string: UTF-8/escape state; number: digits in the current part
    uint8_t lo = 0, hi = 0;  // string: range of the next UTF-8 continuation byte
};

// The automaton's position in a document. Cheap to copy (only the frames in use are copied).
class grammar_state {
  public:
    static constexpr int k_max_depth = 32;

    grammar_state() = default;
    grammar_state(const grammar_state& o) { *this = o; }
    grammar_state& operator=(const grammar_state& o);

    // Consumes bytes. Returns true when all were accepted; on false the state is unusable
    // (copy it first to test bytes without committing).
    bool accept_bytes(std::string_view bytes);
    bool accept_byte(uint8_t b);
    // The bytes so far form a complete document (an end of generation may come now).
    bool is_complete() const;
    // Some byte can still be consumed.
    bool can_continue() const;
    // Nothing has been rejected so far.
    bool ok() const { return g_ != nullptr; }
    // Inside a string between characters (not in an escape or a UTF-8 sequence): how many more characters
    // it may take; -1 elsewhere. Lets token_mask_builder skip the trie walk for plain text tokens.
    int32_t string_room() const;

  private:
    friend class grammar;
    friend struct grammar_ops;
    const grammar* g_ = nullptr;
    int32_t depth_ = 0;
    std::array<grammar_frame, k_max_depth> f_;
};

// The allowed-token mask for a grammar state. The vocabulary trie is built once per tokenizer.
// Control and unknown tokens (and tokens with no bytes) are never allowed; end-of-generation
// tokens are allowed exactly when the state is complete.
class token_mask_builder {
  public:
    explicit token_mask_builder(const tokenizer& tok);
    // mask: resized to (n_vocab + 63) / 64 words; bit i set <=> token i may come next.
    // Not reentrant (uses scratch space): one builder per thread.
    void fill(const grammar_state& state, std::vector<uint64_t>& mask);
    // Bytes of a token as the grammar sees them (empty: never allowed).
    const std::string& piece(token_id id) const { return pieces_[static_cast<size_t>(id)]; }
    int32_t n_vocab() const { return n_vocab_; }
    size_t n_trie_nodes() const { return nodes_.size(); }

  private:
    struct trie_node {
        uint32_t skip;       // index just past this node's subtree
        uint32_t tok_begin;  // tokens ending here: toks_[tok_begin, tok_end)
        uint32_t tok_end;
        uint16_t depth;  // bytes from the root (1 for the first byte)
        uint8_t byte;
    };
    static constexpr int32_t k_max_plain_chars = 16;
    void walk(const std::vector<trie_node>& nodes, const std::vector<token_id>& toks, std::vector<uint64_t>& mask);

    int32_t n_vocab_ = 0;
    std::vector<std::string> pieces_;  // per token
    std::vector<trie_node> nodes_;     // preorder, every token with bytes
    std::vector<token_id> toks_;
    // Inside a string: plain_upto_[k] has the tokens that are plain string text (no quote, backslash or control
    // byte; whole UTF-8 characters) of 1..k characters, k <= k_max_plain_chars; the trie rest_nodes_ holds
    // all other tokens, walked as usual.
    std::vector<std::vector<uint64_t>> plain_upto_;
    std::vector<trie_node> rest_nodes_;
    std::vector<token_id> rest_toks_;
    std::vector<token_id> eog_;           // end-of-generation tokens
    std::vector<grammar_state> scratch_;  // [depth] states along the walk
};

}  // namespace mnemos::engine
