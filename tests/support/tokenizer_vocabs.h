#pragma once
// Small in-memory tokenizer vocabularies (a SentencePiece and a byte-level BPE vocab), written as GGUF with
// gguf_writer: shared by tests/engine/test_tokenizer.cpp and the fuzz targets (fuzz/vocab.h).
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/gguf_writer.h"

namespace mnemos::test {

// <unk> <s> </s> <|im_start|> (control) [GO] (user-defined), 256 byte tokens <0xXX>, then a few pieces with scores.
inline gguf_writer spm_writer() {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|im_start|>", "[GO]"};
    std::vector<float> scores = {0, 0, 0, 0, 0};
    std::vector<int32_t> types = {2, 3, 3, 3, 4};
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        tokens.push_back(name);
        scores.push_back(0);
        types.push_back(6);
    }
    const std::vector<std::pair<std::string, float>> pieces = {
        {"\xE2\x96\x81", -1},
        {"h", -2},
        {"i", -3},
        {"\xE2\x96\x81h", -4},
        {"\xE2\x96\x81hi", -1.5f},
        {"a", -5},
        {"b", -6},
        {"ab", -7},
        {"\xE2\x96\x81"
         "a",
         -8},
    };
    for (const auto& [text, score] : pieces) {
        tokens.push_back(text);
        scores.push_back(score);
        types.push_back(1);
    }
    gguf_writer w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_f32_array("tokenizer.ggml.scores", scores);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    return w;
}

// GPT-2 byte-level mapping of a byte string ("Ġ" for space and so on).
inline std::string byte_encode(const std::string& s) {
    std::string r;
    for (unsigned char c : s) {
        uint32_t cp = c;
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) {
            uint32_t n = 0;
            for (uint32_t b = 0; b < c; ++b) {
                if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) ++n;
            }
            cp = 256 + n;
        }
        if (cp < 0x80) {
            r += static_cast<char>(cp);
        } else {
            r += static_cast<char>(0xC0 | (cp >> 6));
            r += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return r;
}

// All 256 byte characters, a few merges, <|endoftext|> and <|im_end|>; tokenizer.ggml.pre = pre.
inline gguf_writer bpe_writer(const std::string& pre) {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (int b = 0; b < 256; ++b) {
        tokens.push_back(byte_encode(std::string(1, static_cast<char>(b))));
        types.push_back(1);
    }
    const std::vector<std::string> merges = {byte_encode(" ") + " h", "h i", byte_encode(" ") + "h i", "l o", "lo w"};
    for (const std::string& m : merges) {
        const size_t sp = m.find(' ', 1);
        tokens.push_back(m.substr(0, sp) + m.substr(sp + 1));
        types.push_back(1);
    }
    tokens.push_back("<|endoftext|>");
    types.push_back(3);
    tokens.push_back("<|im_end|>");
    types.push_back(3);
    gguf_writer w;
    w.add_string("general.architecture", "llama");
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", pre);
    w.add_string_array("tokenizer.ggml.tokens", tokens);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_string_array("tokenizer.ggml.merges", merges);
    w.add_u32("tokenizer.ggml.bos_token_id", 256 + 5);
    w.add_u32("tokenizer.ggml.eos_token_id", 256 + 5);
    return w;
}

}  // namespace mnemos::test
