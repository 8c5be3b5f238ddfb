// Tiny JSON reader for grammar schemas. See grammar_json.h.
#include "engine/src/grammar_json.h"

#include <cstdlib>

namespace mnemos::engine {

std::string encode_json_string(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

json_value::json_value() = default;
json_value::json_value(const json_value&) = default;
json_value::json_value(json_value&&) noexcept = default;
json_value& json_value::operator=(const json_value&) = default;
json_value& json_value::operator=(json_value&&) noexcept = default;
json_value::~json_value() = default;

const json_value* json_value::find(std::string_view key) const {
    const json_value* r = nullptr;
    if (kind != k_object) return r;
    for (const auto& [k, v] : object)
        if (k == key) r = &v;
    return r;
}

std::string json_value::dump() const {
    switch (kind) {
        case k_null:
            return "null";
        case k_bool:
            return boolean ? "true" : "false";
        case k_number:
            return str;
        case k_string:
            return encode_json_string(str);
        case k_array: {
            std::string o = "[";
            for (size_t i = 0; i < array.size(); ++i) o += (i ? "," : "") + array[i].dump();
            return o + "]";
        }
        case k_object: {
            std::string o = "{";
            for (size_t i = 0; i < object.size(); ++i)
                o += (i ? "," : "") + encode_json_string(object[i].first) + ":" + object[i].second.dump();
            return o + "}";
        }
    }
    return "null";
}

namespace {

struct reader {
    std::string_view t;
    size_t i = 0;
    std::string err;

    bool fail(const std::string& what) {
        if (err.empty()) err = "at byte " + std::to_string(i) + ": " + what;
        return false;
    }
    void ws() {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    }
    bool lit(std::string_view w) {
        if (t.substr(i, w.size()) != w) return fail("invalid literal");
        i += w.size();
        return true;
    }
    static void put_utf8(std::string& o, uint32_t cp) {
        if (cp < 0x80) {
            o += static_cast<char>(cp);
        } else if (cp < 0x800) {
            o += static_cast<char>(0xC0 | (cp >> 6));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            o += static_cast<char>(0xE0 | (cp >> 12));
            o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            o += static_cast<char>(0xF0 | (cp >> 18));
            o += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    bool hex4(uint32_t& v) {
        if (i + 4 > t.size()) return fail("truncated \\u escape");
        v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = t[i++];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= static_cast<uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= static_cast<uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                v |= static_cast<uint32_t>(c - 'A' + 10);
            else
                return fail("bad \\u escape");
        }
        return true;
    }
    bool string(std::string& o) {
        ++i;  // '"'
        while (true) {
            if (i >= t.size()) return fail("unterminated string");
            const char c = t[i++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
            if (c != '\\') {
                o += c;
                continue;
            }
            if (i >= t.size()) return fail("unterminated escape");
            const char e = t[i++];
            switch (e) {
                case '"':
                    o += '"';
                    break;
                case '\\':
                    o += '\\';
                    break;
                case '/':
                    o += '/';
                    break;
                case 'b':
                    o += '\b';
                    break;
                case 'f':
                    o += '\f';
                    break;
                case 'n':
                    o += '\n';
                    break;
                case 'r':
                    o += '\r';
                    break;
                case 't':
                    o += '\t';
                    break;
                case 'u': {
                    uint32_t v = 0;
                    if (!hex4(v)) return false;
                    if (v >= 0xD800 && v < 0xDC00 && t.substr(i, 2) == "\\u") {
                        i += 2;
                        uint32_t lo = 0;
                        if (!hex4(lo)) return false;
                        if (lo < 0xDC00 || lo > 0xDFFF) return fail("bad surrogate pair");
                        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    }
                    put_utf8(o, v);
                    break;
                }
                default:
                    return fail("bad escape");
            }
        }
    }
    bool value(json_value& v, int depth) {
        if (depth > 128) return fail("nested too deeply");
        ws();
        if (i >= t.size()) return fail("unexpected end");
        const char c = t[i];
        if (c == '{') {
            v.kind = json_value::k_object;
            ++i;
            ws();
            if (i < t.size() && t[i] == '}') return ++i, true;
            while (true) {
                ws();
                if (i >= t.size() || t[i] != '"') return fail("expected a key");
                std::string k;
                if (!string(k)) return false;
                ws();
                if (i >= t.size() || t[i] != ':') return fail("expected ':'");
                ++i;
                json_value m;
                if (!value(m, depth + 1)) return false;
                v.object.emplace_back(std::move(k), std::move(m));
                ws();
                if (i < t.size() && t[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < t.size() && t[i] == '}') return ++i, true;
                return fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.kind = json_value::k_array;
            ++i;
            ws();
            if (i < t.size() && t[i] == ']') return ++i, true;
            while (true) {
                json_value m;
                if (!value(m, depth + 1)) return false;
                v.array.push_back(std::move(m));
                ws();
                if (i < t.size() && t[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < t.size() && t[i] == ']') return ++i, true;
                return fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.kind = json_value::k_string;
            return string(v.str);
        }
        if (c == 't') return v.kind = json_value::k_bool, v.boolean = true, lit("true");
        if (c == 'f') return v.kind = json_value::k_bool, v.boolean = false, lit("false");
        if (c == 'n') return v.kind = json_value::k_null, lit("null");
        if (c == '-' || (c >= '0' && c <= '9')) {
            const size_t b = i;
            if (t[i] == '-') ++i;
            const auto digits = [&]() {
                const size_t s = i;
                while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
                return i > s;
            };
            if (!digits()) return fail("bad number");
            if (i < t.size() && t[i] == '.') {
                ++i;
                if (!digits()) return fail("bad number");
            }
            if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
                ++i;
                if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
                if (!digits()) return fail("bad number");
            }
            v.kind = json_value::k_number;
            v.str = std::string(t.substr(b, i - b));
            v.number = std::strtod(v.str.c_str(), nullptr);
            return true;
        }
        return fail("unexpected character");
    }
};

}  // namespace

bool json_value::parse(std::string_view text, json_value& out, std::string& err) {
    reader r{text, 0, {}};
    out = json_value{};
    if (!r.value(out, 0)) {
        err = r.err;
        return false;
    }
    r.ws();
    if (r.i != text.size()) {
        err = "at byte " + std::to_string(r.i) + ": trailing characters";
        return false;
    }
    return true;
}

}  // namespace mnemos::engine
