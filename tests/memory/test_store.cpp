// memory/store.h and memory/codec.h without a model: events, sessions, the
// block codec (fp16 exact, int8 within its bound), corruption, write-behind,
// references and garbage collection, on a real RocksDB in /tmp.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "engine/kv_cache.h"
#include "memory/codec.h"
#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;
using engine::block_hash;
using engine::token_id;
using mnemos::test::open_store;
using mnemos::test::tokens_of;

TEST_CASE("events: append is ordered, read ranges, survives reopen", "[memory]") {
    test::temp_dir dir("events");
    {
        auto st = open_store(dir.path);
        for (int i = 0; i < 20; ++i) {
            auto seq = st->append_event("alice", nlohmann::json{{"role", "user"}, {"i", i}}.dump());
            REQUIRE(seq.ok());
            CHECK(*seq == uint64_t(i));
        }
        REQUIRE(st->append_event("bob", R"({"role":"user","content":"hi"})").ok());
        // A session id that is a prefix of another must not see its events.
        REQUIRE(st->append_event("alic", R"("x")").ok());

        auto all = st->read_events("alice");
        REQUIRE(all.ok());
        REQUIRE(all->size() == 20);
        for (int i = 0; i < 20; ++i) {
            CHECK((*all)[i].seq == uint64_t(i));
            CHECK(nlohmann::json::parse((*all)[i].json)["i"] == i);
        }
        auto part = st->read_events("alice", 5, 3);
        REQUIRE(part.ok());
        REQUIRE(part->size() == 3);
        CHECK((*part)[0].seq == 5);
        CHECK((*part)[2].seq == 7);
        auto none = st->read_events("nobody");
        REQUIRE(none.ok());
        CHECK(none->empty());
    }
    auto st = open_store(dir.path);
    auto seq = st->append_event("alice", "{}");
    REQUIRE(seq.ok());
    CHECK(*seq == 20);  // numbering continues after a restart
    auto meta = st->get_session("alice");
    REQUIRE(meta.ok());
    CHECK(meta->n_events == 21);
    CHECK(meta->created_ms > 0);
    CHECK(st->read_events("alic")->size() == 1);
}

TEST_CASE("events: invalid input is rejected and nothing is written", "[memory]") {
    test::temp_dir dir("invalid");
    auto st = open_store(dir.path);
    CHECK(st->append_event("s", "{not json").error().code() == errc::invalid_argument);
    CHECK(st->append_event("s", "").error().code() == errc::invalid_argument);
    CHECK(st->append_event("", "{}").error().code() == errc::invalid_argument);
    CHECK(st->append_event("has space", "{}").error().code() == errc::invalid_argument);
    CHECK(st->append_event(std::string("nul\0x", 5), "{}").error().code() == errc::invalid_argument);
    CHECK(st->append_event(std::string(129, 'a'), "{}").error().code() == errc::invalid_argument);
    CHECK(st->append_event(std::string(128, 'a'), "{}").ok());
    CHECK(st->read_events("s")->empty());
    CHECK(st->get_session("s").error().code() == errc::not_found);
    CHECK(st->stats().n_events == 1);
    store_options bad;
    CHECK(store::open(bad).error().code() == errc::invalid_argument);
}

TEST_CASE("sessions: put, get, list, delete", "[memory]") {
    test::temp_dir dir("sessions");
    auto st = open_store(dir.path);
    session_meta m;
    m.id = "npc-butler";
    m.character = "the butler";
    m.model_fingerprint = "abcd";
    m.n_tokens = 1234;
    m.last_block_hash = "ff00";
    m.extra_json = R"({"game":"manor"})";
    REQUIRE(st->put_session(m).ok());
    REQUIRE(st->append_event("npc-butler", R"({"role":"user"})").ok());
    REQUIRE(st->append_event("npc-maid", R"({"role":"user"})").ok());

    auto g = st->get_session("npc-butler");
    REQUIRE(g.ok());
    CHECK(g->character == "the butler");
    CHECK(g->model_fingerprint == "abcd");
    CHECK(g->n_tokens == 1234);
    CHECK(g->last_block_hash == "ff00");
    CHECK(g->n_events == 1);
    CHECK(nlohmann::json::parse(g->extra_json)["game"] == "manor");
    const int64_t created = g->created_ms;

    m.n_tokens = 2000;
    m.created_ms = 0;
    REQUIRE(st->put_session(m).ok());
    g = st->get_session("npc-butler");
    CHECK(g->n_tokens == 2000);
    CHECK(g->created_ms == created);  // kept
    CHECK(g->n_events == 1);          // maintained by the store

    m.extra_json = "[1]";
    CHECK(st->put_session(m).code() == errc::invalid_argument);

    auto list = st->list_sessions();
    REQUIRE(list.ok());
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].id == "npc-butler");
    CHECK((*list)[1].id == "npc-maid");

    REQUIRE(st->delete_session("npc-butler").ok());
    CHECK(st->get_session("npc-butler").error().code() == errc::not_found);
    CHECK(st->read_events("npc-butler")->empty());
    CHECK(st->delete_session("npc-butler").code() == errc::not_found);
    CHECK(st->list_sessions()->size() == 1);
    // A new session with the same id starts at seq 0.
    CHECK(*st->append_event("npc-butler", "{}") == 0);
}

TEST_CASE("codec: fp16 is exact, int8 v1 within max|row|/254 plus f16 rounding", "[memory]") {
    const size_t kv_dim = 64, rows = 2 * 2 * 16;  // 2 layers, K and V, 16 tokens
    const size_t n = kv_dim * rows;
    auto page = test::random_page(n, 7, 3.0f);
    // One row with a big outlier, one all-zero row.
    const uint16_t big = kernels::fp32_to_fp16(200.0f), zero = 0;
    std::memcpy(page.data() + 2 * (5 * kv_dim + 3), &big, 2);
    for (size_t i = 0; i < kv_dim; ++i) std::memcpy(page.data() + 2 * (9 * kv_dim + i), &zero, 2);
    const block_hash h = test::hash_of(1), parent = test::hash_of(0);
    const auto toks = tokens_of(1);

    SECTION("fp16") {
        const std::string v = encode_block(kv_codec::fp16, 0, h, parent, toks, page, 42);
        CHECK(v.size() == encoded_block_bytes(kv_codec::fp16, 0, page.size(), 16));
        std::vector<uint8_t> out(page.size());
        block_info info;
        REQUIRE(decode_block(h, v, out, &info).ok());
        CHECK(out == page);
        CHECK(info.tokens == toks);
        CHECK(info.parent == parent);
        CHECK(info.written_ms == 42);
        CHECK(info.codec == kv_codec::fp16);
    }
    SECTION("int8 v1 (old blocks) per token row") {
        const std::string v = encode_block(kv_codec::int8, int32_t(kv_dim), h, parent, toks, page, 42, 1);
        CHECK(v.size() < page.size() * 0.55);
        CHECK(v.size() == encoded_block_bytes(kv_codec::int8, int32_t(kv_dim), page.size(), 16, 1));
        std::vector<uint8_t> out(page.size());
        block_info info;
        REQUIRE(decode_block(h, v, out, &info).ok());
        CHECK(info.version == 1);
        CHECK(info.group == kv_dim);
        double max_rel_to_bound = 0;
        for (size_t r = 0; r < rows; ++r) {
            float row_max = 0;
            for (size_t i = 0; i < kv_dim; ++i) {
                uint16_t x;
                std::memcpy(&x, page.data() + 2 * (r * kv_dim + i), 2);
                row_max = std::max(row_max, std::fabs(kernels::fp16_to_fp32(x)));
            }
            for (size_t i = 0; i < kv_dim; ++i) {
                uint16_t a, b;
                std::memcpy(&a, page.data() + 2 * (r * kv_dim + i), 2);
                std::memcpy(&b, out.data() + 2 * (r * kv_dim + i), 2);
                const float x = kernels::fp16_to_fp32(a), y = kernels::fp16_to_fp32(b);
                const float bound = row_max / 254.0f + std::fabs(y) * (1.0f / 2048.0f) + 1e-7f;
                REQUIRE(std::fabs(x - y) <= bound);
                if (row_max > 0) max_rel_to_bound = std::max(max_rel_to_bound, double(std::fabs(x - y) / bound));
            }
        }
        CHECK(max_rel_to_bound > 0.3);  // the bound is tight, not vacuous
        // The zero row decodes to zeros, the outlier row keeps its outlier.
        for (size_t i = 0; i < kv_dim; ++i) CHECK(out[2 * (9 * kv_dim + i)] == 0);
        uint16_t o;
        std::memcpy(&o, out.data() + 2 * (5 * kv_dim + 3), 2);
        CHECK(kernels::fp16_to_fp32(o) == Approx(200.0f).epsilon(1e-3));
    }
    SECTION("int8 falls back to v1 where kv_dim does not fit the page") {
        const std::string v = encode_block(kv_codec::int8, 0, h, parent, toks, page, 42);
        CHECK(v.size() == encoded_block_bytes(kv_codec::int8, 0, page.size(), 16));
        std::vector<uint8_t> out(page.size());
        block_info info;
        REQUIRE(decode_block(h, v, out, &info).ok());
        CHECK(info.version == 1);
        CHECK(info.group == 64);
    }
    SECTION("every flipped byte and every truncation is detected") {
        for (uint16_t ver : {uint16_t(1), uint16_t(2)})
            for (kv_codec c : {kv_codec::fp16, kv_codec::int8}) {
                const std::string v = encode_block(c, int32_t(kv_dim), h, parent, toks, page, 1, ver);
                CHECK(inspect_block(h, v)->version == ver);
                std::vector<uint8_t> out(page.size());
                std::mt19937 rng(3);
                for (int k = 0; k < 200; ++k) {
                    std::string bad = v;
                    bad[rng() % bad.size()] ^= char(1 + rng() % 255);
                    CHECK_FALSE(decode_block(h, bad, out).ok());
                }
                for (size_t len : {size_t(0), size_t(10), size_t(71), v.size() / 2, v.size() - 1})
                    CHECK(decode_block(h, std::string_view(v).substr(0, len), out).code() == errc::corrupt);
                // A valid value under another key is rejected too (the checksum covers the key).
                CHECK(decode_block(test::hash_of(2), v, out).code() == errc::corrupt);
                // The pool's page size must match.
                std::vector<uint8_t> small(page.size() - 2);
                CHECK(decode_block(h, v, small).code() == errc::invalid_argument);
            }
    }
}

namespace {

float f16_at(const std::vector<uint8_t>& page, size_t i) {
    uint16_t x;
    std::memcpy(&x, page.data() + 2 * i, 2);
    return kernels::fp16_to_fp32(x);
}

void set_f16(std::vector<uint8_t>& page, size_t i, float v) {
    const uint16_t x = kernels::fp32_to_fp16(v);
    std::memcpy(page.data() + 2 * i, &x, 2);
}

}  // namespace

TEST_CASE("codec: int8 v2 (K per channel, V per token) within range/510, outlier channels stay local", "[memory]") {
    // The pool layout: per layer K [16][kv_dim] then V [16][kv_dim].
    const size_t kv_dim = 64, T = 16, n_layer = 3, per_layer = 2 * T * kv_dim, n = n_layer * per_layer;
    auto page = test::random_page(n, 21, 1.0f);
    // K outlier channels as qwen2's k bias makes them: a large offset with a
    // small spread (channel 3), a large spread (channel 17, layer 1), and a
    // negative offset (channel 40); one V row with an outlier, one constant V row.
    for (size_t l = 0; l < n_layer; ++l)
        for (size_t t = 0; t < T; ++t) {
            const size_t k = l * per_layer + t * kv_dim;
            set_f16(page, k + 3, 60.0f + f16_at(page, k + 3));
            set_f16(page, k + 40, -35.0f + 0.5f * f16_at(page, k + 40));
            if (l == 1) set_f16(page, k + 17, 40.0f * f16_at(page, k + 17));
        }
    const size_t v_out = 2 * per_layer + T * kv_dim + 5 * kv_dim, v_const = per_layer + T * kv_dim + 9 * kv_dim;
    set_f16(page, v_out + 7, -150.0f);
    for (size_t c = 0; c < kv_dim; ++c) set_f16(page, v_const + c, 0.25f);

    const block_hash h = test::hash_of(5), parent = test::hash_of(4);
    const auto toks = tokens_of(5);
    const std::string v = encode_block(kv_codec::int8, int32_t(kv_dim), h, parent, toks, page, 7);
    CHECK(v.size() == encoded_block_bytes(kv_codec::int8, int32_t(kv_dim), page.size(), 16));
    // Payload: per layer (kv_dim + T) ranges of 4 bytes, one byte per element.
    CHECK(v.size() == block_header_bytes + 4 * T + n_layer * (kv_dim + T) * 4 + n + 4);
    CHECK(double(v.size()) < 0.6 * double(page.size()));
    std::vector<uint8_t> out(page.size());
    block_info info;
    REQUIRE(decode_block(h, v, out, &info).ok());
    CHECK(info.version == 2);
    CHECK(info.group == kv_dim);

    // The range each element belongs to: its K channel or its V row.
    auto range_of = [&](size_t i) {
        const size_t l = i / per_layer, r = i % per_layer;
        float lo = INFINITY, hi = -INFINITY;
        if (r < T * kv_dim) {
            const size_t c = r % kv_dim;
            for (size_t t = 0; t < T; ++t) {
                const float x = f16_at(page, l * per_layer + t * kv_dim + c);
                lo = std::min(lo, x);
                hi = std::max(hi, x);
            }
        } else {
            const size_t row0 = i - i % kv_dim;
            for (size_t c = 0; c < kv_dim; ++c) {
                lo = std::min(lo, f16_at(page, row0 + c));
                hi = std::max(hi, f16_at(page, row0 + c));
            }
        }
        return hi - lo;
    };
    double max_rel_to_bound = 0, max_err_plain_k = 0;
    for (size_t i = 0; i < n; ++i) {
        const float x = f16_at(page, i), y = f16_at(out, i);
        // The bound stated in memory/codec.h.
        const float bound = range_of(i) / 510.0f * (1.0f + 1.0f / 1024) + 0x1p-25f + std::fabs(y) * 0x1p-11f;
        INFO("element " << i << ": " << x << " -> " << y << ", bound " << bound);
        REQUIRE(std::fabs(x - y) <= bound);
        max_rel_to_bound = std::max(max_rel_to_bound, double(std::fabs(x - y) / bound));
        const size_t r = i % per_layer, c = r % kv_dim;
        if (r < T * kv_dim && c != 3 && c != 17 && c != 40)
            max_err_plain_k = std::max(max_err_plain_k, double(std::fabs(x - y)));
    }
    CHECK(max_rel_to_bound > 0.3);  // the bound is tight, not vacuous
    CHECK(f16_at(out, v_out + 7) == Approx(-150.0f).epsilon(1e-3));
    for (size_t c = 0; c < kv_dim; ++c) CHECK(f16_at(out, v_const + c) == 0.25f);  // a constant row is exact

    // Per token rows (v1) give every K channel the outlier's step; per channel
    // the plain channels keep theirs: N(0,1) over 16 tokens spans < 8.
    CHECK(max_err_plain_k <= 8.0 / 510 * 1.01 + 5e-3);
    const std::string v1 = encode_block(kv_codec::int8, int32_t(kv_dim), h, parent, toks, page, 7, 1);
    std::vector<uint8_t> out1(page.size());
    REQUIRE(decode_block(h, v1, out1).ok());
    double max_err_plain_k_v1 = 0;
    for (size_t i = 0; i < n; ++i) {
        const size_t r = i % per_layer, c = r % kv_dim;
        if (r < T * kv_dim && c != 3 && c != 17 && c != 40)
            max_err_plain_k_v1 = std::max(max_err_plain_k_v1, double(std::fabs(f16_at(page, i) - f16_at(out1, i))));
    }
    CHECK(max_err_plain_k_v1 > 5 * max_err_plain_k);
}

TEST_CASE("crc32c matches the standard check value", "[memory]") {
    CHECK(crc32c("123456789", 9) == 0xE3069283u);
    const std::string s(1000, 'x');
    CHECK(crc32c(s.data() + 300, 700, crc32c(s.data(), 300)) == crc32c(s.data(), 1000));
}

TEST_CASE("crc32c: the three-stream path equals a bitwise CRC at every stretch boundary", "[memory]") {
    auto bitwise = [](const uint8_t* p, size_t n) {
        uint32_t c = ~0u;
        for (size_t i = 0; i < n; ++i) {
            c ^= p[i];
            for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        return ~c;
    };
    std::mt19937 rng(3);
    std::vector<uint8_t> b(3 * 8192 * 2 + 3 * 256 + 100);
    for (auto& x : b) x = uint8_t(rng());
    // Stretches of 3 x 8192 and 3 x 256 bytes, their edges, a tail, and unaligned starts.
    for (size_t n : {0, 1, 7, 8, 767, 768, 769, 1000, 24575, 24576, 24577, 24576 + 768 + 9, 49152 + 860})
        for (size_t off : {0, 1, 5}) {
            INFO(n << " bytes at offset " << off);
            CHECK(crc32c(b.data() + off, n) == bitwise(b.data() + off, n));
        }
}

TEST_CASE("blocks: write-behind, load, dedup, corruption is a miss", "[memory]") {
    test::temp_dir dir("blocks");
    const size_t n = 4096;  // 8 KiB page: goes to blob files
    std::vector<block_hash> hs;
    {
        auto st = open_store(dir.path);
        auto& bs = st->blocks();
        for (uint32_t i = 0; i < 8; ++i) {
            hs.push_back(test::hash_of(100 + i));
            const auto page = test::random_page(n, i);
            bs.persist(hs.back(), i ? hs[i - 1] : block_hash{}, tokens_of(i), page);
        }
        bs.persist(hs[0], block_hash{}, tokens_of(0), test::random_page(n, 0));  // again: written once
        st->flush();
        auto s = st->stats();
        CHECK(s.n_pending == 0);
        CHECK(s.n_blocks == 8);
        CHECK(s.n_persists == 9);
        CHECK(s.n_persist_skipped == 1);
        CHECK(s.block_tokens == 8 * 16);
        CHECK(s.bytes_per_token == Approx(double(encoded_block_bytes(kv_codec::fp16, 0, 2 * n, 16)) / 16));
    }  // closed: pending writes flushed
    auto st = open_store(dir.path);
    auto& bs = st->blocks();
    std::vector<uint8_t> out(2 * n);
    for (uint32_t i = 0; i < 8; ++i) {
        REQUIRE(bs.load(hs[i], out));
        CHECK(out == test::random_page(n, i));
    }
    CHECK_FALSE(bs.load(test::hash_of(999), out));
    std::vector<uint8_t> wrong(2 * n + 2);
    CHECK_FALSE(bs.load(hs[0], wrong));

    // Flip a byte in block 3 and truncate block 5 in the database itself.
    auto v3 = st->raw_block(hs[3]);
    REQUIRE(v3.ok());
    (*v3)[v3->size() / 2] ^= 0x10;
    REQUIRE(st->put_raw_block(hs[3], *v3).ok());
    auto v5 = st->raw_block(hs[5]);
    REQUIRE(v5.ok());
    REQUIRE(st->put_raw_block(hs[5], v5->substr(0, v5->size() - 100)).ok());
    CHECK_FALSE(bs.load(hs[3], out));
    CHECK_FALSE(bs.load(hs[5], out));
    auto s = st->stats();
    CHECK(s.n_load_corrupt == 3);  // wrong size + two corrupt values
    CHECK(s.n_load_missing == 1);
    CHECK(s.n_load_hits == 8);

    // Persisting the recomputed block repairs it.
    bs.persist(hs[3], hs[2], tokens_of(3), test::random_page(n, 3));
    st->flush();
    REQUIRE(bs.load(hs[3], out));
    CHECK(out == test::random_page(n, 3));
}

TEST_CASE("int8 store round trip, smaller on disk", "[memory]") {
    test::temp_dir dir("int8");
    const size_t n = 8192;
    auto st = open_store(dir.path, kv_codec::int8, 128);
    const auto page = test::random_page(n, 11);
    st->blocks().persist(test::hash_of(1), block_hash{}, tokens_of(1), page);
    st->flush();
    std::vector<uint8_t> out(2 * n);
    REQUIRE(st->blocks().load(test::hash_of(1), out));
    CHECK(out != page);
    float max_err = 0;
    for (size_t i = 0; i < n; ++i) {
        uint16_t a, b;
        std::memcpy(&a, page.data() + 2 * i, 2);
        std::memcpy(&b, out.data() + 2 * i, 2);
        max_err = std::max(max_err, std::fabs(kernels::fp16_to_fp32(a) - kernels::fp16_to_fp32(b)));
    }
    CHECK(max_err > 0);
    CHECK(max_err < 10.0f / 510 + 0.01f);  // v2: x of N(0,1) stays within +-5 here
    CHECK(st->stats().bytes_per_token < 0.6 * double(2 * n) / 16);
}

TEST_CASE("refs and garbage collection: shared blocks survive, unshared are freed", "[memory]") {
    test::temp_dir dir("gc");
    auto st = open_store(dir.path);
    const size_t n = 2048;
    block_hash fp = test::hash_of(77);
    // Two sessions sharing a 2-block prefix, then 1 own block each; one orphan block.
    std::vector<token_id> common, a, b;
    for (int i = 0; i < 32; ++i) common.push_back(i);
    a = b = common;
    for (int i = 0; i < 16; ++i) {
        a.push_back(1000 + i);
        b.push_back(2000 + i);
    }
    a.push_back(5);  // a partial tail: not a block
    const auto ha = store::block_hashes(fp, a), hb = store::block_hashes(fp, b);
    REQUIRE(ha.size() == 3);
    REQUIRE(hb.size() == 3);
    CHECK(ha[0] == hb[0]);
    CHECK(ha[1] == hb[1]);
    CHECK(ha[2] != hb[2]);
    CHECK(ha[0] == engine::kv_cache::chain_hash(fp, std::span<const token_id>(a).first(16)));
    for (size_t i = 0; i < 3; ++i) {
        st->blocks().persist(ha[i], i ? ha[i - 1] : fp, std::span<const token_id>(a).subspan(16 * i, 16),
                             test::random_page(n, i));
        st->blocks().persist(hb[i], i ? hb[i - 1] : fp, std::span<const token_id>(b).subspan(16 * i, 16),
                             test::random_page(n, i));
    }
    const block_hash orphan = test::hash_of(5);
    st->blocks().persist(orphan, fp, tokens_of(5), test::random_page(n, 5));
    st->flush();
    CHECK(st->stats().n_blocks == 5);  // the shared prefix is stored once
    REQUIRE(st->append_event("a", "{}").ok());
    REQUIRE(st->append_event("b", "{}").ok());
    REQUIRE(st->add_block_refs("a", ha).ok());
    REQUIRE(st->add_block_refs("b", hb).ok());
    REQUIRE(st->add_block_refs("b", hb).ok());  // idempotent
    CHECK(st->stats().n_refs == 6);

    // Young unreferenced blocks are kept when a minimum age is asked for.
    auto g0 = st->collect_garbage(60'000);
    REQUIRE(g0.ok());
    CHECK(g0->n_blocks_deleted == 0);
    auto blob_bytes = [&] {
        uint64_t b = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir.path))
            if (e.path().extension() == ".blob") b += e.file_size();
        return b;
    };
    const uint64_t blob_before = blob_bytes();
    auto g = st->collect_garbage();
    REQUIRE(g.ok());
    CHECK(g->n_blocks_scanned == 5);
    CHECK(g->n_blocks_deleted == 1);
    CHECK_FALSE(st->has_block(orphan));
    // The orphan's space is returned: the live blocks were relocated, the old blob file removed.
    INFO("blob bytes " << blob_before << " -> " << blob_bytes());
    CHECK(blob_bytes() < blob_before);
    CHECK(blob_bytes() > 0);

    REQUIRE(st->delete_session("a").ok());
    CHECK(st->has_block(ha[0]));
    CHECK(st->has_block(ha[1]));
    CHECK_FALSE(st->has_block(ha[2]));  // a's own block is freed
    CHECK(st->has_block(hb[2]));
    CHECK(st->stats().n_blocks == 3);
    CHECK(st->stats().n_refs == 3);
    REQUIRE(st->delete_session("b").ok());
    CHECK(st->stats().n_blocks == 0);
    CHECK(st->stats().n_refs == 0);
}
