// Page summaries (sparse attention) beside the KV blocks in RocksDB: a long
// history resumed from a reopened store reads its summaries instead of every
// block; damaged summaries are refused (and recomputed from their blocks).
#include <catch2/catch.hpp>

#include "memory/codec.h"
#include "memory/store.h"
#include "tests/memory/util.h"
#include "tests/support/recall_run.h"

using namespace mnemos;
using namespace mnemos::engine;
using namespace mnemos::test::recall_run;
using mnemos::test::open_store;

TEST_CASE("summary records: round trip, and any damage or another block's hash is refused", "[memory][summaries]") {
    block_hash h, other;
    h.bytes[0] = 1;
    other.bytes[0] = 2;
    std::vector<uint8_t> payload(200);
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t(i * 7);
    const std::string v = memory::encode_summary(h, payload);
    std::vector<uint8_t> out(payload.size());
    REQUIRE(memory::decode_summary(h, v, out));
    CHECK(out == payload);
    CHECK_FALSE(memory::decode_summary(other, v, out));
    std::vector<uint8_t> shorter(payload.size() - 1);
    CHECK_FALSE(memory::decode_summary(h, v, shorter));
    for (size_t i = 0; i < v.size(); i += 13) {
        std::string bad = v;
        bad[i] = char(bad[i] ^ 0x20);
        CHECK_FALSE(memory::decode_summary(h, bad, out));
    }
    CHECK_FALSE(memory::decode_summary(h, v.substr(0, v.size() - 1), out));
}

TEST_CASE("a long history resumes from a reopened store through its summaries", "[memory][summaries][sparse]") {
    test::temp_dir dir("mnemos_summaries_");
    auto f = load_recall_model({});
    const int64_t n_tokens = 32768;
    const auto needles = random_needles(4, 32, n_tokens, 8);
    const auto history = test::make_recall_history(f.roles, n_tokens, needles, 9);
    engine_options eo = recall_engine_options(4096);
    eo.max_batch_tokens = 512;
    eo.attention.n_window = 256;
    eo.attention.n_sink = 32;
    eo.attention.n_pages = 8;
    eo.kv_bytes = size_t(512) * 3 * 2 * 16 * 128 * 2;  // 512 pages for a 2048-page history
    {
        auto st = open_store(dir.sub("db"), memory::kv_codec::fp16, 0);
        auto eng = make_engine(f.m, eo);
        eng->kv().set_store(&st->blocks());
        prefill(*eng, history);
        st->flush();
    }
    auto st = open_store(dir.sub("db"), memory::kv_codec::fp16, 0);
    auto eng = make_engine(f.m, eo);
    eng->kv().set_store(&st->blocks());
    const auto before = st->counters();
    for (const auto& nd : needles) {
        const answer a = ask(*eng, history, f.roles.keys[size_t(nd.key)]);
        CHECK(a.token == f.roles.values[size_t(nd.value)]);
        CHECK(a.fin.n_reused >= n_tokens - 16);
    }
    const auto after = st->counters();
    INFO("blocks read for 4 questions over 2048 pages: " << after.n_loads - before.n_loads);
    CHECK(after.n_loads - before.n_loads < 4 * 200);
}
