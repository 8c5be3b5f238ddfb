#pragma once
// Helpers shared by the play tests: a scenario of scenarios/ by name, and the small budgets every game on the
// tiny model plays with.
#include <catch2/catch.hpp>
#include <string>
#include <utility>

#include "agent/play/play.h"
#include "agent/scenario/scenario.h"
#include "tests/agent/scenario_util.h"

namespace mnemos::test_agent {

inline agent::scenario load_named(const std::string& name) {
    auto r = agent::load_scenario((scenarios_dir() / (name + ".json")).string());
    INFO((r.ok() ? std::string() : r.error().message()));
    REQUIRE(r.ok());
    return std::move(r).value();
}

inline agent::scenario load_smoke() { return load_named("ci_smoke"); }

// Six tokens per turn on one thread.
inline agent::play_options small_options() {
    agent::play_options o;
    o.max_tokens = 6;
    o.n_threads = 1;
    return o;
}

}  // namespace mnemos::test_agent
