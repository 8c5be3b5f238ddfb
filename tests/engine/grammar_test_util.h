#pragma once
// Helpers of the grammar tests: compile a schema (failing the test on error) and feed a whole document.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "engine/grammar.h"

namespace mnemos::engine::test_grammar {

inline std::shared_ptr<const grammar> compile(const std::string& schema, const grammar_options& o = {}) {
    auto g = grammar::from_json_schema(schema, o);
    INFO(schema << " -> " << (g.ok() ? std::string("ok") : g.error().to_string()));
    REQUIRE(g.ok());
    return g.value();
}

// Accepted as a whole, complete document.
inline bool accepts(const grammar& g, std::string_view doc) {
    grammar_state s = g.start();
    return s.accept_bytes(doc) && s.is_complete();
}

}  // namespace mnemos::engine::test_grammar
