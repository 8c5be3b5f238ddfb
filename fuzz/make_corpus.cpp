// Writes the seed corpora of the fuzz targets into <dir>/<target>/ (scripts/fuzz.sh: a temporary directory; never
// committed): inputs taken from the unit tests (tests/engine/test_gguf.cpp's and tiny_model.h's GGUF files, the
// tokenizer and grammar tests' texts and schemas, tests/tools' tool-call replies, tests/memory's codec blocks), each in
// the input format of its target (see the comment at the top of each fuzz_<name>.cpp). Deterministic; rerun after
// changing an input format:
//   build-checks/fuzz/make_corpus /tmp/seeds
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/vocab.h"
#include "kernels/cpu/kernels.h"
#include "memory/codec.h"
#include "tests/support/gguf_writer.h"
#include "tests/support/tiny_model.h"

using namespace mnemos;
namespace fs = std::filesystem;

namespace {

fs::path g_root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
    const fs::path dir = g_root / target;
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary) << bytes;
}
void put(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    put(target, name, std::string(bytes.begin(), bytes.end()));
}
std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void gguf_seeds() {
    // Tiny models as the engine tests build them (smallest shapes, quantized matrices keep them small).
    struct model_case {
        const char* name;
        const char* arch;
        const char* tok;
        kernels::ggml_type type;
    };
    for (const model_case& c : {model_case{"tiny_llama_spm_q4_0", "llama", "llama", kernels::ggml_type::q4_0},
                                model_case{"tiny_qwen2_bpe_q8_0", "qwen2", "gpt2", kernels::ggml_type::q8_0}}) {
        test::tiny_model_options o;
        o.arch = c.arch;
        o.tokenizer = c.tok;
        o.weight_type = c.type;
        o.n_layer = 1;
        o.n_embd = 32;
        o.n_head = 2;
        o.n_head_kv = 1;
        o.n_ff = 32;
        o.n_ctx = 64;
        const fs::path tmp = fs::temp_directory_path() / (std::string("mnemos_seed_") + c.name + ".gguf");
        if (!test::write_tiny_model(tmp.string(), o)) {
            std::fprintf(stderr, "cannot write %s\n", tmp.c_str());
            std::exit(1);
        }
        put("gguf", std::string(c.name) + ".gguf", read(tmp));
        fs::remove(tmp);
    }
    put("gguf", "vocab_spm.gguf", fuzz::spm_writer().bytes());
    put("gguf", "vocab_bpe_llama3.gguf", fuzz::bpe_writer("llama3").bytes());
    // Every value type, arrays included, and two tensors (test_gguf.cpp's "all value types").
    test::gguf_writer w;
    w.add_u8("a.u8", 200);
    w.add_i8("a.i8", -100);
    w.add_u16("a.u16", 60000);
    w.add_i16("a.i16", -30000);
    w.add_u32("general.alignment", 64);
    w.add_i32("a.i32", -2000000000);
    w.add_f32("a.f32", 1.5f);
    w.add_bool("a.bool", true);
    w.add_string("general.architecture", "llama");
    w.add_u64("a.u64", 1ull << 40);
    w.add_i64("a.i64", -(1ll << 40));
    w.add_f64("a.f64", -2.25);
    w.add_string_array("a.strs", {"x", "", "yz"});
    w.add_f32_array("a.f32s", {1, 2, 3});
    w.add_i32_array("a.i32s", {-1, 0, 1});
    w.add_u8_array("a.u8s", {1, 2});
    w.add_tensor_f32("t.a", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
    w.add_tensor_f32("t.b", {3}, {1, 2, 3});
    put("gguf", "all_types_v3.gguf", w.bytes());
    w.set_version(2);
    put("gguf", "all_types_v2.gguf", w.bytes());
    test::gguf_writer empty;
    put("gguf", "empty.gguf", empty.bytes());
}

void tokenizer_seeds() {
    // [tokenizer index][flags: 1 bos, 2 parse special, 4 render special, 8 ids][text or int32 ids]
    const std::vector<std::string> texts = {
        "Hello world",
        " hi hi  hihi\n\nlow lower lowest",
        "<|im_start|>user\nhi<|im_end|><|endoftext|>",
        "<s>ab</s>[GO]ab <unk>",
        "ok \x80\xBF x\xC3 \xE2\x82 \xED\xA0\x80 end\xF0\x9F",
        "na\xC3\xAFve caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82 123 4567 I'm you'll",
        "\t  \r\n  x  ",
    };
    int k = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        for (uint8_t vocab : {uint8_t(0), uint8_t(1 + i % 6)}) {
            const uint8_t flags = uint8_t((i * 5) & 7);
            put("tokenizer", "text_" + std::to_string(k++), std::string{char(vocab), char(flags)} + texts[i]);
        }
    }
    std::string ids = {char(0), char(8 | 4)};
    for (int32_t id : {1, 3, 4, 5 + 0xE2, 5 + 0x82, 261, 262, 2, 0, 300}) ids.append(reinterpret_cast<char*>(&id), 4);
    put("tokenizer", "ids_spm", ids);
    ids[0] = 2;
    ids[1] = char(8 | 0x80);
    put("tokenizer", "ids_bpe_raw", ids);
}

void grammar_seeds() {
    // [flags: 1 small caps, 2 check masks, bits 2..7 the probe position][schema]\0[document]
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"type":"object","properties":{"name":{"enum":["get_weather","roll_dice"]},"arguments":{"type":"object",)"
         R"("properties":{"city":{"type":"string","maxLength":12},"days":{"type":"integer"},"metric":{"type":"boolean"},)"
         R"("unit":{"enum":["c","f", 3]},"tags":{"type":"array","items":{"type":"string","maxLength":6},"maxItems":3},)"
         R"("where":{"type":"object","properties":{"lat":{"type":"number"},"lon":{"type":"number"},"note":{"type":"null"}},)"
         R"("required":["lat","lon"]}},"required":["city","days","metric","unit","tags","where"]}},)"
         R"("required":["name","arguments"]})",
         R"({"name": "get_weather", "arguments": {"city": "Paris", "days": 3, "metric": true, "unit": "c", "tags": ["a"], "where": {"lat": 48.85, "lon": 2.35e0, "note": null}}})"},
        {R"({"type":"array","minItems":1,"maxItems":3,"items":{"type":"object","properties":{"id":{"type":"integer"},)"
         R"("label":{"type":"string","maxLength":8},"ok":{"type":"boolean"}},"required":["id"]}})",
         R"([{"id":1,"label":"x\u00e9\n"},{"ok":false,"id":-20}])"},
        {R"({"anyOf":[{"type":"object","properties":{"name":{"const":"add"},"x":{"type":"integer"}},"required":["name","x"]},)"
         R"({"type":"object","properties":{"name":{"const":"say"},"text":{"type":"string","maxLength":5}},)"
         R"("required":["name","text"]},{"type":"null"},{"type":"array","items":{"type":"number"},"maxItems":4}]})",
         R"({"name":"say","text":"hi"})"},
        {"{}", R"({"a": [1, {"b": null}], "c": "\"q\"", "d": -0.5e-3})"},
        {R"({"type":"string","minLength":2,"maxLength":5,"description":"d","title":"t"})", R"("ab\\c")"},
        {R"({"type":["integer","null","boolean"]})", "-12"},
        {R"({"enum":["red","green","a\"b",1,12,true,null]})", R"("a\"b")"},
        {R"({"type":"object"})", R"({"k": [true, 1.5]})"},
    };
    int k = 0;
    for (const auto& [schema, doc] : cases) {
        const uint8_t flags = uint8_t((k % 2) | 2 | (((k * 13) % 64) << 2));
        put("grammar", "case_" + std::to_string(k++), std::string(1, char(flags)) + schema + '\0' + doc);
    }
    put("grammar", "case_leading_ws", std::string(1, char(1 | 2)) + R"({"type":"integer"})" + '\0' + "\n 42");
}

void tool_call_seeds() {
    const std::vector<std::string> texts = {
        "Let me roll.\n<tool_call>\n{\"name\": \"roll_dice\", \"arguments\": {\"notation\": \"2d6\"}}\n</tool_call>",
        "<tool_call>{\"name\":\"a\",\"arguments\":{}}</"
        "tool_call>\n<tool_call>{\"name\":\"b\",\"arguments\":\"{\\\"x\\\": "
        "1}\"}</tool_call> done",
        "<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":1}}",
        "<tool_call>{\"name\":\"clock\"}</tool_call>",
        "<tool_call>{\"name\":\"a\",\"arguments\":{\"k\":1}}</tool_call><tool_call>{\"name\":",
        "<tool_call>{\"name\":\"a\",\"arguments\":\"{oops\"}</tool_call>",
        "<|python_tag|>{\"name\": \"clock\", \"parameters\": {}}",
        "{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {}}",
        "  {\"name\": \"roll_dice\", \"arguments\": {\"notation\": \"d20\"}}\n",
        "[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]",
        "Just an answer, no tools.",
        "{\"answer\": 42}",
        "Sure.<tool_call>\n{\"name\": \"note\", \"arguments\": {\"text\": \"a \\\"q\\\" \xC3\xA9\"}}\n</tool_call>",
        "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":[[[[{\"b\":[[1]]}]]]]}}</tool_call>",
    };
    for (size_t i = 0; i < texts.size(); ++i) put("tool_calls", "reply_" + std::to_string(i), texts[i]);
}

void json_limit_seeds() {
    // [max depth % 72][text]
    const std::vector<std::pair<int, std::string>> cases = {
        {64, "{\"a\":[1]}"},
        {3, "[[1],{\"a\":[2]}]"},
        {1, "[\"[[[[[[\"]"},
        {1, "[\"\\\"[[[[\"]"},
        {2, "[\"\\\\\",[[]]]"},
        {4, std::string(6, '[') + std::string(6, ']')},
        {0, "1"},
        {5, "{\"k\": {\"l\": [null, true, \"\\u00e9\", -1.5e3]}} "},
    };
    for (size_t i = 0; i < cases.size(); ++i)
        put("json_limits", "text_" + std::to_string(i), std::string(1, char(cases[i].first)) + cases[i].second);
}

void codec_seeds() {
    // Mode 0: stored blocks (fp16, int8 v2, int8 v1) as tests/memory/test_store.cpp writes them.
    const size_t kv_dim = 8, T = 4, n_layer = 1, n = n_layer * 2 * T * kv_dim;
    std::vector<uint8_t> page(n * 2);
    for (size_t i = 0; i < n; ++i) {
        const uint16_t h = kernels::fp32_to_fp16(float(int(i % 17) - 8) * 0.37f);
        std::memcpy(page.data() + 2 * i, &h, 2);
    }
    engine::block_hash hash, parent;
    for (int i = 0; i < 32; ++i) hash.bytes[size_t(i)] = uint8_t(i * 7 + 1), parent.bytes[size_t(i)] = uint8_t(i);
    const std::vector<engine::token_id> toks = {10, 11, 12, 13};
    struct block_case {
        const char* name;
        memory::kv_codec codec;
        uint16_t version;
    };
    for (const block_case& c :
         {block_case{"fp16", memory::kv_codec::fp16, 2}, block_case{"int8_v2", memory::kv_codec::int8, 2},
          block_case{"int8_v1", memory::kv_codec::int8, 1}}) {
        const std::string v = memory::encode_block(c.codec, int32_t(kv_dim), hash, parent, toks, page, 1234, c.version);
        // The target takes the hash from the first 32 bytes after its two control bytes, i.e. from the
        // value itself; the checksum is fixed up (flag 1) so the payload is reached.
        put("codec", std::string("block_") + c.name, std::string{char(0), char(1)} + v);
    }
    // Mode 1: round trips (codec/version bits, n_tokens, group, time, then page bytes).
    std::string rt = {char(1), char(1), char(T - 1), char(kv_dim), char(0), char(9), 0, 0, 0};
    rt.append(reinterpret_cast<const char*>(page.data()), page.size());
    put("codec", "round_trip_int8_v2", rt);
    rt[1] = 0;
    put("codec", "round_trip_fp16", rt);
    rt[1] = 3;
    put("codec", "round_trip_int8_v1", rt);
    // Mode 2: a summary; mode 3: crc32c.
    const std::vector<uint8_t> payload = {1, 2, 3, 4, 5, 6, 7, 8};
    put("codec", "summary", std::string{char(2), char(1)} + memory::encode_summary(hash, payload));
    put("codec", "crc", std::string{char(3), char(5)} + "123456789 the quick brown fox");
}

}  // namespace

void http_seeds() {
    // [flags: 1 small body limit, 2 in 7-byte pieces][request bytes]
    const std::string chat =
        R"({"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text",)"
        R"("text":"hi"}]}],"max_tokens":8,"temperature":0.5,"stop":["\n"],"stream":true,)"
        R"("stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"roll",)"
        R"("parameters":{"type":"object","properties":{"n":{"type":"integer"}}}}}],"tool_choice":"auto"})";
    const std::string response =
        R"({"model":"m","instructions":"be brief","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},)"
        R"({"type":"function_call","call_id":"c1","name":"roll","arguments":"{}"},)"
        R"({"type":"function_call_output","call_id":"c1","output":"4"},{"type":"item_reference","id":"msg_1"}],)"
        R"("text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}}})";
    const auto post = [](const std::string& path, const std::string& body) {
        return "POST " + path +
               " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    };
    const std::string chunked =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"a\":\r\n3\r\n[1]\r\n1\r\n}\r\n0\r\nX-Trailer: v\r\n\r\n";
    const std::vector<std::string> requests = {
        post("/v1/chat/completions", chat),
        post("/v1/responses", response),
        chunked,
        "GET /v1/sessions/s1/events?after=3 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/sessions/s1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        post("/v1/chat/completions", "[" + std::string(100, '[')),
        post("/v1/completions", R"({"prompt":"x"})")};
    for (size_t i = 0; i < requests.size(); ++i) {
        put("http", "request_" + std::to_string(i), std::string(1, char(i % 4)) + requests[i]);
    }
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_corpus <dir>   (writes <dir>/<target>/...)\n");
        return 2;
    }
    g_root = argv[1];
    gguf_seeds();
    tokenizer_seeds();
    grammar_seeds();
    tool_call_seeds();
    json_limit_seeds();
    codec_seeds();
    http_seeds();
    return 0;
}
