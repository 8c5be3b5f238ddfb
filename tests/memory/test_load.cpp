// The batched resume path: block_store_i::load_many on the RocksDB store
// (MultiGet, several threads, several chunks) returns exactly what load()
// returns block by block, and a damaged or missing block inside a batch is a
// miss; kv_cache::match_prefix loads runs of blocks in batches, falls back to
// one block at a time through its scratch page when only cached pages are
// free, and gives back the pages of a batch after its first bad block.
#include <catch2/catch.hpp>
#include <cstring>

#include "engine/kv_cache.h"
#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;
using engine::block_hash;
using engine::token_id;

namespace {

// The page layout of a 2-layer model with kv_dim 128 and 16-token pages: 8192 f16 values.
constexpr int32_t n_layer = 2, n_head_kv = 2, head_dim = 64, kv_dim = n_head_kv * head_dim;
constexpr size_t page_elems = size_t(n_layer) * 2 * 16 * kv_dim;

std::unique_ptr<store> open_with(const std::string& path, kv_codec codec, int32_t load_threads, size_t chunk_bytes) {
    store_options o;
    o.path = path;
    o.codec = codec;
    o.int8_group = kv_dim;
    o.load_threads = load_threads;
    o.load_chunk_bytes = chunk_bytes;
    auto s = store::open(o);
    INFO((s.ok() ? std::string() : s.error().to_string()));
    REQUIRE(s.ok());
    return std::move(s.value());
}

std::unique_ptr<engine::kv_cache> open_cache(int32_t n_pages) {
    engine::kv_cache_options o;
    o.n_layer = n_layer;
    o.n_head_kv = n_head_kv;
    o.head_dim = head_dim;
    o.page_size = 16;
    o.n_pages = n_pages;
    o.fingerprint = test::hash_of(77);
    auto c = engine::kv_cache::open(o);
    REQUIRE(c.ok());
    return std::move(c.value());
}

// Deterministic finite f16 contents for block k of a sequence.
uint16_t page_value(size_t k, size_t i) { return uint16_t(((k * 7919 + i * 31) & 0x3bff) | ((i & 1) << 15)); }

// Reserves, fills and commits n_blocks full pages of tokens (block k's tokens: tokens_of(base + k)) plus one
// token, so that every full page is indexed and written behind.
std::vector<token_id> fill_sequence(engine::kv_cache& c, engine::kv_sequence& seq, uint32_t base, int n_blocks) {
    std::vector<token_id> toks;
    for (int k = 0; k < n_blocks; ++k) {
        const auto t = test::tokens_of(base + uint32_t(k));
        toks.insert(toks.end(), t.begin(), t.end());
    }
    REQUIRE(c.reserve(seq, int32_t(toks.size())).ok());
    for (int k = 0; k < n_blocks; ++k) {
        uint16_t* p = c.page_data(seq.pages[size_t(k)]);
        for (size_t i = 0; i < page_elems; ++i) p[i] = page_value(base + size_t(k), i);
    }
    REQUIRE(c.commit(seq, toks).ok());
    toks.push_back(token_id(5));  // the last prompt token is always recomputed
    return toks;
}

bool page_holds(const engine::kv_cache& c, engine::page_idx p, size_t k) {
    const uint16_t* d = c.page_data(p);
    for (size_t i = 0; i < page_elems; ++i)
        if (d[i] != page_value(k, i)) return false;
    return true;
}

}  // namespace

TEST_CASE("load_many returns what load returns; bad blocks inside a batch are misses", "[memory][load]") {
    const kv_codec codec = GENERATE(kv_codec::fp16, kv_codec::int8);
    const int32_t threads = GENERATE(1, 3);
    INFO(kv_codec_name(codec) << ", " << threads << " load threads");
    test::temp_dir dir("load-many");
    std::vector<block_hash> hs;
    std::vector<std::vector<uint8_t>> pages;
    {
        auto st = open_with(dir.path, codec, threads, 2 * 2 * page_elems);  // 2 blocks per MultiGet
        for (uint32_t i = 0; i < 12; ++i) {
            hs.push_back(test::hash_of(500 + i));
            pages.push_back(test::random_page(page_elems, i));
            st->blocks().persist(hs.back(), i ? hs[i - 1] : block_hash{}, test::tokens_of(i), pages.back());
        }
        st->flush();
        // Block 4: one bit flipped; block 7: truncated.
        auto v = st->raw_block(hs[4]);
        REQUIRE(v.ok());
        (*v)[v->size() / 3] ^= 0x04;
        REQUIRE(st->put_raw_block(hs[4], *v).ok());
        v = st->raw_block(hs[7]);
        REQUIRE(v.ok());
        REQUIRE(st->put_raw_block(hs[7], v->substr(0, v->size() - 64)).ok());
    }
    auto st = open_with(dir.path, codec, threads, 2 * 2 * page_elems);
    std::vector<block_hash> ask = hs;
    ask.insert(ask.begin() + 9, test::hash_of(999));  // never stored
    std::vector<std::vector<uint8_t>> bufs(ask.size(), std::vector<uint8_t>(2 * page_elems, 0xee));
    std::vector<std::span<uint8_t>> outs(bufs.begin(), bufs.end());
    std::vector<uint8_t> ok(ask.size(), 7);
    CHECK(st->blocks().load_many(ask, outs, ok) == 10);
    const auto s = st->counters();
    CHECK(s.n_loads == ask.size());
    CHECK(s.n_load_hits == 10);
    CHECK(s.n_load_corrupt == 2);
    CHECK(s.n_load_missing == 1);
    CHECK(s.n_load_batches == 7);  // 13 blocks, 2 per MultiGet
    for (size_t i = 0; i < ask.size(); ++i) {
        INFO("block " << i);
        const bool bad = i == 4 || i == 7 || i == 9;
        CHECK(ok[i] == (bad ? 0 : 1));
        if (bad) continue;
        std::vector<uint8_t> one(2 * page_elems);
        REQUIRE(st->blocks().load(ask[i], one));
        CHECK(bufs[i] == one);  // bit for bit the same decode
        if (codec == kv_codec::fp16) CHECK(bufs[i] == pages[i < 9 ? i : i - 1]);
    }
    // A page of the wrong size is a miss too, and an empty batch does nothing.
    std::vector<uint8_t> wrong(2 * page_elems + 2);
    std::span<uint8_t> wrong_out(wrong);
    uint8_t wrong_ok = 1;
    CHECK(st->blocks().load_many({&hs[0], 1}, {&wrong_out, 1}, {&wrong_ok, 1}) == 0);
    CHECK(wrong_ok == 0);
    CHECK(st->blocks().load_many({}, {}, {}) == 0);
}

TEST_CASE("match_prefix loads runs in batches, through the scratch page when only cached pages are free",
          "[memory][load]") {
    test::temp_dir dir("load-kv");
    auto st = open_with(dir.path, kv_codec::fp16, 2, size_t(1) << 20);
    std::vector<token_id> prompt;
    std::vector<block_hash> hashes;
    {
        auto c = open_cache(8);
        c->set_store(&st->blocks());
        engine::kv_sequence a;
        prompt = fill_sequence(*c, a, 10, 5);  // blocks 10..14 written behind
        hashes = a.hashes;
        c->release(a);
    }
    st->flush();
    REQUIRE(hashes.size() == 5);

    SECTION("free uncached pages: batches of 2, then 3") {
        auto c = open_cache(8);
        c->set_store(&st->blocks());
        engine::kv_sequence s;
        CHECK(c->match_prefix(s, prompt) == 80);
        for (size_t k = 0; k < 5; ++k) CHECK(page_holds(*c, s.pages[k], 10 + k));
        CHECK(s.hashes == hashes);
        const auto ks = c->stats();
        CHECK(ks.hits_store == 80);
        CHECK(ks.n_store_batches == 2);
        CHECK(ks.n_store_failures == 0);
        CHECK(c->check_consistency().ok());
    }
    SECTION("only cached pages free: one block at a time through the scratch page") {
        auto c = open_cache(6);
        c->set_store(&st->blocks());
        engine::kv_sequence other;
        fill_sequence(*c, other, 40, 6);  // every page indexed ...
        c->release(other);                // ... and free: cached, evicted one by one by the loads
        REQUIRE(c->stats().n_cached_free == 6);
        engine::kv_sequence s;
        CHECK(c->match_prefix(s, prompt) == 80);
        for (size_t k = 0; k < 5; ++k) CHECK(page_holds(*c, s.pages[k], 10 + k));
        const auto ks = c->stats();
        CHECK(ks.n_store_batches == 0);
        CHECK(ks.hits_store == 80);
        CHECK(ks.evictions == 5);
        CHECK(c->check_consistency().ok());
    }
    SECTION("a damaged block inside a batch: the prefix stops there, the batch's other pages are given back") {
        auto v = st->raw_block(hashes[3]);
        REQUIRE(v.ok());
        (*v)[100] ^= 0x01;
        REQUIRE(st->put_raw_block(hashes[3], *v).ok());
        auto c = open_cache(8);
        c->set_store(&st->blocks());
        engine::kv_sequence s;
        CHECK(c->match_prefix(s, prompt) == 48);  // blocks 0..2; block 3 is recomputed by the caller
        for (size_t k = 0; k < 3; ++k) CHECK(page_holds(*c, s.pages[k], 10 + k));
        const auto ks = c->stats();
        CHECK(ks.n_store_failures == 1);
        CHECK(ks.n_free == 8 - 3);
        CHECK(ks.n_cached == 3);  // only the blocks that were used are indexed
        CHECK(c->find(hashes[4]) < 0);
        CHECK(c->check_consistency().ok());
        CHECK(st->counters().n_load_corrupt == 1);
    }
    SECTION("a store without the prompt's blocks costs one small batch") {
        auto c = open_cache(8);
        c->set_store(&st->blocks());
        std::vector<token_id> unknown(81, token_id(3));
        engine::kv_sequence s;
        CHECK(c->match_prefix(s, unknown) == 0);
        CHECK(st->counters().n_loads == 2);
        CHECK(c->stats().n_free == 8);
        CHECK(c->check_consistency().ok());
    }
}

TEST_CASE("lifetime load and write counters survive reopening (what `mnemos store stats` shows)", "[memory][load]") {
    test::temp_dir dir("load-lifetime");
    const block_hash h = test::hash_of(1), missing = test::hash_of(2);
    std::vector<uint8_t> out(2 * page_elems);
    {
        auto st = open_with(dir.path, kv_codec::fp16, 2, size_t(1) << 20);
        st->blocks().persist(h, block_hash{}, test::tokens_of(1), test::random_page(page_elems, 1));
        st->blocks().persist(h, block_hash{}, test::tokens_of(1), test::random_page(page_elems, 1));  // dedup
        st->flush();
        CHECK(st->blocks().load(h, out));
        CHECK_FALSE(st->blocks().load(missing, out));
    }
    {
        auto st = open_with(dir.path, kv_codec::fp16, 2, size_t(1) << 20);
        const auto s = st->stats();
        CHECK(s.n_loads == 0);  // this process
        CHECK(s.lifetime_loads == 2);
        CHECK(s.lifetime_load_hits == 1);
        CHECK(s.lifetime_load_missing == 1);
        CHECK(s.lifetime_hit_rate() == Approx(0.5));
        CHECK(s.lifetime_persists == 2);
        CHECK(s.lifetime_persist_skipped == 1);
        CHECK(st->blocks().load(h, out));
        CHECK(st->counters().lifetime_loads == 3);
    }
    auto st = open_with(dir.path, kv_codec::fp16, 2, size_t(1) << 20);
    CHECK(st->counters().lifetime_loads == 3);
    CHECK(st->counters().lifetime_load_hits == 2);
}
