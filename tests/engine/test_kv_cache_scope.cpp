// Prefix-cache isolation (engine/types.h cache_scope): blocks past a scope's shared tokens are hashed with its
// salt, so only sequences with the same salt reuse them; blocks inside the shared tokens stay shared.
#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "engine/kv_cache.h"

using namespace mnemos;
using namespace mnemos::engine;

namespace {

std::unique_ptr<kv_cache> open_small_cache() {
    kv_cache_options o;
    o.n_layer = 1;
    o.n_head_kv = 1;
    o.head_dim = 4;
    o.page_size = 16;
    o.n_pages = 32;
    o.fingerprint.bytes.fill(3);
    auto r = kv_cache::open(o);
    REQUIRE(r.ok());
    return std::move(r).value();
}

cache_scope scope_of(uint8_t salt_byte, int32_t n_shared) {
    cache_scope s;
    s.salt.bytes.fill(salt_byte);
    s.n_shared = n_shared;
    return s;
}

// Runs a prompt under scope (match, reserve, commit, release: its full pages stay cached); returns tokens reused.
int32_t run(kv_cache& c, const std::vector<token_id>& prompt, const cache_scope& scope) {
    kv_sequence seq;
    seq.scope = scope;
    const int32_t reused = c.match_prefix(seq, prompt);
    const auto rest = std::span<const token_id>(prompt).subspan(size_t(reused));
    REQUIRE(c.reserve(seq, int32_t(rest.size())).ok());
    REQUIRE(c.commit(seq, rest).ok());
    c.release(seq);
    return reused;
}

}  // namespace

TEST_CASE("kv_cache scope: salted blocks are reused only under the same salt", "[kv_cache][scope]") {
    auto c = open_small_cache();
    std::vector<token_id> prompt;
    for (token_id t = 0; t < 65; ++t) prompt.push_back(100 + t);  // 4 full pages + 1 token
    const cache_scope alice = scope_of(0xA1, 32), bob = scope_of(0xB0, 32);
    CHECK(run(*c, prompt, alice) == 0);
    CHECK(run(*c, prompt, alice) == 64);  // its own blocks
    CHECK(run(*c, prompt, bob) == 32);    // only the two shared pages
    CHECK(run(*c, prompt, {}) == 32);     // no salt: the shared pages too, nothing of alice's
    // A boundary inside a page: that page is private.
    CHECK(run(*c, prompt, scope_of(0xC2, 40)) == 32);
}

TEST_CASE("kv_cache scope: scoped_hash", "[kv_cache][scope]") {
    block_hash parent;
    parent.bytes.fill(9);
    std::vector<token_id> page(16, 5);
    const block_hash plain = kv_cache::chain_hash(parent, page);
    CHECK(kv_cache::scoped_hash(parent, page, 3, {}) == plain);                  // zero salt
    CHECK(kv_cache::scoped_hash(parent, page, 1, scope_of(1, 32)) == plain);     // inside the shared tokens
    CHECK(!(kv_cache::scoped_hash(parent, page, 2, scope_of(1, 32)) == plain));  // past them
    CHECK(!(kv_cache::scoped_hash(parent, page, 2, scope_of(1, 32)) ==
            kv_cache::scoped_hash(parent, page, 2, scope_of(2, 32))));  // another salt
}
