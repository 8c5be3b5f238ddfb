#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "engine/sha256.h"

namespace mnemos::engine {

namespace {

using kernels::ggml_type;

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

// Reads the hyper-parameters under "<arch>.".
status read_hparams(const gguf_file& f, hparams& hp) {
    const auto arch = f.get_str("general.architecture");
    if (!arch) return make_error(errc::corrupt, "key 'general.architecture' is missing");
    hp.arch = std::string(*arch);
    if (hp.arch != "llama" && hp.arch != "qwen2")
        return make_error(errc::unsupported,
                          "architecture '" + hp.arch + "' is not supported (supported: llama, qwen2)");
    hp.name = std::string(f.get_str("general.name").value_or(""));
    const std::string p = hp.arch + ".";

    auto need_int = [&](const std::string& key, int32_t& out, int64_t lo, int64_t hi) -> status {
        const auto v = f.get_int(p + key);
        if (!v) return make_error(errc::corrupt, "key '" + p + key + "' is missing or not an integer");
        if (*v < lo || *v > hi)
            return make_error(errc::corrupt, "key '" + p + key + "' = " + std::to_string(*v) + " is outside [" +
                                                 std::to_string(lo) + ", " + std::to_string(hi) + "]");
        out = static_cast<int32_t>(*v);
        return {};
    };
    // An optional integer: the default when absent; corrupt when present with another type or out of [lo, hi]
    // (checked on the 64-bit value before narrowing: 2^32 + 16 is not 16).
    auto opt_int = [&](const std::string& key, int32_t& out, int64_t def, int64_t lo, int64_t hi) -> status {
        if (!f.find(p + key)) {
            out = static_cast<int32_t>(def);
            return {};
        }
        return need_int(key, out, lo, hi);
    };
    // An optional real number: finite and inside (lo, hi) (open bounds) or [lo, hi] (closed); corrupt otherwise,
    // and when present with a non-numeric type. The message shows the value (inf, nan) and the range.
    auto opt_real = [&](const std::string& key, float& out, double def, double lo, double hi, bool open_lo) -> status {
        const gguf_value* raw = f.find(p + key);
        double v = def;
        if (raw) {
            const auto got = f.get_float(p + key);
            if (!got) return make_error(errc::corrupt, "key '" + p + key + "' is not a number");
            v = *got;
        }
        const bool in = std::isfinite(v) && (open_lo ? v > lo : v >= lo) && v <= hi &&
                        std::isfinite(static_cast<float>(v)) && (static_cast<float>(v) != 0.0f || lo < 0);
        if (!in) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "%g is %s; it must be finite and in %c%g, %g]", v,
                          std::isfinite(v) ? "out of range" : "not finite", open_lo ? '(' : '[', lo, hi);
            return make_error(errc::corrupt, "key '" + p + key + "' = " + buf);
        }
        out = static_cast<float>(v);
        return {};
    };
    status st;
    if (!(st = need_int("embedding_length", hp.n_embd, 1, 1 << 16)).ok()) return st;
    if (!(st = need_int("block_count", hp.n_layer, 1, 1024)).ok()) return st;
    if (!(st = need_int("attention.head_count", hp.n_head, 1, 1024)).ok()) return st;
    if (!(st = need_int("feed_forward_length", hp.n_ff, 1, 1 << 20)).ok()) return st;
    hp.n_head_kv = hp.n_head;
    if (f.get_int(p + "attention.head_count_kv") &&
        !(st = need_int("attention.head_count_kv", hp.n_head_kv, 1, hp.n_head)).ok())
        return st;
    if (hp.n_head % hp.n_head_kv != 0)
        return make_error(errc::corrupt, "key '" + p + "attention.head_count' (" + std::to_string(hp.n_head) +
                                             ") is not a multiple of '" + p + "attention.head_count_kv' (" +
                                             std::to_string(hp.n_head_kv) + ")");
    if (!f.find(p + "attention.key_length") && hp.n_embd % hp.n_head != 0)
        return make_error(errc::corrupt, "key '" + p + "embedding_length' (" + std::to_string(hp.n_embd) +
                                             ") is not a multiple of attention.head_count (" +
                                             std::to_string(hp.n_head) + ") and attention.key_length is absent");
    hp.head_dim = hp.n_embd / hp.n_head;
    if (f.find(p + "attention.key_length") && !(st = need_int("attention.key_length", hp.head_dim, 1, 1024)).ok())
        return st;
    if (hp.head_dim % 2 != 0)
        return make_error(errc::unsupported, "head dimension " + std::to_string(hp.head_dim) + " is odd");
    constexpr int64_t max_ctx = int64_t(1) << 24;  // 16M positions: beyond any trained window
    if (!(st = opt_int("context_length", hp.n_ctx_train, 4096, 1, max_ctx)).ok()) return st;
    hp.n_rot = hp.head_dim;
    if (f.find(p + "rope.dimension_count") && !(st = need_int("rope.dimension_count", hp.n_rot, 2, hp.head_dim)).ok())
        return st;
    if (hp.n_rot % 2 != 0) return make_error(errc::corrupt, "key '" + p + "rope.dimension_count' must be even");
    if (!(st = opt_real("attention.layer_norm_rms_epsilon", hp.rms_eps, 1e-5, 0.0, std::nextafter(1.0, 0.0), true))
             .ok())
        return st;
    if (!(st = opt_real("rope.freq_base", hp.rope_freq_base, 10000.0, 1.0, 1e12, true)).ok()) return st;
    hp.rope = hp.arch == "qwen2" ? rope_kind::neox : rope_kind::normal;
    hp.qkv_bias = hp.arch == "qwen2";

    // RoPE scaling.
    const std::string stype(f.get_str(p + "rope.scaling.type").value_or("none"));
    if (!(st = opt_real("rope.scaling.factor", hp.rope_scale_factor, 1.0, 0.0, 1024.0, true)).ok()) return st;
    if (f.find(p + "rope.scale_linear")) {  // older files
        hp.scaling = rope_scaling::linear;
        if (!(st = opt_real("rope.scale_linear", hp.rope_scale_factor, 1.0, 0.0, 1024.0, true)).ok()) return st;
    }
    if (stype == "linear")
        hp.scaling = rope_scaling::linear;
    else if (stype == "yarn")
        hp.scaling = rope_scaling::yarn;
    else if (stype == "llama3")
        hp.scaling = rope_scaling::llama3;
    else if (stype != "none" && !stype.empty())
        return make_error(errc::unsupported,
                          "key '" + p + "rope.scaling.type' = '" + stype + "' (supported: none, linear, yarn, llama3)");
    if (hp.scaling != rope_scaling::none && !(hp.rope_scale_factor >= 1.0f))
        return make_error(errc::corrupt, "key '" + p + "rope.scaling.factor' must be >= 1");
    if (hp.scaling == rope_scaling::none) hp.rope_scale_factor = 1.0f;
    if (!(st = opt_int("rope.scaling.original_context_length", hp.rope_orig_ctx, hp.n_ctx_train, 1, max_ctx)).ok())
        return st;
    if (!(st = opt_real("rope.scaling.yarn_beta_fast", hp.yarn_beta_fast, 32.0, 0.0, 1e6, true)).ok()) return st;
    if (!(st = opt_real("rope.scaling.yarn_beta_slow", hp.yarn_beta_slow, 1.0, 0.0, 1e6, true)).ok()) return st;
    if (!(st = opt_real("rope.scaling.attn_factor", hp.yarn_attn_factor, 1.0, 0.0, 1e3, true)).ok()) return st;
    if (!(st = opt_real("rope.scaling.low_freq_factor", hp.llama3_low_freq_factor, 1.0, 0.0, 1e6, true)).ok())
        return st;
    if (!(st = opt_real("rope.scaling.high_freq_factor", hp.llama3_high_freq_factor, 4.0, 0.0, 1e6, true)).ok())
        return st;
    if (hp.scaling == rope_scaling::llama3 && !(hp.llama3_high_freq_factor > hp.llama3_low_freq_factor))
        return make_error(errc::corrupt, "key '" + p + "rope.scaling.high_freq_factor' must exceed low_freq_factor");
    return {};
}

class tensor_reader {
  public:
    explicit tensor_reader(const gguf_file& f) : f_(f) {}

    // A 2-D weight matrix with ne0 = n_cols (input) and ne1 = n_rows (output).
    status matrix(const std::string& name, int64_t n_cols, int64_t n_rows, kernels::weight_view& out) {
        const gguf_tensor* t = f_.find_tensor(name);
        if (!t) return make_error(errc::corrupt, "tensor '" + name + "' is missing");
        const std::vector<int64_t> want{n_cols, n_rows};
        std::vector<int64_t> got = t->shape;
        while (got.size() > 2 && got.back() == 1) got.pop_back();
        if (got != want)
            return make_error(errc::corrupt, "tensor '" + name + "': expected shape " + shape_str(want) + ", got " +
                                                 shape_str(t->shape));
        const kernels::type_traits tt = kernels::traits_of(t->type);
        if (!tt.supported)
            return make_error(errc::unsupported, "tensor '" + name + "': type " + std::string(tt.name ? tt.name : "?") +
                                                     " is not supported (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)");
        if (n_cols % tt.block_size != 0)
            return make_error(errc::corrupt, "tensor '" + name + "': row length " + std::to_string(n_cols) +
                                                 " is not a multiple of the block size " +
                                                 std::to_string(tt.block_size));
        out.type = t->type;
        out.data = t->data;
        out.n_cols = n_cols;
        out.n_rows = n_rows;
        out.row_bytes = kernels::row_size(t->type, n_cols);
        bytes_by_type_[static_cast<uint32_t>(t->type)] += t->n_bytes;
        ++tensors_by_type_[static_cast<uint32_t>(t->type)];
        return {};
    }

    // A 1-D vector converted to f32.
    status vec(const std::string& name, int64_t n, std::vector<float>& out, bool required = true) {
        const gguf_tensor* t = f_.find_tensor(name);
        if (!t) return required ? make_error(errc::corrupt, "tensor '" + name + "' is missing") : status{};
        if (t->shape.size() != 1 || t->shape[0] != n)
            return make_error(errc::corrupt, "tensor '" + name + "': expected shape [" + std::to_string(n) + "], got " +
                                                 shape_str(t->shape));
        if (t->type != ggml_type::f32 && t->type != ggml_type::f16 && t->type != ggml_type::bf16)
            return make_error(errc::unsupported, "tensor '" + name + "': a vector must be f32, f16 or bf16");
        out.resize(static_cast<size_t>(n));
        kernels::dequantize_row(t->type, t->data, out.data(), n);
        return {};
    }

    ggml_type main_type() const {
        uint32_t best = 0;
        size_t best_n = 0;
        for (auto [t, n] : bytes_by_type_)
            if (n > best_n) best = t, best_n = n;
        return static_cast<ggml_type>(best);
    }

    // "q4_k x24, q6_k x5": matrix tensors per type, the most bytes first.
    std::string mix() const {
        std::vector<std::pair<size_t, uint32_t>> order;
        for (auto [t, n] : bytes_by_type_) order.push_back({n, t});
        std::sort(order.rbegin(), order.rend());
        std::string s;
        for (auto [n, t] : order)
            s += (s.empty() ? "" : ", ") + std::string(kernels::traits_of(static_cast<ggml_type>(t)).name) + " x" +
                 std::to_string(tensors_by_type_.at(t));
        return s;
    }

  private:
    const gguf_file& f_;
    std::map<uint32_t, size_t> bytes_by_type_;  // matrix bytes per type, for weight_type_name()
    std::map<uint32_t, int> tensors_by_type_;   // matrix tensors per type, for weight_mix()
};

}  // namespace

result<std::unique_ptr<model>> model::load(const std::string& path) {
    auto file = gguf_file::open(path);
    if (!file) return file.error();
    std::unique_ptr<model> m(new model());
    m->file_ = std::move(file.value());
    if (status st = m->init(); !st.ok()) return make_error(st.code(), path + ": " + st.message());
    return m;
}

status model::init() {
    const gguf_file& f = *file_;
    if (status st = read_hparams(f, hp_); !st.ok()) return st;

    auto tok = tokenizer::from_gguf(f);
    if (!tok) return tok.error();
    tok_ = std::move(tok.value());
    hp_.n_vocab = tok_->n_vocab();

    if (auto tmpl = f.get_str("tokenizer.chat_template")) {
        auto ct = chat_template::detect(*tmpl);
        // An unknown template is not fatal for plain generation; --chat then uses ChatML.
        if (ct) chat_ = ct.value();
    }

    tensor_reader r(f);
    const int64_t E = hp_.n_embd, V = hp_.n_vocab;
    status st;
    if (!(st = r.matrix("token_embd.weight", E, V, w_.token_embd)).ok()) return st;
    if (!(st = r.vec("output_norm.weight", E, w_.output_norm)).ok()) return st;
    if (f.find_tensor("output.weight")) {
        if (!(st = r.matrix("output.weight", E, V, w_.output)).ok()) return st;
    } else {
        hp_.tied_output = true;
        w_.output = w_.token_embd;
    }
    if (!(st = r.vec("rope_freqs.weight", hp_.n_rot / 2, w_.rope_freqs, false)).ok()) return st;

    w_.layers.resize(static_cast<size_t>(hp_.n_layer));
    const int64_t Q = hp_.q_dim(), KV = hp_.kv_dim(), F = hp_.n_ff;
    for (int il = 0; il < hp_.n_layer; ++il) {
        layer_weights& L = w_.layers[static_cast<size_t>(il)];
        const std::string b = "blk." + std::to_string(il) + ".";
        if (!(st = r.vec(b + "attn_norm.weight", E, L.attn_norm)).ok()) return st;
        if (!(st = r.vec(b + "ffn_norm.weight", E, L.ffn_norm)).ok()) return st;
        if (!(st = r.matrix(b + "attn_q.weight", E, Q, L.wq)).ok()) return st;
        if (!(st = r.matrix(b + "attn_k.weight", E, KV, L.wk)).ok()) return st;
        if (!(st = r.matrix(b + "attn_v.weight", E, KV, L.wv)).ok()) return st;
        if (!(st = r.matrix(b + "attn_output.weight", Q, E, L.wo)).ok()) return st;
        if (!(st = r.matrix(b + "ffn_gate.weight", E, F, L.gate)).ok()) return st;
        if (!(st = r.matrix(b + "ffn_up.weight", E, F, L.up)).ok()) return st;
        if (!(st = r.matrix(b + "ffn_down.weight", F, E, L.down)).ok()) return st;
        if (hp_.qkv_bias) {
            if (!(st = r.vec(b + "attn_q.bias", Q, L.bq)).ok()) return st;
            if (!(st = r.vec(b + "attn_k.bias", KV, L.bk)).ok()) return st;
            if (!(st = r.vec(b + "attn_v.bias", KV, L.bv)).ok()) return st;
        }
    }
    main_type_ = r.main_type();
    weight_mix_ = r.mix();
    for (const gguf_tensor& t : f.tensors()) n_weight_bytes_ += t.n_bytes;

    // Fingerprint: identity of the weights and of the KV format.
    sha256 h;
    const std::string head = "mnemos-kv-v1 kv=f16 arch=" + hp_.arch;
    h.update(head.data(), head.size());
    const float params[] = {static_cast<float>(hp_.n_embd),
                            static_cast<float>(hp_.n_layer),
                            static_cast<float>(hp_.n_head),
                            static_cast<float>(hp_.n_head_kv),
                            static_cast<float>(hp_.head_dim),
                            static_cast<float>(hp_.n_rot),
                            hp_.rope_freq_base,
                            static_cast<float>(hp_.scaling),
                            hp_.rope_scale_factor,
                            static_cast<float>(hp_.rope_orig_ctx),
                            hp_.rms_eps};
    h.update(params, sizeof params);
    for (const gguf_tensor& t : f.tensors()) {
        h.update(t.name.data(), t.name.size());
        const uint32_t ty = static_cast<uint32_t>(t.type);
        h.update(&ty, sizeof ty);
        h.update(t.shape.data(), t.shape.size() * sizeof(int64_t));
        const size_t n = t.n_bytes < 4096 ? t.n_bytes : 4096;
        h.update(t.data, n);
        h.update(static_cast<const uint8_t*>(t.data) + t.n_bytes - n, n);
    }
    fingerprint_.bytes = h.finish();
    return {};
}

const char* model::weight_type_name() const { return kernels::traits_of(main_type_).name; }
const std::string& model::weight_mix() const { return weight_mix_; }

}  // namespace mnemos::engine
