// Key layouts, session records and the pre-open checks of RocksDB's own files
// (CURRENT, MANIFEST, WAL). See memory/src/store_internal.h.
#include "memory/src/store_internal.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory/codec.h"

namespace mnemos::memory::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string be64(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 7; i >= 0; --i) {
        s[size_t(i)] = char(v & 0xff);
        v >>= 8;
    }
    return s;
}

uint64_t read_be64(const char* p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | uint8_t(p[i]);
    return v;
}

std::string event_key(std::string_view id, uint64_t seq) {
    std::string k(id);
    k.push_back('\0');
    k += be64(seq);
    return k;
}

std::string event_prefix(std::string_view id) {
    std::string k(id);
    k.push_back('\0');
    return k;
}

std::string event_prefix_end(std::string_view id) {
    std::string k(id);
    k.push_back('\1');
    return k;
}

std::string meta_to_json_text(const session_meta& m) {
    json j = {{"id", m.id},
              {"character", m.character},
              {"model_fingerprint", m.model_fingerprint},
              {"n_tokens", m.n_tokens},
              {"last_block_hash", m.last_block_hash},
              {"created_ms", m.created_ms},
              {"updated_ms", m.updated_ms},
              {"n_events", m.n_events}};
    if (!m.extra_json.empty()) j["extra"] = json::parse(m.extra_json, nullptr, false);
    return j.dump();
}

result<session_meta> meta_from_json(std::string_view s) {
    json j = json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error(errc::corrupt, "session record is not a JSON object");
    session_meta m;
    try {
        m.id = j.value("id", "");
        m.character = j.value("character", "");
        m.model_fingerprint = j.value("model_fingerprint", "");
        m.n_tokens = j.value("n_tokens", int64_t(0));
        m.last_block_hash = j.value("last_block_hash", "");
        m.created_ms = j.value("created_ms", int64_t(0));
        m.updated_ms = j.value("updated_ms", int64_t(0));
        m.n_events = j.value("n_events", uint64_t(0));
        if (j.contains("extra") && !j["extra"].is_null()) m.extra_json = j["extra"].dump();
    } catch (const std::exception& e) {
        return make_error(errc::corrupt, std::string("session record: ") + e.what());
    }
    return m;
}

namespace {

// RocksDB's log format (db/log_format.h): 32 KiB blocks; a record header is
// masked CRC-32C (4), payload length (2), type (1); recyclable types add the
// log number (4).
constexpr size_t k_block = 32768;
constexpr size_t k_header = 7;
constexpr size_t k_recyclable_header = 11;

uint32_t mask_crc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

bool all_zero(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (p[i] != 0) return false;
    return true;
}

result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(errc::io_error, "cannot read " + path);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return make_error(errc::io_error, "cannot read " + path);
    return data;
}

}  // namespace

status verify_log_file(const std::string& path, bool allow_zero_tail) {
    auto data = read_file(path);
    if (!data) return data.error();
    const std::string name = fs::path(path).filename().string();
    const std::string& d = *data;
    const size_t n = d.size();
    auto bad = [&](size_t off, const std::string& what) {
        return make_error(errc::corrupt, name + " is damaged at offset " + std::to_string(off) + " of " +
                                             std::to_string(n) + ": " + what);
    };
    bool in_fragment = false;
    size_t off = 0;
    while (off < n) {
        const size_t left_in_block = k_block - off % k_block;
        if (left_in_block < k_header) {  // the block's trailer: zero padding
            const size_t m = std::min(left_in_block, n - off);
            if (!all_zero(d.data() + off, m)) return bad(off, "block trailer is not zero");
            off += m;
            continue;
        }
        if (n - off < k_header) return bad(off, "the file ends inside a record header (truncated)");
        const char* p = d.data() + off;
        uint32_t crc;
        uint16_t len;
        std::memcpy(&crc, p, 4);
        std::memcpy(&len, p + 4, 2);
        const uint8_t type = uint8_t(p[6]);
        if (type == 0 && len == 0) {
            if (allow_zero_tail && !in_fragment && all_zero(p, n - off)) break;
            return bad(off, "zeroed record header (RocksDB would skip the rest of the block)");
        }
        const bool recyclable = type >= 5 && type <= 8;
        const size_t hdr = recyclable ? k_recyclable_header : k_header;
        if (n - off < hdr) return bad(off, "the file ends inside a record header (truncated)");
        if (hdr + len > left_in_block) return bad(off, "record length " + std::to_string(len) + " crosses its block");
        if (off + hdr + len > n)
            return bad(off, "the file ends inside a record of " + std::to_string(len) + " bytes (truncated)");
        uint32_t c = crc32c(&type, 1);
        if (recyclable) c = crc32c(p + 7, 4, c);
        c = crc32c(p + hdr, len, c);
        if (mask_crc(c) != crc) return bad(off, "record checksum mismatch");
        const uint8_t base = recyclable ? uint8_t(type - 4) : type;
        switch (base) {
            case 1:  // full
                if (in_fragment) return bad(off, "a fragmented record is not finished");
                break;
            case 2:  // first
                if (in_fragment) return bad(off, "a fragmented record is not finished");
                in_fragment = true;
                break;
            case 3:  // middle
                if (!in_fragment) return bad(off, "a middle fragment without its first");
                break;
            case 4:  // last
                if (!in_fragment) return bad(off, "a last fragment without its first");
                in_fragment = false;
                break;
            case 9:   // compression type (WAL compression)
            case 10:  // user-defined timestamp sizes
                break;
            default:
                return bad(off, "unknown record type " + std::to_string(type));
        }
        off += hdr + len;
    }
    if (in_fragment) return bad(n, "the file ends inside a fragmented record (truncated)");
    return ok_status();
}

status verify_current(const std::string& path, std::string* manifest_out) {
    std::error_code ec;
    const std::string current = path + "/CURRENT";
    if (!fs::exists(current, ec)) return make_error(errc::corrupt, "CURRENT is missing in " + path);
    auto cur = read_file(current);
    if (!cur) return cur.error();
    const std::string& c = *cur;
    bool well_formed = c.size() > 10 && c.size() < 64 && c.starts_with("MANIFEST-") && c.back() == '\n';
    for (size_t i = 9; well_formed && i + 1 < c.size(); ++i) well_formed = c[i] >= '0' && c[i] <= '9';
    if (!well_formed) {
        std::string shown;
        for (char ch : c.substr(0, 40)) {
            if (ch >= 0x20 && ch < 0x7f) {
                shown += ch;
            } else {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(uint8_t(ch)));
                shown += buf;
            }
        }
        return make_error(errc::corrupt, "CURRENT in " + path +
                                             " is damaged: expected 'MANIFEST-<number>' and a newline, found '" +
                                             shown + "' (" + std::to_string(c.size()) + " bytes)");
    }
    const std::string manifest = c.substr(0, c.size() - 1);
    if (!fs::exists(path + "/" + manifest, ec))
        return make_error(errc::corrupt, "CURRENT in " + path + " names " + manifest + ", which does not exist");
    if (manifest_out) *manifest_out = manifest;
    return ok_status();
}

status preflight_database(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return ok_status();
    std::vector<std::string> logs;
    size_t n_rocks_files = 0;
    std::string example;
    for (const auto& e : fs::directory_iterator(path, ec)) {
        const std::string name = e.path().filename().string();
        const bool rocks = name.starts_with("MANIFEST-") || name.ends_with(".sst") || name.ends_with(".log") ||
                           name.ends_with(".blob");
        if (rocks) {
            ++n_rocks_files;
            if (example.empty() || name.starts_with("MANIFEST-")) example = name;
        }
        if (name.ends_with(".log") && name != "LOG" && !name.starts_with("LOG.")) logs.push_back(e.path().string());
    }
    if (ec) return make_error(errc::io_error, "cannot list " + path + ": " + ec.message());
    const std::string current = path + "/CURRENT";
    if (!fs::exists(current, ec)) {
        if (n_rocks_files == 0) return ok_status();  // a new store
        return make_error(errc::corrupt, "CURRENT is missing in " + path + ", which holds " +
                                             std::to_string(n_rocks_files) + " RocksDB files (e.g. " + example +
                                             "): the store is damaged (mnemos store repair recovers a copy)");
    }
    std::string manifest;
    if (auto s = verify_current(path, &manifest); !s.ok()) return s;
    if (auto s = verify_log_file(path + "/" + manifest); !s.ok()) return s;
    for (const auto& l : logs)
        if (auto s = verify_log_file(l); !s.ok()) return s;
    return ok_status();
}

}  // namespace mnemos::memory::detail
