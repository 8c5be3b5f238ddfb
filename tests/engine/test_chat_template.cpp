// Chat templates ([chat]) and stop-string matching ([stop]).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/chat_template.h"
#include "engine/stop_matcher.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

std::vector<chat_message> four_messages() {
    return {
        {"system", "You are terse."},
        {"user", "Hi"},
        {"assistant", "Hello!"},
        {"user", "How are you?"},
    };
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Whether s is a sequence of whole UTF-8 code points (structure only).
bool whole_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > s.size()) return false;
        for (size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += len;
    }
    return true;
}

const chat_format k_formats[] = {chat_format::chatml, chat_format::llama3, chat_format::llama2, chat_format::mistral};

}  // namespace

TEST_CASE("chatml renders a 4-message conversation", "[chat]") {
    auto t = chat_template::of(chat_format::chatml);
    auto m = four_messages();
    CHECK(std::string(t.name()) == "chatml");
    CHECK(t.render(m, true) ==
          "<|im_start|>system\nYou are terse.<|im_end|>\n"
          "<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello!<|im_end|>\n"
          "<|im_start|>user\nHow are you?<|im_end|>\n"
          "<|im_start|>assistant\n");
    CHECK(t.generation_prompt() == "<|im_start|>assistant\n");
    CHECK(t.stop_strings().front() == "<|im_end|>");
}

TEST_CASE("llama3 renders a 4-message conversation without BOS", "[chat]") {
    auto t = chat_template::of(chat_format::llama3);
    auto m = four_messages();
    CHECK(t.render(m, true) ==
          "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(t.render(m, true).find("<|begin_of_text|>") == std::string::npos);
    CHECK(t.stop_strings().front() == "<|eot_id|>");
    std::vector<chat_message> tool = {{"tool", "42"}};
    CHECK(t.render(tool, false) == "<|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>");
}

TEST_CASE("llama2 renders a 4-message conversation with the system prompt folded in", "[chat]") {
    auto t = chat_template::of(chat_format::llama2);
    auto m = four_messages();
    // The first <s> is the BOS the tokenizer adds; later ones are in the text.
    CHECK(t.render(m, true) ==
          "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
          "<s>[INST] How are you? [/INST]");
    CHECK(t.render(m, false) == t.render(m, true));  // the prompt already ends with [/INST]
    CHECK(t.stop_strings().front() == "</s>");
    std::vector<chat_message> no_sys = {{"user", "Hi"}};
    CHECK(t.render(no_sys, true) == "[INST] Hi [/INST]");
}

TEST_CASE("mistral renders a 4-message conversation with the system prompt folded in", "[chat]") {
    auto t = chat_template::of(chat_format::mistral);
    auto m = four_messages();
    CHECK(t.render(m, true) ==
          "[INST] You are terse.\n\nHi [/INST] Hello!</s>"
          "[INST] How are you? [/INST]");
    std::vector<chat_message> no_sys = {{"user", "Hi"}, {"assistant", "Yo"}};
    CHECK(t.render(no_sys, false) == "[INST] Hi [/INST] Yo</s>");
}

TEST_CASE("rendering is append-only: render == concatenation of render_message", "[chat]") {
    std::vector<std::vector<chat_message>> conversations = {
        four_messages(),
        {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}, {"user", "e"}},
        {{"system", "s1"}, {"system", "s2"}, {"user", "u"}, {"assistant", "x"}, {"tool", "t"}, {"assistant", "y"}},
        {{"user", "héllo ✓"}, {"assistant", ""}, {"system", "late"}, {"user", "again"}},
    };
    std::vector<chat_template> templates;
    for (auto f : k_formats) templates.push_back(chat_template::of(f));
    auto with_default = chat_template::detect("{{ '<|im_start|>system\\nBe kind.<|im_end|>\\n' }}<|im_start|>");
    REQUIRE(with_default.ok());
    templates.push_back(*with_default);

    for (const auto& t : templates) {
        for (const auto& conv : conversations) {
            std::span<const chat_message> all(conv);
            std::string concat;
            for (size_t n = 0; n <= conv.size(); ++n) {
                INFO(t.name() << " n=" << n);
                CHECK(t.render(all.first(n), false) == concat);
                CHECK(t.render(all.first(n), true) == concat + t.generation_prompt());
                if (n < conv.size()) concat += t.render_message(all, n);
            }
        }
    }
}

TEST_CASE("a generated reply rendered as a message reuses the generated text as-is", "[chat]") {
    std::vector<chat_message> m = {{"system", "sys"}, {"user", "Q"}};
    const std::string reply = "The answer.";
    for (auto f : k_formats) {
        auto t = chat_template::of(f);
        INFO(t.name());
        std::string prompt = t.render(m, true);
        auto m2 = m;
        m2.push_back({"assistant", reply});
        // The model generates its reply (for SentencePiece formats with the leading
        // space of its first token), then the end-of-turn marker.
        std::string generated = (t.assistant_prefix() == t.generation_prompt() ? "" : " ") + reply;
        CHECK(t.render(m2, false) == prompt + generated + t.assistant_suffix());
        CHECK(t.assistant_suffix().find(t.stop_strings().front()) != std::string::npos);
        CHECK(t.render_message(m2, 2) == t.assistant_prefix() + reply + t.assistant_suffix());
    }
}

TEST_CASE("detect recognizes the reference SmolLM chatml template and its default system prompt", "[chat][model]") {
    std::string jinja = read_text(MNEMOS_SHARED_DIR "/reference/chatml.jinja");
    REQUIRE(!jinja.empty());
    auto t = chat_template::detect(jinja);
    REQUIRE(t.ok());
    CHECK(t->format() == chat_format::chatml);
    CHECK(t->default_system() == "You are a helpful AI assistant named SmolLM, trained by Hugging Face");

    std::vector<chat_message> m = {{"user", "Hi"}, {"assistant", "Hello"}};
    // As the reference template renders: the default system block when messages[0] is not a system message.
    CHECK(t->render(m, true) ==
          "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
          "<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello<|im_end|>\n"
          "<|im_start|>assistant\n");
    auto four = four_messages();
    CHECK(t->render(four, false) == chat_template::of(chat_format::chatml).render(four, false));
    std::vector<chat_message> none;
    CHECK(t->render(none, true) == "<|im_start|>assistant\n");
}

TEST_CASE("detect recognizes llama3, llama2 and mistral template snippets", "[chat]") {
    const char* llama3 =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
        "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
        "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
        "{% endif %}";
    const char* llama2 =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
        "messages[0]['content'] %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and "
        "system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
        "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
        "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' "
        "+ eos_token }}{% endif %}{% endfor %}";
    const char* mistral =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
        "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
        "eos_token}}{% endif %}{% endfor %}";
    const char* qwen_escaped =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    const char* generic_chatml =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
        "'<|im_end|>' + '\\n'}}{% endfor %}";

    auto t3 = chat_template::detect(llama3);
    REQUIRE(t3.ok());
    CHECK(t3->format() == chat_format::llama3);
    auto t2 = chat_template::detect(llama2);
    REQUIRE(t2.ok());
    CHECK(t2->format() == chat_format::llama2);
    auto tm = chat_template::detect(mistral);
    REQUIRE(tm.ok());
    CHECK(tm->format() == chat_format::mistral);
    CHECK(std::string(tm->name()) == "mistral");

    auto tq = chat_template::detect(qwen_escaped);
    REQUIRE(tq.ok());
    CHECK(tq->format() == chat_format::chatml);
    CHECK(tq->default_system() == "You are a helpful assistant.");
    auto tg = chat_template::detect(generic_chatml);
    REQUIRE(tg.ok());
    CHECK(tg->default_system().empty());

    auto empty = chat_template::detect("");
    REQUIRE(empty.ok());
    CHECK(empty->format() == chat_format::chatml);
    CHECK(empty->default_system().empty());
}

TEST_CASE("detect rejects an unknown template and names the markers", "[chat]") {
    auto t = chat_template::detect("{% for m in messages %}<|user|>\n{{ m['content'] }}</s>{% endfor %}");
    REQUIRE(!t.ok());
    CHECK(t.error().code() == errc::unsupported);
    CHECK(t.error().message().find("<|im_start|>") != std::string::npos);
    CHECK(t.error().message().find("<|start_header_id|>") != std::string::npos);
    CHECK(t.error().message().find("[INST]") != std::string::npos);
}

// ---------------------------------------------------------------------------
// stop_matcher

TEST_CASE("stop string split across many pushes is never emitted", "[stop]") {
    stop_matcher sm({"<|im_end|>"});
    std::string out;
    for (std::string_view piece : {"Hello", " wor", "ld<", "|im", "_", "end", "|>", "ignored"}) {
        out += sm.push(piece);
        if (sm.stopped()) break;
    }
    CHECK(sm.stopped());
    CHECK(out == "Hello world");
    CHECK(sm.matched() == "<|im_end|>");
    CHECK(sm.push("more").empty());
    CHECK(sm.flush().empty());
}

TEST_CASE("text after the stop string in the same push is dropped", "[stop]") {
    stop_matcher sm({"STOP"});
    CHECK(sm.push("abc").size() == 3);
    CHECK(sm.push("dSTOPefg") == "d");
    CHECK(sm.stopped());
}

TEST_CASE("a partial match that is not a stop is released", "[stop]") {
    stop_matcher sm({"<|im_end|>"});
    CHECK(sm.push("a <|im") == "a ");  // "<|im" held back
    CHECK(!sm.stopped());
    CHECK(sm.push("_start") == "<|im_start");
    CHECK(sm.push("x<") == "x");
    CHECK(sm.flush() == "<");  // held back at the end, released by flush
    CHECK(!sm.stopped());

    stop_matcher overlap({"aab"});
    CHECK(overlap.push("a") == "");
    CHECK(overlap.push("a") == "");
    CHECK(overlap.push("a") == "a");  // "aaa": the first a cannot start "aab" any more
    CHECK(overlap.push("b") == "");
    CHECK(overlap.stopped());
}

TEST_CASE("multiple stop strings: the earliest wins", "[stop]") {
    stop_matcher sm({"</s>", "\nUser:", "<|eot_id|>"});
    std::string out = sm.push("one\nUs");
    CHECK(out == "one");
    out += sm.push("er: two </s>");
    CHECK(sm.stopped());
    CHECK(sm.matched() == "\nUser:");
    CHECK(out == "one");

    stop_matcher sm2({"xyz", "yz"});
    CHECK(sm2.push("axyz") == "a");
    CHECK(sm2.matched() == "xyz");
}

TEST_CASE("stop matching on UTF-8 content holds back incomplete code points", "[stop]") {
    stop_matcher sm({"。終"});
    const std::string text = "こんにちは。世界。終わり";  // stop at "。終"
    std::string out;
    // Feed one byte at a time, as byte-fallback tokens would.
    for (char c : text) {
        std::string piece = sm.push(std::string_view(&c, 1));
        CHECK(whole_utf8(piece));  // never a code point cut short
        out += piece;
        if (sm.stopped()) break;
    }
    CHECK(sm.stopped());
    CHECK(out == "こんにちは。世界");

    stop_matcher partial({"é!"});
    std::string s = "café";
    CHECK(partial.push(s.substr(0, 4)) == "caf");  // "caf" + first byte of é
    CHECK(partial.push(s.substr(4)) == "");        // "é" may start "é!"
    CHECK(partial.push("?") == "é?");
    CHECK(partial.flush().empty());

    stop_matcher none({});
    CHECK(none.push("\xE4\xB8") == "");  // incomplete 3-byte sequence held back
    CHECK(none.push("\x96") == "\xE4\xB8\x96");
    CHECK(none.push("\xE4") == "");
    CHECK(none.flush() == "\xE4");
}
