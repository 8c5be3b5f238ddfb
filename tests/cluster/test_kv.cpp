// cluster/kv_bucket, lease_table and block_tier on a real 3-server JetStream cluster.
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "cluster/block_tier.h"
#include "cluster/kv_bucket.h"
#include "cluster/lease_table.h"
#include "engine/sha256.h"
#include "tests/cluster/cluster_util.h"

using namespace mnemos;
using namespace mnemos::cluster;

namespace {
std::unique_ptr<kv_bucket> open_bucket(client& c, const std::string& name, int64_t ttl_ms = 0) {
    bucket_options o;
    o.name = name;
    o.ttl_ms = ttl_ms;
    auto b = kv_bucket::open(c, o);
    INFO(test::why(b));
    REQUIRE(b.ok());
    return std::move(*b);
}

engine::block_hash hash_of(const std::string& s) {
    engine::block_hash h;
    h.bytes = engine::sha256::hash(s);
    return h;
}
}  // namespace

TEST_CASE("kv bucket: get, put, create-if-absent, revision-checked update, erase, keys", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto b = open_bucket(*c, test::unique_name("KVTEST"));
    CHECK(b->get("a").error().code() == errc::not_found);
    auto r1 = b->create("a", "one");
    INFO(test::why(r1));
    REQUIRE(r1.ok());
    CHECK(b->create("a", "other").error().code() == errc::already_exists);
    auto e = b->get("a");
    INFO(test::why(e));
    REQUIRE(e.ok());
    CHECK(e->value == "one");
    CHECK(e->revision == *r1);
    auto r2 = b->update("a", "two", *r1);
    INFO(test::why(r2));
    REQUIRE(r2.ok());
    CHECK(b->update("a", "stale", *r1).error().code() == errc::busy);
    CHECK(b->get("a")->value == "two");
    REQUIRE(b->put("b", std::string("\0binary\xff", 8)).ok());
    CHECK(b->get("b")->value == std::string("\0binary\xff", 8));
    auto keys = b->keys();
    INFO(test::why(keys));
    REQUIRE(keys.ok());
    std::sort(keys->begin(), keys->end());
    CHECK(*keys == std::vector<std::string>{"a", "b"});
    REQUIRE(b->erase("a").ok());
    CHECK(b->get("a").error().code() == errc::not_found);
    CHECK(b->create("a", "again").ok());  // a deleted key can be created again
    CHECK(b->get("bad key").error().code() == errc::invalid_argument);
    CHECK(b->put(".dot", "x").error().code() == errc::invalid_argument);
}

TEST_CASE("leases: create-if-absent, revision-checked renew, release, expiry by TTL", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    auto bucket = open_bucket(*c, test::unique_name("LEASES"), 1500);
    lease_table a(*bucket, "node-a", "http://a"), b(*bucket, "node-b", "http://b");
    const std::string s = "session-one";

    CHECK(a.lookup(s).error().code() == errc::not_found);
    auto la = a.acquire(s);
    INFO(test::why(la));
    REQUIRE(la.ok());
    CHECK(la->node == "node-a");
    auto seen_by_b = b.acquire(s);  // held by a: b gets a's lease back, not its own
    INFO(test::why(seen_by_b));
    REQUIRE(seen_by_b.ok());
    CHECK(seen_by_b->node == "node-a");
    CHECK(seen_by_b->url == "http://a");
    CHECK(b.lookup(s)->node == "node-a");

    uint64_t before = la->revision;
    REQUIRE(a.renew(*la).ok());
    CHECK(la->revision > before);
    lease stale = *la;
    stale.revision = before;
    CHECK(a.renew(stale).code() == errc::busy);  // a renew must name the current revision

    // Released: b takes it at once.
    REQUIRE(a.release(*la).ok());
    CHECK(a.lookup(s).error().code() == errc::not_found);
    auto lb = b.acquire(s);
    INFO(test::why(lb));
    REQUIRE(lb.ok());
    CHECK(lb->node == "node-b");
    CHECK(a.renew(*la).code() == errc::busy);  // a's old lease is gone for good

    // b stops renewing: its lease expires after the TTL and a can take it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    result<lease> taken = a.acquire(s);
    while (taken.ok() && taken->node != "node-a" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        taken = a.acquire(s);
    }
    INFO(test::why(taken));
    REQUIRE(taken.ok());
    CHECK(taken->node == "node-a");
    CHECK(b.renew(*lb).code() == errc::busy);  // the expired owner cannot renew
}

TEST_CASE("leases: two nodes racing to acquire, exactly one owns the session", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c1 = test::connect(*nats), c2 = test::connect(*nats);
    const std::string name = test::unique_name("RACE");
    auto b1 = open_bucket(*c1, name, 60000), b2 = open_bucket(*c2, name, 60000);
    lease_table a(*b1, "node-a", "http://a"), b(*b2, "node-b", "http://b");
    for (int i = 0; i < 30; ++i) {
        const std::string s = "s" + std::to_string(i);
        result<lease> ra = make_error(errc::internal, "unset"), rb = make_error(errc::internal, "unset");
        std::thread t1([&] { ra = a.acquire(s); }), t2([&] { rb = b.acquire(s); });
        t1.join();
        t2.join();
        INFO(test::why(ra));
        REQUIRE(ra.ok());
        INFO(test::why(rb));
        REQUIRE(rb.ok());
        CHECK(ra->node == rb->node);  // both see the same single owner
        CHECK(ra->revision == rb->revision);
    }
}

TEST_CASE("block tier: inline and chunked blocks round trip; damage is detected", "[cluster]") {
    MNEMOS_NEED_NATS();
    auto c = test::connect(*nats);
    block_tier_options o;
    o.bucket = test::unique_name("BLOCKS");
    auto t = block_tier::open(*c, o);
    INFO(test::why(t));
    REQUIRE(t.ok());
    auto& tier = **t;
    REQUIRE(tier.chunk_bytes() < 64 * 1024);  // the harness' servers limit payloads to 64 KiB

    std::mt19937 rng(7);
    std::string small(1000, '\0'), big(tier.chunk_bytes() * 3 + 123, '\0');
    for (auto& ch : small) ch = char(rng());
    for (auto& ch : big) ch = char(rng());
    auto hs = hash_of("small"), hb = hash_of("big");
    CHECK(tier.get(hs).error().code() == errc::not_found);
    CHECK(!tier.has(hs));
    REQUIRE(tier.put(hs, small).ok());
    REQUIRE(tier.put(hb, big).ok());
    CHECK(tier.has(hb));
    CHECK(*tier.get(hs) == small);
    CHECK(*tier.get(hb) == big);
    auto keys = tier.bucket().keys();
    CHECK(keys->size() == 1 + 1 + 4);  // small inline; big: manifest + 4 chunks

    // One flipped byte in a chunk: the checksum catches it.
    const std::string chunk1 = block_tier::key_of(hb) + ".1";
    auto part = tier.bucket().get(chunk1);
    INFO(test::why(part));
    REQUIRE(part.ok());
    std::string damaged = part->value;
    damaged[10] ^= 1;
    REQUIRE(tier.bucket().put(chunk1, damaged).ok());
    auto bad = tier.get(hb);
    REQUIRE(!bad.ok());
    CHECK(bad.error().code() == errc::corrupt);
    CHECK(bad.error().message().find("checksum") != std::string::npos);
    // A missing chunk, a truncated chunk: corrupt, never served.
    REQUIRE(tier.bucket().put(chunk1, part->value.substr(0, 100)).ok());
    CHECK(tier.get(hb).error().code() == errc::corrupt);
    REQUIRE(tier.bucket().erase(chunk1).ok());
    auto missing = tier.get(hb);
    CHECK(missing.error().code() == errc::corrupt);
    CHECK(missing.error().message().find("missing") != std::string::npos);
    // Rewritten, it reads back again.
    REQUIRE(tier.put(hb, big).ok());
    CHECK(*tier.get(hb) == big);
    CHECK(tier.put(hs, "").code() == errc::invalid_argument);
}
