#pragma once
// mnemos::status and mnemos::result<T>: the error values used at every public
// boundary (C++20 has no std::expected). Expected failures are values;
// exceptions never cross a component's edge.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mnemos {

enum class errc {
    ok = 0,
    invalid_argument,  // the caller passed something malformed
    not_found,         // a file, key, tensor, session that does not exist
    io_error,          // the OS refused (open, mmap, read, write)
    corrupt,           // data failed validation (bad magic, offsets, checksum)
    unsupported,       // valid but not implemented (architecture, tensor type)
    out_of_memory,     // a pool or allocation is full
    cancelled,         // the operation was cancelled by its owner
    internal,          // a bug
    busy,              // the target is in use by another operation; retry later
    already_exists,    // a create found its key taken (session id, game id)
    timed_out,         // a deadline passed before the operation finished
    unavailable,       // a dependency (store, engine, peer) cannot serve now
    context_exceeded,  // the prompt and its reply do not fit the model's window
};

const char* errc_name(errc c);

class status {
  public:
    status() = default;
    status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

    bool ok() const { return code_ == errc::ok; }
    errc code() const { return code_; }
    const std::string& message() const { return message_; }
    // "corrupt: tensor 'blk.0.attn_q.weight' ..." for logs and CLI errors.
    std::string to_string() const { return ok() ? "ok" : std::string(errc_name(code_)) + ": " + message_; }

  private:
    errc code_ = errc::ok;
    std::string message_;  // what failed and the bound it broke
};

inline status ok_status() { return {}; }
inline status make_error(errc code, std::string message) { return status(code, std::move(message)); }
// A request or file that is wrong: invalid_argument with a message naming the field and the rule it breaks.
inline status invalid_argument(std::string message) { return make_error(errc::invalid_argument, std::move(message)); }

// Holds either a T or a non-ok status.
template <class T>
class result {
  public:
    result(T value) : v_(std::move(value)) {}
    result(status error) : v_(std::move(error)) { assert(!std::get<status>(v_).ok()); }

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    // The error; only valid when !ok().
    const status& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, status> v_;
};

inline const char* errc_name(errc c) {
    switch (c) {
        case errc::ok:
            return "ok";
        case errc::invalid_argument:
            return "invalid argument";
        case errc::not_found:
            return "not found";
        case errc::io_error:
            return "io error";
        case errc::corrupt:
            return "corrupt";
        case errc::unsupported:
            return "unsupported";
        case errc::out_of_memory:
            return "out of memory";
        case errc::cancelled:
            return "cancelled";
        case errc::internal:
            return "internal error";
        case errc::busy:
            return "busy";
        case errc::already_exists:
            return "already exists";
        case errc::timed_out:
            return "timed out";
        case errc::unavailable:
            return "unavailable";
        case errc::context_exceeded:
            return "context exceeded";
    }
    return "unknown";
}

}  // namespace mnemos
