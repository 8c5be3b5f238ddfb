// store::memory_usage: RocksDB's own accounting of its memory, which bench_serve prints beside RSS.
#include <catch2/catch.hpp>
#include <string>

#include "memory/store.h"
#include "tests/memory/util.h"

using namespace mnemos;
using namespace mnemos::memory;

TEST_CASE("store memory usage: memtables hold what was written, the block cache stays within its size",
          "[memory][store]") {
    test::temp_dir dir("memuse");
    store_options o;
    o.path = dir.sub("db");
    o.block_cache_bytes = size_t(1) << 20;
    auto st = store::open(o);
    REQUIRE(st.ok());
    const store::memory_use empty = (*st)->memory_usage();
    for (int i = 0; i < 200; ++i)
        REQUIRE((*st)->append_event("s", "{\"role\":\"user\",\"pad\":\"" + std::string(1000, 'x') + "\"}").ok());
    const store::memory_use written = (*st)->memory_usage();
    CHECK(written.memtables >= empty.memtables + 200 * 1000);  // the events are in the memtable
    (*st)->flush();
    auto evs = (*st)->read_events("s");
    REQUIRE(evs.ok());
    CHECK(evs->size() == 200);
    CHECK((*st)->memory_usage().block_cache <= o.block_cache_bytes);
}
