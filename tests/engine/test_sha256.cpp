// SHA-256 against FIPS 180-4 / NIST example vectors, padding boundaries, and
// incremental hashing in arbitrary chunks.
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "engine/sha256.h"

using namespace mnemos::engine;

namespace {
std::string hex_of(std::string_view s) { return to_hex(sha256::hash(s)); }
}  // namespace

TEST_CASE("sha256: FIPS 180-4 vectors", "[kv][sha256]") {
    CHECK(hex_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hex_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(hex_of(
              "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
              "nopqrstu") == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    std::string million(1000000, 'a');
    CHECK(hex_of(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    // One million 'a' fed 1000 bytes at a time through the incremental API.
    sha256 h;
    for (int i = 0; i < 1000; ++i) h.update(million.data(), 1000);
    CHECK(to_hex(h.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256: padding boundaries", "[kv][sha256]") {
    // Reference digests of n 'a' bytes (Python hashlib) around the 56- and 64-byte padding edges.
    struct vec {
        size_t n;
        const char* hex;
    };
    const vec vecs[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    for (const vec& v : vecs) {
        INFO("n = " << v.n);
        CHECK(hex_of(std::string(v.n, 'a')) == v.hex);
    }
}

TEST_CASE("sha256: chunked updates equal one-shot, finish resets", "[kv][sha256]") {
    std::mt19937 rng(1234);
    for (int trial = 0; trial < 200; ++trial) {
        std::string msg(size_t(rng() % 400), '\0');
        for (char& c : msg) c = char(rng());
        sha256_digest one = sha256::hash(msg);
        sha256 h;
        size_t pos = 0;
        while (pos < msg.size()) {
            size_t take = std::min(msg.size() - pos, size_t(rng() % 90));
            h.update(msg.data() + pos, take);
            pos += take;
        }
        REQUIRE(h.finish() == one);
        // finish() reset the hasher: the same message again gives the same digest.
        h.update(msg);
        REQUIRE(h.finish() == one);
    }
    CHECK(sha256::hash("abc") != sha256::hash("abd"));
}
