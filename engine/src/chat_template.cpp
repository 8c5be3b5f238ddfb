#include "engine/chat_template.h"

#include <utility>

#include "engine/tokenizer.h"

namespace mnemos::engine {

namespace {

constexpr std::string_view k_chatml_start = "<|im_start|>";
constexpr std::string_view k_chatml_end = "<|im_end|>";
constexpr std::string_view k_llama3_header = "<|start_header_id|>";
constexpr std::string_view k_inst = "[INST]";
constexpr std::string_view k_sys = "<<SYS>>";

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// Undoes the escapes a Jinja string literal may hold ("\\n" -> newline, "\\'" -> "'").
std::string unescape_literal(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            char c = s[++i];
            switch (c) {
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                default:
                    out += c;
                    break;
            }
        } else {
            out += s[i];
        }
    }
    return out;
}

// The literal default system prompt of a ChatML template, or "" when it has none:
// the text of the first '<|im_start|>system\n' ... '<|im_end|>' block that is a
// plain string (no quotes, expressions or concatenation inside).
std::string extract_default_system(std::string_view jinja) {
    const std::string head = std::string(k_chatml_start) + "system";
    size_t from = 0;
    while (true) {
        size_t pos = jinja.find(head, from);
        if (pos == std::string_view::npos) return "";
        from = pos + 1;
        size_t text_begin = pos + head.size();
        if (jinja.substr(text_begin, 1) == "\n") {
            text_begin += 1;
        } else if (jinja.substr(text_begin, 2) == "\\n") {
            text_begin += 2;
        } else {
            continue;
        }
        size_t text_end = jinja.find(k_chatml_end, text_begin);
        if (text_end == std::string_view::npos) return "";
        std::string_view text = jinja.substr(text_begin, text_end - text_begin);
        if (text.empty() || text.find_first_of("'\"{}+") != std::string_view::npos) continue;
        return unescape_literal(text);
    }
}

bool is_user_like(const std::string& role) { return role == "user" || role == "tool"; }

// llama2 / mistral: the system messages directly before messages[idx], joined by "\n\n".
std::string pending_system(std::span<const chat_message> messages, size_t idx) {
    size_t first = idx;
    while (first > 0 && messages[first - 1].role == "system") --first;
    std::string out;
    for (size_t i = first; i < idx; ++i) {
        if (!out.empty()) out += "\n\n";
        out += messages[i].content;
    }
    return out;
}

// llama2: whether any text precedes messages[idx] (system messages render as "").
bool any_text_before(std::span<const chat_message> messages, size_t idx) {
    for (size_t i = 0; i < idx; ++i)
        if (messages[i].role != "system") return true;
    return false;
}

}  // namespace

result<chat_template> chat_template::detect(std::string_view jinja) {
    if (jinja.empty()) return of(chat_format::chatml);
    if (contains(jinja, k_chatml_start)) return chat_template(chat_format::chatml, extract_default_system(jinja));
    if (contains(jinja, k_llama3_header)) return of(chat_format::llama3);
    if (contains(jinja, k_inst)) return of(contains(jinja, k_sys) ? chat_format::llama2 : chat_format::mistral);
    return make_error(errc::unsupported,
                      "chat template not recognized: looked for '<|im_start|>' (chatml), '<|start_header_id|>' "
                      "(llama3), '[INST]' with '<<SYS>>' (llama2) and '[INST]' without it (mistral)");
}

chat_template chat_template::of(chat_format f) { return chat_template(f, ""); }

const char* chat_template::name() const {
    switch (format_) {
        case chat_format::chatml:
            return "chatml";
        case chat_format::llama3:
            return "llama3";
        case chat_format::llama2:
            return "llama2";
        case chat_format::mistral:
            return "mistral";
    }
    return "unknown";
}

std::string chat_template::render(std::span<const chat_message> messages, bool add_generation_prompt) const {
    std::string out;
    for (size_t i = 0; i < messages.size(); ++i) out += render_message(messages, i);
    if (add_generation_prompt) out += generation_prompt();
    return out;
}

std::string chat_template::render_message(std::span<const chat_message> messages, size_t idx) const {
    std::string out;
    for (const auto& sg : render_message_segments(messages, idx)) out += sg.text;
    return out;
}

std::vector<chat_segment> chat_template::render_message_segments(std::span<const chat_message> messages,
                                                                 size_t idx) const {
    std::vector<chat_segment> out;
    auto add = [&out](std::string_view text, bool markup) {
        if (text.empty()) return;
        if (!out.empty() && out.back().markup == markup)
            out.back().text += text;
        else
            out.push_back({std::string(text), markup});
    };
    auto mark = [&](std::string_view t) { add(t, true); };
    auto text = [&](std::string_view t) { add(t, false); };
    if (idx >= messages.size()) return out;
    const chat_message& m = messages[idx];
    switch (format_) {
        case chat_format::chatml:
            if (idx == 0 && m.role != "system" && !default_system_.empty()) {
                // The template's own default system text counts as markup.
                mark(std::string(k_chatml_start) + "system\n" + default_system_ + std::string(k_chatml_end) + "\n");
            }
            mark(k_chatml_start);
            text(m.role);
            mark("\n");
            text(m.content);
            mark(std::string(k_chatml_end) + "\n");
            return out;
        case chat_format::llama3:
            mark(k_llama3_header);
            text(m.role == "tool" ? std::string_view("ipython") : std::string_view(m.role));
            mark("<|end_header_id|>\n\n");
            text(m.content);
            mark("<|eot_id|>");
            return out;
        case chat_format::llama2:
        case chat_format::mistral: {
            if (m.role == "system") return out;
            if (m.role == "assistant") {
                mark(assistant_prefix());
                text(m.content);
                mark(assistant_suffix());
                return out;
            }
            if (!is_user_like(m.role)) return out;  // unknown roles have no place in these formats
            const std::string sys = pending_system(messages, idx);
            if (format_ == chat_format::llama2) {
                if (any_text_before(messages, idx)) mark("<s>");
                mark("[INST] ");
                if (!sys.empty()) {
                    mark("<<SYS>>\n");
                    text(sys);
                    mark("\n<</SYS>>\n\n");
                }
            } else {
                mark("[INST] ");
                if (!sys.empty()) {
                    text(sys);
                    mark("\n\n");
                }
            }
            text(m.content);
            mark(" [/INST]");
            return out;
        }
    }
    return out;
}

namespace {

void append_segments(std::vector<tokenizer::segment>& dst, const std::vector<chat_segment>& src) {
    for (const auto& sg : src) dst.push_back({sg.text, sg.markup});
}

}  // namespace

std::vector<token_id> chat_template::encode_message(const tokenizer& tok, std::span<const chat_message> messages,
                                                    size_t idx, bool add_bos) const {
    const auto segs = render_message_segments(messages, idx);
    std::vector<tokenizer::segment> t;
    append_segments(t, segs);
    return tok.encode(std::span<const tokenizer::segment>(t), add_bos);
}

std::vector<token_id> chat_template::encode(const tokenizer& tok, std::span<const chat_message> messages,
                                            bool add_generation_prompt, bool add_bos) const {
    std::vector<std::vector<chat_segment>> parts;  // owns the texts the tokenizer segments view
    parts.reserve(messages.size() + 1);
    for (size_t i = 0; i < messages.size(); ++i) parts.push_back(render_message_segments(messages, i));
    if (add_generation_prompt) parts.push_back({{generation_prompt(), true}});
    std::vector<tokenizer::segment> t;
    for (const auto& p : parts) append_segments(t, p);
    return tok.encode(std::span<const tokenizer::segment>(t), add_bos);
}

std::string chat_template::generation_prompt() const {
    switch (format_) {
        case chat_format::chatml:
            return std::string(k_chatml_start) + "assistant\n";
        case chat_format::llama3:
            return std::string(k_llama3_header) + "assistant<|end_header_id|>\n\n";
        case chat_format::llama2:
        case chat_format::mistral:
            return "";
    }
    return "";
}

std::string chat_template::assistant_prefix() const {
    switch (format_) {
        case chat_format::chatml:
        case chat_format::llama3:
            return generation_prompt();
        case chat_format::llama2:
        case chat_format::mistral:
            return " ";
    }
    return "";
}

std::string chat_template::assistant_suffix() const {
    switch (format_) {
        case chat_format::chatml:
            return std::string(k_chatml_end) + "\n";
        case chat_format::llama3:
            return "<|eot_id|>";
        case chat_format::llama2:
            return " </s>";
        case chat_format::mistral:
            return "</s>";
    }
    return "";
}

std::vector<std::string> chat_template::stop_strings() const {
    switch (format_) {
        case chat_format::chatml:
            return {std::string(k_chatml_end), "<|endoftext|>"};
        case chat_format::llama3:
            return {"<|eot_id|>", "<|end_of_text|>"};
        case chat_format::llama2:
        case chat_format::mistral:
            return {"</s>"};
    }
    return {};
}

}  // namespace mnemos::engine
