// SPM and byte-level BPE tokenizers from GGUF metadata (see engine/tokenizer.h).
#include "engine/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "engine/src/tokenizer_pre.h"
#include "engine/src/unicode.h"

namespace mnemos::engine {

namespace {

// GGUF token types (tokenizer.ggml.token_type).
enum : int64_t { t_normal = 1, t_unknown = 2, t_control = 3, t_user_defined = 4, t_unused = 5, t_byte = 6 };

constexpr char k_merge_sep = '\xff';  // never inside valid UTF-8, so "left" + sep + "right" is unambiguous

bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string lower_ascii(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return r;
}

// Replaces every ' ' with "▁" (U+2581).
std::string escape_spaces(std::string_view s) {
    std::string r;
    r.reserve(s.size() + 8);
    for (char c : s) {
        if (c == ' ')
            r += "\xE2\x96\x81";
        else
            r += c;
    }
    return r;
}

std::string unescape_spaces(std::string_view s) {
    std::string r;
    r.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
            r += ' ';
            i += 2;
        } else {
            r += s[i];
        }
    }
    return r;
}

// Length of the symbol (one character) starting at s[pos]: a valid UTF-8 sequence, else one byte.
size_t symbol_len(std::string_view s, size_t pos) {
    const size_t n = unicode::valid_utf8_len(s, pos);
    return n == 0 ? 1 : n;
}

struct symbol {
    int prev;
    int next;
    size_t offset;  // into the text being tokenized
    size_t n;       // bytes; 0 once merged into its left neighbour
};

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// construction

result<std::unique_ptr<tokenizer>> tokenizer::from_gguf(const gguf_file& f) {
    std::unique_ptr<tokenizer> t(new tokenizer());

    const std::optional<std::string_view> model = f.get_str("tokenizer.ggml.model");
    if (!model) {
        return make_error(f.find("tokenizer.ggml.model") ? errc::corrupt : errc::not_found,
                          "tokenizer.ggml.model: missing or not a string");
    }
    if (*model == "llama") {
        t->kind_ = model_kind::spm;
    } else if (*model == "gpt2") {
        t->kind_ = model_kind::bpe;
    } else {
        return make_error(errc::unsupported, "tokenizer.ggml.model: unknown tokenizer model '" + std::string(*model) +
                                                 "' (supported: llama, gpt2)");
    }

    // tokens, scores, types
    const std::optional<std::vector<std::string_view>> texts = f.get_str_array("tokenizer.ggml.tokens");
    if (!texts) return make_error(errc::corrupt, "tokenizer.ggml.tokens: missing or not an array of strings");
    if (texts->empty()) return make_error(errc::corrupt, "tokenizer.ggml.tokens: empty vocabulary");
    if (texts->size() > static_cast<size_t>(INT32_MAX)) {
        return make_error(errc::corrupt, "tokenizer.ggml.tokens: " + std::to_string(texts->size()) + " tokens");
    }
    const size_t n_tokens = texts->size();

    std::optional<std::vector<float>> scores;
    if (f.find("tokenizer.ggml.scores") != nullptr) {
        scores = f.get_float_array("tokenizer.ggml.scores");
        if (!scores) return make_error(errc::corrupt, "tokenizer.ggml.scores: not an array of floats");
        if (scores->size() != n_tokens) {
            return make_error(errc::corrupt, "tokenizer.ggml.scores: " + std::to_string(scores->size()) +
                                                 " scores for " + std::to_string(n_tokens) + " tokens");
        }
    }
    std::optional<std::vector<int64_t>> types;
    if (f.find("tokenizer.ggml.token_type") != nullptr) {
        types = f.get_int_array("tokenizer.ggml.token_type");
        if (!types) return make_error(errc::corrupt, "tokenizer.ggml.token_type: not an array of integers");
        if (types->size() != n_tokens) {
            return make_error(errc::corrupt, "tokenizer.ggml.token_type: " + std::to_string(types->size()) +
                                                 " types for " + std::to_string(n_tokens) + " tokens");
        }
    }

    t->tokens_.resize(n_tokens);
    t->text_to_id_.reserve(n_tokens * 2);
    for (size_t i = 0; i < n_tokens; ++i) {
        token_data& td = t->tokens_[i];
        td.text = std::string((*texts)[i]);
        if (td.text.empty()) td.text = "[EMPTY_" + std::to_string(i) + "]";  // as the reference does
        td.score = scores ? (*scores)[i] : 0.0f;
        td.attr = a_normal;
        if (types) {
            switch ((*types)[i]) {
                case t_normal:
                    td.attr = a_normal;
                    break;
                case t_unknown:
                    td.attr = a_unknown;
                    break;
                case t_control:
                    td.attr = a_control;
                    break;
                case t_user_defined:
                    td.attr = a_user_defined;
                    break;
                case t_unused:
                    td.attr = a_unused;
                    break;
                case t_byte:
                    td.attr = a_byte;
                    break;
                default:
                    td.attr = 0;
                    break;  // undefined: never produced, rendered empty
            }
        }
        t->text_to_id_.insert_or_assign(td.text, static_cast<int32_t>(i));
    }

    // model-specific settings
    if (t->kind_ == model_kind::spm) {
        t->add_space_prefix_ = f.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
        t->add_bos_ = true;
        t->bos_ = n_tokens > 1 ? 1 : -1;  // the reference's defaults for SPM vocabularies
        t->eos_ = n_tokens > 2 ? 2 : -1;
        t->unk_ = 0;
        t->byte_ids_.assign(256, -1);
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_ids_[b] = t->text_to_id(name);
        }
    } else {
        const std::string pre(f.get_str("tokenizer.ggml.pre").value_or("default"));
        if (pre == "default") {
            t->pre_ = pre_kind::default_;
        } else if (pre == "gpt-2") {
            t->pre_ = pre_kind::gpt2;
        } else if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
            t->pre_ = pre_kind::llama3;
            t->ignore_merges_ = true;
        } else if (pre == "qwen2" || pre == "qwen2.5" || pre == "qwen-2.5") {
            t->pre_ = pre_kind::qwen2;
        } else if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
            t->pre_ = pre_kind::smollm;
        } else if (pre == "deepseek-llm") {
            t->pre_ = pre_kind::deepseek_llm;
        } else {
            return make_error(errc::unsupported, "tokenizer.ggml.pre: unknown pre-tokenizer '" + pre +
                                                     "' (supported: " + k_supported_pre + ")");
        }

        const std::optional<std::vector<std::string_view>> merges = f.get_str_array("tokenizer.ggml.merges");
        if (!merges) return make_error(errc::corrupt, "tokenizer.ggml.merges: missing or not an array of strings");
        t->merge_ranks_.reserve(merges->size() * 2);
        for (size_t i = 0; i < merges->size(); ++i) {
            const std::string_view m = (*merges)[i];
            const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
            if (sp == std::string_view::npos || sp + 1 >= m.size()) {
                return make_error(errc::corrupt, "tokenizer.ggml.merges: entry " + std::to_string(i) + " '" +
                                                     std::string(m.substr(0, 64)) + "' is not \"left right\"");
            }
            std::string key;
            key.reserve(m.size());
            key.append(m.substr(0, sp)).push_back(k_merge_sep);
            key.append(m.substr(sp + 1));
            t->merge_ranks_.try_emplace(std::move(key), static_cast<int32_t>(i));  // first rank wins
        }
        t->add_bos_ = false;
    }
    if (const std::optional<bool> v = f.get_bool("tokenizer.ggml.add_bos_token")) t->add_bos_ = *v;

    // special token ids
    struct id_key {
        const char* key;
        token_id* id;
    };
    token_id pad = -1;
    token_id sep = -1;
    for (const id_key& k :
         {id_key{"tokenizer.ggml.bos_token_id", &t->bos_}, id_key{"tokenizer.ggml.eos_token_id", &t->eos_},
          id_key{"tokenizer.ggml.unknown_token_id", &t->unk_}, id_key{"tokenizer.ggml.eot_token_id", &t->eot_},
          id_key{"tokenizer.ggml.eom_token_id", &t->eom_}, id_key{"tokenizer.ggml.padding_token_id", &pad},
          id_key{"tokenizer.ggml.seperator_token_id", &sep}}) {
        if (f.find(k.key) == nullptr) continue;
        const std::optional<int64_t> v = f.get_int(k.key);
        if (!v) return make_error(errc::corrupt, std::string(k.key) + ": not an integer");
        if (*v < 0 || *v >= static_cast<int64_t>(n_tokens)) {
            return make_error(errc::corrupt, std::string(k.key) + ": id " + std::to_string(*v) +
                                                 " outside the vocabulary of " + std::to_string(n_tokens));
        }
        *k.id = static_cast<token_id>(*v);
    }

    // End-of-generation tokens found by their text; like the reference, such a token that is not
    // marked control is treated as control.
    auto force_control = [&](token_id id) {
        if (!(t->tokens_[id].attr & a_control)) t->tokens_[id].attr = a_control;
    };
    static const char* const k_eot_texts[] = {"<|eot_id|>",        "<|im_end|>", "<|end|>", "<end_of_turn>",
                                              "<|endoftext|>",     "<EOT>",      "_<EOT>",  "<｜end▁of▁sentence｜>",
                                              "<end_of_utterance>"};
    if (t->eot_ < 0) {
        for (const char* s : k_eot_texts) {
            const int32_t id = t->text_to_id(s);
            if (id >= 0) {
                t->eot_ = id;
                force_control(id);
                break;
            }
        }
    }
    if (t->eom_ < 0) {
        const int32_t id = t->text_to_id("<|eom_id|>");
        if (id >= 0) {
            t->eom_ = id;
            force_control(id);
        }
    }
    static const char* const k_eog_texts[] = {"<|eot_id|>",      "<|im_end|>",        "<|end|>", "<end_of_turn>",
                                              "<|endoftext|>",   "<|eom_id|>",        "<EOT>",   "_<EOT>",
                                              "<|end_of_text|>", "<end_of_utterance>"};
    for (const char* s : k_eog_texts) {
        const int32_t id = t->text_to_id(s);
        if (id >= 0) {
            t->eog_ids_.push_back(id);
            force_control(id);
        }
    }
    for (token_id id : {t->eos_, t->eot_, t->eom_})
        if (id >= 0) t->eog_ids_.push_back(id);
    std::sort(t->eog_ids_.begin(), t->eog_ids_.end());
    t->eog_ids_.erase(std::unique(t->eog_ids_.begin(), t->eog_ids_.end()), t->eog_ids_.end());

    // special tokens split out of text, longest first
    for (size_t i = 0; i < n_tokens; ++i) {
        if (t->tokens_[i].attr & (a_control | a_user_defined | a_unknown)) t->special_cache_.push_back(int32_t(i));
    }
    std::stable_sort(t->special_cache_.begin(), t->special_cache_.end(),
                     [&](token_id a, token_id b) { return t->tokens_[a].text.size() > t->tokens_[b].text.size(); });

    // Phi-3 (by general.name, as the reference): whitespace after its special tokens is swallowed.
    const std::string name = lower_ascii(f.get_str("general.name").value_or(""));
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (token_id id : t->special_cache_) t->tokens_[id].attr |= a_rstrip;
        if (const int32_t id = t->text_to_id("</s>"); id >= 0) t->tokens_[id].attr |= a_rstrip;
        for (const char* s : {"<unk>", "<s>", "<|endoftext|>"}) {
            if (const int32_t id = t->text_to_id(s); id >= 0) t->tokens_[id].attr &= ~a_rstrip;
        }
    }
    return t;
}

// ---------------------------------------------------------------------------------------------------------------
// lookups

int32_t tokenizer::text_to_id(std::string_view s) const {
    const auto it = text_to_id_.find(s);
    return it == text_to_id_.end() ? -1 : it->second;
}

int32_t tokenizer::merge_rank(std::string_view left, std::string_view right) const {
    std::string key;
    key.reserve(left.size() + right.size() + 1);
    key.append(left).push_back(k_merge_sep);
    key.append(right);
    const auto it = merge_ranks_.find(key);
    return it == merge_ranks_.end() ? -1 : it->second;
}

std::optional<token_id> tokenizer::find_token(std::string_view text) const {
    const int32_t id = text_to_id(text);
    if (id < 0) return std::nullopt;
    return id;
}

const std::string& tokenizer::token_text(token_id id) const {
    if (id < 0 || id >= n_vocab()) return empty_;
    return tokens_[id].text;
}

bool tokenizer::is_special(token_id id) const {
    return id >= 0 && id < n_vocab() && (tokens_[id].attr & (a_control | a_user_defined | a_unknown));
}

bool tokenizer::is_eog(token_id id) const { return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id); }

token_id tokenizer::byte_token(uint8_t b) const {
    if (byte_ids_[b] >= 0) return byte_ids_[b];
    const char c = static_cast<char>(b);
    const int32_t id = text_to_id(std::string_view(&c, 1));
    return id >= 0 ? id : unk_;
}

// ---------------------------------------------------------------------------------------------------------------
// encoding

std::vector<tokenizer::fragment> tokenizer::partition(std::string_view text, bool parse_special) const {
    std::vector<fragment> frags;
    if (text.empty()) return frags;
    frags.push_back({-1, 0, text.size()});
    // Which byte pairs occur in the text, so that most special tokens are skipped without a search.
    std::vector<uint64_t> pairs(65536 / 64, 0);
    std::vector<bool> bytes(256, false);
    for (size_t i = 0; i < text.size(); ++i) {
        const uint8_t b = static_cast<uint8_t>(text[i]);
        bytes[b] = true;
        if (i + 1 < text.size()) {
            const uint32_t pair = (uint32_t(b) << 8) | static_cast<uint8_t>(text[i + 1]);
            pairs[pair >> 6] |= uint64_t(1) << (pair & 63);
        }
    }
    auto may_occur = [&](std::string_view s) {
        if (s.size() > text.size()) return false;
        if (s.size() == 1) return bool(bytes[static_cast<uint8_t>(s[0])]);
        const uint32_t pair = (uint32_t(static_cast<uint8_t>(s[0])) << 8) | static_cast<uint8_t>(s[1]);
        return ((pairs[pair >> 6] >> (pair & 63)) & 1) != 0;
    };
    std::vector<fragment> next;
    for (const token_id sid : special_cache_) {
        const token_data& td = tokens_[sid];
        if (!parse_special && (td.attr & (a_control | a_unknown))) continue;  // user-defined: always
        const std::string_view stext = td.text;
        if (!may_occur(stext)) continue;
        bool found_any = false;
        next.clear();
        for (const fragment& fr : frags) {
            if (fr.id >= 0) {
                next.push_back(fr);
                continue;
            }
            size_t base = fr.offset;
            size_t len = fr.length;
            while (len > 0) {
                const size_t match = text.substr(0, base + len).find(stext, base);
                if (match == std::string_view::npos) {
                    next.push_back({-1, base, len});
                    break;
                }
                found_any = true;
                if (match > base) {
                    size_t left_len = match - base;
                    if (td.attr & a_lstrip) {
                        while (left_len > 0 && c_isspace(text[base + left_len - 1])) --left_len;
                    }
                    if (left_len > 0) next.push_back({-1, base, left_len});
                }
                next.push_back({sid, 0, 0});
                const size_t end = base + len;
                size_t right = match + stext.size();
                if (td.attr & a_rstrip) {
                    while (right < end && c_isspace(text[right])) ++right;
                }
                base = right;
                len = end - right;
            }
        }
        if (found_any) frags.swap(next);
    }
    return frags;
}

std::vector<token_id> tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
    return encode_fragments(text, partition(text, parse_special), add_bos);
}

std::vector<token_id> tokenizer::encode(std::span<const segment> segments, bool add_bos) const {
    std::string text;
    for (const segment& sg : segments) text.append(sg.text);
    std::vector<fragment> frags;
    size_t base = 0;
    for (const segment& sg : segments) {
        for (fragment fr : partition(sg.text, sg.parse_special)) {
            if (fr.id < 0) {
                fr.offset += base;
                // Raw text that continues the previous raw fragment is one run (as in a single encode).
                if (!frags.empty() && frags.back().id < 0 && frags.back().offset + frags.back().length == fr.offset) {
                    frags.back().length += fr.length;
                    continue;
                }
            }
            frags.push_back(fr);
        }
        base += sg.text.size();
    }
    return encode_fragments(text, frags, add_bos);
}

std::vector<token_id> tokenizer::encode_fragments(std::string_view text, const std::vector<fragment>& frags,
                                                  bool add_bos) const {
    std::vector<token_id> out;
    out.reserve(text.size() / 3 + 2);
    if (add_bos && bos_ >= 0) out.push_back(bos_);
    if (kind_ == model_kind::spm) {
        bool prev_special = true;  // the space prefix goes at the start and after every special token
        for (const fragment& fr : frags) {
            if (fr.id >= 0) {
                out.push_back(fr.id);
                prev_special = true;
                continue;
            }
            std::string s;
            if (add_space_prefix_ && prev_special) s = " ";
            s.append(text.substr(fr.offset, fr.length));
            encode_spm(escape_spaces(s), out);
            prev_special = false;
        }
    } else {
        for (const fragment& fr : frags) {
            if (fr.id >= 0)
                out.push_back(fr.id);
            else
                encode_bpe(text.substr(fr.offset, fr.length), out);
        }
    }
    return out;
}

void tokenizer::encode_spm(std::string_view text, std::vector<token_id>& out) const {
    std::vector<symbol> syms;
    for (size_t pos = 0; pos < text.size();) {
        const size_t n = std::min(symbol_len(text, pos), text.size() - pos);
        const int idx = static_cast<int>(syms.size());
        syms.push_back({idx - 1, pos + n == text.size() ? -1 : idx + 1, pos, n});
        pos += n;
    }
    if (syms.empty()) return;

    struct bigram {
        int left;
        int right;
        float score;
        size_t size;
    };
    struct cmp {
        bool operator()(const bigram& l, const bigram& r) const {
            return l.score < r.score || (l.score == r.score && l.left > r.left);
        }
    };
    std::priority_queue<bigram, std::vector<bigram>, cmp> queue;
    // merged text -> the two symbols it was made of (the last pair recorded wins, as in the reference)
    std::unordered_map<std::string_view, std::pair<int, int>> rev_merge;

    auto try_add = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        const std::string_view s = text.substr(syms[left].offset, syms[left].n + syms[right].n);
        const int32_t id = text_to_id(s);
        if (id < 0) return;
        queue.push({left, right, tokens_[id].score, s.size()});
        rev_merge[s] = {left, right};
    };
    for (size_t i = 1; i < syms.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!queue.empty()) {
        const bigram b = queue.top();
        queue.pop();
        symbol& l = syms[b.left];
        symbol& r = syms[b.right];
        if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // outdated
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) syms[r.next].prev = b.left;
        try_add(l.prev, b.left);
        try_add(b.left, l.next);
    }

    // Symbols that are not tokens are split back along their merges, then into bytes.
    auto resegment = [&](auto& self, const symbol& s) -> void {
        const std::string_view str = text.substr(s.offset, s.n);
        const int32_t id = text_to_id(str);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
        const auto it = rev_merge.find(str);
        if (it == rev_merge.end()) {
            for (char c : str) {
                const token_id bt = byte_token(static_cast<uint8_t>(c));
                if (bt >= 0) out.push_back(bt);
            }
            return;
        }
        self(self, syms[it->second.first]);
        self(self, syms[it->second.second]);
    };
    for (int i = 0; i != -1; i = syms[i].next) resegment(resegment, syms[i]);
}

void tokenizer::encode_bpe(std::string_view text, std::vector<token_id>& out) const {
    pre::kind k = pre::kind::default_;
    switch (pre_) {
        case pre_kind::default_:
            k = pre::kind::default_;
            break;
        case pre_kind::gpt2:
            k = pre::kind::gpt2;
            break;
        case pre_kind::llama3:
            k = pre::kind::llama3;
            break;
        case pre_kind::qwen2:
            k = pre::kind::qwen2;
            break;
        case pre_kind::smollm:
            k = pre::kind::smollm;
            break;
        case pre_kind::deepseek_llm:
            k = pre::kind::deepseek_llm;
            break;
    }
    std::string word;
    for (const std::string& raw : pre::split(text, k)) {
        word.clear();
        for (char c : raw) unicode::append_utf8(word, unicode::byte_to_cpt(static_cast<uint8_t>(c)));
        bpe_word(word, out);
    }
}

void tokenizer::bpe_word(const std::string& word, std::vector<token_id>& out) const {
    if (ignore_merges_) {
        const int32_t id = text_to_id(word);
        if (id >= 0) {
            out.push_back(id);
            return;
        }
    }
    std::vector<symbol> syms;
    for (size_t pos = 0; pos < word.size();) {
        const size_t n = std::min(symbol_len(word, pos), word.size() - pos);
        const int idx = static_cast<int>(syms.size());
        syms.push_back({idx - 1, pos + n == word.size() ? -1 : idx + 1, pos, n});
        pos += n;
    }
    if (syms.empty()) return;

    struct bigram {
        int left;
        int right;
        int32_t rank;
        std::string_view text;
    };
    struct cmp {
        bool operator()(const bigram& l, const bigram& r) const {
            return l.rank > r.rank || (l.rank == r.rank && l.left > r.left);
        }
    };
    std::priority_queue<bigram, std::vector<bigram>, cmp> queue;
    const std::string_view w = word;
    auto add = [&](int left, int right) {
        if (left == -1 || right == -1) return;
        const int32_t rank =
            merge_rank(w.substr(syms[left].offset, syms[left].n), w.substr(syms[right].offset, syms[right].n));
        if (rank < 0) return;
        queue.push({left, right, rank, w.substr(syms[left].offset, syms[left].n + syms[right].n)});
    };
    for (size_t i = 1; i < syms.size(); ++i) add(static_cast<int>(i) - 1, static_cast<int>(i));

    while (!queue.empty()) {
        const bigram b = queue.top();
        queue.pop();
        symbol& l = syms[b.left];
        symbol& r = syms[b.right];
        if (l.n == 0 || r.n == 0) continue;
        // outdated unless the two symbols still spell the bigram (they are adjacent in `word`)
        if (l.n + r.n != b.text.size() || r.offset != l.offset + l.n) continue;
        l.n += r.n;
        r.n = 0;
        l.next = r.next;
        if (r.next >= 0) syms[r.next].prev = b.left;
        add(l.prev, b.left);
        add(b.left, l.next);
    }

    for (int i = 0; i != -1; i = syms[i].next) {
        const std::string_view s = w.substr(syms[i].offset, syms[i].n);
        const int32_t id = text_to_id(s);
        if (id >= 0) {
            out.push_back(id);
            continue;
        }
        for (char c : s) {  // as the reference: single-byte tokens where they exist, else dropped
            const int32_t bid = text_to_id(std::string_view(&c, 1));
            if (bid >= 0) out.push_back(bid);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// decoding

std::string tokenizer::token_to_piece(token_id id, bool render_special) const {
    if (id < 0 || id >= n_vocab()) return {};
    const token_data& td = tokens_[id];
    if (td.attr & (a_control | a_unknown)) return render_special ? td.text : std::string();
    if (td.attr & a_user_defined) return td.text;
    if (kind_ == model_kind::spm) {
        if (td.attr & a_normal) return unescape_spaces(td.text);
        if (td.attr & a_byte) {
            // "<0xXX>"
            unsigned v = 0;
            if (td.text.size() == 6 && std::sscanf(td.text.c_str(), "<0x%2X>", &v) == 1) {
                return std::string(1, static_cast<char>(v));
            }
            return {};
        }
        return {};
    }
    if (!(td.attr & a_normal)) return {};
    std::string r;
    r.reserve(td.text.size());
    const std::string_view s = td.text;
    for (size_t pos = 0; pos < s.size();) {
        const size_t start = pos;
        const uint32_t cp = unicode::next_cpt(s, pos);
        const int b = unicode::cpt_to_byte(cp);
        if (b >= 0)
            r += static_cast<char>(b);
        else
            r.append(s.substr(start, pos - start));  // not a byte-level character: kept as is
    }
    return r;
}

std::string tokenizer::decode(std::span<const token_id> ids, bool render_special) const {
    std::string out;
    bool strip = add_space_prefix_;
    for (token_id id : ids) {
        std::string piece = token_to_piece(id, render_special);
        if (strip && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        strip = false;
        out += piece;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// streaming

namespace {

// Appends the complete part of `buf` to `out`, replacing bytes that can never become valid with
// U+FFFD, and leaves in `buf` a trailing prefix that may still become valid.
void drain_utf8(std::string& buf, std::string& out) {
    static const char k_fffd[] = "\xEF\xBF\xBD";
    size_t pos = 0;
    while (pos < buf.size()) {
        const size_t n = unicode::valid_utf8_len(buf, pos);
        if (n > 0) {
            out.append(buf, pos, n);
            pos += n;
            continue;
        }
        // Is buf[pos..] a proper prefix of some valid sequence?
        const uint8_t b0 = static_cast<uint8_t>(buf[pos]);
        size_t need = 0;
        if (b0 >= 0xC2 && b0 <= 0xDF)
            need = 2;
        else if (b0 >= 0xE0 && b0 <= 0xEF)
            need = 3;
        else if (b0 >= 0xF0 && b0 <= 0xF4)
            need = 4;
        bool prefix = need > 0 && buf.size() - pos < need;
        for (size_t i = 1; prefix && pos + i < buf.size(); ++i) {
            const uint8_t b = static_cast<uint8_t>(buf[pos + i]);
            uint8_t lo = 0x80, hi = 0xBF;
            if (i == 1) {  // the second byte's range rules out overlongs, surrogates and > U+10FFFF
                if (b0 == 0xE0) lo = 0xA0;
                if (b0 == 0xED) hi = 0x9F;
                if (b0 == 0xF0) lo = 0x90;
                if (b0 == 0xF4) hi = 0x8F;
            }
            if (b < lo || b > hi) prefix = false;
        }
        if (prefix) break;  // wait for more bytes
        out += k_fffd;
        ++pos;
    }
    buf.erase(0, pos);
}

}  // namespace

std::string stream_decoder::push(token_id id) {
    pending_ += tok_.token_to_piece(id, render_special_);
    std::string out;
    drain_utf8(pending_, out);
    return out;
}

std::string stream_decoder::flush() {
    std::string out;
    drain_utf8(pending_, out);
    if (!pending_.empty()) out += "\xEF\xBF\xBD";  // an incomplete character at the end
    pending_.clear();
    return out;
}

}  // namespace mnemos::engine
