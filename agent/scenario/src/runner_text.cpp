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
    {k::truth, "truth", "solution", "The truth, known only to you until the reveal: {solution}",
     "真相（揭晓之前只有你知道）：{solution}"},
    {k::culprit_line, "culprit_line", "name,role", "Culprit: {name} ({role})", "真凶：{name}（{role}）"},
    {k::killer, "killer", "", "killer", "凶手"},
    {k::accomplice, "accomplice", "", "accomplice", "帮凶"},
    {k::mastermind, "mastermind", "", "mastermind", "主谋"},
    {k::cue_investigate, "cue_investigate", "speaker",
     "(It is your turn, {speaker}. Investigate: call investigate with the place or person to search.)",
     "（轮到你了，{speaker}。请搜证：调用 investigate，给出要搜查的地点或人物。）"},
    {k::cue_ask, "cue_ask", "speaker", "(It is your turn, {speaker}. Ask one person a question: call ask.)",
     "（轮到你了，{speaker}。请向一个人提问：调用 ask。）"},
    {k::cue_vote, "cue_vote", "speaker", "(It is your turn, {speaker}. Vote: call vote with the one you accuse.)",
     "（轮到你了，{speaker}。请投票：调用 vote，给出你指认的人。）"},
    {k::asks, "asks", "speaker,asked,text", "{speaker} asks {asked}: {text}", "{speaker}问{asked}：{text}"},
    {k::investigates, "investigates", "speaker,target", "{speaker} investigates {target}", "{speaker}搜查{target}"},
    {k::votes_for, "votes_for", "speaker,suspect", "{speaker} votes for {suspect}", "{speaker}投票指认{suspect}"},
    {k::action_head, "action_head", "speaker,action", "{speaker} ({action}): ", "{speaker}（{action}）："},
    {k::nothing_more, "nothing_more", "", "nothing more", "没有更多线索"},
    {k::found_tag, "found_tag", "", "  [found] ", "  【发现】"},
    {k::found_line, "found_line", "title,finder,shown", "  [found] {title} by {finder} ({shown})",
     "  【发现】{title}，{finder}发现（{shown}）"},
    {k::shown_to_everyone, "shown_to_everyone", "", "shown to everyone", "所有人可见"},
    {k::kept_by_finder, "kept_by_finder", "", "kept by the finder", "仅发现者可见"},
    {k::verdict_tag, "verdict_tag", "", "[verdict] ", "【真相揭晓】"},
    {k::verdict_votes, "verdict_votes", "votes", "The votes: {votes}. ", "投票：{votes}。"},
    {k::vote_entry, "vote_entry", "voter,suspect", "{voter} for {suspect}", "{voter}投{suspect}"},
    {k::list_separator, "list_separator", "", ", ", "，"},
    {k::no_majority, "no_majority", "", "No one has a majority.", "没有人得票最多。"},
    {k::table_accuses, "table_accuses", "name", "The table accuses {name}.", "全桌指认{name}。"},
    {k::verdict_truth, "verdict_truth", "solution", "The truth: {solution}", "真相：{solution}"},
    {k::verdict_culprit, "verdict_culprit", "name,role", " {name} ({role}).", "{name}（{role}）。"},
    {k::investigate_tool, "investigate_tool", "targets",
     "Search a place or a person for the next clue there. Targets: {targets}.",
     "搜查一个地点或人物，找出那里的下一条线索。可搜查：{targets}。"},
    {k::ask_tool, "ask_tool", "people", "Ask one person a question; they answer next. People: {people}.",
     "向一个人提问；对方接着回答。可问的人：{people}。"},
    {k::vote_tool, "vote_tool", "suspects",
     "Accuse the one you believe guilty (your vote; a later vote replaces it). Suspects: {suspects}.",
     "指认你认为有罪的人（你的一票；再投一次会替换它）。嫌疑人：{suspects}。"},
    {k::nothing_called, "nothing_called", "name", "[play] nothing called '{name}' here", "[play] 这里没有叫“{name}”的"},
    {k::votes_at_accusation, "votes_at_accusation", "", "[play] votes are cast at the accusation",
     "[play] 只能在指认阶段投票"},
    {k::investigate_in_phase, "investigate_in_phase", "", "[play] one investigates during an investigation",
     "[play] 只能在搜证阶段搜查"},
    {k::narrate, "narrate", "title,text",
     "(Open \"{title}\" for the table, briefly and in your own words. What it must say: {text})",
     "（请用你自己的话简短地为大家开启“{title}”。要讲的内容：{text}）"},
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
