#pragma once
// Header-only GGUF v3 writer for tests: builds a file in memory, metadata in
// the order added, tensors in the order added, each tensor's data padded to
// the alignment (32, or general.alignment when added as u32). It writes what
// it is told, duplicates and mismatched sizes included, so tests can also
// craft broken files on purpose.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/ggml_types.h"

namespace mnemos::test {

class gguf_writer {
  public:
    // GGUF value type numbers (same as engine::gguf_type).
    enum value_type : uint32_t {
        t_u8 = 0,
        t_i8 = 1,
        t_u16 = 2,
        t_i16 = 3,
        t_u32 = 4,
        t_i32 = 5,
        t_f32 = 6,
        t_bool = 7,
        t_string = 8,
        t_array = 9,
        t_u64 = 10,
        t_i64 = 11,
        t_f64 = 12,
    };

    // Header version field; the layout written is the same for 2 and 3.
    void set_version(uint32_t v) { version_ = v; }

    void add_u8(const std::string& key, uint8_t v) { scalar(key, t_u8, v); }
    void add_i8(const std::string& key, int8_t v) { scalar(key, t_i8, v); }
    void add_u16(const std::string& key, uint16_t v) { scalar(key, t_u16, v); }
    void add_i16(const std::string& key, int16_t v) { scalar(key, t_i16, v); }
    void add_u32(const std::string& key, uint32_t v) {
        if (key == "general.alignment") alignment_ = v;
        scalar(key, t_u32, v);
    }
    void add_i32(const std::string& key, int32_t v) { scalar(key, t_i32, v); }
    void add_f32(const std::string& key, float v) { scalar(key, t_f32, v); }
    void add_bool(const std::string& key, bool v) { scalar(key, t_bool, static_cast<uint8_t>(v ? 1 : 0)); }
    void add_u64(const std::string& key, uint64_t v) { scalar(key, t_u64, v); }
    void add_i64(const std::string& key, int64_t v) { scalar(key, t_i64, v); }
    void add_f64(const std::string& key, double v) { scalar(key, t_f64, v); }
    void add_string(const std::string& key, const std::string& v) {
        begin_kv(key, t_string);
        put_str(kv_, v);
    }

    void add_string_array(const std::string& key, const std::vector<std::string>& v) {
        begin_kv(key, t_array);
        put(kv_, static_cast<uint32_t>(t_string));
        put(kv_, static_cast<uint64_t>(v.size()));
        for (const std::string& s : v) put_str(kv_, s);
    }
    void add_f32_array(const std::string& key, const std::vector<float>& v) { array(key, t_f32, v); }
    void add_i32_array(const std::string& key, const std::vector<int32_t>& v) { array(key, t_i32, v); }
    void add_u32_array(const std::string& key, const std::vector<uint32_t>& v) { array(key, t_u32, v); }
    void add_i64_array(const std::string& key, const std::vector<int64_t>& v) { array(key, t_i64, v); }
    void add_f64_array(const std::string& key, const std::vector<double>& v) { array(key, t_f64, v); }
    void add_u8_array(const std::string& key, const std::vector<uint8_t>& v) { array(key, t_u8, v); }
    // An array of `n_elems` elements of type `elem` given as raw little-endian bytes (not checked).
    void add_raw_array(const std::string& key, uint32_t elem, uint64_t n_elems, const std::vector<uint8_t>& raw) {
        begin_kv(key, t_array);
        put(kv_, elem);
        put(kv_, n_elems);
        kv_.insert(kv_.end(), raw.begin(), raw.end());
    }

    // A tensor of shape `shape` (ne0 first) whose data is `raw_bytes` as stored in the file.
    void add_tensor(const std::string& name, kernels::ggml_type type, std::vector<int64_t> shape,
                    std::vector<uint8_t> raw_bytes) {
        tensors_.push_back({name, type, std::move(shape), std::move(raw_bytes)});
    }
    // An f32 tensor from values.
    void add_tensor_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
        std::vector<uint8_t> raw(values.size() * sizeof(float));
        if (!raw.empty()) std::memcpy(raw.data(), values.data(), raw.size());
        add_tensor(name, kernels::ggml_type::f32, std::move(shape), std::move(raw));
    }

    uint64_t alignment() const { return alignment_ == 0 ? 32 : alignment_; }
    size_t n_kv() const { return n_kv_; }
    size_t n_tensors() const { return tensors_.size(); }

    // The whole file.
    std::vector<uint8_t> bytes() const {
        const uint64_t align = alignment();
        std::vector<uint8_t> out;
        put(out, static_cast<uint32_t>(0x46554747));  // "GGUF"
        put(out, version_);
        put(out, static_cast<uint64_t>(tensors_.size()));
        put(out, static_cast<uint64_t>(n_kv_));
        out.insert(out.end(), kv_.begin(), kv_.end());
        uint64_t offset = 0;
        for (const tensor& t : tensors_) {
            put_str(out, t.name);
            put(out, static_cast<uint32_t>(t.shape.size()));
            for (int64_t d : t.shape) put(out, static_cast<uint64_t>(d));
            put(out, static_cast<uint32_t>(t.type));
            put(out, offset);
            offset += pad_to(t.data.size(), align);
        }
        out.resize(pad_to(out.size(), align), 0);
        for (const tensor& t : tensors_) {
            out.insert(out.end(), t.data.begin(), t.data.end());
            out.resize(pad_to(out.size(), align), 0);
        }
        return out;
    }

    // Writes bytes() to `path`; false when the file cannot be written.
    bool write(const std::string& path) const {
        const std::vector<uint8_t> b = bytes();
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (f == nullptr) return false;
        const bool ok = std::fwrite(b.data(), 1, b.size(), f) == b.size();
        return std::fclose(f) == 0 && ok;
    }

  private:
    struct tensor {
        std::string name;
        kernels::ggml_type type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };

    static size_t pad_to(size_t n, uint64_t align) { return static_cast<size_t>((n + align - 1) / align * align); }

    template <class T>
    static void put(std::vector<uint8_t>& out, const T& v) {
        const size_t at = out.size();
        out.resize(at + sizeof(T));
        std::memcpy(out.data() + at, &v, sizeof(T));
    }
    static void put_str(std::vector<uint8_t>& out, const std::string& s) {
        put(out, static_cast<uint64_t>(s.size()));
        out.insert(out.end(), s.begin(), s.end());
    }

    void begin_kv(const std::string& key, uint32_t type) {
        put_str(kv_, key);
        put(kv_, type);
        ++n_kv_;
    }
    template <class T>
    void scalar(const std::string& key, uint32_t type, T v) {
        begin_kv(key, type);
        put(kv_, v);
    }
    template <class T>
    void array(const std::string& key, uint32_t elem, const std::vector<T>& v) {
        begin_kv(key, t_array);
        put(kv_, elem);
        put(kv_, static_cast<uint64_t>(v.size()));
        for (const T& x : v) put(kv_, x);
    }

    uint32_t version_ = 3;
    uint32_t alignment_ = 0;  // 0: default 32
    size_t n_kv_ = 0;
    std::vector<uint8_t> kv_;  // serialized metadata entries
    std::vector<tensor> tensors_;
};

}  // namespace mnemos::test
