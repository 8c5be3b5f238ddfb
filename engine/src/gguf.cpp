// GGUF v2/v3 reader: see engine/gguf.h. Every read goes through a
// bounds-checked cursor; every count, length, offset and size is checked
// against the bytes that remain before it is used or allocated for.
#include "engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <unordered_set>

namespace mnemos::engine {

namespace {

constexpr uint32_t k_magic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr size_t k_header_bytes = 4 + 4 + 8 + 8;
// Smallest possible metadata entry: key length (8) + value type (4) + a 1-byte value.
constexpr uint64_t k_min_kv_bytes = 8 + 4 + 1;
// Smallest possible tensor info: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t k_min_tensor_info_bytes = 8 + 4 + 8 + 4 + 8;
constexpr uint32_t k_max_dims = 4;
constexpr uint32_t k_max_type = 12;

template <class... Args>
std::string cat(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}

status corrupt(std::string message) { return make_error(errc::corrupt, std::move(message)); }

const char* type_name(uint32_t t) {
    static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t <= k_max_type ? names[t] : "unknown";
}

// Bytes of one element of a fixed-size type; 0 for string and array.
size_t elem_size(gguf_type t) {
    switch (t) {
        case gguf_type::u8:
        case gguf_type::i8:
        case gguf_type::boolean:
            return 1;
        case gguf_type::u16:
        case gguf_type::i16:
            return 2;
        case gguf_type::u32:
        case gguf_type::i32:
        case gguf_type::f32:
            return 4;
        case gguf_type::u64:
        case gguf_type::i64:
        case gguf_type::f64:
            return 8;
        case gguf_type::string:
        case gguf_type::array:
            return 0;
    }
    return 0;
}

bool is_integer(gguf_type t) {
    switch (t) {
        case gguf_type::u8:
        case gguf_type::i8:
        case gguf_type::u16:
        case gguf_type::i16:
        case gguf_type::u32:
        case gguf_type::i32:
        case gguf_type::u64:
        case gguf_type::i64:
        case gguf_type::boolean:
            return true;
        default:
            return false;
    }
}

// Reads a little-endian scalar of type T from unaligned memory (the host is little-endian).
template <class T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// Decodes one fixed-size element at p into the widened fields of `out`.
// Returns false only for a bool byte other than 0 or 1.
bool decode_scalar(gguf_type t, const uint8_t* p, gguf_value& out) {
    out.i = 0;
    out.u = 0;
    out.f = 0;
    auto set_unsigned = [&](uint64_t v) {
        out.u = v;
        out.i = v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? static_cast<int64_t>(v) : 0;
    };
    auto set_signed = [&](int64_t v) {
        out.i = v;
        out.u = v >= 0 ? static_cast<uint64_t>(v) : 0;
    };
    switch (t) {
        case gguf_type::u8:
            set_unsigned(load<uint8_t>(p));
            break;
        case gguf_type::i8:
            set_signed(load<int8_t>(p));
            break;
        case gguf_type::u16:
            set_unsigned(load<uint16_t>(p));
            break;
        case gguf_type::i16:
            set_signed(load<int16_t>(p));
            break;
        case gguf_type::u32:
            set_unsigned(load<uint32_t>(p));
            break;
        case gguf_type::i32:
            set_signed(load<int32_t>(p));
            break;
        case gguf_type::u64:
            set_unsigned(load<uint64_t>(p));
            break;
        case gguf_type::i64:
            set_signed(load<int64_t>(p));
            break;
        case gguf_type::f32:
            out.f = load<float>(p);
            break;
        case gguf_type::f64:
            out.f = load<double>(p);
            break;
        case gguf_type::boolean: {
            const uint8_t b = *p;
            if (b > 1) return false;
            set_unsigned(b);
            break;
        }
        case gguf_type::string:
        case gguf_type::array:
            break;
    }
    return true;
}

// Bounds-checked reader over [base, base + size). A failed read leaves pos unchanged.
class cursor {
  public:
    cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}

    size_t pos() const { return pos_; }
    size_t remaining() const { return size_ - pos_; }
    const uint8_t* here() const { return base_ + pos_; }

    bool skip(uint64_t n) {
        if (n > remaining()) return false;
        pos_ += static_cast<size_t>(n);
        return true;
    }

    template <class T>
    bool read(T& v) {
        if (sizeof(T) > remaining()) return false;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }

  private:
    const uint8_t* base_;
    size_t size_;
    size_t pos_ = 0;
};

// Reads a u64-length-prefixed string; `what` names it in errors ("metadata key 'x'").
status read_string(cursor& c, std::string_view& out, const std::string& what) {
    const size_t at = c.pos();
    uint64_t len = 0;
    if (!c.read(len)) {
        return corrupt(cat(what, ": string length at offset ", at, " runs past end of file (", c.remaining(),
                           " bytes remain, need 8)"));
    }
    if (len > c.remaining()) {
        return corrupt(cat(what, ": string length ", len, " at offset ", at, " runs past end of file (", c.remaining(),
                           " bytes remain)"));
    }
    out = std::string_view(reinterpret_cast<const char*>(c.here()), static_cast<size_t>(len));
    c.skip(len);
    return ok_status();
}

// Reads a value of type `t` (already read and checked to be 0..12) for metadata key `key`.
status read_value(cursor& c, gguf_type t, std::string_view key, gguf_value& out) {
    out.type = t;
    const std::string what = cat("metadata key '", key, "'");
    if (t == gguf_type::string) return read_string(c, out.str, what);
    if (t != gguf_type::array) {
        const size_t n = elem_size(t);
        if (n > c.remaining()) {
            return corrupt(cat(what, ": ", type_name(static_cast<uint32_t>(t)), " value at offset ", c.pos(),
                               " runs past end of file (", c.remaining(), " bytes remain, need ", n, ")"));
        }
        if (!decode_scalar(t, c.here(), out)) {
            return corrupt(cat(what, ": bool value ", int(*c.here()), " at offset ", c.pos(), " is not 0 or 1"));
        }
        c.skip(n);
        return ok_status();
    }

    uint32_t elem = 0;
    uint64_t count = 0;
    if (!c.read(elem) || !c.read(count)) {
        return corrupt(cat(what, ": array header at offset ", c.pos(), " runs past end of file (", c.remaining(),
                           " bytes remain)"));
    }
    if (elem > k_max_type) {
        return corrupt(cat(what, ": array element type ", elem, " is not a GGUF value type (0..", k_max_type, ")"));
    }
    if (elem == static_cast<uint32_t>(gguf_type::array)) {
        return corrupt(cat(what, ": arrays of arrays are not supported"));
    }
    out.elem_type = static_cast<gguf_type>(elem);
    out.n_elems = count;
    if (out.elem_type == gguf_type::string) {
        // Every string needs at least its 8-byte length.
        if (count > c.remaining() / 8) {
            return corrupt(cat(what, ": string array count ", count, " needs at least ", "8 bytes each but only ",
                               c.remaining(), " bytes remain"));
        }
        out.strs.reserve(static_cast<size_t>(count));
        for (uint64_t k = 0; k < count; ++k) {
            std::string_view s;
            status st = read_string(c, s, cat(what, " element ", k, " of ", count));
            if (!st.ok()) return st;
            out.strs.push_back(s);
        }
        return ok_status();
    }
    const size_t n = elem_size(out.elem_type);
    if (count > c.remaining() / n) {
        return corrupt(cat(what, ": array of ", count, " ", type_name(elem), " (", n,
                           " bytes each) runs past end of file (", c.remaining(), " bytes remain at offset ", c.pos(),
                           ")"));
    }
    out.array_data = c.here();
    if (out.elem_type == gguf_type::boolean) {
        for (uint64_t k = 0; k < count; ++k) {
            if (out.array_data[k] > 1) {
                return corrupt(cat(what, ": bool element ", k, " is ", int(out.array_data[k]), ", not 0 or 1"));
            }
        }
    }
    c.skip(count * n);
    return ok_status();
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t limit) { return a != 0 && b > limit / a; }

}  // namespace

int64_t gguf_tensor::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

gguf_file::~gguf_file() {
    if (mapped_ && base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
}

result<std::unique_ptr<gguf_file>> gguf_file::open(const std::string& path) {
    std::unique_ptr<gguf_file> f(new (std::nothrow) gguf_file());
    if (!f) return make_error(errc::out_of_memory, "gguf: cannot allocate reader for '" + path + "'");
    f->path_ = path;

    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        const errc code = (e == ENOENT || e == ENOTDIR) ? errc::not_found : errc::io_error;
        return make_error(code, cat("cannot open '", path, "': ", std::strerror(e)));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error(errc::io_error, cat("cannot stat '", path, "': ", std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return make_error(errc::io_error, cat("'", path, "' is not a regular file"));
    }
    const size_t size = static_cast<size_t>(st.st_size);
    if (size < k_header_bytes) {
        ::close(fd);
        return corrupt(
            cat("'", path, "': file is ", size, " bytes, smaller than the ", k_header_bytes, "-byte GGUF header"));
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) return make_error(errc::io_error, cat("cannot mmap '", path, "': ", std::strerror(e)));
    f->base_ = static_cast<const uint8_t*>(p);
    f->size_ = size;
    f->mapped_ = true;

    status s = f->parse_all();
    if (!s.ok()) return make_error(s.code(), cat("'", path, "': ", s.message()));
    return f;
}

result<std::unique_ptr<gguf_file>> gguf_file::parse(const void* data, size_t size, std::string name) {
    std::unique_ptr<gguf_file> f(new (std::nothrow) gguf_file());
    if (!f) return make_error(errc::out_of_memory, "gguf: cannot allocate reader for '" + name + "'");
    f->path_ = std::move(name);
    if (data == nullptr && size != 0) return make_error(errc::invalid_argument, "gguf: null data with nonzero size");
    // Copy into a buffer whose start is 64-byte aligned, like a mapping would be, so that
    // tensor data is as aligned as `alignment` promises.
    constexpr size_t k_align = 64;
    try {
        f->owned_.resize(size + k_align);
    } catch (const std::bad_alloc&) {
        return make_error(errc::out_of_memory, cat("'", f->path_, "': cannot copy ", size, " bytes"));
    }
    const uintptr_t raw = reinterpret_cast<uintptr_t>(f->owned_.data());
    uint8_t* start = f->owned_.data() + ((k_align - raw % k_align) % k_align);
    if (size != 0) std::memcpy(start, data, size);
    f->base_ = start;
    f->size_ = size;
    status s = f->parse_all();
    if (!s.ok()) return make_error(s.code(), cat("'", f->path_, "': ", s.message()));
    return f;
}

status gguf_file::parse_all() {
    try {
        if (size_ < k_header_bytes) {
            return corrupt(cat("file is ", size_, " bytes, smaller than the ", k_header_bytes, "-byte GGUF header"));
        }
        cursor c(base_, size_);
        uint32_t magic = 0;
        c.read(magic);
        if (magic != k_magic) {
            std::ostringstream hex;
            hex << std::hex << magic;
            return corrupt(cat("bad magic 0x", hex.str(), " (expected \"GGUF\" = 0x46554747)"));
        }
        c.read(version_);
        if (version_ != 2 && version_ != 3) {
            if (version_ == 0x02000000u || version_ == 0x03000000u) {
                return make_error(errc::unsupported, "big-endian GGUF files are not supported");
            }
            return make_error(errc::unsupported,
                              cat("GGUF version ", version_, " is not supported (only versions 2 and 3)"));
        }
        uint64_t n_tensors = 0;
        uint64_t n_kv = 0;
        c.read(n_tensors);
        c.read(n_kv);
        if (n_kv > c.remaining() / k_min_kv_bytes) {
            return corrupt(cat("header: n_kv = ", n_kv, " metadata entries cannot fit in the remaining ", c.remaining(),
                               " bytes (each needs at least ", k_min_kv_bytes, ")"));
        }
        if (n_tensors > c.remaining() / k_min_tensor_info_bytes) {
            return corrupt(cat("header: n_tensors = ", n_tensors, " tensor infos cannot fit in the remaining ",
                               c.remaining(), " bytes (each needs at least ", k_min_tensor_info_bytes, ")"));
        }

        // ---- metadata ----
        kv_.clear();
        kv_.reserve(static_cast<size_t>(n_kv));
        std::unordered_set<std::string_view> keys;
        keys.reserve(static_cast<size_t>(n_kv));
        for (uint64_t k = 0; k < n_kv; ++k) {
            std::string_view key;
            status st = read_string(c, key, cat("metadata entry ", k, " of ", n_kv, " (key)"));
            if (!st.ok()) return st;
            if (!keys.insert(key).second) return corrupt(cat("metadata key '", key, "' appears more than once"));
            uint32_t t = 0;
            if (!c.read(t)) {
                return corrupt(cat("metadata key '", key, "': value type at offset ", c.pos(),
                                   " runs past end of file (", c.remaining(), " bytes remain)"));
            }
            if (t > k_max_type) {
                return corrupt(
                    cat("metadata key '", key, "': value type ", t, " is not a GGUF value type (0..", k_max_type, ")"));
            }
            gguf_value v;
            st = read_value(c, static_cast<gguf_type>(t), key, v);
            if (!st.ok()) return st;
            kv_.emplace_back(std::string(key), std::move(v));
        }

        alignment_ = 32;
        if (const gguf_value* a = find("general.alignment")) {
            if (a->type != gguf_type::u32) {
                return corrupt(cat("metadata key 'general.alignment' has type ",
                                   type_name(static_cast<uint32_t>(a->type)), ", expected u32"));
            }
            if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
                return corrupt(cat("metadata key 'general.alignment' = ", a->u, " is not a nonzero power of two"));
            }
            alignment_ = a->u;
        }

        // ---- tensor infos ----
        tensors_.clear();
        tensors_.reserve(static_cast<size_t>(n_tensors));
        std::unordered_set<std::string_view> names;
        names.reserve(static_cast<size_t>(n_tensors));
        const uint64_t max_i64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        for (uint64_t k = 0; k < n_tensors; ++k) {
            std::string_view name;
            status st = read_string(c, name, cat("tensor info ", k, " of ", n_tensors, " (name)"));
            if (!st.ok()) return st;
            if (name.empty()) return corrupt(cat("tensor info ", k, " of ", n_tensors, " has an empty name"));
            if (!names.insert(name).second) return corrupt(cat("tensor '", name, "' appears more than once"));
            const std::string what = cat("tensor '", name, "'");
            uint32_t n_dims = 0;
            if (!c.read(n_dims)) return corrupt(cat(what, ": n_dims runs past end of file"));
            if (n_dims < 1 || n_dims > k_max_dims) {
                return corrupt(cat(what, ": n_dims = ", n_dims, " is outside 1..", k_max_dims));
            }
            gguf_tensor t;
            t.name = std::string(name);
            t.shape.resize(n_dims);
            uint64_t n_elements = 1;
            for (uint32_t d = 0; d < n_dims; ++d) {
                uint64_t ne = 0;
                if (!c.read(ne)) return corrupt(cat(what, ": dimension ", d, " runs past end of file"));
                if (ne == 0 || ne > max_i64) {
                    return corrupt(
                        cat(what, ": dimension ", d, " = ", static_cast<int64_t>(ne), " is not in 1..", max_i64));
                }
                if (mul_overflows(n_elements, ne, max_i64)) {
                    return corrupt(cat(what, ": element count overflows int64 at dimension ", d, " (", ne, ")"));
                }
                n_elements *= ne;
                t.shape[d] = static_cast<int64_t>(ne);
            }
            uint32_t type = 0;
            if (!c.read(type)) return corrupt(cat(what, ": type runs past end of file"));
            const kernels::type_traits tt = kernels::traits_of(type);
            if (tt.name == nullptr) return corrupt(cat(what, ": unknown ggml tensor type ", type));
            t.type = static_cast<kernels::ggml_type>(type);
            if (t.shape[0] % tt.block_size != 0) {
                return corrupt(cat(what, ": ne0 = ", t.shape[0], " is not a multiple of the ", tt.name, " block size ",
                                   tt.block_size));
            }
            const uint64_t n_blocks = static_cast<uint64_t>(t.shape[0] / tt.block_size);
            const uint64_t n_rows = n_elements / static_cast<uint64_t>(t.shape[0]);
            const uint64_t byte_limit = std::min<uint64_t>(max_i64, std::numeric_limits<size_t>::max());
            if (mul_overflows(n_blocks, static_cast<uint64_t>(tt.type_size), byte_limit) ||
                mul_overflows(n_blocks * static_cast<uint64_t>(tt.type_size), n_rows, byte_limit)) {
                return corrupt(cat(what, ": byte size of ", n_elements, " ", tt.name, " elements overflows"));
            }
            t.n_bytes = static_cast<size_t>(n_blocks * static_cast<uint64_t>(tt.type_size) * n_rows);
            if (!c.read(t.offset)) return corrupt(cat(what, ": offset runs past end of file"));
            tensors_.push_back(std::move(t));
        }

        // ---- data section ----
        const uint64_t info_end = c.pos();
        const uint64_t data_start = (info_end + alignment_ - 1) / alignment_ * alignment_;
        if (!tensors_.empty() && data_start > size_) {
            return corrupt(cat("data section starts at offset ", data_start, ", past end of file (", size_, " bytes)"));
        }
        const uint64_t data_size = data_start <= size_ ? size_ - data_start : 0;
        for (gguf_tensor& t : tensors_) {
            if (t.offset % alignment_ != 0) {
                return corrupt(cat("tensor '", t.name, "': offset ", t.offset, " is not a multiple of the alignment ",
                                   alignment_));
            }
            if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
                return corrupt(cat("tensor '", t.name, "': data [offset ", t.offset, ", ", t.n_bytes,
                                   " bytes) runs past end of file (", size_, " bytes; data section starts at ",
                                   data_start, " and holds ", data_size, " bytes)"));
            }
            t.data = base_ + data_start + t.offset;
        }
        std::vector<const gguf_tensor*> by_offset;
        by_offset.reserve(tensors_.size());
        for (const gguf_tensor& t : tensors_) by_offset.push_back(&t);
        std::sort(by_offset.begin(), by_offset.end(),
                  [](const gguf_tensor* a, const gguf_tensor* b) { return a->offset < b->offset; });
        for (size_t k = 1; k < by_offset.size(); ++k) {
            const gguf_tensor* a = by_offset[k - 1];
            const gguf_tensor* b = by_offset[k];
            if (a->offset + a->n_bytes > b->offset) {
                return corrupt(cat("tensor '", a->name, "' [offset ", a->offset, ", ", a->n_bytes,
                                   " bytes) overlaps tensor '", b->name, "' [offset ", b->offset, ", ", b->n_bytes,
                                   " bytes)"));
            }
        }
        return ok_status();
    } catch (const std::bad_alloc&) {
        return make_error(errc::out_of_memory, "out of memory while parsing GGUF metadata");
    } catch (const std::exception& e) {
        return make_error(errc::internal, cat("unexpected error while parsing GGUF: ", e.what()));
    }
}

// ---------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------

const gguf_value* gguf_file::find(std::string_view key) const {
    for (const auto& kv : kv_) {
        if (kv.first == key) return &kv.second;
    }
    return nullptr;
}

std::optional<std::string_view> gguf_file::get_str(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || v->type != gguf_type::string) return std::nullopt;
    return v->str;
}

std::optional<int64_t> gguf_file::get_int(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || !is_integer(v->type)) return std::nullopt;
    if (v->type == gguf_type::u64 && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return std::nullopt;
    }
    return v->i;
}

std::optional<double> gguf_file::get_float(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->type == gguf_type::f32 || v->type == gguf_type::f64) return v->f;
    if (v->type == gguf_type::u64) return static_cast<double>(v->u);
    if (is_integer(v->type)) return static_cast<double>(v->i);
    return std::nullopt;
}

std::optional<bool> gguf_file::get_bool(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || v->type != gguf_type::boolean) return std::nullopt;
    return v->i != 0;
}

std::optional<std::vector<std::string_view>> gguf_file::get_str_array(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || v->type != gguf_type::array || v->elem_type != gguf_type::string) return std::nullopt;
    return v->strs;
}

std::optional<std::vector<float>> gguf_file::get_float_array(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || v->type != gguf_type::array) return std::nullopt;
    const gguf_type et = v->elem_type;
    if (et != gguf_type::f32 && et != gguf_type::f64 && !is_integer(et)) return std::nullopt;
    const size_t n = elem_size(et);
    std::vector<float> out(static_cast<size_t>(v->n_elems));
    gguf_value e;
    for (size_t k = 0; k < out.size(); ++k) {
        decode_scalar(et, v->array_data + k * n, e);
        if (et == gguf_type::f32 || et == gguf_type::f64) {
            out[k] = static_cast<float>(e.f);
        } else if (et == gguf_type::u64) {
            out[k] = static_cast<float>(e.u);
        } else {
            out[k] = static_cast<float>(e.i);
        }
    }
    return out;
}

std::optional<std::vector<int64_t>> gguf_file::get_int_array(std::string_view key) const {
    const gguf_value* v = find(key);
    if (v == nullptr || v->type != gguf_type::array || !is_integer(v->elem_type)) return std::nullopt;
    const gguf_type et = v->elem_type;
    const size_t n = elem_size(et);
    std::vector<int64_t> out(static_cast<size_t>(v->n_elems));
    gguf_value e;
    for (size_t k = 0; k < out.size(); ++k) {
        decode_scalar(et, v->array_data + k * n, e);
        if (et == gguf_type::u64 && e.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return std::nullopt;
        }
        out[k] = e.i;
    }
    return out;
}

const gguf_tensor* gguf_file::find_tensor(std::string_view name) const {
    for (const gguf_tensor& t : tensors_) {
        if (t.name == name) return &t;
    }
    return nullptr;
}

}  // namespace mnemos::engine
