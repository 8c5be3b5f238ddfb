#pragma once
// GGUF v2/v3 reader. The file is mmap'ed read-only; metadata is parsed and
// every count, length, offset, size and type is validated against the file
// before anything points into it. A truncated or malicious file gives a
// status naming the key or tensor and the bound it broke, never a crash or an
// out-of-bounds read.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "kernels/ggml_types.h"

namespace mnemos::engine {

enum class gguf_type : uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12,
};

// One metadata value. Scalars are widened into i/u/f; strings point into the
// mapping; arrays keep their element type, count and a pointer to the raw
// (validated) element bytes, or for string arrays the list of views.
struct gguf_value {
    gguf_type type = gguf_type::u8;
    gguf_type elem_type = gguf_type::u8;  // arrays only
    uint64_t n_elems = 0;                 // arrays only
    int64_t i = 0;                        // signed integers and bool
    uint64_t u = 0;                       // unsigned integers
    double f = 0;                         // f32 / f64
    std::string_view str;                 // string
    const uint8_t* array_data = nullptr;  // numeric arrays: n_elems packed little-endian elements
    std::vector<std::string_view> strs;   // string arrays
};

struct gguf_tensor {
    std::string name;
    std::vector<int64_t> shape;  // ne0 first (ne0 = elements per row)
    kernels::ggml_type type = kernels::ggml_type::f32;
    uint64_t offset = 0;         // relative to the data section
    size_t n_bytes = 0;          // validated to lie inside the file
    const void* data = nullptr;  // into the mapping
    int64_t n_elements() const;
};

class gguf_file {
  public:
    // Maps and validates `path`. Errors: not_found / io_error (cannot open or
    // map), corrupt (bad magic, truncated, offsets/sizes out of bounds,
    // overlapping or misaligned tensors, unknown value or tensor types, huge
    // counts), unsupported (version other than 2 or 3).
    static result<std::unique_ptr<gguf_file>> open(const std::string& path);
    ~gguf_file();
    gguf_file(const gguf_file&) = delete;
    gguf_file& operator=(const gguf_file&) = delete;

    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    size_t file_size() const { return size_; }
    const std::string& path() const { return path_; }

    const gguf_value* find(std::string_view key) const;
    const std::vector<std::pair<std::string, gguf_value>>& metadata() const { return kv_; }

    // Typed getters: nullopt when the key is missing or has another type.
    // get_int accepts any integer type (and bool); get_float accepts f32/f64
    // and integers.
    std::optional<std::string_view> get_str(std::string_view key) const;
    std::optional<int64_t> get_int(std::string_view key) const;
    std::optional<double> get_float(std::string_view key) const;
    std::optional<bool> get_bool(std::string_view key) const;
    std::optional<std::vector<std::string_view>> get_str_array(std::string_view key) const;
    std::optional<std::vector<float>> get_float_array(std::string_view key) const;
    std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

    const gguf_tensor* find_tensor(std::string_view name) const;
    const std::vector<gguf_tensor>& tensors() const { return tensors_; }

    // Parses an in-memory image (tests, fuzzing); the bytes are copied.
    static result<std::unique_ptr<gguf_file>> parse(const void* data, size_t size, std::string name = "<memory>");

  private:
    gguf_file() = default;
    status parse_all();

    std::string path_;
    const uint8_t* base_ = nullptr;  // the mapping (or owned_ copy)
    size_t size_ = 0;
    bool mapped_ = false;         // munmap in the destructor
    std::vector<uint8_t> owned_;  // parse(): our own copy
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    std::vector<std::pair<std::string, gguf_value>> kv_;
    std::vector<gguf_tensor> tensors_;
};

}  // namespace mnemos::engine
