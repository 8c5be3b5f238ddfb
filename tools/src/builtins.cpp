// Built-in tools. See tools/builtins.h.
#include "tools/builtins.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <optional>
#include <random>
#include <set>

namespace mnemos::tools {

using nlohmann::json;
using sys_clock = std::chrono::system_clock;

// ---- roll_dice -------------------------------------------------------------------------------------------

result<dice_roll> parse_dice(std::string_view s) {
    const auto bad = [&](const std::string& why) {
        return make_error(errc::invalid_argument, "dice notation '" + std::string(s) + "': " + why);
    };
    size_t i = 0;
    const auto number = [&](int64_t& out) {
        const size_t b = i;
        out = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - b < 6)
            out = out * 10 + (s[i++] - '0');
        return i > b;
    };
    dice_roll d;
    int64_t n = 1, m = 0, k = 0;
    if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && !number(n)) return bad("bad count");
    if (i >= s.size() || (s[i] != 'd' && s[i] != 'D')) return bad("expected NdM[+K]");
    ++i;
    if (!number(m)) return bad("expected the number of sides after 'd'");
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        const bool neg = s[i++] == '-';
        if (!number(k)) return bad("expected a modifier after the sign");
        if (neg) k = -k;
    }
    if (i != s.size()) return bad("unexpected '" + std::string(1, s[i]) + "'");
    if (n < 1 || n > 100) return bad("count must be 1..100");
    if (m < 2 || m > 1000) return bad("sides must be 2..1000");
    if (k < -1000 || k > 1000) return bad("modifier must be -1000..1000");
    d.n = static_cast<int32_t>(n);
    d.sides = static_cast<int32_t>(m);
    d.modifier = static_cast<int32_t>(k);
    return d;
}

tool make_roll_dice_tool(uint64_t seed) {
    struct state {
        std::mutex mu;
        std::mt19937_64 rng;
    };
    auto st = std::make_shared<state>();
    st->rng.seed(seed);
    tool t;
    t.name = "roll_dice";
    t.description = "Roll dice in NdM+K notation (e.g. 2d6+3, d20, 4d8-1) and return each roll and the total.";
    t.parameters = json::parse(R"({"type":"object","properties":{"notation":{"type":"string","maxLength":32,
        "description":"dice to roll: [N]dM[+K|-K]"}},"required":["notation"]})");
    t.handler = [st](const json& args, tool_done done) {
        const std::string notation = args.at("notation").get<std::string>();
        auto d = parse_dice(notation);
        if (!d) return done(d.error());
        json rolls = json::array();
        int64_t total = d->modifier;
        {
            std::lock_guard<std::mutex> lock(st->mu);
            for (int32_t i = 0; i < d->n; ++i) {
                // Uniform in [1, sides] without modulo bias (same on every platform).
                const uint64_t range = static_cast<uint64_t>(d->sides);
                const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
                uint64_t x;
                do x = st->rng();
                while (x >= limit);
                const int64_t r = static_cast<int64_t>(x % range) + 1;
                rolls.push_back(r);
                total += r;
            }
        }
        done(json{{"notation", notation}, {"rolls", rolls}, {"modifier", d->modifier}, {"total", total}});
    };
    return t;
}

// ---- clock -----------------------------------------------------------------------------------------------

std::string format_iso8601(sys_clock::time_point t) {
    const std::time_t tt = sys_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(t));
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

result<sys_clock::time_point> parse_iso8601(std::string_view s) {
    const auto bad = [&]() {
        return make_error(errc::invalid_argument,
                          "time '" + std::string(s) + "' is not ISO-8601 (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])");
    };
    if (!s.empty() && s.back() == 'Z') s.remove_suffix(1);
    const auto num = [&](size_t pos, size_t len, int& out) {
        if (pos + len > s.size()) return false;
        out = 0;
        for (size_t i = pos; i < pos + len; ++i) {
            if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!num(0, 4, y) || s.size() < 10 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d)) return bad();
    if (s.size() > 10) {
        if ((s[10] != 'T' && s[10] != ' ') || !num(11, 2, h) || s.size() < 16 || s[13] != ':' || !num(14, 2, mi))
            return bad();
        if (s.size() > 16 && (s.size() != 19 || s[16] != ':' || !num(17, 2, se))) return bad();
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
    // Days from civil (Howard Hinnant's algorithm), UTC.
    const int yy = y - (mo <= 2);
    const int era = (yy >= 0 ? yy : yy - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(yy - era * 400);
    const unsigned doy = (153 * static_cast<unsigned>(mo + (mo > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
    const int64_t secs = days * 86400 + h * 3600 + mi * 60 + se;
    // system_clock counts nanoseconds in 64 bits (libstdc++): about 1677-09-22 to 2262-04-11. Outside that the
    // conversion overflowed (undefined; "1420-05-01" became 2004-11-18).
    constexpr int64_t k_max_secs = std::chrono::duration_cast<std::chrono::seconds>(sys_clock::duration::max()).count();
    if (secs >= k_max_secs || secs <= -k_max_secs)
        return make_error(errc::invalid_argument,
                          "time '" + std::string(s) + "' is outside the system clock's range (years 1678 to 2261)");
    return sys_clock::time_point(std::chrono::seconds(secs));
}

tool make_clock_tool(time_source now) {
    if (!now) now = [] { return sys_clock::now(); };
    tool t;
    t.name = "clock";
    t.description = "Get the current date and time (UTC, ISO-8601).";
    t.parameters = json{{"type", "object"}, {"properties", json::object()}};
    t.handler = [now](const json&, tool_done done) {
        const auto tp = now();
        done(json{{"now", format_iso8601(tp)},
                  {"unix", std::chrono::duration_cast<std::chrono::seconds>(tp.time_since_epoch()).count()}});
    };
    return t;
}

// ---- note ------------------------------------------------------------------------------------------------

result<int64_t> memory_notes_store::pin(const std::string& session, const std::string& text,
                                        sys_clock::time_point time) {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t id = 0;
    for (const auto& [s, n] : notes_)
        if (s == session) id = std::max(id, n.id);
    notes_.push_back({session, pinned_note{id + 1, text, time}});
    return id + 1;
}

result<std::vector<pinned_note>> memory_notes_store::list(const std::string& session) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<pinned_note> out;
    for (const auto& [s, n] : notes_)
        if (s == session) out.push_back(n);
    return out;
}

tool make_note_tool(std::shared_ptr<notes_store_i> store, std::string session, time_source now) {
    if (!now) now = [] { return sys_clock::now(); };
    tool t;
    t.name = "note";
    t.description = "Pin an important fact so it is remembered later (one short sentence).";
    t.parameters = json::parse(R"({"type":"object","properties":{"text":{"type":"string","minLength":1,
        "maxLength":500,"description":"the fact to remember"}},"required":["text"]})");
    t.handler = [store, session, now](const json& args, tool_done done) {
        auto id = store->pin(session, args.at("text").get<std::string>(), now());
        if (!id) return done(id.error());
        done(json{{"pinned", true}, {"id", *id}});
    };
    return t;
}

// ---- recall ----------------------------------------------------------------------------------------------

namespace {

std::vector<std::string> words_of(std::string_view text) {
    static const std::set<std::string> stop = {
        "the",  "and", "for",   "are",   "was",  "were", "with", "that", "this",  "you",   "your", "from",
        "have", "has", "had",   "not",   "but",  "what", "who",  "when", "where", "how",   "did",  "does",
        "its",  "our", "their", "about", "into", "them", "they", "then", "than",  "there", "to",   "of",
        "in",   "on",  "at",    "is",    "it",   "an",   "as",   "be",   "by",    "or",    "do"};
    std::vector<std::string> out;
    std::string w;
    const auto flush = [&]() {
        if (w.size() > 1 && !stop.count(w)) out.push_back(w);
        w.clear();
    };
    for (unsigned char c : text) {
        if (std::isalnum(c) || c >= 0x80)
            w += static_cast<char>(c >= 0x80 ? c : std::tolower(c));
        else
            flush();
    }
    flush();
    return out;
}

std::string snippet_of(const std::string& text, const std::vector<std::string>& query) {
    std::string lower(text);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = std::string::npos;
    for (const auto& q : query) at = std::min(at, lower.find(q));
    if (text.size() <= 200) return text;
    size_t b = at == std::string::npos ? 0 : (at > 60 ? at - 60 : 0);
    size_t e = std::min(text.size(), b + 200);
    while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;  // whole UTF-8 characters
    while (e < text.size() && (static_cast<unsigned char>(text[e]) & 0xC0) == 0x80) ++e;
    return (b > 0 ? "..." : "") + text.substr(b, e - b) + (e < text.size() ? "..." : "");
}

}  // namespace

std::vector<recall_hit> rank_events(const std::vector<history_event>& events, std::string_view query, size_t top_k) {
    std::vector<std::string> q = words_of(query);
    std::sort(q.begin(), q.end());
    q.erase(std::unique(q.begin(), q.end()), q.end());
    std::vector<recall_hit> hits;
    if (q.empty()) return hits;
    for (const auto& ev : events) {
        std::vector<std::string> w = words_of(ev.text);
        std::sort(w.begin(), w.end());
        double score = 0;
        for (const auto& x : q) score += std::binary_search(w.begin(), w.end(), x) ? 1 : 0;
        if (score > 0) hits.push_back({ev, score, {}});
    }
    std::stable_sort(hits.begin(), hits.end(), [](const recall_hit& a, const recall_hit& b) {
        return a.score != b.score ? a.score > b.score : a.event.seq > b.event.seq;
    });
    if (hits.size() > top_k) hits.resize(top_k);
    for (auto& h : hits) h.snippet = snippet_of(h.event.text, q);
    return hits;
}

tool make_recall_tool(std::shared_ptr<history_source_i> source, std::string session) {
    tool t;
    t.name = "recall";
    t.description =
        "Search this conversation's earlier history by keywords; returns matching events with their "
        "sequence numbers. Optionally limit to a sequence range or a time range.";
    t.parameters = json::parse(R"js({"type":"object","properties":{
        "query":{"type":"string","minLength":1,"maxLength":200,"description":"keywords to look for"},
        "from_seq":{"type":"integer","description":"first sequence number to search"},
        "to_seq":{"type":"integer","description":"search before this sequence number"},
        "since":{"type":"string","maxLength":32,"description":"ISO-8601 time; only events at or after it"},
        "until":{"type":"string","maxLength":32,"description":"ISO-8601 time; only events before it"},
        "top_k":{"type":"integer","description":"how many events to return (1..20, default 5)"}},
        "required":["query"]})js");
    t.handler = [source, session](const json& args, tool_done done) {
        const auto seq_arg = [&](const char* k, uint64_t dflt) {
            if (!args.contains(k)) return dflt;
            const int64_t v = args[k].get<int64_t>();
            return v < 0 ? 0 : static_cast<uint64_t>(v);
        };
        const uint64_t from = seq_arg("from_seq", 0), to = seq_arg("to_seq", UINT64_MAX);
        std::optional<sys_clock::time_point> since, until;
        for (const char* k : {"since", "until"}) {
            if (!args.contains(k)) continue;
            auto tp = parse_iso8601(args[k].get<std::string>());
            if (!tp) return done(make_error(errc::invalid_argument, std::string(k) + ": " + tp.error().message()));
            (std::string(k) == "since" ? since : until) = *tp;
        }
        const int64_t k = args.contains("top_k") ? std::clamp<int64_t>(args["top_k"].get<int64_t>(), 1, 20) : 5;
        auto evs = source->events(session, from, to);
        if (!evs) return done(evs.error());
        std::vector<history_event> in_range;
        for (auto& e : *evs)
            if ((!since || e.time >= *since) && (!until || e.time < *until)) in_range.push_back(std::move(e));
        json hits = json::array();
        for (const auto& h : rank_events(in_range, args.at("query").get<std::string>(), static_cast<size_t>(k)))
            hits.push_back({{"seq", h.event.seq},
                            {"time", format_iso8601(h.event.time)},
                            {"role", h.event.role},
                            {"snippet", h.snippet},
                            {"score", h.score}});
        done(json{{"hits", hits}});
    };
    return t;
}

}  // namespace mnemos::tools
