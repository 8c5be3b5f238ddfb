// Pre-tokenizers for byte-level BPE. Each reference regex set is a list of
// regexes applied in turn: every regex splits each current piece into its
// matches and the gaps between them. Here each regex is a hand-written matcher
// over code points that reproduces the reference engine's result exactly
// (its own hand-written GPT-2 and Llama-3 splitters, and std::regex semantics
// for the others: leftmost match, greedy quantifiers, `$` = end of the piece,
// non-ASCII whitespace seen as \s).
#include "engine/src/tokenizer_pre.h"

#include <functional>

#include "engine/src/unicode.h"

namespace mnemos::engine::pre {

namespace {

using unicode::flags;

constexpr uint32_t k_out_of_range = 0xFFFFFFFF;

// The pieces are lengths in code points; they partition the text in order.
using pieces = std::vector<size_t>;

struct text_view {
    const std::vector<uint32_t>& cps;
};

// Runs `fn(begin, end, emit)` on each piece; `emit(end)` closes a word at code point index `end`
// (empty words are dropped).
template <class Fn>
pieces for_each_piece(const pieces& in, Fn fn) {
    pieces out;
    out.reserve(in.size());
    size_t start = 0;
    for (size_t len : in) {
        const size_t begin = start;
        const size_t end = start + len;
        start = end;
        size_t prev = begin;
        auto emit = [&](size_t at) {
            if (at > prev) out.push_back(at - prev);
            prev = at;
        };
        fn(begin, end, emit);
        emit(end);
    }
    return out;
}

bool ascii_space(uint32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// \s as std::regex sees it after the reference replaced non-ASCII whitespace with '\v'.
bool regex_space(uint32_t c) { return c < 0x80 ? ascii_space(c) : unicode::is_whitespace(c); }

// The reference's GPT-2 splitter:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
pieces split_gpt2(const std::vector<uint32_t>& cps, const pieces& in) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        auto cpt = [&](size_t p) { return p >= begin && p < end ? cps[p] : k_out_of_range; };
        auto flg = [&](size_t p) -> uint16_t { return p >= begin && p < end ? flags(cps[p]) : 0; };
        auto is_other = [](uint16_t f) {
            return !(f & (unicode::f_whitespace | unicode::f_letter | unicode::f_number)) && f != 0;
        };
        for (size_t pos = begin; pos < end;) {
            const uint32_t c = cpt(pos);
            if (c == '\'' && pos + 1 < end) {
                const uint32_t n1 = cpt(pos + 1);
                if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                    pos += 2;
                    emit(pos);
                    continue;
                }
                if (pos + 2 < end) {
                    const uint32_t n2 = cpt(pos + 2);
                    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                        pos += 3;
                        emit(pos);
                        continue;
                    }
                }
            }
            uint16_t f2 = c == ' ' ? flg(pos + 1) : flg(pos);
            if (f2 & unicode::f_letter) {
                pos += (c == ' ');
                while (flg(pos) & unicode::f_letter) ++pos;
                emit(pos);
                continue;
            }
            if (f2 & unicode::f_number) {
                pos += (c == ' ');
                while (flg(pos) & unicode::f_number) ++pos;
                emit(pos);
                continue;
            }
            if (is_other(f2)) {
                pos += (c == ' ');
                while (is_other(flg(pos))) ++pos;
                emit(pos);
                continue;
            }
            size_t n_ws = 0;
            while (flg(pos + n_ws) & unicode::f_whitespace) ++n_ws;
            if (n_ws > 1 && cpt(pos + n_ws) != k_out_of_range) {  // \s+(?!\S)
                pos += n_ws - 1;
                emit(pos);
                continue;
            }
            if (n_ws > 0) {  // \s+
                pos += n_ws;
                emit(pos);
                continue;
            }
            emit(++pos);  // no match: the code point on its own
        }
    });
}

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// The reference's Llama-3 splitter (max_digits 3); with max_digits 1 the Qwen2 regex, which the
// reference runs through std::regex with identical results:
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
pieces split_llama3(const std::vector<uint32_t>& cps, const pieces& in, size_t max_digits) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        auto cpt = [&](size_t p) { return p >= begin && p < end ? cps[p] : k_out_of_range; };
        auto flg = [&](size_t p) -> uint16_t { return p >= begin && p < end ? flags(cps[p]) : 0; };
        for (size_t pos = begin; pos < end;) {
            const uint32_t c = cpt(pos);
            const uint16_t f = flg(pos);
            if (c == '\'' && pos + 1 < end) {
                const uint32_t n1 = ascii_lower(cpt(pos + 1));
                if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                    pos += 2;
                    emit(pos);
                    continue;
                }
                if (pos + 2 < end) {
                    const uint32_t n2 = ascii_lower(cpt(pos + 2));
                    if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                        pos += 3;
                        emit(pos);
                        continue;
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!(c == '\r' || c == '\n' || (f & unicode::f_number))) {
                if ((f & unicode::f_letter) || (flg(pos + 1) & unicode::f_letter)) {
                    ++pos;
                    while (flg(pos) & unicode::f_letter) ++pos;
                    emit(pos);
                    continue;
                }
            }
            // \p{N}{1,max_digits}
            if (f & unicode::f_number) {
                size_t ini = pos;
                while (flg(pos) & unicode::f_number) {
                    if (++pos - ini >= max_digits) {
                        emit(pos);
                        ini = pos;
                    }
                }
                emit(pos);
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            uint16_t f2 = c == ' ' ? flg(pos + 1) : f;
            auto is_other = [](uint16_t x) {
                return !(x & (unicode::f_whitespace | unicode::f_letter | unicode::f_number)) && x != 0;
            };
            if (!(f2 & (unicode::f_whitespace | unicode::f_letter | unicode::f_number)) && f != 0) {
                pos += (c == ' ');
                while (is_other(f2)) f2 = flg(++pos);
                uint32_t c2 = cpt(pos);
                while (c2 == '\r' || c2 == '\n') c2 = cpt(++pos);
                emit(pos);
                continue;
            }
            size_t n_ws = 0;
            size_t last_end_r_or_n = 0;
            while (flg(pos + n_ws) & unicode::f_whitespace) {
                const uint32_t c2 = cpt(pos + n_ws);
                if (c2 == '\r' || c2 == '\n') last_end_r_or_n = pos + n_ws + 1;
                ++n_ws;
            }
            if (last_end_r_or_n > 0) {  // \s*[\r\n]+
                pos = last_end_r_or_n;
                emit(pos);
                continue;
            }
            if (n_ws > 1 && cpt(pos + n_ws) != k_out_of_range) {  // \s+(?!\S)
                pos += n_ws - 1;
                emit(pos);
                continue;
            }
            if (n_ws > 0) {  // \s+
                pos += n_ws;
                emit(pos);
                continue;
            }
            emit(++pos);
        }
    });
}

// `[class]+`: maximal runs of matching code points become words.
pieces split_runs(const std::vector<uint32_t>& cps, const pieces& in, const std::function<bool(uint32_t)>& match) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        for (size_t pos = begin; pos < end;) {
            if (!match(cps[pos])) {
                ++pos;
                continue;
            }
            emit(pos);
            while (pos < end && match(cps[pos])) ++pos;
            emit(pos);
        }
    });
}

// `[class]`: every matching code point is a word of its own.
pieces split_singles(const std::vector<uint32_t>& cps, const pieces& in, const std::function<bool(uint32_t)>& match) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        for (size_t pos = begin; pos < end; ++pos) {
            if (match(cps[pos])) {
                emit(pos);
                emit(pos + 1);
            }
        }
    });
}

// `\s?[class]+`: a run, with the one whitespace before it when there is one.
pieces split_space_runs(const std::vector<uint32_t>& cps, const pieces& in,
                        const std::function<bool(uint32_t)>& match) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        for (size_t pos = begin; pos < end;) {
            size_t start;
            if (match(cps[pos])) {
                start = pos;
            } else if (regex_space(cps[pos]) && pos + 1 < end && match(cps[pos + 1])) {
                start = pos++;
            } else {
                ++pos;
                continue;
            }
            emit(start);
            while (pos < end && match(cps[pos])) ++pos;
            emit(pos);
        }
    });
}

// `\s+$`: the whitespace at the end of the piece.
pieces split_trailing_space(const std::vector<uint32_t>& cps, const pieces& in) {
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        size_t pos = end;
        while (pos > begin && regex_space(cps[pos - 1])) --pos;
        emit(pos);
    });
}

// `[0-9][0-9][0-9]`: non-overlapping triples of ASCII digits, leftmost first.
pieces split_digit_triples(const std::vector<uint32_t>& cps, const pieces& in) {
    auto digit = [](uint32_t c) { return c >= '0' && c <= '9'; };
    return for_each_piece(in, [&](size_t begin, size_t end, auto& emit) {
        for (size_t pos = begin; pos < end;) {
            if (pos + 3 <= end && digit(cps[pos]) && digit(cps[pos + 1]) && digit(cps[pos + 2])) {
                emit(pos);
                emit(pos + 3);
                pos += 3;
            } else {
                ++pos;
            }
        }
    });
}

bool is_number(uint32_t c) { return flags(c) & unicode::f_number; }

// [\p{P}\$\+<=>\^`\|] as the reference evaluates it: ASCII punctuation and symbols except '~',
// plus non-ASCII punctuation.
bool default_punct(uint32_t c) {
    if (c < 0x80)
        return c > 0x20 && c < 0x7F && c != '~' && !(c >= '0' && c <= '9') && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    const uint16_t f = flags(c);
    return (f & unicode::f_punctuation) && !(f & unicode::f_whitespace);
}

bool in_range(uint32_t c, uint32_t a, uint32_t b) { return c >= a && c <= b; }

// [!-/:-~！-／：-～‘-‟　-。] (U+3000 never matches: the reference turned it into '\v' first).
bool deepseek_punct(uint32_t c) {
    return in_range(c, '!', '/') || in_range(c, ':', '~') || in_range(c, 0xFF01, 0xFF0F) ||
           in_range(c, 0xFF1A, 0xFF5E) || in_range(c, 0x2018, 0x201F) || in_range(c, 0x3001, 0x3002);
}

// [一-龥ࠀ-一가-퟿]
bool deepseek_cjk(uint32_t c) {
    return in_range(c, 0x4E00, 0x9FA5) || in_range(c, 0x0800, 0x4E00) || in_range(c, 0xAC00, 0xD7FF);
}

}  // namespace

std::vector<std::string> split(std::string_view text, kind k) {
    std::vector<uint32_t> cps;
    std::vector<size_t> byte_at;  // byte offset of each code point, then text.size()
    cps.reserve(text.size());
    byte_at.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
        byte_at.push_back(pos);
        cps.push_back(unicode::next_cpt(text, pos));
    }
    byte_at.push_back(text.size());

    pieces p;
    if (!cps.empty()) p.push_back(cps.size());
    switch (k) {
        case kind::gpt2:
            p = split_gpt2(cps, p);
            break;
        case kind::default_:  // the reference's fallback set, not the plain GPT-2 regex
            p = split_runs(cps, p, default_punct);
            p = split_gpt2(cps, p);
            p = split_runs(cps, p, is_number);
            p = split_digit_triples(cps, p);
            break;
        case kind::llama3:
            p = split_llama3(cps, p, 3);
            break;
        case kind::qwen2:
            p = split_llama3(cps, p, 1);
            break;
        case kind::smollm:
            p = split_singles(cps, p, is_number);
            p = split_gpt2(cps, p);
            break;
        case kind::deepseek_llm:
            p = split_singles(cps, p, [](uint32_t c) { return c == '\r' || c == '\n'; });
            p = split_space_runs(cps, p, unicode::is_deepseek_letter);
            p = split_space_runs(cps, p, deepseek_punct);
            p = split_trailing_space(cps, p);
            p = split_runs(cps, p, deepseek_cjk);
            p = split_runs(cps, p, is_number);
            break;
    }

    std::vector<std::string> words;
    words.reserve(p.size());
    size_t at = 0;
    for (size_t len : p) {
        words.emplace_back(text.substr(byte_at[at], byte_at[at + len] - byte_at[at]));
        at += len;
    }
    return words;
}

}  // namespace mnemos::engine::pre
