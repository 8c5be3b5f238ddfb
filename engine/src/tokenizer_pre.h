#pragma once
// Pre-tokenizers of the byte-level BPE tokenizer: each splits text into words the way one of the
// reference engine's regex sets does. Internal to the engine.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnemos::engine::pre {

enum class kind { default_, gpt2, llama3, qwen2, smollm, deepseek_llm };

// Splits `text` into words (their original bytes, in order; concatenated they give `text` back).
// Invalid UTF-8 bytes are kept, each as a code point of its own that no class matches.
std::vector<std::string> split(std::string_view text, kind k);

}  // namespace mnemos::engine::pre
