// The seeded history generator (agent/scenario/scenario.h generate_history, agent/scenario/history_generator.h).
#include "agent/scenario/history_generator.h"

#include <algorithm>

#include "agent/scenario/text_util.h"

namespace mnemos::agent {

namespace history_detail {

constexpr const char* k_weekdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
constexpr const char* k_months[] = {"January", "February", "March",     "April",   "May",      "June",
                                    "July",    "August",   "September", "October", "November", "December"};

day_names names_of_day(int64_t days_since_epoch) {
    int64_t y = 0;
    unsigned m = 0, d = 0;
    scenario_text::civil_from_days(days_since_epoch, y, m, d);
    const int64_t wd = days_since_epoch >= -4 ? (days_since_epoch + 4) % 7 : (days_since_epoch + 5) % 7 + 6;
    return {k_weekdays[wd], std::to_string(d) + " " + k_months[m - 1] + " " + std::to_string(y)};
}

std::string expand(const std::string& t, const history_generator& g, const day_names& dn, int32_t day,
                   splitmix64& rng) {
    std::string out;
    out.reserve(t.size() + 32);
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] != '{') {
            out += t[i];
            continue;
        }
        const size_t j = t.find('}', i + 1);
        if (j == std::string::npos) {  // validated away; keep the text as is
            out += t.substr(i);
            break;
        }
        const std::string name = t.substr(i + 1, j - i - 1);
        if (name == "weekday")
            out += dn.weekday;
        else if (name == "date")
            out += dn.date;
        else if (name == "day")
            out += std::to_string(day + 1);
        else if (name == "week")
            out += std::to_string(day / 7 + 1);
        else if (auto it = g.slots.find(name); it != g.slots.end() && !it->second.empty())
            out += it->second[rng.below(it->second.size())];
        i = j;
    }
    return out;
}

}  // namespace history_detail

// One long function on purpose: the order of the rng draws below is the generator's output (changing it
// changes every generated history), and it reads best in one place.
std::vector<scripted_turn> generate_history(const scenario& sc, uint64_t seed) {
    using namespace history_detail;
    using scenario_text::parse_date;
    std::vector<scripted_turn> out;
    if (!sc.generator) return out;
    const auto& g = *sc.generator;
    if (g.sentences.empty() || g.days <= 0) return out;
    int64_t start = 0;
    if (!parse_date(g.start_date, start)) start = 0;
    splitmix64 rng(seed);

    std::vector<size_t> order(g.sentences.size());
    for (int32_t day = 0; day < g.days; ++day) {
        const day_names dn = names_of_day(start + day);
        std::vector<const generator_fact*> today;
        for (const auto& f : g.facts) {
            if (f.day == day) today.push_back(&f);
        }
        const int32_t n_entries =
            std::max<int32_t>(rng.between(g.entries_min, g.entries_max), static_cast<int32_t>(today.size()));
        // One fact per entry: facts go to distinct entries chosen at random.
        std::vector<int32_t> entry_of_fact;
        {
            std::vector<int32_t> slots_left(static_cast<size_t>(n_entries));
            for (int32_t e = 0; e < n_entries; ++e) slots_left[static_cast<size_t>(e)] = e;
            for (size_t f = 0; f < today.size(); ++f) {
                const size_t pick = static_cast<size_t>(rng.below(slots_left.size()));
                entry_of_fact.push_back(slots_left[pick]);
                slots_left.erase(slots_left.begin() + static_cast<std::ptrdiff_t>(pick));
            }
        }
        for (int32_t e = 0; e < n_entries; ++e) {
            const int32_t n_sent = std::min<int32_t>(rng.between(g.sentences_min, g.sentences_max),
                                                     static_cast<int32_t>(g.sentences.size()));
            // Distinct templates within an entry (partial Fisher-Yates).
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::vector<std::string> parts;
            for (int32_t k = 0; k < n_sent; ++k) {
                const size_t j =
                    static_cast<size_t>(k) + static_cast<size_t>(rng.below(order.size() - static_cast<size_t>(k)));
                std::swap(order[static_cast<size_t>(k)], order[j]);
                parts.push_back(expand(g.sentences[order[static_cast<size_t>(k)]], g, dn, day, rng));
            }
            scripted_turn t;
            t.speaker = g.speaker;
            t.to = g.to;
            t.day = day;
            for (size_t f = 0; f < today.size(); ++f) {
                if (entry_of_fact[f] != e) continue;
                const size_t at = static_cast<size_t>(rng.below(parts.size() + 1));
                parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(at), today[f]->text);
                t.fact = today[f]->id;
            }
            std::string line = e == 0 ? "[" + dn.weekday + ", " + dn.date + "]" : "";
            for (const auto& part : parts) line += (line.empty() ? "" : " ") + part;
            t.line = std::move(line);
            out.push_back(std::move(t));
            if (!g.replies.empty()) {
                scripted_turn r;
                r.speaker = g.to;
                r.to = g.speaker;
                r.day = day;
                r.line = expand(g.replies[rng.below(g.replies.size())], g, dn, day, rng);
                out.push_back(std::move(r));
            }
        }
    }
    return out;
}

}  // namespace mnemos::agent
