// Paged KV pool and prefix index: layout, chained hashes, refcounts, LRU free
// list with lazy eviction, prefix sharing, the last-token rule, the block
// store round trip, and a randomized stress test checking the invariants.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "engine/block_store.h"
#include "engine/kv_cache.h"
#include "engine/sha256.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

kv_cache_options small_options(int32_t n_pages, uint8_t fingerprint_byte = 7) {
    kv_cache_options o;
    o.n_layer = 2;
    o.n_head_kv = 2;
    o.head_dim = 4;
    o.page_size = 16;
    o.n_pages = n_pages;
    o.fingerprint.bytes.fill(fingerprint_byte);
    return o;
}

std::unique_ptr<kv_cache> open_cache(const kv_cache_options& o) {
    auto r = kv_cache::open(o);
    REQUIRE(r.ok());
    return std::move(r).value();
}

std::vector<token_id> make_tokens(int32_t n, token_id base) {
    std::vector<token_id> t;
    for (int32_t i = 0; i < n; ++i) t.push_back(base + i);
    return t;
}

// The f16 bits a simulated forward pass writes for position i of a sequence:
// a function of the whole prefix tokens[0..i], like real KV.
uint16_t prefix_value(std::span<const token_id> tokens, size_t i, int layer, bool v, int j) {
    uint32_t r = 2166136261u;
    for (size_t k = 0; k <= i; ++k) r = (r ^ uint32_t(tokens[k])) * 16777619u;
    r ^= uint32_t(layer * 131 + (v ? 7 : 0) + j * 3);
    return uint16_t(r ^ (r >> 16));
}

// Simulates the forward pass: writes KV rows for new tokens at [n_tokens, n_tokens + new) of seq.
// Checks that no shared or cached page is ever written.
void write_rows(kv_cache& c, const kv_sequence& seq, std::span<const token_id> new_tokens) {
    std::vector<token_id> all(seq.tokens);
    all.insert(all.end(), new_tokens.begin(), new_tokens.end());
    const int32_t ps = c.page_size(), kv_dim = c.layout().kv_dim;
    for (size_t i = size_t(seq.n_tokens); i < all.size(); ++i) {
        page_idx p = seq.pages.at(i / size_t(ps));
        REQUIRE(c.ref_count(p) == 1);
        REQUIRE_FALSE(c.is_indexed(p));
        int32_t row = int32_t(i % size_t(ps));
        for (int l = 0; l < c.options().n_layer; ++l)
            for (int j = 0; j < kv_dim; ++j) {
                c.k_ptr(p, l)[row * kv_dim + j] = prefix_value(all, i, l, false, j);
                c.v_ptr(p, l)[row * kv_dim + j] = prefix_value(all, i, l, true, j);
            }
    }
}

// True when every committed row of seq holds the values its prefix implies.
bool rows_match(const kv_cache& c, const kv_sequence& seq) {
    const int32_t ps = c.page_size(), kv_dim = c.layout().kv_dim;
    for (size_t i = 0; i < size_t(seq.n_tokens); ++i) {
        page_idx p = seq.pages[i / size_t(ps)];
        int32_t row = int32_t(i % size_t(ps));
        for (int l = 0; l < c.options().n_layer; ++l)
            for (int j = 0; j < kv_dim; ++j) {
                if (c.k_ptr(p, l)[row * kv_dim + j] != prefix_value(seq.tokens, i, l, false, j)) return false;
                if (c.v_ptr(p, l)[row * kv_dim + j] != prefix_value(seq.tokens, i, l, true, j)) return false;
            }
    }
    return true;
}

// Prefill: match, reserve the rest, write, commit. Returns tokens reused.
int32_t prefill(kv_cache& c, kv_sequence& seq, std::span<const token_id> prompt) {
    int32_t n_reused = c.match_prefix(seq, prompt);
    auto rest = prompt.subspan(size_t(n_reused));
    REQUIRE(c.reserve(seq, int32_t(rest.size())).ok());
    write_rows(c, seq, rest);
    REQUIRE(c.commit(seq, rest).ok());
    return n_reused;
}

std::vector<uint8_t> page_copy(const kv_cache& c, page_idx p) {
    auto* b = reinterpret_cast<const uint8_t*>(c.page_data(p));
    return {b, b + c.page_bytes()};
}

}  // namespace

TEST_CASE("kv_cache: open validates options and lays out pages", "[kv]") {
    kv_cache_options bad = small_options(4);
    bad.n_layer = 0;
    auto r = kv_cache::open(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == errc::invalid_argument);

    kv_cache_options none = small_options(0);
    CHECK(kv_cache::open(none).error().code() == errc::invalid_argument);

    // n_pages derived from max_bytes: page = 2 layers * 2 * 16 * 8 * 2 bytes = 1024 bytes.
    kv_cache_options by_bytes = small_options(0);
    by_bytes.max_bytes = 10 * 1024 + 1000;
    auto c = open_cache(by_bytes);
    CHECK(c->n_pages() == 10);
    CHECK(c->page_bytes() == 1024);

    paged_kv_layout l = c->layout();
    CHECK(l.kv_dim == 8);
    CHECK(l.page_size == 16);
    CHECK(l.v_offset == 16 * 8);
    CHECK(l.layer_stride == 2 * 16 * 8);
    CHECK(l.page_stride == 2 * 2 * 16 * 8);
    CHECK(reinterpret_cast<uintptr_t>(c->data()) % 64 == 0);
    CHECK(c->page_data(3) == c->data() + 3 * l.page_stride);
    CHECK(c->k_ptr(3, 1) == c->data() + 3 * l.page_stride + 1 * l.layer_stride);
    CHECK(c->v_ptr(3, 1) == c->data() + 3 * l.page_stride + 1 * l.layer_stride + 16 * 8);
    CHECK(c->data() + l.k_index(3, 1, 5) == c->k_ptr(3, 1) + 5 * 8);
    CHECK(c->data() + l.v_index(3, 1, 5) == c->v_ptr(3, 1) + 5 * 8);
    for (page_idx p = 0; p < c->n_pages(); ++p) CHECK(c->page_data(p)[0] == 0);  // zero-filled

    kv_cache_stats s = c->stats();
    CHECK(s.n_pages == 10);
    CHECK(s.n_free == 10);
    CHECK(s.n_cached == 0);
    CHECK(c->check_consistency().ok());
}

TEST_CASE("kv_cache: chain hash is SHA-256(parent || little-endian tokens)", "[kv]") {
    block_hash zero;
    auto t = make_tokens(16, 1);
    // Reference from Python: sha256(bytes(32) + struct.pack('<16i', *range(1, 17))).
    CHECK(to_hex(kv_cache::chain_hash(zero, t).bytes) ==
          "7ec4609c870147b78a4746aa72a2d0395ebc270f29ada09fd4810afafd2200f2");
    std::vector<token_id> neg = {-1, 70000};
    CHECK(to_hex(kv_cache::chain_hash(zero, neg).bytes) ==
          "b3f5cdd50be24f12d1646e768ca28bcf90807402b520fafd4e6c0f7bb6af7065");

    block_hash other;
    other.bytes[31] = 1;
    block_hash h = kv_cache::chain_hash(zero, t);
    CHECK_FALSE(kv_cache::chain_hash(other, t) == h);  // depends on the parent
    auto t2 = t;
    t2[15] += 1;
    CHECK_FALSE(kv_cache::chain_hash(zero, t2) == h);  // depends on every token
    std::swap(t2[0], t2[1]);
    CHECK_FALSE(kv_cache::chain_hash(zero, t2) == kv_cache::chain_hash(zero, t));  // and on their order
    CHECK(kv_cache::chain_hash(zero, t) == h);                                     // deterministic

    // A sequence's hashes chain from the fingerprint: two pools with different fingerprints hash differently.
    auto a = open_cache(small_options(8, 1));
    auto b = open_cache(small_options(8, 2));
    auto prompt = make_tokens(40, 100);
    kv_sequence sa, sb;
    prefill(*a, sa, prompt);
    prefill(*b, sb, prompt);
    REQUIRE(sa.hashes.size() == 2);
    REQUIRE(sb.hashes.size() == 2);
    CHECK(sa.hashes[0] == kv_cache::chain_hash(a->options().fingerprint, std::span(prompt).first(16)));
    CHECK(sa.hashes[1] == kv_cache::chain_hash(sa.hashes[0], std::span(prompt).subspan(16, 16)));
    CHECK_FALSE(sa.hashes[0] == sb.hashes[0]);
    CHECK_FALSE(sa.hashes[1] == sb.hashes[1]);
}

TEST_CASE("kv_cache: allocation, refcounts and LRU free order", "[kv]") {
    auto c = open_cache(small_options(6));
    CHECK(c->free_pages() == std::vector<page_idx>{0, 1, 2, 3, 4, 5});

    kv_sequence a;
    REQUIRE(c->reserve(a, 20).ok());  // 2 pages
    CHECK(a.pages == std::vector<page_idx>{0, 1});
    CHECK(a.n_tokens == 0);           // reserve does not advance
    REQUIRE(c->reserve(a, 32).ok());  // still 2 pages
    CHECK(a.pages.size() == 2);
    CHECK(c->ref_count(0) == 1);
    CHECK(c->stats().n_free == 4);
    CHECK(c->reserve(a, -1).code() == errc::invalid_argument);

    // Commit without enough reservation is refused and changes nothing.
    auto t = make_tokens(33, 0);
    CHECK(c->commit(a, t).code() == errc::invalid_argument);
    CHECK(a.n_tokens == 0);
    CHECK(a.tokens.empty());

    // Two full pages (cached when freed) for a, one partial page for b.
    auto prompt_a = make_tokens(32, 500);
    write_rows(*c, a, prompt_a);
    REQUIRE(c->commit(a, prompt_a).ok());
    CHECK(a.n_tokens == 32);
    CHECK(a.hashes.size() == 2);
    CHECK(c->is_indexed(0));
    CHECK(c->is_indexed(1));
    CHECK(c->stats().n_cached == 2);

    kv_sequence b;
    REQUIRE(c->reserve(b, 5).ok());
    CHECK(b.pages == std::vector<page_idx>{2});

    // Release: a's pages go to the cached list, tail page first; b's partial page to the uncached list.
    c->release(a);
    CHECK(a.pages.empty());
    CHECK(a.n_tokens == 0);
    CHECK(a.tokens.empty());
    CHECK(a.hashes.empty());
    c->release(b);
    CHECK(c->ref_count(0) == 0);
    // Uncached pages first (3, 4, 5 never used, then 2), then cached ones least recently freed first (1, then 0).
    CHECK(c->free_pages() == std::vector<page_idx>{3, 4, 5, 2, 1, 0});
    kv_cache_stats s = c->stats();
    CHECK(s.n_free == 6);
    CHECK(s.n_cached == 2);
    CHECK(s.n_cached_free == 2);
    REQUIRE(c->check_consistency().ok());

    // Allocation takes uncached pages first, so the cache survives as long as possible.
    std::vector<kv_event> events;
    c->set_listener([&](const kv_event& e) { events.push_back(e); });
    kv_sequence d;
    REQUIRE(c->reserve(d, 4 * 16).ok());
    CHECK(d.pages == std::vector<page_idx>{3, 4, 5, 2});
    CHECK(events.empty());
    CHECK(c->stats().evictions == 0);
    REQUIRE(c->reserve(d, 5 * 16).ok());
    CHECK(d.pages.back() == 1);  // least recently freed cached page
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == kv_event_type::evicted);
    CHECK(events[0].page == 1);
    CHECK(c->stats().evictions == 1);
    CHECK_FALSE(c->is_indexed(1));
    CHECK(c->is_indexed(0));
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: sequences with a common prefix share full pages, never the partial one", "[kv]") {
    auto c = open_cache(small_options(16));
    auto prompt = make_tokens(40, 1000);  // 2 full pages + 8 tokens
    kv_sequence a;
    CHECK(prefill(*c, a, prompt) == 0);
    REQUIRE(a.pages.size() == 3);

    // b continues the same 40 tokens with 10 more.
    auto prompt_b = prompt;
    for (int i = 0; i < 10; ++i) prompt_b.push_back(9000 + i);
    kv_sequence b;
    CHECK(c->match_prefix(b, prompt_b) == 32);
    CHECK(b.n_tokens == 32);
    CHECK(b.tokens == std::vector<token_id>(prompt.begin(), prompt.begin() + 32));
    REQUIRE(b.pages.size() == 2);
    CHECK(b.pages[0] == a.pages[0]);
    CHECK(b.pages[1] == a.pages[1]);
    CHECK(b.hashes == a.hashes);
    CHECK(c->ref_count(a.pages[0]) == 2);
    CHECK(c->ref_count(a.pages[1]) == 2);
    CHECK(c->ref_count(a.pages[2]) == 1);

    auto rest = std::span<const token_id>(prompt_b).subspan(32);
    REQUIRE(c->reserve(b, int32_t(rest.size())).ok());
    REQUIRE(b.pages.size() == 4);
    CHECK(b.pages[2] != a.pages[2]);  // the partial page of a is not shared
    write_rows(*c, b, rest);
    REQUIRE(c->commit(b, rest).ok());
    CHECK(rows_match(*c, a));
    CHECK(rows_match(*c, b));

    kv_cache_stats s = c->stats();
    CHECK(s.hits_resident == 32);
    CHECK(s.misses == 40 + (50 - 32));

    // A second match of an unrelated prompt finds nothing.
    kv_sequence d;
    CHECK(c->match_prefix(d, make_tokens(64, 77)) == 0);
    CHECK(d.pages.empty());
    REQUIRE(c->check_consistency().ok());

    // A non-empty sequence is not matched again.
    CHECK(c->match_prefix(b, prompt_b) == 0);
    CHECK(b.pages.size() == 4);
}

TEST_CASE("kv_cache: a prompt of exactly k full pages reuses at most k-1 (last-token rule)", "[kv]") {
    auto c = open_cache(small_options(16));
    auto prompt = make_tokens(48, 3);
    kv_sequence a;
    prefill(*c, a, prompt);
    CHECK(a.hashes.size() == 3);
    CHECK(c->stats().n_cached == 3);

    kv_sequence b;
    CHECK(c->match_prefix(b, prompt) == 32);  // the third page holds the last token: recomputed
    CHECK(b.pages.size() == 2);
    kv_sequence d;
    CHECK(c->match_prefix(d, std::span(prompt).first(49 - 1)) == 32);
    kv_sequence e;
    auto longer = prompt;
    longer.push_back(4);
    CHECK(c->match_prefix(e, longer) == 48);  // one more token: all 3 pages
    kv_sequence f;
    CHECK(c->match_prefix(f, std::span(prompt).first(16)) == 0);
    kv_sequence g;
    CHECK(c->match_prefix(g, std::span(prompt).first(17)) == 16);
    kv_sequence h;
    CHECK(c->match_prefix(h, std::span<const token_id>()) == 0);
}

TEST_CASE("kv_cache: cached pages survive release and are found again", "[kv]") {
    auto c = open_cache(small_options(8));
    auto prompt = make_tokens(50, 42);
    kv_sequence a;
    prefill(*c, a, prompt);
    std::vector<page_idx> pages_a = a.pages;
    std::vector<block_hash> hashes_a = a.hashes;
    c->release(a);
    CHECK(c->stats().n_cached == 3);
    CHECK(c->stats().n_cached_free == 3);
    for (size_t k = 0; k < 3; ++k) CHECK(c->find(hashes_a[k]) == pages_a[k]);

    kv_sequence b;
    CHECK(c->match_prefix(b, prompt) == 48);
    CHECK(b.pages == std::vector<page_idx>(pages_a.begin(), pages_a.begin() + 3));
    CHECK(c->ref_count(pages_a[0]) == 1);
    CHECK(c->stats().n_cached_free == 0);  // retained pages left the free list
    CHECK(c->stats().hits_resident == 48);
    REQUIRE(c->reserve(b, 2).ok());
    auto rest = std::span<const token_id>(prompt).subspan(48);
    write_rows(*c, b, rest);
    REQUIRE(c->commit(b, rest).ok());
    CHECK(rows_match(*c, b));
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: eviction is lazy, LRU, emits events and leaves the index", "[kv]") {
    auto c = open_cache(small_options(4));
    std::vector<kv_event> events;
    c->set_listener([&](const kv_event& e) { events.push_back(e); });

    auto pa = make_tokens(32, 100), pb = make_tokens(32, 200);
    kv_sequence a, b;
    prefill(*c, a, pa);
    prefill(*c, b, pb);
    REQUIRE(events.size() == 4);
    for (const kv_event& e : events) CHECK(e.type == kv_event_type::stored);
    CHECK(events[0].page == a.pages[0]);
    CHECK(events[0].hash == a.hashes[0]);
    events.clear();

    std::vector<page_idx> a_pages = a.pages, b_pages = b.pages;
    std::vector<block_hash> a_hashes = a.hashes, b_hashes = b.hashes;
    c->release(a);          // frees a1 then a0
    c->release(b);          // frees b1 then b0
    CHECK(events.empty());  // release evicts nothing
    CHECK(c->stats().n_cached == 4);
    CHECK(c->free_pages() == std::vector<page_idx>{a_pages[1], a_pages[0], b_pages[1], b_pages[0]});

    // Only when the pool runs out are cached pages reused, least recently freed first.
    kv_sequence d;
    REQUIRE(c->reserve(d, 16).ok());
    CHECK(d.pages == std::vector<page_idx>{a_pages[1]});
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == kv_event_type::evicted);
    CHECK(events[0].hash == a_hashes[1]);
    CHECK(events[0].page == a_pages[1]);
    CHECK(c->find(a_hashes[1]) == -1);
    CHECK(c->find(a_hashes[0]) == a_pages[0]);
    CHECK(c->stats().evictions == 1);
    CHECK(c->stats().n_cached == 3);

    // a's prompt (plus one token) now matches only its first page.
    auto pa_longer = pa;
    pa_longer.push_back(1);
    kv_sequence e;
    CHECK(c->match_prefix(e, pa_longer) == 16);
    CHECK(e.pages == std::vector<page_idx>{a_pages[0]});

    // Next evictions: b1, then b0.
    REQUIRE(c->reserve(d, 48).ok());
    REQUIRE(events.size() == 3);
    CHECK(events[1].hash == b_hashes[1]);
    CHECK(events[2].hash == b_hashes[0]);
    CHECK(c->stats().n_cached == 1);
    CHECK(c->stats().n_free == 0);
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: a failed reserve leaves the sequence and the pool unchanged", "[kv]") {
    auto c = open_cache(small_options(4));
    kv_sequence cached;
    prefill(*c, cached, make_tokens(16, 1));
    c->release(cached);  // one cached free page

    kv_sequence a;
    REQUIRE(c->reserve(a, 40).ok());  // 3 pages: all uncached ones
    a.tokens = {};
    kv_sequence before = a;
    auto free_before = c->free_pages();
    kv_cache_stats s_before = c->stats();

    status st = c->reserve(a, 40 + 32);  // needs 5 pages, pool has 4
    CHECK(st.code() == errc::out_of_memory);
    CHECK_FALSE(st.message().empty());
    CHECK(a.pages == before.pages);
    CHECK(a.n_tokens == before.n_tokens);
    CHECK(c->free_pages() == free_before);
    CHECK(c->stats().evictions == s_before.evictions);
    CHECK(c->stats().n_cached == 1);  // the cached page was not evicted for a reserve that failed

    REQUIRE(c->reserve(a, 64).ok());  // 4 pages: takes the cached one
    CHECK(c->stats().evictions == 1);
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: blocks persisted to a store are restored byte-exactly by a new pool", "[kv]") {
    memory_block_store store;
    auto prompt = make_tokens(70, 300);  // 4 full pages + 6
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<block_hash> hashes;
    {
        auto c = open_cache(small_options(8));
        c->set_store(&store);
        kv_sequence a;
        prefill(*c, a, prompt);
        CHECK(store.n_persists() == 4);
        CHECK(store.size() == 4);
        for (size_t k = 0; k < 4; ++k) {
            bytes.push_back(page_copy(*c, a.pages[k]));
            const auto* e = store.find(a.hashes[k]);
            REQUIRE(e != nullptr);
            CHECK(e->bytes == bytes.back());
            CHECK(e->parent == (k == 0 ? c->options().fingerprint : a.hashes[k - 1]));
            CHECK(e->tokens == std::vector<token_id>(prompt.begin() + 16 * k, prompt.begin() + 16 * (k + 1)));
        }
        hashes = a.hashes;
        c->release(a);
    }

    // A fresh pool (a restart) with the same store and fingerprint.
    auto c = open_cache(small_options(8));
    c->set_store(&store);
    std::vector<kv_event> events;
    c->set_listener([&](const kv_event& e) { events.push_back(e); });
    kv_sequence b;
    CHECK(c->match_prefix(b, prompt) == 64);
    REQUIRE(b.pages.size() == 4);
    CHECK(b.hashes == hashes);
    for (size_t k = 0; k < 4; ++k) {
        CHECK(page_copy(*c, b.pages[k]) == bytes[k]);
        CHECK(c->find(hashes[k]) == b.pages[k]);
        CHECK(c->ref_count(b.pages[k]) == 1);
    }
    CHECK(events.size() == 4);  // loaded blocks are announced as stored (resident)
    kv_cache_stats s = c->stats();
    CHECK(s.hits_store == 64);
    CHECK(s.hits_resident == 0);
    CHECK(s.misses == 6);
    CHECK(rows_match(*c, b));
    // Finishing the prompt persists nothing new (the full pages are already in the store).
    auto rest = std::span<const token_id>(prompt).subspan(64);
    REQUIRE(c->reserve(b, int32_t(rest.size())).ok());
    write_rows(*c, b, rest);
    REQUIRE(c->commit(b, rest).ok());
    CHECK(store.n_persists() == 4);

    // Now resident: a second sequence hits memory, not the store.
    int64_t loads = store.n_loads();
    kv_sequence d;
    CHECK(c->match_prefix(d, prompt) == 64);
    CHECK(store.n_loads() == loads);
    CHECK(c->stats().hits_resident == 64);
    REQUIRE(c->check_consistency().ok());

    SECTION("a corrupt block ends the match there") {
        auto c2 = open_cache(small_options(8));
        c2->set_store(&store);
        REQUIRE(store.corrupt(hashes[2]));
        kv_sequence e;
        CHECK(c2->match_prefix(e, prompt) == 32);
        CHECK(c2->stats().n_store_failures == 1);
        CHECK(c2->stats().n_free == 6);  // the page taken for the failed load went back
        REQUIRE(c2->check_consistency().ok());
    }
    SECTION("a different fingerprint matches nothing") {
        auto c3 = open_cache(small_options(8, 99));
        c3->set_store(&store);
        kv_sequence e;
        CHECK(c3->match_prefix(e, prompt) == 0);
        CHECK(e.pages.empty());
        CHECK(c3->stats().hits_store == 0);
        CHECK(c3->stats().n_free == 8);
    }
    SECTION("no store attached: nothing is loaded") {
        auto c4 = open_cache(small_options(8));
        kv_sequence e;
        CHECK(c4->match_prefix(e, prompt) == 0);
    }
    SECTION("a store miss evicts no cached page; a hit does") {
        auto c6 = open_cache(small_options(4));
        c6->set_store(&store);
        kv_sequence other;
        prefill(*c6, other, make_tokens(64, 9000));  // 4 full pages, persisted too
        std::vector<block_hash> other_hashes = other.hashes;
        c6->release(other);
        REQUIRE(c6->stats().n_cached_free == 4);
        int64_t failures = c6->stats().n_store_failures;
        kv_sequence miss;
        CHECK(c6->match_prefix(miss, make_tokens(40, 123456)) == 0);
        CHECK(c6->stats().evictions == 0);
        CHECK(c6->stats().n_cached == 4);
        CHECK(c6->stats().n_store_failures == failures + 1);
        kv_sequence hit;
        CHECK(c6->match_prefix(hit, prompt) == 64);
        CHECK(c6->stats().evictions == 4);
        for (size_t k = 0; k < 4; ++k) CHECK(page_copy(*c6, hit.pages[k]) == bytes[k]);
        CHECK(c6->find(other_hashes[0]) == -1);
        REQUIRE(c6->check_consistency().ok());
    }
    SECTION("a pool too small for every block loads what fits") {
        auto c5 = open_cache(small_options(2));
        c5->set_store(&store);
        kv_sequence e;
        CHECK(c5->match_prefix(e, prompt) == 32);
        CHECK(c5->stats().n_free == 0);
        REQUIRE(c5->check_consistency().ok());
    }
}

TEST_CASE("kv_cache: the same block computed twice keeps the first mapping", "[kv]") {
    memory_block_store store;
    auto c = open_cache(small_options(8));
    c->set_store(&store);
    std::vector<kv_event> events;
    c->set_listener([&](const kv_event& e) { events.push_back(e); });
    auto prompt = make_tokens(20, 5);

    // Both sequences start before either committed: neither can match, both compute page 0.
    kv_sequence a, b;
    CHECK(c->match_prefix(a, prompt) == 0);
    CHECK(c->match_prefix(b, prompt) == 0);
    REQUIRE(c->reserve(a, 20).ok());
    REQUIRE(c->reserve(b, 20).ok());
    write_rows(*c, a, prompt);
    write_rows(*c, b, prompt);
    REQUIRE(c->commit(a, prompt).ok());
    REQUIRE(c->commit(b, prompt).ok());
    CHECK(a.hashes == b.hashes);
    CHECK(c->find(a.hashes[0]) == a.pages[0]);
    CHECK(c->is_indexed(a.pages[0]));
    CHECK_FALSE(c->is_indexed(b.pages[0]));
    CHECK(events.size() == 1);
    CHECK(store.n_persists() == 1);
    CHECK(c->stats().n_stored == 1);

    page_idx dup = b.pages[0];
    c->release(b);
    auto free_list = c->free_pages();
    CHECK(std::find(free_list.begin(), free_list.end(), dup) != free_list.end());
    CHECK(c->stats().n_cached_free == 0);  // the duplicate went to the uncached list
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: truncate copies a shared page before it is written again", "[kv]") {
    auto c = open_cache(small_options(8));
    auto prompt = make_tokens(40, 60);
    kv_sequence a, b;
    prefill(*c, a, prompt);
    prefill(*c, b, prompt);  // shares pages 0 and 1 with a
    REQUIRE(b.pages[1] == a.pages[1]);
    page_idx shared = a.pages[1];

    // Cut b inside the shared second page: b gets a private copy of its first 4 rows.
    REQUIRE(c->truncate(b, 20).ok());
    CHECK(b.n_tokens == 20);
    CHECK(b.tokens.size() == 20);
    CHECK(b.hashes.size() == 1);
    REQUIRE(b.pages.size() == 2);
    CHECK(b.pages[0] == a.pages[0]);
    CHECK(b.pages[1] != shared);
    CHECK(c->ref_count(shared) == 1);
    CHECK(c->is_indexed(shared));
    CHECK(rows_match(*c, b));

    // Regenerate b differently from position 20: a's pages are untouched.
    auto alt = make_tokens(30, 7000);
    REQUIRE(c->reserve(b, 30).ok());
    write_rows(*c, b, alt);
    REQUIRE(c->commit(b, alt).ok());
    CHECK(rows_match(*c, a));
    CHECK(rows_match(*c, b));
    CHECK_FALSE(b.hashes[1] == a.hashes[1]);

    // Cut on a page boundary: later pages released, nothing copied.
    auto b_page0 = b.pages[0];
    REQUIRE(c->truncate(b, 16).ok());
    CHECK(b.pages == std::vector<page_idx>{b_page0});
    CHECK(b.hashes.size() == 1);
    CHECK(c->truncate(b, 100).ok());  // no-op
    CHECK(b.n_tokens == 16);
    CHECK(c->truncate(b, -1).code() == errc::invalid_argument);
    REQUIRE(c->check_consistency().ok());
}

TEST_CASE("kv_cache: randomized stress keeps every invariant", "[kv]") {
    std::mt19937 rng(20240601);
    auto opts = small_options(48);
    opts.n_layer = 1;
    opts.page_size = 4;  // small pages: many full pages, many hashes
    memory_block_store store;
    auto c = open_cache(opts);
    c->set_store(&store);

    std::unordered_map<block_hash, page_idx, block_hash_hasher> shadow;  // what the events say is resident
    auto listen = [&](const kv_event& e) {
        if (e.type == kv_event_type::stored) {
            REQUIRE(shadow.count(e.hash) == 0);
            shadow[e.hash] = e.page;
        } else {
            REQUIRE(shadow.count(e.hash) == 1);
            REQUIRE(shadow[e.hash] == e.page);
            shadow.erase(e.hash);
        }
    };
    c->set_listener(listen);

    // Prompts share a few common prefixes, with small vocabularies so full pages collide often.
    std::vector<std::vector<token_id>> bases;
    for (int i = 0; i < 4; ++i) {
        std::vector<token_id> b(size_t(8 + rng() % 24));
        for (auto& t : b) t = token_id(rng() % 5);
        bases.push_back(b);
    }
    auto random_tokens = [&](size_t n) {
        std::vector<token_id> t(n);
        for (auto& x : t) x = token_id(rng() % 3);
        return t;
    };

    std::vector<kv_sequence> seqs;
    int64_t n_oom = 0, n_reused = 0, n_restarts = 0, n_evictions = 0, n_store_hits = 0;
    auto check_all = [&]() {
        REQUIRE(c->check_consistency().ok());
        std::vector<int32_t> users(size_t(c->n_pages()), 0);
        for (const kv_sequence& s : seqs) {
            for (page_idx p : s.pages) users[size_t(p)]++;
            REQUIRE(s.tokens.size() == size_t(s.n_tokens));
            REQUIRE(s.pages.size() * size_t(opts.page_size) >= size_t(s.n_tokens));
            REQUIRE(s.hashes.size() == size_t(s.n_tokens / opts.page_size));
            block_hash parent = opts.fingerprint;
            for (size_t k = 0; k < s.hashes.size(); ++k) {
                auto toks =
                    std::span<const token_id>(s.tokens).subspan(k * size_t(opts.page_size), size_t(opts.page_size));
                REQUIRE(s.hashes[k] == kv_cache::chain_hash(parent, toks));
                parent = s.hashes[k];
            }
            REQUIRE(rows_match(*c, s));
        }
        for (page_idx p = 0; p < c->n_pages(); ++p) REQUIRE(c->ref_count(p) == users[size_t(p)]);
        kv_cache_stats st = c->stats();
        int32_t n_free = 0;
        for (int32_t u : users) n_free += u == 0;
        REQUIRE(st.n_free == n_free);
        REQUIRE(st.n_cached == int32_t(shadow.size()));
        for (const auto& [h, p] : shadow) {
            REQUIRE(c->find(h) == p);
            REQUIRE(c->page_hash(p) == h);
        }
    };

    for (int op = 0; op < 4000; ++op) {
        int kind = int(rng() % 10);
        if (kind < 4 || seqs.empty()) {
            // New sequence: a base prefix (or none) plus a random suffix.
            std::vector<token_id> prompt;
            if (rng() % 4 != 0) prompt = bases[rng() % bases.size()];
            auto tail = random_tokens(1 + rng() % 14);
            prompt.insert(prompt.end(), tail.begin(), tail.end());
            kv_sequence s;
            int32_t n = c->match_prefix(s, prompt);
            REQUIRE(n % opts.page_size == 0);
            REQUIRE(n < int32_t(prompt.size()));
            REQUIRE(std::equal(s.tokens.begin(), s.tokens.end(), prompt.begin()));
            n_reused += n;
            auto rest = std::span<const token_id>(prompt).subspan(size_t(n));
            size_t pages_before = s.pages.size();
            status st = c->reserve(s, int32_t(rest.size()));
            if (!st.ok()) {
                REQUIRE(st.code() == errc::out_of_memory);
                REQUIRE(s.pages.size() == pages_before);
                ++n_oom;
                c->release(s);
            } else {
                write_rows(*c, s, rest);
                REQUIRE(c->commit(s, rest).ok());
                seqs.push_back(std::move(s));
            }
        } else if (kind < 7) {
            // Decode / extend a sequence by a few tokens.
            kv_sequence& s = seqs[rng() % seqs.size()];
            auto more = random_tokens(1 + rng() % 6);
            kv_sequence before = s;
            status st = c->reserve(s, int32_t(more.size()));
            if (!st.ok()) {
                REQUIRE(s.pages == before.pages);
                ++n_oom;
            } else {
                write_rows(*c, s, more);
                REQUIRE(c->commit(s, more).ok());
            }
        } else if (kind < 9) {
            size_t i = rng() % seqs.size();
            c->release(seqs[i]);
            REQUIRE(seqs[i].pages.empty());
            seqs.erase(seqs.begin() + std::ptrdiff_t(i));
        } else {
            kv_sequence& s = seqs[rng() % seqs.size()];
            int32_t n = s.n_tokens > 0 ? int32_t(rng() % uint32_t(s.n_tokens)) : 0;
            kv_sequence before = s;
            status st = c->truncate(s, n);
            if (!st.ok()) {
                REQUIRE(st.code() == errc::out_of_memory);
                REQUIRE(s.pages == before.pages);
                REQUIRE(s.n_tokens == before.n_tokens);
            } else {
                REQUIRE(s.n_tokens == n);
            }
        }
        if (op % 997 == 996) {
            // Restart: drop every sequence and the pool; blocks come back from the store.
            for (kv_sequence& s : seqs) c->release(s);
            seqs.clear();
            n_evictions += c->stats().evictions;
            n_store_hits += c->stats().hits_store;
            c = open_cache(opts);
            c->set_store(&store);
            shadow.clear();
            c->set_listener(listen);
            ++n_restarts;
        }
        check_all();
    }
    n_evictions += c->stats().evictions;
    n_store_hits += c->stats().hits_store;
    INFO("oom " << n_oom << " reused " << n_reused << " evictions " << n_evictions << " store hits " << n_store_hits);
    CHECK(n_oom > 0);         // the pool really ran out
    CHECK(n_reused > 0);      // prefixes really were shared
    CHECK(n_evictions > 0);   // cached pages really were reused
    CHECK(n_store_hits > 0);  // and restored from the store after restarts
    CHECK(store.size() > 0);
    CHECK(n_restarts == 4);
}
