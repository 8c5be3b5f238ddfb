#pragma once
// Tokenizers built from a GGUF file's tokenizer.ggml.* metadata, matching the
// reference engine (llama.cpp) token for token:
//   - "llama": SentencePiece-style BPE over scores with <0xXX> byte fallback;
//   - "gpt2":  byte-level BPE over merges, after a regex-style pre-tokenizer
//              chosen by tokenizer.ggml.pre.
// Special-token texts (control, user-defined, unknown) are split out of the
// text before the model runs, longest first. A tokenizer is immutable after
// from_gguf() and safe to use from many threads at once.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gguf.h"
#include "engine/status.h"
#include "engine/types.h"

namespace mnemos::engine {

class tokenizer {
  public:
    // Pre-tokenizers accepted in tokenizer.ggml.pre for the "gpt2" model.
    static constexpr const char* k_supported_pre =
        "default, gpt-2, llama3, llama-v3, llama-bpe, smollm, starcoder, "
        "refact, qwen2, qwen2.5, qwen-2.5, deepseek-llm";

    // Builds from tokenizer.ggml.* metadata (the file may be closed afterwards). Errors name the key:
    // corrupt for a missing/empty tokenizer.ggml.tokens, scores/token_type arrays of another length or
    // type, missing or malformed merges ("a b"), special token ids (bos/eos/unk/eot/eom/pad/sep) outside
    // the vocabulary; unsupported for an unknown tokenizer.ggml.model or tokenizer.ggml.pre (the message
    // lists the supported ones).
    static result<std::unique_ptr<tokenizer>> from_gguf(const gguf_file& f);

    // Text -> ids. add_bos: prepend BOS when the vocab has one. parse_special: control and unknown
    // token texts ("<|im_start|>", "<s>") in the text become single tokens; otherwise they are
    // ordinary text. User-defined tokens are always split out first (as the reference does).
    // Never fails: invalid UTF-8 bytes are kept as single bytes (SPM: <0xXX> byte fallback; byte-level
    // BPE: the byte's own token, dropped like the reference does when the vocab has none, e.g. SmolLM2
    // has no token for C0, C1, F5..FF).
    std::vector<token_id> encode(std::string_view text, bool add_bos, bool parse_special) const;

    // A piece of text with its own parse_special switch (encode of several segments).
    struct segment {
        std::string_view text;
        bool parse_special = false;
    };
    // Encodes the concatenation of `segments`, finding special tokens only inside segments whose
    // parse_special is set (user-defined tokens everywhere). Text on both sides of a segment boundary
    // is tokenized as one run, so when no control token text occurs in a plain segment the result
    // equals encode(concatenation, add_bos, true). Chat templates use it so that only their own
    // markup yields control tokens, never message content (engine/chat_template.h).
    std::vector<token_id> encode(std::span<const segment> segments, bool add_bos) const;

    // The bytes a token stands for: byte tokens -> that byte; SPM "▁" -> " "; byte-level BPE -> the
    // original bytes; user-defined tokens -> their text; control/unknown tokens -> their text when
    // render_special, else empty; unused tokens and ids out of range -> empty.
    std::string token_to_piece(token_id id, bool render_special = true) const;

    // Concatenated pieces. SPM with add_space_prefix: one leading space is removed from the first
    // token's piece (whatever the token is; a BOS first therefore keeps the next piece's space), as
    // the reference's detokenizer does. No other clean-up (no clean_up_tokenization_spaces), so for
    // byte-level BPE decode(encode(x)) == x for every valid UTF-8 x.
    std::string decode(std::span<const token_id> ids, bool render_special = true) const;

    int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
    token_id bos() const { return bos_; }  // -1 when absent
    token_id eos() const { return eos_; }  // -1 when absent
    token_id unk() const { return unk_; }  // -1 when absent
    // tokenizer.ggml.add_bos_token; default true for SPM, false for BPE.
    bool add_bos_default() const { return add_bos_; }
    // End of generation: eos, eot (tokenizer.ggml.eot_token_id or found by text), eom, and the tokens
    // "<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<end_of_turn>", "<|eom_id|>", "<EOT>",
    // "_<EOT>", "<|end_of_text|>", "<end_of_utterance>" when present.
    bool is_eog(token_id id) const;
    // Exact vocab lookup (the last id when a text appears twice).
    std::optional<token_id> find_token(std::string_view text) const;
    // Raw vocab string ("▁Hello", "Ġworld", "<0x0A>"); an empty string for ids out of range.
    const std::string& token_text(token_id id) const;
    // Control, user-defined or unknown token (the ones split out of text before tokenizing).
    bool is_special(token_id id) const;
    bool is_byte_level() const { return kind_ == model_kind::bpe; }
    // SPM: "▁" is prepended to text at the start and after each special token, and decode() drops it.
    bool add_space_prefix() const { return add_space_prefix_; }

  private:
    enum class model_kind { spm, bpe };
    enum class pre_kind { default_, gpt2, llama3, qwen2, smollm, deepseek_llm };

    // Attribute bits per token, as the reference derives them from token types and names.
    enum : uint32_t {
        a_normal = 1u << 0,
        a_unknown = 1u << 1,
        a_control = 1u << 2,
        a_user_defined = 1u << 3,
        a_unused = 1u << 4,
        a_byte = 1u << 5,
        a_lstrip = 1u << 6,
        a_rstrip = 1u << 7,
    };

    struct token_data {
        std::string text;
        float score = 0;
        uint32_t attr = a_normal;
    };

    // Transparent hashing so string_view lookups do not allocate.
    struct sv_hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    struct sv_equal {
        using is_transparent = void;
        bool operator()(std::string_view a, std::string_view b) const { return a == b; }
    };
    using text_map = std::unordered_map<std::string, int32_t, sv_hash, sv_equal>;

    struct fragment {
        token_id id;    // -1: raw text
        size_t offset;  // raw text: [offset, offset + length) of the input
        size_t length;
    };

    tokenizer() = default;
    int32_t text_to_id(std::string_view s) const;                             // -1 when absent
    int32_t merge_rank(std::string_view left, std::string_view right) const;  // -1 when absent
    std::vector<fragment> partition(std::string_view text, bool parse_special) const;
    std::vector<token_id> encode_fragments(std::string_view text, const std::vector<fragment>& frags,
                                           bool add_bos) const;
    void encode_spm(std::string_view text, std::vector<token_id>& out) const;
    void encode_bpe(std::string_view text, std::vector<token_id>& out) const;
    void bpe_word(const std::string& word, std::vector<token_id>& out) const;
    std::vector<std::string> pre_tokenize(std::string_view text) const;
    token_id byte_token(uint8_t b) const;

    model_kind kind_ = model_kind::spm;
    pre_kind pre_ = pre_kind::default_;
    std::vector<token_data> tokens_;
    text_map text_to_id_;                  // vocab text -> id (last wins, like the reference)
    text_map merge_ranks_;                 // "left\xffright" -> merge rank (BPE)
    std::vector<token_id> special_cache_;  // control/user-defined/unknown, longest text first
    std::vector<token_id> eog_ids_;        // sorted
    std::vector<token_id> byte_ids_;       // SPM: id of <0xXX> for each byte, -1 when absent
    token_id bos_ = -1;
    token_id eos_ = -1;
    token_id unk_ = -1;
    token_id eot_ = -1;
    token_id eom_ = -1;
    bool add_bos_ = false;
    bool add_space_prefix_ = false;  // SPM: prepend "▁" to text after the start or a special token
    bool ignore_merges_ = false;     // llama3: a pre-token that is a whole vocab entry is used as is
    std::string empty_;
};

// Incremental UTF-8-safe detokenizer for streaming. push() returns the text that is now complete: a
// multi-byte character split across tokens is held back until its last byte arrives; bytes that
// cannot start or continue a valid character are replaced by U+FFFD as soon as that is certain.
// flush() returns whatever is still held (an incomplete character becomes one U+FFFD) and resets.
// Pieces are token_to_piece() as is: meant for continuations, so unlike decode() the SPM space of
// the first piece is kept (this matches the reference's streamed greedy text).
class stream_decoder {
  public:
    explicit stream_decoder(const tokenizer& t, bool render_special = false)
        : tok_(t), render_special_(render_special) {}
    std::string push(token_id id);
    std::string flush();

  private:
    const tokenizer& tok_;
    bool render_special_;
    std::string pending_;  // an incomplete UTF-8 sequence (at most 3 bytes)
};

}  // namespace mnemos::engine
