#pragma once
// Header-only generator of tiny random-weight GGUF models for engine tests.
// Tensor names, shapes and metadata keys are those of llama.cpp GGUF files
// ("llama" and "qwen2" architectures). Everything is deterministic for a
// given seed: weights come from std::mt19937 through our own Box-Muller (not
// std::normal_distribution, whose output differs between standard libraries).
//
// Vocabularies are small but real:
//   "llama": SentencePiece-style (tokenizer.ggml.model "llama"): <unk>, <s>,
//            </s>, the 256 byte tokens <0x00>..<0xFF> (byte fallback), then
//            single characters and pieces learned by BPE on a fixed English
//            text ("▁the", "▁a", "in", ...). Scores: higher = merge first.
//   "gpt2":  byte-level BPE (tokenizer.ggml.model "gpt2", pre "default"): the
//            256 byte symbols of GPT-2's bytes_to_unicode, one token per merge
//            learned on the same text ("Ġ t", "h e", "Ġt he", ...), then
//            <|endoftext|>, <|im_start|>, <|im_end|> (control) and a ChatML
//            chat template.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/ggml_types.h"
#include "tests/support/gguf_writer.h"

namespace mnemos::test {

struct tiny_model_options {
    std::string arch = "llama";                                // or "qwen2" (adds q/k/v biases)
    kernels::ggml_type weight_type = kernels::ggml_type::f32;  // 2-D matrices; norms and biases stay f32
    int n_layer = 2;
    int n_embd = 256;
    int n_head = 4;
    int n_head_kv = 2;
    int n_ff = 512;
    bool tied_output = true;          // false: also write output.weight
    std::string tokenizer = "llama";  // "llama" (SPM with byte fallback) or "gpt2" (byte-level BPE)
    float rope_freq_base = 10000;
    uint64_t seed = 1;
    int n_ctx = 512;
    // For tests of malformed files: hyper-parameter keys (full names, "llama.context_length") written by the
    // given function instead of the default value; a null function leaves the key out.
    std::map<std::string, std::function<void(gguf_writer&, const std::string& key)>> metadata_override;
    // Further metadata written after the hyper-parameters (e.g. rope.scaling.* keys).
    std::function<void(gguf_writer&)> extra_metadata;
};

namespace tiny_model_detail {

// Fixed training text for the tiny vocabularies.
inline const char* corpus() {
    return "Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog. "
           "One day, the sun was hot and the sky was blue. Lily and her dog ran to the big tree. "
           "They saw a bird in the tree. The bird sang a happy song. Lily was happy and she sang too. "
           "Then her mom said it was time to go home. Lily said goodbye to the bird and the tree. "
           "The little dog was tired, so they walked home slowly. At home, mom made a cake for them. "
           "Hello world! This is a test of the tokenizer, and it is the best test in the world. "
           "The user asked the assistant a question, and the assistant gave the answer. "
           "There is a system that runs the game; the players think and talk and play. "
           "What is the time? It is the time to read, to write and to think. "
           "Where is the cat? The cat is on the mat, and the dog is in the house. "
           "The detective looked at the room and said: the butler was not there when the light went out. "
           "Every player has a secret, and every secret has a reason. Tell me what you saw in the night. "
           "I remember the garden, the letters and the old clock in the hall; nothing is what it seems.";
}

// Splits UTF-8 text into code points.
inline std::vector<std::string> utf8_chars(const std::string& s) {
    std::vector<std::string> out;
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        n = std::min(n, s.size() - i);
        out.push_back(s.substr(i, n));
        i += n;
    }
    return out;
}

inline std::string utf8_encode(uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256, 257, ...
inline std::vector<std::string> byte_symbols() {
    std::vector<std::string> sym(256);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        sym[b] = utf8_encode(printable ? b : next++);
    }
    return sym;
}

// Splits text into GPT-2-like chunks: an optional leading space, then a run of
// letters, a run of digits, or a run of other non-space bytes.
inline std::vector<std::string> pre_split(const std::string& text) {
    auto cls = [](unsigned char c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
        return c >= '0' && c <= '9' ? 2 : c == ' ' ? 0 : 3;
    };
    std::vector<std::string> out;
    size_t i = 0;
    while (i < text.size()) {
        std::string w;
        if (text[i] == ' ') w += text[i++];
        if (i >= text.size()) break;
        const int k = cls(static_cast<unsigned char>(text[i]));
        while (i < text.size() && text[i] != ' ' && cls(static_cast<unsigned char>(text[i])) == k) w += text[i++];
        out.push_back(w);
    }
    return out;
}

// Learns up to n_merges BPE merges on words given as symbol sequences (ties:
// the lexicographically smallest pair). Returns the merges in rank order.
inline std::vector<std::pair<std::string, std::string>> learn_bpe(std::vector<std::vector<std::string>> words,
                                                                  int n_merges) {
    std::vector<std::pair<std::string, std::string>> merges;
    for (int m = 0; m < n_merges; ++m) {
        std::map<std::pair<std::string, std::string>, int> counts;
        for (const auto& w : words) {
            for (size_t i = 0; i + 1 < w.size(); ++i) ++counts[{w[i], w[i + 1]}];
        }
        const std::pair<std::string, std::string>* best = nullptr;
        int best_n = 1;
        for (const auto& [pair, n] : counts) {
            if (n > best_n) {
                best = &pair;
                best_n = n;
            }
        }
        if (best == nullptr) break;
        const auto merge = *best;
        merges.push_back(merge);
        for (auto& w : words) {
            std::vector<std::string> out;
            for (size_t i = 0; i < w.size(); ++i) {
                if (i + 1 < w.size() && w[i] == merge.first && w[i + 1] == merge.second) {
                    out.push_back(merge.first + merge.second);
                    ++i;
                } else {
                    out.push_back(w[i]);
                }
            }
            w = std::move(out);
        }
    }
    return merges;
}

struct vocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 6 byte
    std::vector<std::string> merges;
};

inline vocab make_spm_vocab() {
    vocab v;
    auto add = [&](const std::string& t, float score, int32_t type) {
        v.tokens.push_back(t);
        v.scores.push_back(score);
        v.types.push_back(type);
    };
    add("<unk>", 0, 2);
    add("<s>", 0, 3);
    add("</s>", 0, 3);
    for (int b = 0; b < 256; ++b) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
        add(buf, 0, 6);
    }
    const std::string space = "\xE2\x96\x81";  // U+2581 "▁"
    // Training words: the same chunks as for BPE, spaces written as "▁", plus SentencePiece's dummy prefix
    // on the first word (punctuation is never merged into words).
    std::vector<std::vector<std::string>> words;
    for (const std::string& chunk : pre_split(corpus())) {
        std::vector<std::string> w;
        if (words.empty() || chunk[0] == ' ') w.push_back(space);
        for (const std::string& ch : utf8_chars(chunk[0] == ' ' ? chunk.substr(1) : chunk)) w.push_back(ch);
        words.push_back(std::move(w));
    }
    std::set<std::string> seen;
    std::vector<std::string> chars;
    for (const auto& w : words) {
        for (const auto& c : w) {
            if (seen.insert(c).second) chars.push_back(c);
        }
    }
    std::sort(chars.begin(), chars.end());
    const auto merges = learn_bpe(words, 220);
    // Merged pieces: the earlier the merge, the higher the score (longer pieces come from later merges
    // of shorter ones, so every piece is reachable by SentencePiece's greedy pair merging).
    for (size_t m = 0; m < merges.size(); ++m) {
        const std::string piece = merges[m].first + merges[m].second;
        if (seen.insert(piece).second) add(piece, -static_cast<float>(m), 1);
    }
    // Single characters last, with the lowest scores (as in Llama's vocabulary).
    for (size_t k = 0; k < chars.size(); ++k) add(chars[k], -1000.0f - static_cast<float>(k), 1);
    return v;
}

inline vocab make_bpe_vocab() {
    vocab v;
    const std::vector<std::string> sym = byte_symbols();
    for (int b = 0; b < 256; ++b) {
        v.tokens.push_back(sym[b]);
        v.types.push_back(1);
    }
    std::vector<std::vector<std::string>> words;
    for (const std::string& w : pre_split(corpus())) {
        std::vector<std::string> s;
        for (unsigned char c : w) s.push_back(sym[c]);
        words.push_back(std::move(s));
    }
    std::set<std::string> seen(v.tokens.begin(), v.tokens.end());
    for (const auto& [a, b] : learn_bpe(words, 220)) {
        v.merges.push_back(a + " " + b);
        if (seen.insert(a + b).second) {
            v.tokens.push_back(a + b);
            v.types.push_back(1);
        }
    }
    for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
        v.tokens.push_back(s);
        v.types.push_back(3);
    }
    return v;
}

// Normal(0, 1) samples from a seeded mt19937 (Box-Muller; deterministic).
class normal_rng {
  public:
    explicit normal_rng(uint64_t seed) : gen_(static_cast<std::mt19937::result_type>(seed ^ (seed >> 32))) {}
    float next() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        const double u1 = (static_cast<double>(gen_()) + 0.5) / 4294967296.0;
        const double u2 = (static_cast<double>(gen_()) + 0.5) / 4294967296.0;
        const double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = static_cast<float>(r * std::sin(6.283185307179586 * u2));
        has_spare_ = true;
        return static_cast<float>(r * std::cos(6.283185307179586 * u2));
    }

  private:
    std::mt19937 gen_;
    bool has_spare_ = false;
    float spare_ = 0;
};

inline uint32_t file_type_of(kernels::ggml_type t) {
    switch (t) {
        case kernels::ggml_type::f32:
            return 0;
        case kernels::ggml_type::f16:
            return 1;
        case kernels::ggml_type::q4_0:
            return 2;
        case kernels::ggml_type::q8_0:
            return 7;
        case kernels::ggml_type::q4_k:
            return 15;
        case kernels::ggml_type::q6_k:
            return 18;
        case kernels::ggml_type::bf16:
            return 32;
        default:
            return 0;
    }
}

// The metadata of the SPM vocabulary (make_spm_vocab): <unk> 0, <s> 1, </s> 2, BOS added.
inline void add_spm_tokenizer(gguf_writer& w, const vocab& voc) {
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string("tokenizer.ggml.pre", "default");
    w.add_string_array("tokenizer.ggml.tokens", voc.tokens);
    w.add_f32_array("tokenizer.ggml.scores", voc.scores);
    w.add_i32_array("tokenizer.ggml.token_type", voc.types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_bool("tokenizer.ggml.add_eos_token", false);
}

}  // namespace tiny_model_detail

// Writes a tiny random-weight model to `path`. Returns false when the options
// are inconsistent (head counts, block sizes, unknown arch/tokenizer, a weight
// type without a reference quantizer) or the file cannot be written.
inline bool write_tiny_model(const std::string& path, const tiny_model_options& o) {
    namespace d = tiny_model_detail;
    using kernels::ggml_type;
    if (o.arch != "llama" && o.arch != "qwen2") return false;
    if (o.tokenizer != "llama" && o.tokenizer != "gpt2") return false;
    if (o.n_layer < 1 || o.n_embd < 1 || o.n_head < 1 || o.n_head_kv < 1 || o.n_ff < 1 || o.n_ctx < 1) return false;
    if (o.n_embd % o.n_head != 0 || o.n_head % o.n_head_kv != 0) return false;
    switch (o.weight_type) {
        case ggml_type::f32:
        case ggml_type::f16:
        case ggml_type::bf16:
        case ggml_type::q8_0:
        case ggml_type::q4_0:
        case ggml_type::q4_k:
        case ggml_type::q6_k:
            break;
        default:
            return false;
    }
    const int64_t block = kernels::traits_of(o.weight_type).block_size;
    if (o.n_embd % block != 0 || o.n_ff % block != 0) return false;

    const d::vocab voc = o.tokenizer == "llama" ? d::make_spm_vocab() : d::make_bpe_vocab();
    const int64_t n_vocab = static_cast<int64_t>(voc.tokens.size());
    const int64_t n_embd = o.n_embd;
    const int64_t head_dim = o.n_embd / o.n_head;
    const int64_t n_embd_kv = head_dim * o.n_head_kv;
    const std::string& a = o.arch;

    gguf_writer w;
    w.add_string("general.architecture", a);
    w.add_string("general.name", "tiny-" + a + "-" + o.tokenizer);
    w.add_u32("general.alignment", 32);
    w.add_u32("general.file_type", d::file_type_of(o.weight_type));
    // Writes key with its default value, or as o.metadata_override says.
    auto hparam = [&](const std::string& key, const std::function<void(gguf_writer&, const std::string&)>& def) {
        const auto it = o.metadata_override.find(key);
        if (it == o.metadata_override.end()) {
            def(w, key);
        } else if (it->second) {
            it->second(w, key);
        }
    };
    hparam(a + ".vocab_size",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(n_vocab)); });
    hparam(a + ".context_length",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_ctx)); });
    hparam(a + ".embedding_length",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_embd)); });
    hparam(a + ".feed_forward_length",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_ff)); });
    hparam(a + ".block_count",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_layer)); });
    hparam(a + ".attention.head_count",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_head)); });
    hparam(a + ".attention.head_count_kv",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(o.n_head_kv)); });
    hparam(a + ".rope.dimension_count",
           [&](gguf_writer& g, const std::string& k) { g.add_u32(k, static_cast<uint32_t>(head_dim)); });
    hparam(a + ".rope.freq_base", [&](gguf_writer& g, const std::string& k) { g.add_f32(k, o.rope_freq_base); });
    hparam(a + ".attention.layer_norm_rms_epsilon",
           [&](gguf_writer& g, const std::string& k) { g.add_f32(k, a == "qwen2" ? 1e-6f : 1e-5f); });
    if (o.extra_metadata) o.extra_metadata(w);

    std::vector<std::string> tokens = voc.tokens;
    if (o.tokenizer == "llama") {
        d::add_spm_tokenizer(w, voc);
    } else {
        const auto id_of = [&](const std::string& s) {
            return static_cast<uint32_t>(std::find(tokens.begin(), tokens.end(), s) - tokens.begin());
        };
        w.add_string("tokenizer.ggml.model", "gpt2");
        w.add_string("tokenizer.ggml.pre", "default");
        w.add_string_array("tokenizer.ggml.tokens", tokens);
        w.add_i32_array("tokenizer.ggml.token_type", voc.types);
        w.add_string_array("tokenizer.ggml.merges", voc.merges);
        w.add_u32("tokenizer.ggml.bos_token_id", id_of("<|endoftext|>"));
        w.add_u32("tokenizer.ggml.eos_token_id", id_of("<|im_end|>"));
        w.add_u32("tokenizer.ggml.padding_token_id", id_of("<|endoftext|>"));
        w.add_bool("tokenizer.ggml.add_bos_token", false);
        w.add_string("tokenizer.chat_template",
                     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                     "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
                     "}}{% endif %}");
    }

    d::normal_rng rng(o.seed);
    // Values of a [ne0, ne1] tensor with the given mean and standard deviation.
    auto values = [&](int64_t ne0, int64_t ne1, float mean, float stddev) {
        std::vector<float> v(static_cast<size_t>(ne0 * ne1));
        for (float& x : v) x = mean + stddev * rng.next();
        return v;
    };
    auto add_f32 = [&](const std::string& name, int64_t ne0, float mean, float stddev) {
        w.add_tensor_f32(name, {ne0}, values(ne0, 1, mean, stddev));
    };
    // A weight matrix [ne0, ne1] in weight_type, std 1/sqrt(ne0) clamped to [0.02, 0.1].
    auto add_matrix = [&](const std::string& name, int64_t ne0, int64_t ne1) {
        const float stddev = std::clamp(1.0f / std::sqrt(static_cast<float>(ne0)), 0.02f, 0.1f);
        const std::vector<float> v = values(ne0, ne1, 0.0f, stddev);
        const size_t row_bytes = kernels::row_size(o.weight_type, ne0);
        std::vector<uint8_t> raw(row_bytes * static_cast<size_t>(ne1));
        if (o.weight_type == ggml_type::f32) {
            std::memcpy(raw.data(), v.data(), raw.size());
        } else {
            for (int64_t r = 0; r < ne1; ++r) {
                kernels::quantize_row(o.weight_type, v.data() + r * ne0, raw.data() + r * row_bytes, ne0);
            }
        }
        w.add_tensor(name, o.weight_type, {ne0, ne1}, std::move(raw));
    };

    add_matrix("token_embd.weight", n_embd, n_vocab);
    for (int l = 0; l < o.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add_f32(p + "attn_norm.weight", n_embd, 1.0f, 0.1f);
        add_matrix(p + "attn_q.weight", n_embd, n_embd);
        add_matrix(p + "attn_k.weight", n_embd, n_embd_kv);
        add_matrix(p + "attn_v.weight", n_embd, n_embd_kv);
        if (a == "qwen2") {
            add_f32(p + "attn_q.bias", n_embd, 0.0f, 0.02f);
            add_f32(p + "attn_k.bias", n_embd_kv, 0.0f, 0.02f);
            add_f32(p + "attn_v.bias", n_embd_kv, 0.0f, 0.02f);
        }
        add_matrix(p + "attn_output.weight", n_embd, n_embd);
        add_f32(p + "ffn_norm.weight", n_embd, 1.0f, 0.1f);
        add_matrix(p + "ffn_gate.weight", n_embd, o.n_ff);
        add_matrix(p + "ffn_up.weight", n_embd, o.n_ff);
        add_matrix(p + "ffn_down.weight", o.n_ff, n_embd);
    }
    add_f32("output_norm.weight", n_embd, 1.0f, 0.1f);
    if (!o.tied_output) add_matrix("output.weight", n_embd, n_vocab);
    return w.write(path);
}

}  // namespace mnemos::test
