// cluster/cluster_block_store: a block computed on one node is loaded by another through the shared tier.
#include "cluster/cluster_block_store.h"
#include "tests/cluster/cluster_util.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::cluster;

TEST_CASE("cluster block store: node B loads node A's blocks through the shared tier, damage is refused", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    block_tier_options o;
    o.bucket = test::unique_name("NODEBLOCKS");
    auto tier = block_tier::open(*c, o);
    INFO(test::why(tier));
    REQUIRE(tier.ok());
    test::temp_dir dir_a("node-a"), dir_b("node-b");
    auto local_a = test::open_store(dir_a.path), local_b = test::open_store(dir_b.path);
    cluster_block_store a(*local_a, **tier), b(*local_b, **tier);

    const size_t n = 40000;  // 80 KB of f16: more than one 60 KiB chunk
    std::vector<std::vector<uint8_t>> pages;
    for (uint32_t i = 0; i < 3; ++i) {
        pages.push_back(test::random_page(n, i));
        a.persist(test::hash_of(i), i ? test::hash_of(i - 1) : engine::block_hash{}, test::tokens_of(i), pages[i]);
    }
    a.flush_uploads();
    CHECK(a.counters().uploads == 3);
    CHECK((*tier)->bucket().keys()->size() > 3);  // chunked

    std::vector<uint8_t> out(2 * n);
    REQUIRE(b.load(test::hash_of(1), out));
    CHECK(out == pages[1]);
    CHECK(b.counters().shared_hits == 1);
    REQUIRE(b.load(test::hash_of(1), out));  // now from B's own store
    CHECK(b.counters().local_hits == 1);
    CHECK(b.counters().shared_hits == 1);

    // load_many mixes: block 1 local, block 0 shared, block 9 nowhere.
    std::vector<engine::block_hash> hs = {test::hash_of(1), test::hash_of(0), test::hash_of(9)};
    std::vector<std::vector<uint8_t>> bufs(3, std::vector<uint8_t>(2 * n));
    std::vector<std::span<uint8_t>> outs(bufs.begin(), bufs.end());
    std::vector<uint8_t> ok(3);
    CHECK(b.load_many(hs, outs, ok) == 2);
    CHECK(ok == std::vector<uint8_t>{1, 1, 0});
    CHECK(bufs[1] == pages[0]);
    CHECK(b.counters().shared_misses == 1);

    // A damaged shared block is a miss, never served.
    const std::string chunk = block_tier::key_of(test::hash_of(2)) + ".0";
    auto part = (*tier)->bucket().get(chunk);
    INFO(test::why(part));
    REQUIRE(part.ok());
    part->value[100] ^= 0x10;
    REQUIRE((*tier)->bucket().put(chunk, part->value).ok());
    CHECK(!b.load(test::hash_of(2), out));
    CHECK(b.counters().shared_corrupt == 1);
    CHECK(!local_b->has_block(test::hash_of(2)));

    // A block already in the tier is not uploaded twice.
    b.persist(test::hash_of(0), engine::block_hash{}, test::tokens_of(0), pages[0]);
    b.flush_uploads();
    CHECK(b.counters().upload_skipped == 1);
}
