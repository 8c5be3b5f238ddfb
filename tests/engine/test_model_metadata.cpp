// Hyper-parameter validation at model load (engine/src/model.cpp read_hparams): generated tiny models
// (tests/support/tiny_model.h) with one metadata value made non-finite, out of range, of the wrong type, or
// inconsistent with another must be refused with errc::corrupt and a message naming the key (and showing the
// value), never loaded to fail later ("no token is allowed by the grammar", a context of 16 from 2^32 + 16).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include "engine/model.h"
#include "tests/support/tiny_model.h"

using mnemos::errc;
using mnemos::test::gguf_writer;
using mnemos::test::tiny_model_options;

namespace {

tiny_model_options small() {
    tiny_model_options o;
    o.n_layer = 1;
    o.n_embd = 64;
    o.n_head = 4;
    o.n_head_kv = 2;
    o.n_ff = 128;
    return o;
}

// Writes the model and loads it; returns the load's status.
mnemos::status load(const tiny_model_options& o) {
    static int counter = 0;
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("mnemos_meta_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".gguf"))
                                 .string();
    REQUIRE(mnemos::test::write_tiny_model(path, o));
    auto m = mnemos::engine::model::load(path);
    std::filesystem::remove(path);
    return m.ok() ? mnemos::status{} : m.error();
}

using writer_fn = std::function<void(gguf_writer&, const std::string&)>;

}  // namespace

TEST_CASE("model metadata: non-finite, out-of-range and inconsistent hyper-parameters are refused",
          "[gguf][model_meta]") {
    REQUIRE(load(small()).ok());  // the baseline loads

    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    struct bad_case {
        std::string key;       // without "llama."
        writer_fn write;       // the bad value
        std::string expected;  // in the message besides the key
    };
    const std::vector<bad_case> cases = {
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, inf); }, "not finite"},
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, nan); }, "nan"},
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, 0.0f); }, "out of range"},
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, -10000.0f); }, "out of range"},
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_f64(k, 1e300); }, "out of range"},
        {"rope.freq_base", [&](gguf_writer& w, const std::string& k) { w.add_string(k, "10000"); }, "not a number"},
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, inf); },
         "not finite"},
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, nan); }, "nan"},
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, 0.0f); },
         "out of range"},
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, 1.0f); },
         "out of range"},
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, -1e-5f); },
         "out of range"},
        // Finite as f64, but 0 as the f32 the forward pass uses.
        {"attention.layer_norm_rms_epsilon", [&](gguf_writer& w, const std::string& k) { w.add_f64(k, 1e-60); },
         "out of range"},
        {"context_length", [&](gguf_writer& w, const std::string& k) { w.add_u64(k, (uint64_t(1) << 32) + 16); },
         "4294967312"},
        {"context_length", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 0); }, "outside"},
        {"context_length", [&](gguf_writer& w, const std::string& k) { w.add_i32(k, -512); }, "outside"},
        {"context_length", [&](gguf_writer& w, const std::string& k) { w.add_string(k, "512"); }, "not an integer"},
        {"attention.head_count_kv", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 3); }, "multiple"},
        {"attention.head_count_kv", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 8); }, "outside"},
        {"attention.head_count_kv", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 0); }, "outside"},
        {"attention.head_count", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 6); }, "multiple"},
        {"attention.head_count", [&](gguf_writer& w, const std::string& k) { w.add_u64(k, uint64_t(1) << 33); },
         "outside"},
        {"embedding_length", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 66); }, "multiple"},
        {"block_count", [&](gguf_writer& w, const std::string& k) { w.add_f32(k, 1.0f); }, "not an integer"},
        {"rope.dimension_count", [&](gguf_writer& w, const std::string& k) { w.add_u32(k, 7); }, "even"},
    };
    for (const auto& c : cases) {
        tiny_model_options o = small();
        o.metadata_override["llama." + c.key] = c.write;
        const auto s = load(o);
        INFO("llama." << c.key << ": " << s.to_string());
        REQUIRE_FALSE(s.ok());
        CHECK(s.code() == errc::corrupt);
        CHECK(s.message().find(c.key) != std::string::npos);
        CHECK(s.message().find(c.expected) != std::string::npos);
    }

    // RoPE scaling keys: the factor and the original context are checked like the rest.
    struct scaling_case {
        std::function<void(gguf_writer&)> write;
        std::string expected;
    };
    const std::vector<scaling_case> scaling = {
        {[&](gguf_writer& w) {
             w.add_string("llama.rope.scaling.type", "linear");
             w.add_f32("llama.rope.scaling.factor", inf);
         },
         "rope.scaling.factor"},
        {[&](gguf_writer& w) {
             w.add_string("llama.rope.scaling.type", "linear");
             w.add_f32("llama.rope.scaling.factor", 0.5f);
         },
         "rope.scaling.factor"},
        {[&](gguf_writer& w) {
             w.add_string("llama.rope.scaling.type", "yarn");
             w.add_f32("llama.rope.scaling.factor", 4.0f);
             w.add_u64("llama.rope.scaling.original_context_length", uint64_t(1) << 40);
         },
         "original_context_length"},
        {[&](gguf_writer& w) {
             w.add_string("llama.rope.scaling.type", "yarn");
             w.add_f32("llama.rope.scaling.factor", 4.0f);
             w.add_f32("llama.rope.scaling.yarn_beta_fast", nan);
         },
         "yarn_beta_fast"},
        {[&](gguf_writer& w) {
             w.add_string("llama.rope.scaling.type", "llama3");
             w.add_f32("llama.rope.scaling.factor", 8.0f);
             w.add_f32("llama.rope.scaling.low_freq_factor", 4.0f);
             w.add_f32("llama.rope.scaling.high_freq_factor", 1.0f);
         },
         "high_freq_factor"},
    };
    for (const auto& c : scaling) {
        tiny_model_options o = small();
        o.extra_metadata = c.write;
        const auto s = load(o);
        INFO(s.to_string());
        REQUIRE_FALSE(s.ok());
        CHECK(s.code() == errc::corrupt);
        CHECK(s.message().find(c.expected) != std::string::npos);
    }
    // Valid scaling still loads.
    tiny_model_options ok = small();
    ok.extra_metadata = [](gguf_writer& w) {
        w.add_string("llama.rope.scaling.type", "yarn");
        w.add_f32("llama.rope.scaling.factor", 4.0f);
        w.add_u32("llama.rope.scaling.original_context_length", 128);
    };
    CHECK(load(ok).ok());
}
