// JSON-schema grammar compiler and matcher. Input: byte 0 = flags, then the schema text up to the
// first NUL byte, then the bytes fed to the automaton one at a time. Checked, besides "no crash":
//   - a complete document is valid JSON (nlohmann's parser);
//   - the token mask (the byte-level BPE test vocabulary) agrees with the automaton at the start, at
//     a position chosen by the input and at the end: an ordinary token is allowed exactly when the
//     state accepts its bytes; control tokens never, except end-of-generation ones exactly when the
//     document is complete;
//   - a copied state behaves as the original.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/grammar.h"
#include "engine/tokenizer.h"
#include "fuzz/vocab.h"

using namespace mnemos::engine;

namespace {

[[noreturn]] void fail(const char* what, std::string_view schema, std::string_view doc) {
    std::fprintf(stderr, "fuzz_grammar: %s\nschema: %.*s\ndocument: %.*s\n", what, int(schema.size()), schema.data(),
                 int(doc.size()), doc.data());
    std::abort();
}

struct mask_check {
    std::unique_ptr<tokenizer> tok = mnemos::fuzz::build_tokenizer(mnemos::fuzz::bpe_writer("qwen2"));
    token_mask_builder builder{*tok};
    std::vector<uint64_t> mask;

    void check(const grammar_state& s, std::string_view schema, std::string_view doc) {
        builder.fill(s, mask);
        for (token_id id = 0; id < tok->n_vocab(); ++id) {
            const bool allowed = (mask[size_t(id) / 64] >> (size_t(id) % 64)) & 1;
            bool want;
            if (tok->is_special(id)) {
                want = tok->is_eog(id) && s.is_complete();
            } else {
                const std::string& piece = builder.piece(id);
                grammar_state c = s;
                want = !piece.empty() && c.accept_bytes(piece);
            }
            if (allowed != want)
                fail(allowed ? "mask allows a token the state rejects" : "mask misses a token", schema, doc);
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static mask_check masks;
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    const size_t nul = rest.find('\0');
    const std::string_view schema = rest.substr(0, nul);
    const std::string_view doc = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);

    grammar_options o;
    if (flags & 1) {  // small caps reach the limits with short documents
        o.max_string_chars = 3;
        o.max_array_items = 2;
        o.max_any_items = 2;
        o.max_any_depth = 1;
        o.max_int_digits = 2;
        o.max_frac_digits = 2;
        o.max_exp_digits = 1;
        o.max_leading_whitespace = 2;
    }
    auto g = grammar::from_json_schema(schema, o);
    if (!g) {
        if (g.error().to_string().empty()) std::abort();
        return 0;
    }
    grammar_state s = (*g)->start();
    const bool check_masks = flags & 2;
    if (check_masks) masks.check(s, schema, doc);
    const size_t probe = doc.empty() ? 0 : (flags >> 2) * doc.size() / 63;
    size_t n = 0;
    for (; n < doc.size(); ++n) {
        if (check_masks && n == probe && n > 0) masks.check(s, schema, doc.substr(0, n));
        grammar_state copy = s;
        const bool a = s.accept_byte(static_cast<uint8_t>(doc[n]));
        if (copy.accept_byte(static_cast<uint8_t>(doc[n])) != a) fail("a copied state differs", schema, doc);
        if (!a) break;
        if (s.string_room() < -1) fail("string_room below -1", schema, doc);
    }
    if (n == doc.size()) {
        if (check_masks && n > 0) masks.check(s, schema, doc);
        if (s.is_complete()) {
            const std::string_view text = doc.substr(
                doc.find_first_not_of(" \n") == std::string_view::npos ? doc.size() : doc.find_first_not_of(" \n"));
            if (nlohmann::json::parse(text, nullptr, false).is_discarded())
                fail("a complete document is not JSON", schema, doc);
        }
        if (!s.is_complete() && !s.can_continue()) fail("a live state can neither end nor continue", schema, doc);
    }
    return 0;
}
