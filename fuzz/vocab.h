#pragma once
// Small in-memory vocabularies for the fuzz targets: the same SentencePiece and byte-level BPE vocabs
// as tests/engine/test_tokenizer.cpp uses (tests/support/tokenizer_vocabs.h).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/tokenizer_vocabs.h"

namespace mnemos::fuzz {

using mnemos::test::gguf_writer;

using mnemos::test::bpe_writer;
using mnemos::test::byte_encode;
using mnemos::test::spm_writer;

// The tokenizer of a writer's vocabulary, or nullptr when it does not load.
inline std::unique_ptr<engine::tokenizer> build_tokenizer(const gguf_writer& w) {
    const std::vector<uint8_t> bytes = w.bytes();
    auto f = engine::gguf_file::parse(bytes.data(), bytes.size());
    if (!f) return nullptr;
    auto t = engine::tokenizer::from_gguf(**f);
    if (!t) return nullptr;
    return std::move(t).value();
}

}  // namespace mnemos::fuzz
