// Scoring a probe's answer (agent/scenario/scenario.h score_probe).
#include <algorithm>

#include "agent/scenario/scenario.h"
#include "agent/scenario/text_normalize.h"

namespace mnemos::agent {

probe_score score_probe(const scenario_probe& p, std::string_view answer,
                        const std::vector<std::string>& tools_called) {
    using scenario_text::contains_normalized;
    using scenario_text::normalize_for_match;
    probe_score s;
    const std::string a = normalize_for_match(answer);
    for (const auto& item : p.must_contain) {
        const bool found = std::any_of(item.begin(), item.end(), [&](const std::string& alt) {
            return contains_normalized(a, normalize_for_match(alt));
        });
        if (!found) {
            std::string joined;
            for (const auto& alt : item) joined += (joined.empty() ? "" : " | ") + alt;
            s.missing.push_back(joined);
        }
    }
    for (const auto& item : p.must_not_reveal) {
        for (const auto& alt : item) {
            if (contains_normalized(a, normalize_for_match(alt))) s.revealed.push_back(alt);
        }
    }
    for (const auto& t : p.must_call_tools) {
        if (std::find(tools_called.begin(), tools_called.end(), t) == tools_called.end()) s.tools_missing.push_back(t);
    }
    s.passed = s.missing.empty() && s.revealed.empty() && s.tools_missing.empty();
    return s;
}

}  // namespace mnemos::agent
