// Tests of the GGUF reader (engine/gguf.h), the test writer
// (tests/support/gguf_writer.h) and the tiny model generator
// (tests/support/tiny_model.h).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "kernels/ggml_types.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/tiny_model.h"

using mnemos::errc;
using mnemos::engine::gguf_file;
using mnemos::engine::gguf_tensor;
using mnemos::engine::gguf_type;
using mnemos::kernels::ggml_type;
using mnemos::test::gguf_writer;

namespace {

namespace fs = std::filesystem;

const std::string k_models = MNEMOS_SHARED_DIR "/models";

std::string temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("mnemos_test_gguf_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
    return v;
}

// IEEE half -> float, written here independently of the kernels.
float half_to_float(uint16_t h) {
    const uint32_t sign = (h >> 15) & 1;
    const int exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    float v;
    if (exp == 0) {
        v = std::ldexp(static_cast<float>(mant), -24);
    } else if (exp == 31) {
        v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
    } else {
        v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
    }
    return sign ? -v : v;
}

float bf16_to_float(uint16_t h) {
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Checks the invariants every successfully opened file must satisfy, and
// touches every byte of every tensor (so that ASan sees any bad pointer).
void check_tensor_invariants(const gguf_file& f) {
    uint64_t sum = 0;
    std::vector<const gguf_tensor*> sorted;
    for (const gguf_tensor& t : f.tensors()) {
        REQUIRE(!t.name.empty());
        REQUIRE(t.shape.size() >= 1);
        REQUIRE(t.shape.size() <= 4);
        const auto tt = mnemos::kernels::traits_of(t.type);
        REQUIRE(tt.name != nullptr);
        REQUIRE(t.shape[0] % tt.block_size == 0);
        REQUIRE(t.n_bytes == mnemos::kernels::row_size(t.type, t.shape[0]) * (t.n_elements() / t.shape[0]));
        REQUIRE(t.offset % f.alignment() == 0);
        REQUIRE(t.offset + t.n_bytes <= f.file_size());
        REQUIRE(t.data != nullptr);
        REQUIRE(f.find_tensor(t.name) == &t);
        const uint8_t* p = static_cast<const uint8_t*>(t.data);
        for (size_t i = 0; i < t.n_bytes; ++i) sum += p[i];
        sorted.push_back(&t);
    }
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < sorted.size(); ++i) {
        REQUIRE(sorted[i - 1]->offset + sorted[i - 1]->n_bytes <= sorted[i]->offset);
        // Data pointers are base + data_start + offset: their differences equal the offset differences.
        REQUIRE(static_cast<const uint8_t*>(sorted[i]->data) - static_cast<const uint8_t*>(sorted[0]->data) ==
                static_cast<ptrdiff_t>(sorted[i]->offset - sorted[0]->offset));
    }
    if (!sorted.empty()) {
        // The last tensor ends inside the file: data_start + offset + n_bytes <= file_size.
        const gguf_tensor* last = sorted.back();
        REQUIRE(last->offset + last->n_bytes <= f.file_size());
    }
    (void)sum;
}

// A small valid file: a few keys of different types and three tensors, the
// last one a multiple of 32 bytes long so that the file has no trailing padding.
gguf_writer small_writer() {
    gguf_writer w;
    w.add_string("general.architecture", "llama");
    w.add_u32("general.alignment", 32);
    w.add_string("test.str", "hello");
    w.add_f32_array("test.f32s", {1.0f, 2.0f, 3.0f});
    w.add_string_array("test.strs", {"a", "bc", "def"});
    w.add_bool("test.flag", true);
    w.add_u64("test.big", 1234567890123ull);
    w.add_tensor("t.f32", ggml_type::f32, {8, 2}, pattern_bytes(8 * 2 * 4, 1));
    w.add_tensor("t.q8_0", ggml_type::q8_0, {32, 2}, pattern_bytes(2 * 34, 2));
    w.add_tensor("t.f16", ggml_type::f16, {16, 2}, pattern_bytes(16 * 2 * 2, 3));
    return w;
}

mnemos::result<std::unique_ptr<gguf_file>> parse(const std::vector<uint8_t>& b) {
    return gguf_file::parse(b.data(), b.size(), "crafted");
}

// Position of the first occurrence of `s` in `b` (the bytes of a key or tensor name).
size_t find_bytes(const std::vector<uint8_t>& b, const std::string& s) {
    auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
    REQUIRE(it != b.end());
    return static_cast<size_t>(it - b.begin());
}

template <class T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
    REQUIRE(at + sizeof(T) <= b.size());
    std::memcpy(b.data() + at, &v, sizeof(T));
}

// Opening `b` fails as `code` with a message containing every one of `parts`.
void require_error(const std::vector<uint8_t>& b, errc code, std::initializer_list<std::string> parts) {
    auto r = parse(b);
    REQUIRE_FALSE(r.ok());
    INFO(r.error().to_string());
    CHECK(r.error().code() == code);
    for (const std::string& p : parts) CHECK(r.error().message().find(p) != std::string::npos);
}

// Position of a tensor's fields, given its name: the n_dims field follows the name.
struct tensor_fields {
    size_t n_dims, dims, type, offset;
};
tensor_fields fields_of(const std::vector<uint8_t>& b, const std::string& name, uint32_t n_dims) {
    const size_t at = find_bytes(b, name) + name.size();
    return {at, at + 4, at + 4 + 8 * n_dims, at + 4 + 8 * n_dims + 4};
}

}  // namespace

// ---------------------------------------------------------------------------
// Real model files
// ---------------------------------------------------------------------------

TEST_CASE("gguf opens every shared model file and checks known metadata", "[model][gguf]") {
    if (!fs::is_directory(k_models)) {
        WARN("skipped: no shared models at " << k_models);
        return;
    }
    size_t n_files = 0;
    for (const auto& e : fs::directory_iterator(k_models)) {
        if (e.path().extension() != ".gguf") continue;
        ++n_files;
        const std::string name = e.path().filename().string();
        INFO(name);
        auto r = gguf_file::open(e.path().string());
        INFO((r.ok() ? std::string("ok") : r.error().to_string()));
        REQUIRE(r.ok());
        const gguf_file& f = *r.value();
        CHECK(f.version() == 3);
        CHECK(f.alignment() == 32);
        CHECK(f.file_size() == fs::file_size(e.path()));
        const auto arch = f.get_str("general.architecture");
        REQUIRE(arch.has_value());
        const auto tokens = f.get_str_array("tokenizer.ggml.tokens");
        REQUIRE(tokens.has_value());
        const auto types = f.get_int_array("tokenizer.ggml.token_type");
        REQUIRE(types.has_value());
        CHECK(types->size() == tokens->size());
        check_tensor_invariants(f);
        const bool vocab_only = name.rfind("vocab-", 0) == 0;
        CHECK(f.tensors().empty() == vocab_only);
        if (!vocab_only) {
            const std::string a(*arch);
            CHECK(f.get_int(a + ".vocab_size") == static_cast<int64_t>(tokens->size()));
            const gguf_tensor* emb = f.find_tensor("token_embd.weight");
            REQUIRE(emb != nullptr);
            REQUIRE(emb->shape.size() == 2);
            CHECK(emb->shape[0] == f.get_int(a + ".embedding_length"));
            CHECK(emb->shape[1] == static_cast<int64_t>(tokens->size()));
            const int64_t n_layer = *f.get_int(a + ".block_count");
            for (int64_t l = 0; l < n_layer; ++l) {
                CHECK(f.find_tensor("blk." + std::to_string(l) + ".attn_q.weight") != nullptr);
                CHECK(f.find_tensor("blk." + std::to_string(l) + ".ffn_down.weight") != nullptr);
            }
            CHECK(f.find_tensor("blk." + std::to_string(n_layer) + ".attn_q.weight") == nullptr);
        }

        if (name == "stories260K-f32.gguf") {
            CHECK(*arch == "llama");
            CHECK(f.get_int("llama.embedding_length") == 64);
            CHECK(f.get_int("llama.block_count") == 5);
            CHECK(f.get_int("llama.attention.head_count") == 8);
            CHECK(f.get_int("llama.attention.head_count_kv") == 4);
            CHECK(f.get_int("llama.context_length") == 512);
            CHECK(f.get_float("llama.rope.freq_base") == Approx(10000.0));
            CHECK(f.get_float("llama.attention.layer_norm_rms_epsilon") == Approx(1e-5).epsilon(1e-6));
            CHECK(f.get_str("tokenizer.ggml.model") == "llama");
            CHECK(tokens->size() == 512);
            CHECK((*tokens)[0] == "<unk>");
            CHECK((*tokens)[1] == "<s>");
            CHECK(f.get_float_array("tokenizer.ggml.scores")->size() == 512);
            CHECK(f.get_bool("tokenizer.ggml.add_bos_token") == true);
            CHECK(f.get_int("tokenizer.ggml.eos_token_id") == 2);
            CHECK(f.tensors().size() == 47);
            for (const gguf_tensor& t : f.tensors()) CHECK(t.type == ggml_type::f32);
            CHECK(f.find_tensor("output.weight") == nullptr);  // tied embeddings
            const gguf_tensor* k = f.find_tensor("blk.0.attn_k.weight");
            REQUIRE(k != nullptr);
            CHECK(k->shape == std::vector<int64_t>{64, 32});
            CHECK(k->n_bytes == 64 * 32 * 4);
            CHECK(f.find_tensor("blk.4.ffn_gate.weight")->shape == std::vector<int64_t>{64, 172});
        } else if (name == "smollm-bpe-r-q4_k_m.gguf") {
            CHECK(*arch == "llama");
            CHECK(tokens->size() == 49152);
            CHECK(f.get_str("tokenizer.ggml.model") == "gpt2");
            CHECK(f.get_str("tokenizer.ggml.pre") == "smollm");
            CHECK(f.get_str_array("tokenizer.ggml.merges")->at(0) == "Ġ t");
            CHECK(f.get_float("llama.rope.freq_base") == Approx(1e5));
            CHECK(f.get_str("tokenizer.chat_template")->find("<|im_start|>") != std::string_view::npos);
            std::map<ggml_type, int> n_by_type;
            for (const gguf_tensor& t : f.tensors()) ++n_by_type[t.type];
            CHECK(n_by_type[ggml_type::q4_k] > 0);
            CHECK(n_by_type[ggml_type::q6_k] > 0);
            CHECK(f.find_tensor("token_embd.weight")->n_bytes == 512 / 256 * 210 * 49152);
        } else if (name == "qwen2-bpe-r-q6_k.gguf") {
            CHECK(*arch == "qwen2");
            CHECK(f.get_int("qwen2.block_count") == 3);
            CHECK(f.get_float("qwen2.rope.freq_base") == Approx(1e6));
            CHECK(f.get_int("qwen2.context_length") == 32768);
            const gguf_tensor* bias = f.find_tensor("blk.2.attn_k.bias");
            REQUIRE(bias != nullptr);
            CHECK(bias->type == ggml_type::f32);
            CHECK(bias->shape == std::vector<int64_t>{128});
            CHECK(f.find_tensor("blk.0.attn_q.weight")->type == ggml_type::q6_k);
        } else if (name == "llama-spm-r-q8_0.gguf") {
            CHECK(tokens->size() == 32000);
            CHECK(f.find_tensor("output.weight") != nullptr);  // untied
            CHECK(f.find_tensor("blk.3.ffn_up.weight")->type == ggml_type::q8_0);
            CHECK(f.find_tensor("blk.3.ffn_up.weight")->n_bytes == 256 / 32 * 34 * 768);
        } else if (name == "vocab-gpt-2.gguf") {
            CHECK(*arch == "gpt2");
            CHECK(tokens->size() == 50257);
            CHECK(f.get_int("tokenizer.ggml.eos_token_id") == 50256);
        }
    }
    CHECK(n_files >= 7);
}

TEST_CASE("gguf tensor data points at the right bytes (stories260K f32 vs f16 vs bf16)", "[model][gguf]") {
    const std::string p32 = k_models + "/stories260K-f32.gguf";
    const std::string p16 = k_models + "/stories260K-f16.gguf";
    const std::string pbf = k_models + "/stories260K-bf16.gguf";
    if (!fs::exists(p32) || !fs::exists(p16) || !fs::exists(pbf)) {
        WARN("skipped: stories260K files missing");
        return;
    }
    auto f32 = gguf_file::open(p32);
    auto f16 = gguf_file::open(p16);
    auto fbf = gguf_file::open(pbf);
    REQUIRE(f32.ok());
    REQUIRE(f16.ok());
    REQUIRE(fbf.ok());
    for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight", "blk.4.ffn_down.weight"}) {
        INFO(name);
        const gguf_tensor* a = f32.value()->find_tensor(name);
        const gguf_tensor* b = f16.value()->find_tensor(name);
        const gguf_tensor* c = fbf.value()->find_tensor(name);
        REQUIRE((a && b && c));
        REQUIRE(a->shape == b->shape);
        REQUIRE(a->shape == c->shape);
        REQUIRE(b->type == ggml_type::f16);
        REQUIRE(c->type == ggml_type::bf16);
        const int64_t n = a->n_elements();
        const float* x = static_cast<const float*>(a->data);
        const uint16_t* h = static_cast<const uint16_t*>(b->data);
        const uint16_t* g = static_cast<const uint16_t*>(c->data);
        double max_abs = 0;
        for (int64_t i = 0; i < n; ++i) {
            max_abs = std::max(max_abs, std::fabs(double(x[i])));
            // f16 keeps 11 significant bits, bf16 8: relative error <= 2^-11 and 2^-8 (plus subnormal slack).
            REQUIRE(std::fabs(half_to_float(h[i]) - x[i]) <= std::fabs(x[i]) * 0x1p-11f + 1e-7f);
            REQUIRE(std::fabs(bf16_to_float(g[i]) - x[i]) <= std::fabs(x[i]) * 0x1p-8f + 1e-30f);
        }
        CHECK(max_abs > 0.01);  // trained weights, not zeros
    }
}

// ---------------------------------------------------------------------------
// Writer round trip
// ---------------------------------------------------------------------------

TEST_CASE("gguf writer round trip: every value type", "[gguf]") {
    gguf_writer w;
    w.add_u8("v.u8", 200);
    w.add_i8("v.i8", -100);
    w.add_u16("v.u16", 65535);
    w.add_i16("v.i16", -32768);
    w.add_u32("v.u32", 4000000000u);
    w.add_i32("v.i32", -2000000000);
    w.add_f32("v.f32", 0.15625f);
    w.add_bool("v.bool_t", true);
    w.add_bool("v.bool_f", false);
    w.add_string("v.str", "héllo ▁wörld");
    w.add_string("v.empty", "");
    w.add_u64("v.u64", std::numeric_limits<uint64_t>::max());
    w.add_u64("v.u64small", 42);
    w.add_i64("v.i64", std::numeric_limits<int64_t>::min());
    w.add_f64("v.f64", 1e300);
    w.add_string_array("a.strs", {"x", "", "Ġthe", std::string("nul\0in", 6)});
    w.add_f32_array("a.f32", {1.5f, -2.25f, 1e-8f});
    w.add_i32_array("a.i32", {-1, 0, 7, std::numeric_limits<int32_t>::max()});
    w.add_u32_array("a.u32", {1, 4000000000u});
    w.add_i64_array("a.i64", {std::numeric_limits<int64_t>::min(), 5});
    w.add_f64_array("a.f64", {0.1, -0.2});
    w.add_u8_array("a.bool", {1, 0, 1});  // rewritten as bool below
    w.add_i32_array("a.empty", {});
    // bool and u16 arrays via raw bytes
    w.add_raw_array("a.bools", gguf_writer::t_bool, 3, {1, 0, 1});
    w.add_raw_array("a.u16", gguf_writer::t_u16, 2, {0x34, 0x12, 0xff, 0xff});

    for (uint32_t version : {2u, 3u}) {
        w.set_version(version);
        const std::vector<uint8_t> b = w.bytes();
        auto r = parse(b);
        INFO((r.ok() ? std::string("ok") : r.error().to_string()));
        REQUIRE(r.ok());
        const gguf_file& f = *r.value();
        CHECK(f.version() == version);
        CHECK(f.metadata().size() == w.n_kv());
        CHECK(f.tensors().empty());
        CHECK(f.metadata()[0].first == "v.u8");  // order kept

        CHECK(f.find("v.u8")->type == gguf_type::u8);
        CHECK(f.get_int("v.u8") == 200);
        CHECK(f.get_int("v.i8") == -100);
        CHECK(f.get_int("v.u16") == 65535);
        CHECK(f.get_int("v.i16") == -32768);
        CHECK(f.get_int("v.u32") == 4000000000ll);
        CHECK(f.get_int("v.i32") == -2000000000);
        CHECK(f.get_float("v.f32") == 0.15625);
        CHECK(f.get_bool("v.bool_t") == true);
        CHECK(f.get_bool("v.bool_f") == false);
        CHECK(f.get_int("v.bool_t") == 1);  // get_int accepts bool
        CHECK(f.get_str("v.str") == "héllo ▁wörld");
        CHECK(f.get_str("v.empty") == "");
        CHECK(f.find("v.u64")->u == std::numeric_limits<uint64_t>::max());
        CHECK_FALSE(f.get_int("v.u64").has_value());  // does not fit int64
        CHECK(f.get_int("v.u64small") == 42);
        CHECK(f.get_int("v.i64") == std::numeric_limits<int64_t>::min());
        CHECK(f.get_float("v.f64") == 1e300);
        CHECK(f.get_float("v.i32") == -2e9);  // get_float accepts integers

        // Wrong types and missing keys give nullopt.
        CHECK_FALSE(f.get_str("v.u8").has_value());
        CHECK_FALSE(f.get_int("v.str").has_value());
        CHECK_FALSE(f.get_int("v.f32").has_value());
        CHECK_FALSE(f.get_bool("v.u8").has_value());
        CHECK_FALSE(f.get_float("v.str").has_value());
        CHECK_FALSE(f.get_str("missing").has_value());
        CHECK(f.find("missing") == nullptr);
        CHECK_FALSE(f.get_str_array("a.f32").has_value());
        CHECK_FALSE(f.get_float_array("a.strs").has_value());
        CHECK_FALSE(f.get_int_array("a.f32").has_value());

        const auto strs = f.get_str_array("a.strs");
        REQUIRE(strs.has_value());
        REQUIRE(strs->size() == 4);
        CHECK((*strs)[0] == "x");
        CHECK((*strs)[1] == "");
        CHECK((*strs)[2] == "Ġthe");
        CHECK((*strs)[3] == std::string_view("nul\0in", 6));
        CHECK(f.find("a.strs")->elem_type == gguf_type::string);
        CHECK(f.find("a.strs")->n_elems == 4);
        CHECK(f.get_float_array("a.f32") == std::vector<float>{1.5f, -2.25f, 1e-8f});
        CHECK(f.get_int_array("a.i32") == std::vector<int64_t>{-1, 0, 7, std::numeric_limits<int32_t>::max()});
        CHECK(f.get_float_array("a.i32") == std::vector<float>{-1, 0, 7, float(std::numeric_limits<int32_t>::max())});
        CHECK(f.get_int_array("a.u32") == std::vector<int64_t>{1, 4000000000ll});
        CHECK(f.get_int_array("a.i64") == std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 5});
        CHECK(f.get_float_array("a.f64") == std::vector<float>{0.1f, -0.2f});
        CHECK(f.get_int_array("a.bools") == std::vector<int64_t>{1, 0, 1});
        CHECK(f.get_int_array("a.u16") == std::vector<int64_t>{0x1234, 0xffff});
        CHECK(f.get_int_array("a.empty") == std::vector<int64_t>{});
        CHECK(f.find("a.u16")->elem_type == gguf_type::u16);
    }
}

TEST_CASE("gguf writer round trip: every tensor type, alignment, file and memory", "[gguf]") {
    const uint32_t all_types[] = {0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 30};
    for (uint32_t align : {32u, 64u, 0u}) {
        INFO("alignment " << align);
        gguf_writer w;
        w.add_string("general.architecture", "llama");
        if (align != 0) w.add_u32("general.alignment", align);
        std::vector<std::vector<uint8_t>> datas;
        for (uint32_t t : all_types) {
            const auto tt = mnemos::kernels::traits_of(t);
            REQUIRE(tt.name != nullptr);
            const std::vector<int64_t> shape = {tt.block_size * 2, 3, 1};
            datas.push_back(pattern_bytes(static_cast<size_t>(2 * tt.type_size * 3), static_cast<uint8_t>(t)));
            w.add_tensor(std::string("t.") + tt.name, static_cast<ggml_type>(t), shape, datas.back());
        }
        w.add_tensor_f32("t.vec", {5}, {1, 2, 3, 4, 5});

        const std::string path = temp_path("roundtrip.gguf");
        REQUIRE(w.write(path));
        const std::vector<uint8_t> b = w.bytes();
        CHECK(read_all(path) == b);
        auto from_file = gguf_file::open(path);
        auto from_mem = parse(b);
        fs::remove(path);
        for (auto* r : {&from_file, &from_mem}) {
            INFO((r->ok() ? std::string("ok") : r->error().to_string()));
            REQUIRE(r->ok());
            const gguf_file& f = *r->value();
            CHECK(f.alignment() == (align == 0 ? 32 : align));
            CHECK(f.file_size() == b.size());
            REQUIRE(f.tensors().size() == std::size(all_types) + 1);
            check_tensor_invariants(f);
            for (size_t k = 0; k < std::size(all_types); ++k) {
                const gguf_tensor& t = f.tensors()[k];
                const auto tt = mnemos::kernels::traits_of(all_types[k]);
                CHECK(t.name == std::string("t.") + tt.name);
                CHECK(static_cast<uint32_t>(t.type) == all_types[k]);
                CHECK(t.shape == std::vector<int64_t>{tt.block_size * 2, 3, 1});
                CHECK(t.n_elements() == tt.block_size * 6);
                REQUIRE(t.n_bytes == datas[k].size());
                CHECK(std::memcmp(t.data, datas[k].data(), t.n_bytes) == 0);
                CHECK(reinterpret_cast<uintptr_t>(t.data) % f.alignment() == 0);
            }
            const gguf_tensor* v = f.find_tensor("t.vec");
            REQUIRE(v != nullptr);
            CHECK(static_cast<const float*>(v->data)[4] == 5.0f);
            CHECK(f.find_tensor("t.q5_k") != nullptr);  // known but not computable: still loads
        }
    }
}

// ---------------------------------------------------------------------------
// Crafted corruptions: each names the key or tensor and the bound it broke
// ---------------------------------------------------------------------------

TEST_CASE("gguf rejects crafted corruptions with precise messages", "[gguf]") {
    const std::vector<uint8_t> good = small_writer().bytes();
    {
        auto r = parse(good);
        REQUIRE(r.ok());
        check_tensor_invariants(*r.value());
        CHECK(r.value()->get_str_array("test.strs")->size() == 3);
    }
    const size_t data_start = good.size() - (8 * 2 * 4 + 96 + 16 * 2 * 2);  // f32 32B-padded: 64, q8_0 68 -> 96

    SECTION("header") {
        auto b = good;
        b[0] = 'X';
        require_error(b, errc::corrupt, {"magic"});
        b = good;
        poke<uint32_t>(b, 4, 1);
        require_error(b, errc::unsupported, {"version 1"});
        poke<uint32_t>(b, 4, 4);
        require_error(b, errc::unsupported, {"version 4"});
        poke<uint32_t>(b, 4, 0x03000000);
        require_error(b, errc::unsupported, {"big-endian"});
        b = good;
        poke<uint64_t>(b, 8, uint64_t(1) << 62);
        require_error(b, errc::corrupt, {"n_tensors", "4611686018427387904"});
        b = good;
        poke<uint64_t>(b, 16, ~uint64_t(0));
        require_error(b, errc::corrupt, {"n_kv"});
        b = good;
        poke<uint64_t>(b, 16, 100);  // plausible by size but the entries are not there
        auto r = parse(b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == errc::corrupt);
        require_error(std::vector<uint8_t>(good.begin(), good.begin() + 10), errc::corrupt, {"header"});
    }
    SECTION("metadata lengths, counts and types") {
        auto b = good;
        const size_t key = find_bytes(b, "test.str");
        poke<uint64_t>(b, key - 8, uint64_t(1) << 40);  // key length
        require_error(b, errc::corrupt, {"metadata entry 2", "string length 1099511627776", "runs past end of file"});

        b = good;
        const size_t val = key + 8 + 4;  // the string value's length
        poke<uint64_t>(b, val, ~uint64_t(0) - 3);
        require_error(b, errc::corrupt, {"'test.str'", "string length", "runs past end of file"});

        b = good;
        poke<uint32_t>(b, key + 8, 13);
        require_error(b, errc::corrupt, {"'test.str'", "value type 13"});

        b = good;
        const size_t arr = find_bytes(b, "test.f32s") + 9 + 4;  // element type, then count
        poke<uint64_t>(b, arr + 4, uint64_t(1) << 61);
        require_error(b, errc::corrupt, {"'test.f32s'", "array of 2305843009213693952 f32", "runs past end of file"});
        poke<uint64_t>(b, arr + 4, ~uint64_t(0));  // count * 4 would wrap around to a small number
        require_error(b, errc::corrupt, {"'test.f32s'", "runs past end of file"});

        b = good;
        poke<uint32_t>(b, arr, 9);
        require_error(b, errc::corrupt, {"'test.f32s'", "arrays of arrays"});
        poke<uint32_t>(b, arr, 77);
        require_error(b, errc::corrupt, {"'test.f32s'", "element type 77"});

        b = good;
        const size_t sarr = find_bytes(b, "test.strs") + 9 + 4;
        poke<uint64_t>(b, sarr + 4, uint64_t(1) << 60);
        require_error(b, errc::corrupt, {"'test.strs'", "string array count"});
        b = good;
        poke<uint64_t>(b, sarr + 12, 1000);  // first element's length
        require_error(b, errc::corrupt, {"'test.strs' element 0 of 3", "string length 1000"});

        b = good;
        const size_t flag = find_bytes(b, "test.flag") + 9 + 4;
        b[flag] = 2;
        require_error(b, errc::corrupt, {"'test.flag'", "not 0 or 1"});
    }
    SECTION("duplicates") {
        gguf_writer w = small_writer();
        w.add_u32("test.big", 7);
        require_error(w.bytes(), errc::corrupt, {"'test.big'", "more than once"});

        gguf_writer w2 = small_writer();
        w2.add_tensor("t.f32", ggml_type::f32, {8}, pattern_bytes(32, 9));
        require_error(w2.bytes(), errc::corrupt, {"tensor 't.f32'", "more than once"});
    }
    SECTION("alignment") {
        for (uint32_t a : {0u, 3u, 48u}) {
            auto b = good;
            poke<uint32_t>(b, find_bytes(b, "general.alignment") + 17 + 4, a);
            require_error(b, errc::corrupt, {"'general.alignment'", std::to_string(a), "power of two"});
        }
        gguf_writer w;
        w.add_u64("general.alignment", 32);
        require_error(w.bytes(), errc::corrupt, {"'general.alignment'", "expected u32"});
        // A valid larger alignment moves the data section; offsets written for 32 then break it.
        auto b = good;
        poke<uint32_t>(b, find_bytes(b, "general.alignment") + 17 + 4, 4096);
        require_error(b, errc::corrupt, {});
    }
    SECTION("tensor infos") {
        auto b = good;
        auto q = fields_of(b, "t.q8_0", 2);
        poke<uint32_t>(b, q.n_dims, 5);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "n_dims = 5", "1..4"});
        poke<uint32_t>(b, q.n_dims, 0);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "n_dims = 0"});

        b = good;
        poke<uint64_t>(b, q.dims + 8, 0);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "dimension 1 = 0"});
        poke<uint64_t>(b, q.dims + 8, ~uint64_t(0));
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "dimension 1 = -1"});
        poke<uint64_t>(b, q.dims, uint64_t(1) << 32);
        poke<uint64_t>(b, q.dims + 8, uint64_t(1) << 32);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "overflows int64"});
        poke<uint64_t>(b, q.dims, uint64_t(1) << 40);
        poke<uint64_t>(b, q.dims + 8, uint64_t(1) << 20);  // 2^60 elements, 34 * 2^55 bytes: fits, but not the file
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "1224979098644774912 bytes) runs past end of file"});
        poke<uint64_t>(b, q.dims, uint64_t(1) << 58);
        poke<uint64_t>(b, q.dims + 8, 31);  // 31 * 2^58 elements fit int64, 31 * 34 * 2^53 bytes do not
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "byte size"});

        b = good;
        poke<uint64_t>(b, q.dims, 33);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "ne0 = 33", "block size 32"});

        b = good;
        poke<uint32_t>(b, q.type, 99);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "unknown ggml tensor type 99"});
        poke<uint32_t>(b, q.type, 4);  // a hole in the numbering (old q4_2)
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "type 4"});

        b = good;
        poke<uint64_t>(b, q.offset, 64 + 1);
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "offset 65", "alignment 32"});
        poke<uint64_t>(b, q.offset, uint64_t(1) << 40);
        require_error(b, errc::corrupt,
                      {"tensor 't.q8_0'", "data [offset 1099511627776, 68 bytes) runs past end of file",
                       std::to_string(good.size()) + " bytes"});
        poke<uint64_t>(b, q.offset, ~uint64_t(0) - 31);  // offset + n_bytes wraps around
        require_error(b, errc::corrupt, {"tensor 't.q8_0'", "runs past end of file"});

        b = good;
        poke<uint64_t>(b, q.offset, 32);  // t.f32 is [0, 64)
        require_error(b, errc::corrupt, {"'t.f32'", "'t.q8_0'", "overlaps"});

        b = good;
        auto f = fields_of(b, "t.f16", 2);
        poke<uint64_t>(b, f.dims + 8, 3);  // one more row than the file holds
        require_error(b, errc::corrupt, {"tensor 't.f16'", "96 bytes) runs past end of file"});

        b = good;
        poke<uint64_t>(b, find_bytes(b, "t.f16") - 8, 0);  // empty name
        auto r = parse(b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code() == errc::corrupt);
    }
    SECTION("truncation inside the data names the last tensor") {
        const std::vector<uint8_t> b(good.begin(), good.end() - 1);
        require_error(b, errc::corrupt, {"tensor 't.f16'", "runs past end of file", std::to_string(b.size())});
        const std::vector<uint8_t> c(good.begin(), good.begin() + static_cast<ptrdiff_t>(data_start));
        require_error(c, errc::corrupt, {"runs past end of file"});
    }
}

TEST_CASE("gguf open: missing file, directory, empty file", "[gguf]") {
    auto r = gguf_file::open("/nonexistent/dir/model.gguf");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == errc::not_found);
    CHECK(r.error().message().find("/nonexistent/dir/model.gguf") != std::string::npos);

    auto d = gguf_file::open(fs::temp_directory_path().string());
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().code() == errc::io_error);

    const std::string path = temp_path("empty.gguf");
    { std::ofstream(path, std::ios::binary); }
    auto e = gguf_file::open(path);
    fs::remove(path);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code() == errc::corrupt);
    CHECK(e.error().message().find("0 bytes") != std::string::npos);

    auto m = gguf_file::parse(nullptr, 0);
    REQUIRE_FALSE(m.ok());
    CHECK_FALSE(m.error().message().empty());
}

// ---------------------------------------------------------------------------
// Fuzzing: truncation, random flips, systematic overwrites. Never a crash.
// ---------------------------------------------------------------------------

namespace {

// Parses `b`; either it opens and satisfies every invariant, or it fails with a message.
// Returns whether it opened.
bool parse_ok_or_error(const std::vector<uint8_t>& b) {
    auto r = parse(b);
    if (r.ok()) {
        check_tensor_invariants(*r.value());
        for (const auto& [key, v] : r.value()->metadata()) {
            REQUIRE(r.value()->find(key) != nullptr);
            if (v.type == gguf_type::array && v.elem_type != gguf_type::string) {
                (void)r.value()->get_float_array(key);  // reads every element
            }
        }
        return true;
    }
    REQUIRE_FALSE(r.error().message().empty());
    REQUIRE(r.error().code() != errc::ok);
    return false;
}

}  // namespace

TEST_CASE("gguf fuzz: truncation, byte flips and overwritten fields never crash", "[gguf]") {
    const std::vector<uint8_t> good = small_writer().bytes();
    REQUIRE(parse_ok_or_error(good));

    // Every strict prefix fails (the last tensor ends exactly at the end of the file).
    for (size_t n = 0; n < good.size(); ++n) {
        INFO("truncated to " << n);
        REQUIRE_FALSE(parse_ok_or_error(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(n))));
    }

    // Systematic overwrites of every position in the header/metadata/info region with hostile values.
    const size_t meta_end = static_cast<size_t>(find_bytes(good, "t.f16") + 64);
    const uint64_t hostile[] = {0,
                                1,
                                31,
                                0x7fffffffull,
                                0xffffffffull,
                                0x7fffffffffffffffull,
                                0x8000000000000000ull,
                                ~uint64_t(0),
                                static_cast<uint64_t>(good.size())};
    size_t n_opened = 0, n_trials = 0;
    for (size_t at = 0; at + 8 <= meta_end; ++at) {
        for (uint64_t v : hostile) {
            auto b = good;
            std::memcpy(b.data() + at, &v, 8);
            n_opened += parse_ok_or_error(b);
            b = good;
            const uint32_t v32 = static_cast<uint32_t>(v);
            std::memcpy(b.data() + at, &v32, 4);
            n_opened += parse_ok_or_error(b);
            n_trials += 2;
        }
    }
    CHECK(n_opened < n_trials);  // most of these must be caught

    // Random flips of 1..4 bytes (seeded).
    std::mt19937 rng(12345);
    n_opened = 0;
    for (int trial = 0; trial < 4000; ++trial) {
        auto b = good;
        const int n_flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < n_flips; ++k) {
            const size_t at = rng() % (trial % 2 ? b.size() : meta_end);  // half of them in the metadata
            b[at] = static_cast<uint8_t>(rng());
        }
        n_opened += parse_ok_or_error(b);
    }
    CHECK(n_opened > 0);  // flips inside tensor data are harmless
}

TEST_CASE("gguf fuzz on a real file (stories260K-f32)", "[model][gguf]") {
    const std::string path = k_models + "/stories260K-f32.gguf";
    if (!fs::exists(path)) {
        WARN("skipped: missing " << path);
        return;
    }
    const std::vector<uint8_t> good = read_all(path);
    REQUIRE(parse_ok_or_error(good));
    // Metadata + tensor infos end before the data section; find it from the first tensor's name position.
    const size_t meta_end = find_bytes(good, "output_norm.weight") + 64;
    REQUIRE(meta_end < good.size());
    // Truncations: every byte of the first 512, then a stride through the file.
    for (size_t n = 0; n < good.size(); n += (n < 512 ? 1 : 4099)) {
        INFO("truncated to " << n);
        REQUIRE_FALSE(parse_ok_or_error(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(n))));
    }
    std::mt19937 rng(777);
    for (int trial = 0; trial < 300; ++trial) {
        auto b = good;
        for (int k = 0; k < 3; ++k) b[rng() % meta_end] = static_cast<uint8_t>(rng());
        parse_ok_or_error(b);
    }
}

// ---------------------------------------------------------------------------
// Tiny model generator
// ---------------------------------------------------------------------------

TEST_CASE("tiny model: llama/SPM and qwen2/BPE layouts and metadata", "[gguf][tiny_model]") {
    using mnemos::test::tiny_model_options;
    for (const std::string arch : {"llama", "qwen2"}) {
        for (const std::string tok : {"llama", "gpt2"}) {
            INFO(arch << " / " << tok);
            tiny_model_options o;
            o.arch = arch;
            o.tokenizer = tok;
            o.tied_output = arch == "qwen2";
            o.n_layer = 2;
            const std::string path = temp_path("tiny_" + arch + "_" + tok + ".gguf");
            REQUIRE(mnemos::test::write_tiny_model(path, o));
            auto r = gguf_file::open(path);
            const std::vector<uint8_t> bytes = read_all(path);
            fs::remove(path);
            INFO((r.ok() ? std::string("ok") : r.error().to_string()));
            REQUIRE(r.ok());
            const gguf_file& f = *r.value();
            check_tensor_invariants(f);
            CHECK(f.get_str("general.architecture") == arch);
            CHECK(f.get_int(arch + ".embedding_length") == 256);
            CHECK(f.get_int(arch + ".block_count") == 2);
            CHECK(f.get_int(arch + ".attention.head_count") == 4);
            CHECK(f.get_int(arch + ".attention.head_count_kv") == 2);
            CHECK(f.get_int(arch + ".feed_forward_length") == 512);
            CHECK(f.get_int(arch + ".context_length") == 512);
            CHECK(f.get_float(arch + ".rope.freq_base") == Approx(10000));
            CHECK(f.get_float(arch + ".attention.layer_norm_rms_epsilon").has_value());
            const auto tokens = f.get_str_array("tokenizer.ggml.tokens");
            REQUIRE(tokens.has_value());
            const int64_t n_vocab = static_cast<int64_t>(tokens->size());
            CHECK(f.get_int(arch + ".vocab_size") == n_vocab);
            CHECK(n_vocab >= 300);
            CHECK(n_vocab <= 600);
            std::set<std::string_view> unique(tokens->begin(), tokens->end());
            CHECK(unique.size() == tokens->size());
            const auto types = f.get_int_array("tokenizer.ggml.token_type");
            REQUIRE(types.has_value());
            REQUIRE(static_cast<int64_t>(types->size()) == n_vocab);
            CHECK(f.get_str("tokenizer.ggml.model") == tok);
            if (tok == "llama") {
                CHECK((*tokens)[0] == "<unk>");
                CHECK((*tokens)[1] == "<s>");
                CHECK((*tokens)[2] == "</s>");
                CHECK((*tokens)[3] == "<0x00>");
                CHECK((*tokens)[3 + 255] == "<0xFF>");
                CHECK((*types)[0] == 2);
                CHECK((*types)[1] == 3);
                CHECK((*types)[3 + 0x41] == 6);
                CHECK((*types)[300] == 1);
                CHECK(unique.count("\xE2\x96\x81the") == 1);  // "▁the"
                CHECK(unique.count("e") == 1);
                CHECK(f.get_float_array("tokenizer.ggml.scores")->size() == tokens->size());
                CHECK(f.get_int("tokenizer.ggml.bos_token_id") == 1);
                CHECK(f.get_int("tokenizer.ggml.eos_token_id") == 2);
                CHECK(f.get_bool("tokenizer.ggml.add_bos_token") == true);
            } else {
                CHECK((*tokens)[32] == "Ġ");  // byte 0x20 in GPT-2's byte-to-unicode map
                CHECK((*tokens)[65] == "A");
                CHECK((*tokens)[10] == "Ċ");  // '\n'
                const auto merges = f.get_str_array("tokenizer.ggml.merges");
                REQUIRE(merges.has_value());
                CHECK(merges->size() >= 100);
                // Every merge joins two existing tokens into a token that exists.
                for (std::string_view m : *merges) {
                    const size_t sp = m.find(' ');
                    REQUIRE(sp != std::string_view::npos);
                    CHECK(unique.count(m.substr(0, sp)) == 1);
                    CHECK(unique.count(m.substr(sp + 1)) == 1);
                    CHECK(unique.count(std::string(m.substr(0, sp)) + std::string(m.substr(sp + 1))) == 1);
                }
                CHECK(unique.count("Ġthe") == 1);
                const int64_t eos = *f.get_int("tokenizer.ggml.eos_token_id");
                CHECK((*tokens)[static_cast<size_t>(eos)] == "<|im_end|>");
                CHECK((*types)[static_cast<size_t>(eos)] == 3);
                CHECK(f.get_bool("tokenizer.ggml.add_bos_token") == false);
                CHECK(f.get_str("tokenizer.chat_template")->find("<|im_start|>") != std::string_view::npos);
            }

            const gguf_tensor* emb = f.find_tensor("token_embd.weight");
            REQUIRE(emb != nullptr);
            CHECK(emb->shape == std::vector<int64_t>{256, n_vocab});
            CHECK(f.find_tensor("blk.1.attn_q.weight")->shape == std::vector<int64_t>{256, 256});
            CHECK(f.find_tensor("blk.1.attn_k.weight")->shape == std::vector<int64_t>{256, 128});
            CHECK(f.find_tensor("blk.1.attn_v.weight")->shape == std::vector<int64_t>{256, 128});
            CHECK(f.find_tensor("blk.1.attn_output.weight")->shape == std::vector<int64_t>{256, 256});
            CHECK(f.find_tensor("blk.1.ffn_gate.weight")->shape == std::vector<int64_t>{256, 512});
            CHECK(f.find_tensor("blk.1.ffn_up.weight")->shape == std::vector<int64_t>{256, 512});
            CHECK(f.find_tensor("blk.1.ffn_down.weight")->shape == std::vector<int64_t>{512, 256});
            CHECK(f.find_tensor("blk.0.attn_norm.weight")->shape == std::vector<int64_t>{256});
            CHECK(f.find_tensor("blk.0.ffn_norm.weight")->type == ggml_type::f32);
            CHECK(f.find_tensor("output_norm.weight") != nullptr);
            CHECK(f.find_tensor("blk.2.attn_q.weight") == nullptr);
            CHECK((f.find_tensor("output.weight") != nullptr) == !o.tied_output);
            const bool qwen = arch == "qwen2";
            CHECK((f.find_tensor("blk.0.attn_q.bias") != nullptr) == qwen);
            if (qwen) CHECK(f.find_tensor("blk.1.attn_k.bias")->shape == std::vector<int64_t>{128});
            CHECK(f.tensors().size() == size_t(2 + 9 * 2 + (qwen ? 3 * 2 : 0) + (o.tied_output ? 0 : 1)));

            // Weight statistics: matrices ~N(0, 1/16) (std 1/sqrt(256) = 0.0625), norms ~1 (tolerance 5 sigma).
            const gguf_tensor* q = f.find_tensor("blk.0.attn_q.weight");
            const float* qv = static_cast<const float*>(q->data);
            double s = 0, s2 = 0;
            const int64_t n = q->n_elements();
            for (int64_t i = 0; i < n; ++i) {
                s += qv[i];
                s2 += double(qv[i]) * qv[i];
            }
            CHECK(std::fabs(s / n) < 5 * 0.0625 / std::sqrt(double(n)));
            CHECK(std::sqrt(s2 / n) == Approx(0.0625).epsilon(0.03));
            const float* norm = static_cast<const float*>(f.find_tensor("blk.0.attn_norm.weight")->data);
            double ns = 0;
            for (int i = 0; i < 256; ++i) ns += norm[i];
            CHECK(ns / 256 == Approx(1.0).margin(0.05));

            if (arch != "llama" || tok != "llama") continue;
            // Deterministic for a seed, different for another.
            REQUIRE(mnemos::test::write_tiny_model(path, o));
            CHECK(read_all(path) == bytes);
            o.seed = 2;
            REQUIRE(mnemos::test::write_tiny_model(path, o));
            CHECK(read_all(path) != bytes);
            fs::remove(path);
        }
    }
}

TEST_CASE("tiny model: quantized weight types load with the right sizes", "[gguf][tiny_model]") {
    using mnemos::test::tiny_model_options;
    for (ggml_type t :
         {ggml_type::f16, ggml_type::bf16, ggml_type::q8_0, ggml_type::q4_0, ggml_type::q4_k, ggml_type::q6_k}) {
        INFO(mnemos::kernels::traits_of(t).name);
        tiny_model_options o;
        o.weight_type = t;
        o.n_layer = 1;
        o.tied_output = false;
        const std::string path = temp_path("tiny_q.gguf");
        REQUIRE(mnemos::test::write_tiny_model(path, o));
        auto r = gguf_file::open(path);
        fs::remove(path);
        REQUIRE(r.ok());
        const gguf_file& f = *r.value();
        check_tensor_invariants(f);
        for (const char* name : {"token_embd.weight", "output.weight", "blk.0.ffn_down.weight"}) {
            const gguf_tensor* w = f.find_tensor(name);
            REQUIRE(w != nullptr);
            CHECK(w->type == t);
            CHECK(w->n_bytes == mnemos::kernels::row_size(t, w->shape[0]) * static_cast<size_t>(w->shape[1]));
        }
        CHECK(f.find_tensor("blk.0.attn_norm.weight")->type == ggml_type::f32);
    }
    // Options that cannot be written are refused.
    tiny_model_options bad;
    bad.n_head = 3;
    CHECK_FALSE(mnemos::test::write_tiny_model(temp_path("bad.gguf"), bad));
    bad = {};
    bad.weight_type = ggml_type::q4_k;
    bad.n_ff = 300;  // not a multiple of 256
    CHECK_FALSE(mnemos::test::write_tiny_model(temp_path("bad.gguf"), bad));
    bad = {};
    bad.arch = "gpt-neox";
    CHECK_FALSE(mnemos::test::write_tiny_model(temp_path("bad.gguf"), bad));
}
