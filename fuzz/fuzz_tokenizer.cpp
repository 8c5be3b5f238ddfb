// Tokenizers: encode/decode of arbitrary bytes on tokenizers built once from small in-memory
// vocabularies (the SentencePiece and byte-level BPE vocabs of tests/engine/test_tokenizer.cpp,
// with each supported pre-tokenizer), plus ../shared/models/vocab-*.gguf when present.
//
// Input: byte 0 picks the tokenizer, byte 1 the flags, the rest is the text (or, with the "ids"
// flag, little-endian int32 token ids, in or out of range). Checked, besides "no crash":
//   - every id encode() returns is in the vocabulary;
//   - tiny vocabs: decode(encode(x)) == x (byte-level BPE: valid UTF-8 x; SPM: any x without "▁"
//     or the user-defined "[GO]"), without BOS and without special-token parsing;
//   - tiny vocabs: encode of two segments equals encode of their concatenation when every special
//     token text lies inside the segment that parses specials (engine/tokenizer.h);
//   - stream_decoder output is always valid UTF-8, and for byte-level BPE it equals decode()
//     whenever decode() is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "fuzz/vocab.h"

using namespace mnemos::engine;
using mnemos::fuzz::bpe_writer;
using mnemos::fuzz::gguf_writer;
using mnemos::fuzz::spm_writer;

namespace {

struct vocab {
    std::unique_ptr<tokenizer> tok;
    bool tiny = false;
    std::vector<std::string> specials;  // texts of control / user-defined / unknown tokens (tiny vocabs)
};

std::vector<vocab> make_vocabs() {
    std::vector<vocab> v;
    std::vector<gguf_writer> tiny = {spm_writer()};
    for (const char* pre : {"default", "gpt-2", "llama3", "qwen2", "smollm", "deepseek-llm"})
        tiny.push_back(bpe_writer(pre));
    for (const gguf_writer& w : tiny) {
        vocab x;
        x.tok = mnemos::fuzz::build_tokenizer(w);
        if (!x.tok) {
            std::fprintf(stderr, "fuzz_tokenizer: a test vocabulary does not load\n");
            std::abort();
        }
        x.tiny = true;
        for (token_id id = 0; id < x.tok->n_vocab(); ++id)
            if (x.tok->is_special(id)) x.specials.push_back(x.tok->token_text(id));
        v.push_back(std::move(x));
    }
    // Real vocabularies when the workspace has them (MNEMOS_FUZZ_VOCAB_DIR overrides the folder).
    const char* env = std::getenv("MNEMOS_FUZZ_VOCAB_DIR");
    const std::string dir = env ? env : std::string(MNEMOS_SHARED_DIR) + "/models";
    for (const char* name : {"vocab-gpt-2.gguf", "vocab-llama-spm.gguf", "vocab-phi-3.gguf", "vocab-smollm2.gguf",
                             "vocab-deepseek-llm.gguf"}) {
        const std::string path = dir + "/" + name;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) continue;
        auto f = gguf_file::open(path);
        if (!f) continue;
        auto t = tokenizer::from_gguf(**f);
        if (!t) continue;
        vocab x;
        x.tok = std::move(t).value();
        v.push_back(std::move(x));
    }
    return v;
}

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const uint8_t b0 = static_cast<uint8_t>(s[i]);
        size_t n = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b0 < 0x80) {
            ++i;
            continue;
        } else if (b0 >= 0xC2 && b0 <= 0xDF) {
            n = 2;
        } else if (b0 >= 0xE0 && b0 <= 0xEF) {
            n = 3;
            if (b0 == 0xE0) lo = 0xA0;
            if (b0 == 0xED) hi = 0x9F;
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            n = 4;
            if (b0 == 0xF0) lo = 0x90;
            if (b0 == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k) {
            const uint8_t b = static_cast<uint8_t>(s[i + k]);
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
        }
        i += n;
    }
    return true;
}

[[noreturn]] void fail(const char* what, std::string_view text) {
    std::fprintf(stderr, "fuzz_tokenizer: %s (input %zu bytes)\n", what, text.size());
    std::abort();
}

void check_stream(const tokenizer& t, const std::vector<token_id>& ids, bool render_special) {
    stream_decoder d(t, render_special);
    std::string streamed;
    for (token_id id : ids) streamed += d.push(id);
    streamed += d.flush();
    if (!valid_utf8(streamed)) fail("stream_decoder wrote invalid UTF-8", streamed);
    if (t.is_byte_level()) {
        const std::string whole = t.decode(ids, render_special);
        if (valid_utf8(whole) && whole != streamed) fail("stream_decoder differs from decode()", whole);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<vocab> vocabs = make_vocabs();
    if (size < 2) return 0;
    const vocab& v = vocabs[data[0] % vocabs.size()];
    const tokenizer& t = *v.tok;
    const uint8_t flags = data[1];
    const bool add_bos = flags & 1, parse_special = flags & 2, render_special = flags & 4, ids_mode = flags & 8;
    const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

    if (ids_mode) {
        std::vector<token_id> ids(text.size() / 4);
        if (!ids.empty()) std::memcpy(ids.data(), text.data(), ids.size() * 4);
        // Mostly in range, sometimes not (the high bit of the flags keeps them raw).
        if (!(flags & 0x80) && t.n_vocab() > 0)
            for (token_id& id : ids) id = static_cast<token_id>(static_cast<uint32_t>(id) % uint32_t(t.n_vocab()));
        volatile size_t sink = t.decode(ids, render_special).size();
        for (token_id id : ids)
            sink = sink + t.token_to_piece(id, render_special).size() + t.token_text(id).size() + t.is_eog(id) +
                   t.is_special(id);
        check_stream(t, ids, render_special);
        return 0;
    }

    const std::vector<token_id> ids = t.encode(text, add_bos, parse_special);
    for (token_id id : ids)
        if (id < 0 || id >= t.n_vocab()) fail("encode returned an id outside the vocabulary", text);
    const std::string back = t.decode(ids, render_special);
    check_stream(t, ids, render_special);
    if (!v.tiny) return 0;

    if (!add_bos && !parse_special) {
        const bool round_trips = t.is_byte_level() ? valid_utf8(text)
                                                   : text.find("\xE2\x96\x81") == std::string_view::npos &&
                                                         text.find("[GO]") == std::string_view::npos;
        if (round_trips && back != text) fail("decode(encode(x)) != x", text);
    }

    // Two segments, the first or the second parsing special tokens.
    const size_t cut = text.empty() ? 0 : (flags >> 4) * text.size() / 15;
    const bool first_special = flags & 0x10;
    const tokenizer::segment segs[2] = {{text.substr(0, cut), first_special}, {text.substr(cut), !first_special}};
    const auto seg_ids = t.encode(segs, add_bos);
    const size_t sp_begin = first_special ? 0 : cut, sp_end = first_special ? cut : text.size();
    bool inside = true;
    for (const std::string& s : v.specials) {
        for (size_t at = text.find(s); inside && at != std::string_view::npos; at = text.find(s, at + 1))
            if (at < sp_begin || at + s.size() > sp_end) inside = false;
    }
    if (inside && seg_ids != t.encode(text, add_bos, true)) fail("segments differ from the concatenation", text);
    return 0;
}
