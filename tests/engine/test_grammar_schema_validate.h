#pragma once
// An independent JSON Schema validator for the keywords the grammar enforces (bounds, multipleOf,
// pattern via std::wregex ECMAScript, formats checked by hand, oneOf as exactly one, allOf, $ref, ...),
// used to check documents produced under the grammar. Written from the specification, not from the
// grammar's code.
#include <cmath>
#include <regex>
#include <string>

#include "engine/src/grammar_json.h"

namespace mnemos::engine::test {

inline std::wstring widen(const std::string& s) {
    std::wstring o;
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        const int n = b < 0x80 ? 0 : b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
        uint32_t cp = n == 0 ? b : (b & (0x3F >> n));
        for (int k = 1; k <= n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
        o += static_cast<wchar_t>(cp);
        i += static_cast<size_t>(n) + 1;
    }
    return o;
}

inline bool re(const std::string& s, const char* pattern) { return std::regex_match(s, std::regex(pattern)); }

inline bool valid_date(const std::string& s) {
    if (!re(s, R"(\d{4}-\d{2}-\d{2})")) return false;
    const int y = std::stoi(s.substr(0, 4)), m = std::stoi(s.substr(5, 2)), d = std::stoi(s.substr(8, 2));
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m >= 1 && m <= 12 && d >= 1 && d <= days[m - 1] + (m == 2 && leap);
}

inline bool valid_time(const std::string& s) {
    std::smatch m;
    if (!std::regex_match(s, m, std::regex(R"((\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2})))")))
        return false;
    if (std::stoi(m[1]) > 23 || std::stoi(m[2]) > 59 || std::stoi(m[3]) > 60) return false;
    return !m[6].matched || (std::stoi(m[6]) <= 23 && std::stoi(m[7]) <= 59);
}

inline bool valid_ipv4(const std::string& s) {
    if (!re(s, R"((\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}))")) return false;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find('.', i);
        if (j == std::string::npos) j = s.size();
        const std::string part = s.substr(i, j - i);
        if ((part.size() > 1 && part[0] == '0') || std::stoi(part) > 255) return false;
        i = j + 1;
    }
    return true;
}

inline bool valid_format(const std::string& f, const std::string& s) {
    if (f == "date") return valid_date(s);
    if (f == "time") return valid_time(s);
    if (f == "date-time") {
        const size_t t = s.find_first_of("Tt");
        return t == 10 && valid_date(s.substr(0, 10)) && valid_time(s.substr(11));
    }
    if (f == "uuid") return re(s, "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    if (f == "email") return re(s, R"([^@\s".]+(\.[^@\s".]+)*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,})");
    if (f == "ipv4") return valid_ipv4(s);
    if (f == "uri") return re(s, R"([A-Za-z][A-Za-z0-9+.-]*:[^\s"<>\\^`{|}]*)");
    return true;  // another format is an annotation (JSON Schema 2020-12): the grammar takes it only beside a pattern
}

// JSON equality: objects compare as sets of members, numbers by value.
inline bool json_equal(const json_value& a, const json_value& b) {
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case json_value::k_number:
            return a.number == b.number;
        case json_value::k_array:
            if (a.array.size() != b.array.size()) return false;
            for (size_t i = 0; i < a.array.size(); ++i)
                if (!json_equal(a.array[i], b.array[i])) return false;
            return true;
        case json_value::k_object:
            if (a.object.size() != b.object.size()) return false;
            for (const auto& [k, v] : a.object)
                if (!b.find(k) || !json_equal(v, *b.find(k))) return false;
            return true;
        default:
            return a.dump() == b.dump();
    }
}

struct validator {
    const json_value& root;
    int depth = 0;

    const json_value* resolve(const std::string& ref) const {
        const json_value* cur = &root;
        size_t i = 1;
        while (cur && i < ref.size()) {
            size_t j = ref.find('/', i + 1);
            if (j == std::string::npos) j = ref.size();
            cur = cur->find(ref.substr(i + 1, j - i - 1));
            i = j;
        }
        return cur;
    }

    static bool is_type(const json_value& v, const std::string& t) {
        if (t == "integer") return v.kind == json_value::k_number && v.number == std::floor(v.number);
        if (t == "number") return v.kind == json_value::k_number;
        if (t == "string") return v.kind == json_value::k_string;
        if (t == "boolean") return v.kind == json_value::k_bool;
        if (t == "null") return v.kind == json_value::k_null;
        if (t == "array") return v.kind == json_value::k_array;
        if (t == "object") return v.kind == json_value::k_object;
        return false;
    }

    bool combinators(const json_value& v, const json_value& s) {
        if (const json_value* r = s.find("$ref")) {
            const json_value* t = resolve(r->str);
            if (!t || !ok(v, *t)) return false;
        }
        if (const json_value* a = s.find("allOf"))
            for (const auto& x : a->array)
                if (!ok(v, x)) return false;
        if (const json_value* a = s.find("anyOf")) {
            bool any = false;
            for (const auto& x : a->array) any = any || ok(v, x);
            if (!any) return false;
        }
        if (const json_value* a = s.find("oneOf")) {
            int n = 0;
            for (const auto& x : a->array) n += ok(v, x);
            if (n != 1) return false;
        }
        return true;
    }

    bool scalars(const json_value& v, const json_value& s) {
        const auto num = [&](const char* k) { return s.find(k) ? s.find(k)->number : NAN; };
        if (v.kind == json_value::k_number) {
            const double x = v.number;
            if (x < num("minimum") || x > num("maximum") || x <= num("exclusiveMinimum") ||
                x >= num("exclusiveMaximum"))
                return false;
            if (s.find("multipleOf") && std::fmod(x, num("multipleOf")) != 0) return false;
        }
        if (v.kind == json_value::k_string) {
            const std::wstring w = widen(v.str);
            if (w.size() < num("minLength") || w.size() > num("maxLength")) return false;
            if (const json_value* p = s.find("pattern"))
                if (!std::regex_search(w, std::wregex(widen(p->str), std::regex::ECMAScript))) return false;
            if (const json_value* f = s.find("format"))
                if (!valid_format(f->str, v.str)) return false;
        }
        return true;
    }

    bool arrays(const json_value& v, const json_value& s) {
        if (v.kind != json_value::k_array) return true;
        const double n = static_cast<double>(v.array.size());
        if (s.find("minItems") && n < s.find("minItems")->number) return false;
        if (s.find("maxItems") && n > s.find("maxItems")->number) return false;
        size_t start = 0;
        if (const json_value* p = s.find("prefixItems"))
            for (; start < p->array.size() && start < v.array.size(); ++start)
                if (!ok(v.array[start], p->array[start])) return false;
        if (const json_value* it = s.find("items"))
            for (size_t i = start; i < v.array.size(); ++i)
                if (!ok(v.array[i], *it)) return false;
        return true;
    }

    bool objects(const json_value& v, const json_value& s) {
        if (v.kind != json_value::k_object) return true;
        const double n = static_cast<double>(v.object.size());
        if (s.find("minProperties") && n < s.find("minProperties")->number) return false;
        if (s.find("maxProperties") && n > s.find("maxProperties")->number) return false;
        const json_value* props = s.find("properties");
        const json_value* ap = s.find("additionalProperties");
        for (size_t i = 0; i < v.object.size(); ++i) {
            const auto& [k, x] = v.object[i];
            for (size_t j = 0; j < i; ++j)
                if (v.object[j].first == k) return false;  // duplicate key
            json_value key;
            key.kind = json_value::k_string;
            key.str = k;
            if (const json_value* pn = s.find("propertyNames"); pn && !ok(key, *pn)) return false;
            const json_value* ps = props ? props->find(k) : nullptr;
            if (ps && !ok(x, *ps)) return false;
            if (!ps && ap && !ok(x, *ap)) return false;
        }
        if (const json_value* req = s.find("required"))
            for (const auto& r : req->array)
                if (!v.find(r.str)) return false;
        return true;
    }

    bool ok(const json_value& v, const json_value& s) {
        if (s.kind == json_value::k_bool) return s.boolean;
        if (++depth > 64) return false;
        struct leave {
            int& d;
            ~leave() { --d; }
        } l{depth};
        if (const json_value* c = s.find("const"); c && !json_equal(*c, v)) return false;
        if (const json_value* e = s.find("enum")) {
            bool any = false;
            for (const auto& x : e->array) any = any || json_equal(x, v);
            if (!any) return false;
        }
        if (const json_value* t = s.find("type")) {
            bool any = t->kind == json_value::k_string && is_type(v, t->str);
            for (const auto& x : t->array) any = any || is_type(v, x.str);
            if (!any) return false;
        }
        return combinators(v, s) && scalars(v, s) && arrays(v, s) && objects(v, s);
    }
};

// The document is JSON and valid under the schema (both as text).
inline bool valid_json(const std::string& doc, const std::string& schema) {
    json_value v, s;
    std::string err;
    if (!json_value::parse(doc, v, err) || !json_value::parse(schema, s, err)) return false;
    validator val{s};
    return val.ok(v, s);
}

}  // namespace mnemos::engine::test
