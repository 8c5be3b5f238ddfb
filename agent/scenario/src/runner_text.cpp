// The runner's strings in each language (agent/scenario/runner_text.h).
#include "agent/scenario/runner_text.h"

#include <algorithm>
#include <array>

#include "agent/scenario/scenario.h"

namespace mnemos::agent {

namespace {

struct entry {
    runner_text_key key;
    const char* name;
    const char* placeholders;  // comma-separated
    const char* en;
    const char* zh;
};

using k = runner_text_key;

// The English column is what the runner always said: the golden game logs depend on its bytes.
constexpr std::array<entry, static_cast<size_t>(k::n_keys)> k_table{{
    {k::cue, "cue", "speaker,to", "(It is your turn, {speaker}. Speak to {to}.)",
     "（轮到你了，{speaker}。请对{to}说。）"},
    {k::clue, "clue", "title,text", "Clue: {title}. {text}", "线索：{title}。{text}"},
    {k::heard, "heard", "speaker,text", "{speaker}: {text}", "{speaker}：{text}"},
    {k::narrator, "narrator", "", "Narrator", "旁白"},
    {k::everyone, "everyone", "", "everyone", "所有人"},
    {k::rules_heading, "rules_heading", "", "## Rules", "## 规则"},
    {k::you_are, "you_are", "name", "You are {name}.", "你是{name}。"},
    {k::secrets_heading, "secrets_heading", "", "Secrets (never reveal):", "秘密（绝不透露）："},
    {k::goals_heading, "goals_heading", "", "Goals:", "目标："},
    {k::public_heading, "public_heading", "", "Public knowledge:", "公开信息："},
    {k::private_heading, "private_heading", "",
     "Private knowledge (do not reveal unless appropriate):", "私密信息（除非合适，不要透露）："},
    {k::line_head, "line_head", "speaker,to", "{speaker} -> {to}: ", "{speaker} → {to}："},
    {k::narration_tag, "narration_tag", "", "[narration] ", "【旁白】"},
    {k::clue_tag, "clue_tag", "", "[clue] ", "【线索】"},
    {k::context_full, "context_full", "", "(context full)", "（上下文已满）"},
    {k::no_input, "no_input", "", "(no input)", "（无输入）"},
    {k::probe_head, "probe_head", "probe,name,question",
     "[probe {probe}] {name}, {question}\n  answer: ", "【提问 {probe}】{name}，{question}\n  回答："},
    {k::probe_line, "probe_line", "probe,name,question", "[probe {probe} -> {name}] {question}\n",
     "【提问 {probe} → {name}】{question}\n"},
    {k::probe_answer, "probe_answer", "text", "  answer: {text}\n", "  回答：{text}\n"},
    {k::pass, "pass", "", "PASS", "PASS"},
    {k::fail, "fail", "", "FAIL", "FAIL"},
    {k::player_script, "player_script", "line", "(script: \"{line}\"; Enter says it)\n",
     "（剧本台词：“{line}”；按回车即说这句）\n"},
    {k::player_prompt, "player_prompt", "player,to", "{player} -> {to} (\"@name: ...\" to address someone else)> ",
     "{player} → {to}（输入“@名字: ……”可对别人说）> "},
    {k::no_one_called, "no_one_called", "name,to", "[play] no one else called '{name}' here: speaking to {to}",
     "[play] 这里没有别人叫“{name}”：改为对{to}说"},
}};

constexpr bool table_in_key_order() {
    for (size_t i = 0; i < k_table.size(); ++i)
        if (static_cast<size_t>(k_table[i].key) != i) return false;
    return true;
}
static_assert(table_in_key_order(), "k_table lists the keys in the enum's order");

const entry& entry_of(runner_text_key key) { return k_table[static_cast<size_t>(key)]; }

}  // namespace

const char* runner_text_name(runner_text_key key) { return key < k::n_keys ? entry_of(key).name : "?"; }

std::optional<runner_text_key> runner_text_key_named(std::string_view name) {
    for (const auto& e : k_table)
        if (name == e.name) return e.key;
    return std::nullopt;
}

std::vector<std::string> runner_text_placeholders(runner_text_key key) {
    std::vector<std::string> out;
    std::string_view s = entry_of(key).placeholders;
    while (!s.empty()) {
        const size_t comma = s.find(',');
        out.emplace_back(s.substr(0, comma));
        s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    }
    return out;
}

std::vector<std::string> runner_text_languages() { return {"en", "zh"}; }

std::string_view builtin_runner_text(std::string_view language, runner_text_key key) {
    const std::string_view primary = language.substr(0, language.find('-'));
    const entry& e = entry_of(key);
    return primary == "zh" ? e.zh : e.en;
}

std::string fill_text(std::string_view tmpl, text_args args) {
    std::string out;
    out.reserve(tmpl.size());
    for (size_t i = 0; i < tmpl.size();) {
        if (tmpl[i] == '{') {
            const size_t close = tmpl.find('}', i + 1);
            if (close != std::string_view::npos) {
                const std::string_view name = tmpl.substr(i + 1, close - i - 1);
                const auto* hit =
                    std::find_if(args.begin(), args.end(), [&](const auto& a) { return a.first == name; });
                if (hit != args.end()) {
                    out += hit->second;
                    i = close + 1;
                    continue;
                }
            }
        }
        out += tmpl[i++];
    }
    return out;
}

std::string runner_text(const scenario& sc, runner_text_key key, text_args args) {
    if (auto it = sc.text_overrides.find(runner_text_name(key)); it != sc.text_overrides.end())
        return fill_text(it->second, args);
    return fill_text(builtin_runner_text(sc.language, key), args);
}

}  // namespace mnemos::agent
