#pragma once
// Chat templates rendered natively (no Jinja interpreter): the template family is
// recognized from a model's `tokenizer.chat_template` string, then messages are
// rendered by hand-written code for that family.
//
// Rendering is append-only (DESIGN.md, principle 3): the text of message `idx`
// depends only on messages[0..idx], so a session tokenizes each message's text
// once and only ever appends tokens. For every n:
//     render(m[0..n), false) == render_message(m, 0) + ... + render_message(m, n - 1)
//     render(m[0..n), true)  == render(m[0..n), false) + generation_prompt()
//
// BOS: the first BOS token ("<|begin_of_text|>", "<s>") is never part of the
// rendered text; the tokenizer adds it. Later special markers ("<s>", "</s>",
// "<|eot_id|>", ...) are in the text and must be tokenized with special tokens
// parsed.
//
// Markup vs content: only the template's own markup may become special tokens.
// Message content and roles are plain text, so a user who writes "<|im_start|>system"
// gets ordinary text tokens, never a control token (no prompt injection through
// control tokens). render_message_segments() tells markup from content, and
// encode_message() / encode() tokenize accordingly; use them, not
// tok.encode(render_message(...), ..., true), wherever content comes from a user.
// For content without special-token text the tokens are identical either way.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "engine/types.h"

namespace mnemos::engine {

class tokenizer;

// One message of a conversation.
struct chat_message {
    std::string role;     // "system", "user", "assistant" or "tool"
    std::string content;  // verbatim; not trimmed (the official Llama templates trim, callers should too)
};

// A piece of rendered text: markup (the template's own text, tokenized with special
// tokens parsed) or content (a message's text or role, tokenized as plain text).
struct chat_segment {
    std::string text;
    bool markup = false;
};

enum class chat_format {
    chatml,   // <|im_start|>role\ncontent<|im_end|>\n                    (SmolLM, Qwen, ...)
    llama3,   // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
    llama2,   // [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] assistant </s><s>[INST] ...
    mistral,  // [INST] sys\n\nuser [/INST] assistant</s>[INST] ...          (Mistral tokenizer v1)
};

class chat_template {
  public:
    // Recognizes the family of a Jinja chat template by its markers:
    //   "<|im_start|>" -> chatml; "<|start_header_id|>" -> llama3;
    //   "[INST]" and "<<SYS>>" -> llama2; "[INST]" without "<<SYS>>" -> mistral.
    // An empty template (a GGUF without `tokenizer.chat_template`) -> chatml without
    // a default system prompt.
    // For chatml, a literal default system block in the template
    // ('<|im_start|>system\n...<|im_end|>', as in SmolLM's and Qwen's templates) is
    // extracted and inserted before the first message when that message is not a
    // system message, as the template does.
    // On failure: errc::unsupported naming the markers looked for.
    static result<chat_template> detect(std::string_view jinja);

    // The plain template of a family (chatml without a default system prompt).
    static chat_template of(chat_format f);

    chat_format format() const { return format_; }
    // "chatml", "llama3", "llama2" or "mistral".
    const char* name() const;
    // The default system prompt inserted when the first message is not a system
    // message; empty when none.
    const std::string& default_system() const { return default_system_; }

    // The full prompt text for `messages`; ends with generation_prompt() when
    // add_generation_prompt.
    std::string render(std::span<const chat_message> messages, bool add_generation_prompt) const;

    // The text that message `idx` adds after messages[0..idx) were rendered
    // (without a generation prompt). Depends only on messages[0..idx].
    // llama2 / mistral have no system turn: a system message renders as "" and its
    // text is folded into the user message that directly follows it (several
    // consecutive system messages are joined by "\n\n"); a system message not
    // directly followed by a user message is dropped. "tool" messages render as user
    // turns in these formats. In llama3 "tool" renders as the "ipython" role
    // (Llama 3.1). An index out of range renders as "".
    std::string render_message(std::span<const chat_message> messages, size_t idx) const;
    // render_message() split into markup and content (adjacent segments of one kind are
    // merged; the texts concatenated equal render_message()).
    std::vector<chat_segment> render_message_segments(std::span<const chat_message> messages, size_t idx) const;

    // Tokens of render_message(messages, idx): markup with special tokens parsed, content as
    // plain text (tokenizer::encode of segments). add_bos: prepend BOS when the vocab has one.
    std::vector<token_id> encode_message(const tokenizer& tok, std::span<const chat_message> messages, size_t idx,
                                         bool add_bos) const;
    // Tokens of render(messages, add_generation_prompt), by the same rule.
    std::vector<token_id> encode(const tokenizer& tok, std::span<const chat_message> messages,
                                 bool add_generation_prompt, bool add_bos) const;

    // The text appended after the history to make the model answer:
    // chatml "<|im_start|>assistant\n", llama3 "<|start_header_id|>assistant<|end_header_id|>\n\n",
    // llama2 / mistral "" (the prompt already ends with " [/INST]").
    std::string generation_prompt() const;

    // An assistant message with content c renders as assistant_prefix() + c + assistant_suffix().
    // chatml / llama3: assistant_prefix() == generation_prompt(), so the reply tokens
    // generated after generation_prompt() (up to and including the end-of-turn token)
    // are reused as-is; the session appends what remains of assistant_suffix() after
    // the stop string (chatml: "\n").
    // llama2 / mistral: assistant_prefix() is " " while generation_prompt() is "":
    // the SentencePiece model generates that space as part of its first token
    // ("▁Hello"), so generation_prompt() + generated text == assistant_prefix() + c
    // when c is the generated text without its single leading space.
    std::string assistant_prefix() const;
    // chatml "<|im_end|>\n", llama3 "<|eot_id|>", llama2 " </s>", mistral "</s>".
    std::string assistant_suffix() const;

    // Strings that end an assistant turn in this format, for stop detection; the
    // first is the end-of-turn marker of assistant_suffix().
    std::vector<std::string> stop_strings() const;

  private:
    chat_template(chat_format f, std::string default_system) : format_(f), default_system_(std::move(default_system)) {}

    chat_format format_;          // which family's rendering rules apply
    std::string default_system_;  // chatml only: system text inserted when messages[0] is not a system message
};

}  // namespace mnemos::engine
