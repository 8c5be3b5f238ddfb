// The scenario's "runner_text" overrides (agent/scenario/reader.h read_runner_text).
#include <algorithm>

#include "agent/scenario/reader.h"
#include "agent/scenario/runner_text.h"
#include "agent/scenario/text_util.h"

namespace mnemos::agent::scenario_reader {

namespace {

std::string known_keys() {
    std::string s;
    for (size_t i = 0; i < static_cast<size_t>(runner_text_key::n_keys); ++i)
        s += (s.empty() ? "" : ", ") + std::string(runner_text_name(static_cast<runner_text_key>(i)));
    return s;
}

// Each {placeholder} of the text must be one its key fills.
void check_placeholders(reader& rd, const std::string& path, runner_text_key key, const std::string& text) {
    std::vector<std::string> used;
    if (!scenario_text::placeholders(text, used)) {
        rd.error(path, "unbalanced '{' or '}' (a placeholder is written {name})");
        return;
    }
    const auto allowed = runner_text_placeholders(key);
    std::string allowed_list;
    for (const auto& a : allowed) allowed_list += (allowed_list.empty() ? "{" : ", {") + a + "}";
    for (const auto& u : used)
        if (std::find(allowed.begin(), allowed.end(), u) == allowed.end())
            rd.error(path, "unknown placeholder {" + u + "} (this text may use: " +
                               (allowed_list.empty() ? std::string("none") : allowed_list) + ")");
}

}  // namespace

void read_runner_text(reader& rd, const json& j, scenario& sc) {
    const std::string p = "/runner_text";
    if (!j.is_object()) {
        rd.error(p, "expected an object of strings by key (" + known_keys() + ")");
        return;
    }
    for (const auto& [name, value] : j.items()) {
        const std::string vp = p + "/" + scenario_text::pointer_token(name);
        const auto key = runner_text_key_named(name);
        if (!key) {
            rd.error(vp, "unknown runner text (known: " + known_keys() + ")");
            continue;
        }
        if (!value.is_string()) {
            rd.error(vp, "expected a string");
            continue;
        }
        const std::string text = value.get<std::string>();
        check_placeholders(rd, vp, *key, text);
        sc.text_overrides[name] = text;
    }
}

}  // namespace mnemos::agent::scenario_reader
