// The scenario runner (agent/play.h).
#include "agent/play/play.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/core/runtime.h"
#include "agent/tooling/agent_loop.h"
#include "engine/engine.h"
#include "memory/store.h"
#include "tools/builtins.h"
#include "tools/prompt.h"
#include "tools/tool.h"

namespace mnemos::agent {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

// Session ids allow [A-Za-z0-9_.-]; anything else in a scenario id becomes '_'.
std::string sanitize_id(std::string_view s) {
    std::string out(s.substr(0, 48));
    for (auto& c : out)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) c = '_';
    return out.empty() ? std::string("game") : out;
}

// One unit of the game, in play order. Scripted steps are fully determined by
// the scenario; generated ones (turn, probe, interactive player) by the game log.
enum class step_kind { narration, clue, line, turn, probe };

const char* step_kind_name(step_kind k) {
    switch (k) {
        case step_kind::narration:
            return "narration";
        case step_kind::clue:
            return "clue";
        case step_kind::line:
            return "line";
        case step_kind::turn:
            return "turn";
        case step_kind::probe:
            return "probe";
    }
    return "?";
}

struct step {
    step_kind kind = step_kind::line;
    size_t phase_idx = 0;
    std::string speaker;                // character or player id; "" for the narrator
    std::string to = "all";             // character or player id, or "all"
    std::string text;                   // scripted text
    std::vector<std::string> audience;  // clue: characters who see it (empty: everyone)
    const scenario_probe* probe = nullptr;
    bool player_input = false;              // an interactive player's turn
    std::vector<std::string> expect_tools;  // turn: tools it should call
};

std::vector<step> build_steps(const scenario& sc) {
    std::string gm;
    for (const auto& c : sc.characters)
        if (c.role == character_role::game_master) {
            gm = c.id;
            break;
        }
    std::vector<step> steps;
    for (size_t pi = 0; pi < sc.phases.size(); ++pi) {
        const auto& ph = sc.phases[pi];
        if (!ph.narration.empty()) {
            step s;
            s.kind = step_kind::narration;
            s.phase_idx = pi;
            s.speaker = gm;
            s.text = ph.narration;
            steps.push_back(std::move(s));
        }
        for (const auto& cl : sc.clues) {
            if (cl.available_from != ph.id) continue;
            step s;
            s.kind = step_kind::clue;
            s.phase_idx = pi;
            s.speaker = gm;
            s.text = "Clue: " + cl.title + ". " + cl.text;
            for (const auto& v : cl.visible_to)
                if (sc.find_character(v)) s.audience.push_back(v);
            if (!cl.visible_to.empty() && s.audience.empty()) continue;  // seen by players only
            steps.push_back(std::move(s));
        }
        std::vector<scripted_turn> turns = ph.turns;
        if (ph.kind == phase_kind::history && sc.generator && sc.generator->phase == ph.id) {
            auto gen = generate_history(sc, sc.generator->seed);
            turns.insert(turns.end(), gen.begin(), gen.end());
        }
        const int32_t n_turns = static_cast<int32_t>(turns.size());
        auto add_probes = [&](int32_t at) {
            for (const auto& p : sc.probes) {
                if (p.at_phase != ph.id) continue;
                const int32_t pt = (p.at_turn < 0 || p.at_turn > n_turns) ? n_turns : p.at_turn;
                if (pt != at) continue;
                step s;
                s.kind = step_kind::probe;
                s.phase_idx = pi;
                s.speaker = p.asked_to;
                s.probe = &p;
                steps.push_back(std::move(s));
            }
        };
        for (int32_t t = 0; t < n_turns; ++t) {
            add_probes(t);
            const auto& tr = turns[static_cast<size_t>(t)];
            step s;
            s.phase_idx = pi;
            s.speaker = tr.speaker;
            s.to = tr.to.empty() ? "all" : tr.to;
            if (tr.interactive && sc.find_character(tr.speaker)) {
                s.kind = step_kind::turn;
                s.expect_tools = tr.expect_tools;
            } else {
                s.kind = step_kind::line;
                s.text = tr.line;
                s.player_input = tr.interactive;
            }
            steps.push_back(std::move(s));
        }
        add_probes(n_turns);
    }
    return steps;
}

struct effect {
    std::string character;  // character id
    engine::chat_message msg;
};

// ---------------------------------------------------------------------------
// Tools of the game master
// ---------------------------------------------------------------------------

// What the game's tools keep: the packs (inventory) and pinned notes. It is
// never stored on its own: a resumed run rebuilds it by replaying the calls
// recorded in the game log's completed turns (replay_tool_calls).
// Free strings in tool arguments are at most this long, and a forced call may
// use this many tokens whatever the turn's budget.
constexpr int32_t k_max_argument_chars = 40;
constexpr int32_t k_call_tokens = 256;
// KV page size of the engine and of the durable store's block refs.
constexpr int32_t k_page_size = 16;

struct tool_state {
    struct item {
        std::string name;  // as first added
        int64_t quantity = 0;
    };
    std::map<std::string, std::vector<item>> packs;  // owner -> items in the order added
    std::vector<std::string> notes;
};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    size_t b = 0;
    while (b < out.size() && std::isspace(static_cast<unsigned char>(out[b]))) ++b;
    return out.substr(b);
}

// The held item an argument names: the same name (case-insensitively), else
// the only held item whose name contains it or is contained in it.
tool_state::item* find_item(std::vector<tool_state::item>& pack, const std::string& name) {
    const std::string want = lower(name);
    for (auto& it : pack)
        if (lower(it.name) == want) return &it;
    tool_state::item* hit = nullptr;
    for (auto& it : pack) {
        const std::string have = lower(it.name);
        if (have.find(want) != std::string::npos || want.find(have) != std::string::npos) {
            if (hit) return nullptr;  // ambiguous
            hit = &it;
        }
    }
    return hit;
}

json pack_json(const std::vector<tool_state::item>& pack) {
    json items = json::array();
    for (const auto& it : pack) items.push_back({{"item", it.name}, {"quantity", it.quantity}});
    return items;
}

// A game tool's handler over st: add_item, remove_item and list_inventory keep
// the packs; any other game tool of a scenario is acknowledged and recorded only
// in the game log.
tools::tool_handler game_tool_handler(const std::string& name, tool_state& st) {
    if (name == "add_item")
        return [&st](const json& a, tools::tool_done done) {
            const std::string owner = a.value("owner", ""), item = a.value("item", "");
            const int64_t q =
                a.contains("quantity") && a["quantity"].is_number_integer() ? a["quantity"].get<int64_t>() : 1;
            if (owner.empty() || item.empty() || q < 1)
                return done(make_error(errc::invalid_argument, "owner, item and a positive quantity are required"));
            auto& pack = st.packs[owner];
            tool_state::item* it = nullptr;
            for (auto& x : pack)
                if (lower(x.name) == lower(item)) it = &x;
            if (!it) it = &pack.emplace_back(tool_state::item{item, 0});
            it->quantity += q;
            done(json{{"owner", owner}, {"item", it->name}, {"quantity", it->quantity}});
        };
    if (name == "remove_item")
        return [&st](const json& a, tools::tool_done done) {
            const std::string owner = a.value("owner", ""), item = a.value("item", "");
            const int64_t q =
                a.contains("quantity") && a["quantity"].is_number_integer() ? a["quantity"].get<int64_t>() : 1;
            auto& pack = st.packs[owner];
            tool_state::item* it = find_item(pack, item);
            if (!it) return done(make_error(errc::not_found, owner + "'s pack holds no '" + item + "'"));
            if (q < 1 || q > it->quantity)
                return done(make_error(errc::invalid_argument, owner + " holds only " + std::to_string(it->quantity) +
                                                                   " of '" + it->name + "'"));
            it->quantity -= q;
            json res = {{"owner", owner}, {"item", it->name}, {"quantity", it->quantity}};
            if (it->quantity == 0) pack.erase(pack.begin() + (it - pack.data()));
            done(std::move(res));
        };
    if (name == "list_inventory")
        return [&st](const json& a, tools::tool_done done) {
            if (a.contains("owner") && a["owner"].is_string()) {
                const std::string owner = a["owner"].get<std::string>();
                auto it = st.packs.find(owner);
                return done(
                    json{{"owner", owner}, {"items", it == st.packs.end() ? json::array() : pack_json(it->second)}});
            }
            json packs = json::object();
            for (const auto& [owner, pack] : st.packs) packs[owner] = pack_json(pack);
            done(json{{"packs", packs}});
        };
    return [name](const json&, tools::tool_done done) { done(json{{"ok", true}, {"tool", name}}); };
}

// note's store: the game's tool_state (its ids count the game's notes).
class state_notes final : public tools::notes_store_i {
  public:
    explicit state_notes(tool_state& st) : st_(st) {}
    result<int64_t> pin(const std::string&, const std::string& text, std::chrono::system_clock::time_point) override {
        st_.notes.push_back(text);
        return static_cast<int64_t>(st_.notes.size());
    }
    result<std::vector<tools::pinned_note>> list(const std::string&) const override {
        std::vector<tools::pinned_note> v;
        for (size_t i = 0; i < st_.notes.size(); ++i) v.push_back({static_cast<int64_t>(i + 1), st_.notes[i], {}});
        return v;
    }

  private:
    tool_state& st_;
};

// recall's source: the character's whole durable event log (every message
// since its system text, far older than any window) followed by the game's
// pinned notes. Times are left out so a replayed game returns the same hits.
class character_history final : public tools::history_source_i {
  public:
    character_history(std::shared_ptr<tools::history_source_i> log, const tool_state& st)
        : log_(std::move(log)), st_(st) {}
    result<std::vector<tools::history_event>> events(const std::string& session, uint64_t from, uint64_t to) override {
        auto evs = log_->events(session, 0, UINT64_MAX);
        if (!evs) return evs.error();
        std::vector<tools::history_event> all = std::move(evs.value());
        uint64_t seq = all.empty() ? 0 : all.back().seq + 1;
        for (const auto& n : st_.notes) all.push_back({seq++, {}, "note", n});
        std::vector<tools::history_event> out;
        for (auto& e : all) {
            e.time = {};
            if (e.seq >= from && e.seq < to) out.push_back(std::move(e));
        }
        return out;
    }

  private:
    std::shared_ptr<tools::history_source_i> log_;
    const tool_state& st_;
};

// Strips the schema keywords constrained decoding does not enforce (bounds on
// numbers): the arguments are still well-formed JSON of the right types.
void strip_unsupported(json& schema) {
    if (schema.is_object()) {
        for (const char* k : {"additionalProperties", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                              "multipleOf", "pattern"})
            schema.erase(k);
        for (auto& [k, v] : schema.items()) strip_unsupported(v);
    } else if (schema.is_array()) {
        for (auto& v : schema) strip_unsupported(v);
    }
}

// Bounds every free string of a tool's arguments (the grammar then closes a
// call within a known number of tokens, even for a model that would ramble).
void bound_strings(json& schema, int32_t max_len) {
    if (schema.is_object()) {
        if (schema.value("type", json()) == json("string") && !schema.contains("enum") && !schema.contains("const"))
            schema["maxLength"] = std::min<int64_t>(schema.value("maxLength", int64_t{max_len}), max_len);
        for (auto& [k, v] : schema.items()) bound_strings(v, max_len);
    } else if (schema.is_array()) {
        for (auto& v : schema) bound_strings(v, max_len);
    }
}

// The game's calendar for the clock tool: fixed, so a replay gets the same answer.
std::chrono::system_clock::time_point game_clock(const scenario& sc) {
    std::string date = sc.generator ? sc.generator->start_date : std::string();
    auto t = tools::parse_iso8601(date.empty() ? "2026-01-01" : date);
    return t ? t.value() : std::chrono::system_clock::time_point{};
}

// Runs one call to completion (the game's tools answer at once; a tool that
// does not within 5 s gets a timeout). Returns {"result": ...} or {"error": "..."}.
json run_tool_call(const tools::tool_registry& reg, const tools::tool_call& c) {
    auto p = std::make_shared<std::promise<result<json>>>();
    auto f = p->get_future();
    reg.call(c.name, c.arguments, [p](result<json> r) { p->set_value(std::move(r)); });
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return json{{"error", "timeout"}};
    auto r = f.get();
    if (!r) return json{{"error", r.error().message()}};
    return json{{"result", std::move(r.value())}};
}

// The game: runtime objects, the steps and what happened.
class game {
  public:
    game(const scenario& sc, const play_options& o) : sc_(sc), opt_(o), steps_(build_steps(sc)) {}
    ~game() { teardown(); }

    result<play_report> run(std::shared_ptr<const engine::model> m);

  private:
    std::string display_name(const std::string& id) const {
        if (id.empty()) return "Narrator";
        if (id == "all") return "everyone";
        if (auto c = sc_.find_character(id)) return c->name;
        if (auto p = sc_.find_player(id)) return p->name;
        return id;
    }
    std::string cue(const step& s) const {
        return "(It is your turn, " + display_name(s.speaker) + ". Speak to " + display_name(s.to) + ".)";
    }
    void out(std::string_view text) const {
        if (opt_.on_output) opt_.on_output(text);
    }
    void progress(const std::string& line) const {
        if (opt_.on_progress) opt_.on_progress(line);
    }

    // The characters who hear a step's text (never the speaker).
    std::vector<std::string> listeners(const json& ev) const;
    // Every message a completed step appends, derived from its event alone.
    std::vector<effect> effects(const json& ev) const;
    status apply(const std::vector<effect>& effs);
    status setup_sessions(const std::vector<json>& done);
    status warm_prefix();
    result<json> run_step(int64_t idx);
    std::string transcript_line(const json& ev) const;

    struct gen_result {
        std::string text;
        engine::finish_info info;
        double seconds = 0;
        bool context_full = false;
    };
    // stream: text goes to on_output as it is sampled, and, when token_sid is set, to the session
    // manager's token observer for that session (spectators of `mnemos play --serve`).
    gen_result generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                        uint64_t seed, bool stream, std::shared_ptr<const engine::grammar> constraint = nullptr,
                        std::string trigger = {}, std::string token_sid = {});

    // Fits a generation's prompt into the window (runtime's fit_to_window: the system message and the most
    // recent messages that fit, with room to answer); false when even the last message does not fit.
    bool fit_prompt(turn_plan& plan, int32_t budget, bool& windowed) const;
    int32_t window() const;
    bool has_tools(const std::string& cid) const;
    std::unique_ptr<tools::tool_registry> make_tools(tool_state& st, const std::string& cid, int64_t idx) const;

    struct agent_out {
        std::string text;             // the final reply
        json rounds = json::array();  // [{"content", "calls": [{"name", "arguments", "result" | "error"}]}]
        std::vector<std::string> called;
        engine::finish_info info;  // summed over generations
        double seconds = 0;
        bool context_full = false;
        bool windowed = false;
    };
    // Appends a round's call and result messages; returns the next generation's plan.
    using append_fn =
        std::function<result<turn_plan>(const std::vector<engine::chat_message>&, const std::vector<json>&)>;
    // plan -> tool calls -> results -> plan, up to 4 generations, when st is
    // given (the game master of a scenario with tools); one generation otherwise. live: the generations
    // belong to the character's session (a turn, not a probe on a copy): their tokens reach the token observer.
    result<agent_out> run_agent(const std::string& cid, turn_plan plan, tool_state* st, int32_t budget, int64_t idx,
                                const append_fn& append, bool live);
    void replay_tool_calls(const std::vector<json>& done);
    // Tells on_teardown (once, when the runtime was handed out), stops the engine, flushes the store.
    void teardown() {
        if (handed_out_ && opt_.on_teardown) opt_.on_teardown();
        handed_out_ = false;
        runner_.reset();
        if (db_) db_->flush();
    }
    bool handed_out_ = false;

    const scenario& sc_;
    const play_options& opt_;
    std::vector<step> steps_;
    std::shared_ptr<const engine::model> model_;
    std::unique_ptr<memory::store> db_;
    std::unique_ptr<session_store_i> store_;
    std::unique_ptr<engine_runner> runner_;
    std::unique_ptr<session_manager> sessions_;
    std::string game_id_;
    std::map<std::string, session_ptr> chars_;         // character id -> session
    tool_state tools_;                                 // the game's packs and notes
    std::shared_ptr<const engine::grammar> g_auto_;    // a call after "<tool_call>"
    std::shared_ptr<const engine::grammar> g_forced_;  // a call from the first token
    std::vector<engine::token_id> call_tag_;
    std::string tools_prompt_;  // the tool section of the game master's system text
    play_report rep_;
    std::map<std::string, character_report> char_rep_;
};

std::vector<std::string> game::listeners(const json& ev) const {
    const std::string speaker = ev.value("speaker", "");
    const std::string to = ev.value("to", "all");
    std::vector<std::string> v;
    if (ev.contains("audience") && ev["audience"].is_array() && !ev["audience"].empty()) {
        for (const auto& a : ev["audience"])
            if (a.is_string() && a.get<std::string>() != speaker) v.push_back(a.get<std::string>());
        return v;
    }
    for (const auto& c : sc_.characters)
        if (c.id != speaker && (to == "all" || to == c.id)) v.push_back(c.id);
    return v;
}

std::vector<effect> game::effects(const json& ev) const {
    std::vector<effect> e;
    const std::string kind = ev.value("kind", "");
    if (kind == "probe") return e;
    const std::string speaker = ev.value("speaker", "");
    const std::string text = ev.value("text", "");
    const bool is_char = sc_.find_character(speaker) != nullptr;
    if (kind == "turn") {
        step s;
        s.speaker = speaker;
        s.to = ev.value("to", "all");
        e.push_back({speaker, {"user", cue(s)}});
        if (auto rounds = ev.find("rounds"); rounds != ev.end() && rounds->is_array())
            for (const auto& rd : *rounds) {
                e.push_back({speaker, {"assistant", rd.value("content", "")}});
                for (const auto& c : rd.value("calls", json::array())) {
                    const json shown = c.contains("result") ? c["result"] : json{{"error", c.value("error", "")}};
                    e.push_back({speaker, {"tool", tools::render_tool_response(c.value("name", ""), shown)}});
                }
            }
        if (!ev.value("context_full", false)) e.push_back({speaker, {"assistant", text}});
    } else if (is_char && !text.empty()) {
        e.push_back({speaker, {"assistant", text}});
    }
    if (!text.empty())
        for (const auto& l : listeners(ev)) e.push_back({l, {"user", display_name(speaker) + ": " + text}});
    return e;
}

status game::apply(const std::vector<effect>& effs) {
    // One begin_turn per run of consecutive messages to the same character.
    for (size_t i = 0; i < effs.size();) {
        size_t j = i;
        std::vector<engine::chat_message> msgs;
        while (j < effs.size() && effs[j].character == effs[i].character) msgs.push_back(effs[j++].msg);
        auto it = chars_.find(effs[i].character);
        if (it == chars_.end()) return make_error(errc::internal, "no session for '" + effs[i].character + "'");
        auto plan = sessions_->begin_turn(it->second, msgs);
        if (!plan) return plan.error();
        if (auto st = sessions_->end_turn(it->second, {}, false); !st.ok()) return st;
        i = j;
    }
    return {};
}

// Creates the character sessions, or on resume checks each against the
// messages the completed steps imply and rebuilds the ones that differ (a
// step interrupted after some of its messages were written).
status game::setup_sessions(const std::vector<json>& done) {
    std::map<std::string, std::vector<engine::chat_message>> expected;
    for (const auto& ev : done)
        for (auto& e : effects(ev)) expected[e.character].push_back(e.msg);
    for (const auto& c : sc_.characters) {
        const std::string sid = play_character_session_id(sc_, c.id);
        character chr;
        chr.name = c.name;
        chr.persona = c.persona;
        chr.public_knowledge = c.public_knowledge;
        chr.private_knowledge = c.private_script;
        chr.secrets = c.secrets;
        chr.goals = c.goals;
        chr.shared_prefix = game_id_;
        const auto& want = expected[c.id];
        session_ptr s;
        if (auto found = sessions_->find(sid); found) {
            s = found.value();
            bool same = !s->messages.empty() && s->messages.size() == want.size() + 1;
            for (size_t i = 0; same && i < want.size(); ++i)
                same = s->messages[i + 1].role == want[i].role && s->messages[i + 1].content == want[i].content;
            if (!same) {
                progress("[play] rebuilding session " + sid + " (" + std::to_string(s->messages.size()) +
                         " messages, the game log implies " + std::to_string(want.size() + 1) + ")");
                if (auto st = sessions_->remove(sid); !st.ok()) return st;
                s.reset();
            }
        }
        if (!s) {
            auto created = sessions_->create(sid, chr, "", has_tools(c.id) ? tools_prompt_ : std::string());
            if (!created) return created.error();
            s = created.value();
            chars_[c.id] = s;
            std::vector<effect> effs;
            for (const auto& m : want) effs.push_back({c.id, m});
            if (auto st = apply(effs); !st.ok()) return st;
        }
        chars_[c.id] = s;
        auto& cr = char_rep_[c.id];
        cr.id = c.id;
        cr.session_id = sid;
    }
    return {};
}

// Prefills each character's system message once (prefill only), in cast
// order: the first computes (or loads from the store) the shared prefix, the
// others reuse its pages.
status game::warm_prefix() {
    const auto& tok = model_->tok();
    for (const auto& c : sc_.characters) {
        auto s = chars_[c.id];
        std::vector<engine::token_id> sys;
        {
            std::lock_guard lk(s->mu);
            if (s->messages.empty()) continue;
            // Markup as special tokens, the scenario's text as plain text: the same tokens the session holds.
            sys = model_->chat().encode_message(tok, s->messages, 0, tok.add_bos_default());
        }
        auto& cr = char_rep_[c.id];
        cr.n_system_tokens = static_cast<int32_t>(sys.size());
        if (sys.empty() || static_cast<int32_t>(sys.size()) >= runner_->history_limit()) continue;
        auto g = generate(sys, {}, 0, opt_.seed, false);
        cr.n_prefix_reused = g.info.n_reused;
    }
    return {};
}

game::gen_result game::generate(std::vector<engine::token_id> prompt, std::vector<std::string> stop, int32_t budget,
                                uint64_t seed, bool stream, std::shared_ptr<const engine::grammar> constraint,
                                std::string trigger, std::string token_sid) {
    gen_result g;
    const int32_t room = runner_->history_limit() - static_cast<int32_t>(prompt.size());
    if (room <= 1 && budget > 0) {
        g.context_full = true;
        return g;
    }
    const auto t0 = steady::now();
    engine::request r;
    r.prompt = std::move(prompt);
    r.stop = std::move(stop);
    r.max_tokens = std::max(0, std::min(budget, room - 1));
    r.sampling.temperature = opt_.temperature;
    r.sampling.seed = seed;
    r.constraint = std::move(constraint);
    r.constraint_trigger = std::move(trigger);
    std::promise<engine::finish_info> done;
    r.on_token = [this, &g, stream, sid = std::move(token_sid)](engine::token_id, std::string_view text) {
        g.text += text;
        if (!stream) return;
        out(text);
        if (!sid.empty()) sessions_->notify_token(sid, text);
    };
    r.on_finish = [&done](const engine::finish_info& info) { done.set_value(info); };
    runner_->submit(std::move(r));
    g.info = done.get_future().get();
    g.seconds = seconds_since(t0);
    return g;
}

int32_t game::window() const {
    // With sparse attention (the default) the window is what the KV pool holds: nothing is cut below it.
    const int32_t n_ctx = runner_->history_limit();
    return sc_.budgets.window_tokens > 0 ? std::min(sc_.budgets.window_tokens, n_ctx) : n_ctx;
}

bool game::fit_prompt(turn_plan& plan, int32_t budget, bool& windowed) const {
    // A scenario's window_tokens bounds what a character sees of the conversation; its system message (persona,
    // script, secrets) is always whole on top of it. A message is never cut.
    int32_t limit = runner_->history_limit();
    if (sc_.budgets.window_tokens > 0) limit = std::min(limit, plan.n_first + sc_.budgets.window_tokens);
    if (!fit_to_window(plan, limit, std::max(1, std::min(budget, window() / 4)), k_page_size).ok()) return false;
    windowed = plan.context.truncated;
    return true;
}

bool game::has_tools(const std::string& cid) const {
    const auto* c = sc_.find_character(cid);
    return c && c->role == character_role::game_master && g_auto_;
}

std::unique_ptr<tools::tool_registry> game::make_tools(tool_state& st, const std::string& cid, int64_t idx) const {
    auto reg = std::make_unique<tools::tool_registry>();
    const std::string sid = play_character_session_id(sc_, cid);
    const auto clock = game_clock(sc_);
    auto add = [&](tools::tool t) {
        strip_unsupported(t.parameters);
        bound_strings(t.parameters, k_max_argument_chars);
        const std::string name = t.name;
        if (auto added = reg->add(std::move(t)); !added.ok()) progress("[play] tool " + name + ": " + added.message());
    };
    for (const auto& b : sc_.tools.builtin) {
        if (b == "recall") {
            // The whole history, by words: no time or sequence ranges (wall-clock times mean nothing in a game).
            auto t = tools::make_recall_tool(
                std::make_shared<character_history>(make_event_history(sessions_->store()), st), sid);
            for (const char* k : {"since", "until", "from_seq", "to_seq", "top_k"}) t.parameters["properties"].erase(k);
            add(std::move(t));
        } else if (b == "note")
            add(tools::make_note_tool(std::make_shared<state_notes>(st), sid, [clock] { return clock; }));
        else if (b == "roll_dice")
            add(tools::make_roll_dice_tool(opt_.seed ^ (static_cast<uint64_t>(idx) * 0x9E3779B97F4A7C15ull)));
        else if (b == "clock")
            add(tools::make_clock_tool([clock] { return clock; }));
    }
    for (const auto& gt : sc_.tools.game) {
        tools::tool t;
        t.name = gt.name;
        t.description = gt.description;
        t.parameters = json::parse(gt.parameters_json, nullptr, false);
        if (!t.parameters.is_object()) t.parameters = json{{"type", "object"}, {"properties", json::object()}};
        t.handler = game_tool_handler(gt.name, st);
        add(std::move(t));
    }
    return reg;
}

result<game::agent_out> game::run_agent(const std::string& cid, turn_plan plan, tool_state* st, int32_t budget,
                                        int64_t idx, const append_fn& append, bool live) {
    agent_out res;
    std::unique_ptr<tools::tool_registry> reg;
    if (st && has_tools(cid)) reg = make_tools(*st, cid, idx);
    const int32_t max_rounds = reg ? 4 : 1;
    for (int32_t round = 0; round < max_rounds; ++round) {
        std::string mode = "auto";
        if (!reg || round == max_rounds - 1)
            mode = "none";
        else if (round == 0 && opt_.tool_choice == "required")
            mode = "forced";
        turn_plan p = plan;
        std::vector<std::string> stop = std::move(p.stop);
        std::shared_ptr<const engine::grammar> constraint;
        std::string trigger;
        if (mode == "forced") {
            p.prompt.insert(p.prompt.end(), call_tag_.begin(), call_tag_.end());
            constraint = g_forced_;
        } else if (mode == "auto") {
            constraint = g_auto_;
            trigger = "<tool_call>";
            stop.push_back("</tool_call>");
        }
        // A forced call gets room to finish (its strings are bounded); the reply keeps the turn's budget.
        const int32_t gen_budget = mode == "forced" ? std::max(budget, k_call_tokens) : budget;
        bool windowed = false;
        if (!fit_prompt(p, gen_budget, windowed)) {
            res.context_full = true;
            break;
        }
        res.windowed = res.windowed || windowed;
        const uint64_t seed = opt_.seed + static_cast<uint64_t>(idx) + static_cast<uint64_t>(round) * 0x9E3779B9ull;
        auto g = generate(std::move(p.prompt), std::move(stop), gen_budget, seed, true, std::move(constraint), trigger,
                          live ? play_character_session_id(sc_, cid) : std::string());
        res.info.n_prompt += g.info.n_prompt;
        res.info.n_reused += g.info.n_reused;
        res.info.n_generated += g.info.n_generated;
        res.seconds += g.seconds;
        if (g.context_full) {
            res.context_full = true;
            break;
        }
        tools::parsed_output calls;
        if (mode != "none") calls = extract_tool_calls(g.text, mode == "forced");
        if (calls.calls.empty()) {
            res.text = g.text;
            break;
        }
        // The call(s) and their results: run now, appended to the context, recorded for the game log.
        std::string content = mode == "forced" ? std::string() : calls.content;
        for (const auto& c : calls.calls)
            content += (content.empty() ? "" : "\n") + hermes_tool_call(c.name, c.arguments);
        json rd = {{"content", content}, {"calls", json::array()}};
        std::vector<engine::chat_message> msgs{{"assistant", content}};
        std::vector<json> extra{{{"kind", "tool_call"}, {"round", round}}};
        out("\n");
        for (const auto& c : calls.calls) {
            json r = run_tool_call(*reg, c);
            if (c.name == "recall" && r.contains("result") && r["result"].contains("hits"))
                for (auto& h : r["result"]["hits"]) h.erase("time");
            json call = {{"name", c.name}, {"arguments", c.arguments}};
            call.update(r);
            const json shown = r.contains("result") ? r["result"] : json{{"error", r["error"]}};
            out("  [tool] " + c.name + " " + c.arguments.dump() + " -> " + shown.dump() + "\n");
            msgs.push_back({"tool", tools::render_tool_response(c.name, shown)});
            extra.push_back({{"kind", "tool_result"}, {"name", c.name}, {"round", round}});
            rd["calls"].push_back(std::move(call));
            res.called.push_back(c.name);
        }
        res.rounds.push_back(std::move(rd));
        auto next = append(msgs, extra);
        if (!next) return next.error();
        plan = std::move(next.value());
    }
    return res;
}

// The names of the tools a step's generations called (from its event).
std::vector<std::string> tools_called(const json& ev) {
    std::vector<std::string> v;
    if (auto rounds = ev.find("rounds"); rounds != ev.end() && rounds->is_array())
        for (const auto& rd : *rounds)
            for (const auto& c : rd.value("calls", json::array())) v.push_back(c.value("name", ""));
    return v;
}

// Rebuilds the packs and notes from the calls of the completed turns (probes
// ran on copies and changed nothing).
void game::replay_tool_calls(const std::vector<json>& done) {
    for (const auto& ev : done) {
        if (ev.value("kind", "") != "turn") continue;
        for (const auto& rd : ev.value("rounds", json::array()))
            for (const auto& c : rd.value("calls", json::array())) {
                if (!c.contains("result")) continue;
                const std::string name = c.value("name", "");
                const json args = c.value("arguments", json::object());
                if (name == "note")
                    tools_.notes.push_back(args.value("text", ""));
                else if (name == "add_item" || name == "remove_item")
                    game_tool_handler(name, tools_)(args, [](result<json>) {});
            }
    }
}

result<json> game::run_step(int64_t idx) {
    const step& s = steps_[static_cast<size_t>(idx)];
    json ev = {
        {"type", "step"},       {"idx", idx}, {"kind", step_kind_name(s.kind)}, {"phase", sc_.phases[s.phase_idx].id},
        {"speaker", s.speaker}, {"to", s.to}};
    if (!s.audience.empty()) ev["audience"] = s.audience;
    const int32_t turn_budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_turn;
    const int32_t probe_budget = opt_.max_tokens > 0 ? opt_.max_tokens : sc_.budgets.max_tokens_per_probe;
    const std::string head = display_name(s.speaker) + " -> " + display_name(s.to) + ": ";

    if (s.kind == step_kind::probe) {
        // On a copy: the question and any tool calls go to a fork of the context, tools act on a copy of the packs.
        std::vector<engine::chat_message> msgs;
        {
            auto sess = chars_.at(s.speaker);
            std::lock_guard lk(sess->mu);
            msgs = sess->messages;
        }
        msgs.push_back({"user", s.probe->question});
        tool_state copy = tools_;
        auto fork = [this, &msgs](const std::vector<engine::chat_message>& more,
                                  const std::vector<json>&) -> result<turn_plan> {
            msgs.insert(msgs.end(), more.begin(), more.end());
            return plan_for_messages(*model_, msgs);
        };
        out("[probe " + s.probe->id + "] " + display_name(s.speaker) + ", " + s.probe->question + "\n  answer: ");
        auto g = run_agent(s.speaker, plan_for_messages(*model_, msgs), &copy, probe_budget, idx, fork, false);
        if (!g) return g.error();
        auto sc = score_probe(*s.probe, g->text, g->called);
        if (g->context_full) sc.passed = false;
        out(std::string(g->context_full ? "(context full)" : "") + "\n  " + (sc.passed ? "PASS" : "FAIL") + "\n");
        ev["probe"] = s.probe->id;
        ev["text"] = g->text;
        if (!g->rounds.empty()) ev["rounds"] = g->rounds;
        ev["passed"] = sc.passed;
        if (g->context_full) ev["context_full"] = true;
        if (g->windowed) ev["windowed"] = true;
        rep_.timings.push_back(
            {idx, "probe", s.speaker, g->seconds, g->info.n_prompt, g->info.n_reused, g->info.n_generated});
        return ev;
    }
    if (s.kind == step_kind::turn) {
        auto sess = chars_.at(s.speaker);
        auto plan = sessions_->begin_turn(sess, {{"user", cue(s)}});
        if (!plan) return plan.error();
        out(head);
        auto live = [this, &sess](const std::vector<engine::chat_message>& msgs,
                                  const std::vector<json>& extra) -> result<turn_plan> {
            return sessions_->continue_turn(sess, msgs, extra);
        };
        auto g = run_agent(s.speaker, std::move(plan.value()), &tools_, turn_budget, idx, live, true);
        if (!g) {
            sessions_->end_turn(sess, {}, false);
            return g.error();
        }
        out(g->context_full ? "(context full)\n" : "\n");
        if (auto st = sessions_->end_turn(sess, g->text, !g->context_full); !st.ok()) return st;
        ev["text"] = g->text;
        if (!g->rounds.empty()) ev["rounds"] = g->rounds;
        if (g->context_full) ev["context_full"] = true;
        if (g->windowed) ev["windowed"] = true;
        auto& cr = char_rep_[s.speaker];
        cr.n_generated += g->info.n_generated;
        rep_.timings.push_back(
            {idx, "turn", s.speaker, g->seconds, g->info.n_prompt, g->info.n_reused, g->info.n_generated});
        std::vector<effect> rest;
        for (auto& e : effects(ev))
            if (e.character != s.speaker) rest.push_back(std::move(e));
        if (auto st = apply(rest); !st.ok()) return st;
        return ev;
    }
    std::string text = s.text;
    if (s.player_input) {
        text = opt_.ask_player ? opt_.ask_player(display_name(s.speaker)) : std::string();
        if (text.empty()) ev["skipped"] = true;
    }
    ev["text"] = text;
    if (!text.empty())
        out((s.kind == step_kind::line ? head : "[" + std::string(step_kind_name(s.kind)) + "] ") + text + "\n");
    if (auto st = apply(effects(ev)); !st.ok()) return st;
    return ev;
}

std::string game::transcript_line(const json& ev) const {
    const std::string kind = ev.value("kind", "");
    const std::string speaker = ev.value("speaker", "");
    const std::string text = ev.value("text", "");
    std::string calls;  // the step's tool calls, one line each, before its text
    for (const auto& rd : ev.value("rounds", json::array()))
        for (const auto& c : rd.value("calls", json::array()))
            calls += "  [tool] " + c.value("name", "") + " " + c.value("arguments", json::object()).dump() + " -> " +
                     (c.contains("result") ? c["result"].dump() : "error: " + c.value("error", "")) + "\n";
    if (kind == "probe") {
        const auto* p = sc_.find_character(speaker);
        std::string q;
        for (const auto& pr : sc_.probes)
            if (pr.id == ev.value("probe", "")) q = pr.question;
        return "[probe " + ev.value("probe", "") + " -> " + (p ? p->name : speaker) + "] " + q + "\n" + calls +
               "  answer: " + text + "\n  " + (ev.value("passed", false) ? "PASS" : "FAIL") + "\n";
    }
    if (kind == "narration" || kind == "clue") return "[" + kind + "] " + text + "\n";
    std::string s = calls + display_name(speaker) + " -> " + display_name(ev.value("to", "all")) + ": " + text;
    if (ev.value("context_full", false)) s += "(context full)";
    if (ev.value("skipped", false)) s += "(no input)";
    return s + "\n";
}

result<play_report> game::run(std::shared_ptr<const engine::model> m) {
    const auto t_start = steady::now();
    model_ = std::move(m);
    game_id_ = play_game_session_id(sc_);
    rep_.scenario_id = sc_.id;
    rep_.game_session_id = game_id_;
    rep_.n_steps = static_cast<int64_t>(steps_.size());
    if (opt_.resume && opt_.store_dir.empty())
        return make_error(errc::invalid_argument, "resume needs a store (--store DIR)");

    engine::engine_options eo;
    eo.n_threads = opt_.n_threads;
    eo.n_ctx = opt_.n_ctx;
    eo.attention = opt_.attention;
    eo.kv_bytes = opt_.kv_bytes;
    auto r = engine_runner::start(model_, eo);
    if (!r) return r.error();
    runner_ = std::move(r.value());
    if (!opt_.store_dir.empty()) {
        memory::store_options mo;
        mo.path = opt_.store_dir;
        auto opened = memory::store::open(mo);
        if (!opened) return opened.error();
        db_ = std::move(opened.value());
        memory::store* raw = db_.get();
        runner_->run_on_engine_thread([raw](engine::engine& e) { e.kv().set_store(&raw->blocks()); });
        store_ = make_durable_session_store(*db_, model_->fingerprint(), k_page_size);
    } else {
        store_ = make_memory_session_store();
    }
    sessions_ = std::make_unique<session_manager>(*model_, *store_);
    sessions_->set_shared_prefix(game_id_, shared_prefix_text(sc_));
    call_tag_ = model_->tok().encode("<tool_call>\n", false, false);
    if (opt_.tool_choice != "auto" && opt_.tool_choice != "required")
        return make_error(errc::invalid_argument, "tool_choice must be \"auto\" or \"required\"");
    for (const auto& c : sc_.characters) {
        if (c.role != character_role::game_master || (sc_.tools.builtin.empty() && sc_.tools.game.empty())) continue;
        // The game master of a scenario with tools is an agent: its calls are decoded under the grammar of the
        // scenario's tools (any call it starts is valid JSON for one of them).
        tool_state scratch;
        auto reg = make_tools(scratch, c.id, 0);
        engine::grammar_options go;
        auto forced = reg->call_grammar(go);
        go.max_leading_whitespace = 1;
        auto after_tag = reg->call_grammar(go);
        if (!forced || !after_tag)
            return make_error(errc::invalid_argument,
                              "the scenario's tools: " + (forced ? after_tag.error() : forced.error()).message());
        g_forced_ = forced.value();
        g_auto_ = after_tag.value();
        tools_prompt_ = tools::render_tools_prompt(*reg);
        break;
    }
    if (opt_.on_runtime) {
        handed_out_ = true;
        opt_.on_runtime(*runner_, *sessions_);
    }

    // The game log: what is done.
    std::vector<json> done;
    if (auto meta_text = store_->get_session(game_id_); meta_text.ok()) {
        if (!opt_.resume)
            return make_error(errc::already_exists, "the store already holds game '" + game_id_ +
                                                        "'; pass --resume to continue it, or use another store");
        // Different sampling settings still resume, but the game will not equal an uninterrupted run.
        const json meta = json::parse(meta_text.value(), nullptr, false);
        if (meta.is_object() &&
            (meta.value("temperature", 0.0) != static_cast<double>(opt_.temperature) ||
             meta.value("seed", uint64_t(0)) != opt_.seed || meta.value("max_tokens", 0) != opt_.max_tokens))
            progress("[play] note: the game was started with temperature " + meta.value("temperature", json()).dump() +
                     ", seed " + meta.value("seed", json()).dump() + ", max tokens " +
                     meta.value("max_tokens", json()).dump() + "; continuing with this run's settings");
        auto evs = store_->read_events(game_id_);
        if (!evs) return evs.error();
        for (const auto& e : evs.value()) {
            json ev = json::parse(e, nullptr, false);
            if (ev.is_discarded() || !ev.is_object() || ev.value("type", "") != "step") continue;
            const int64_t idx = static_cast<int64_t>(done.size());
            if (ev.value("idx", int64_t(-1)) != idx || idx >= rep_.n_steps ||
                ev.value("kind", "") != step_kind_name(steps_[static_cast<size_t>(idx)].kind))
                return make_error(errc::corrupt, "game log of '" + game_id_ + "' does not match the scenario at step " +
                                                     std::to_string(idx));
            done.push_back(std::move(ev));
        }
    } else {
        json meta = {{"kind", "game"},
                     {"scenario", sc_.id},
                     {"temperature", opt_.temperature},
                     {"seed", opt_.seed},
                     {"max_tokens", opt_.max_tokens}};
        if (auto st = store_->put_session(game_id_, meta.dump()); !st.ok()) return st;
    }
    rep_.n_steps_resumed = static_cast<int64_t>(done.size());
    if (!done.empty())
        progress("[play] resuming " + game_id_ + " at step " + std::to_string(done.size()) + "/" +
                 std::to_string(rep_.n_steps));
    replay_tool_calls(done);
    if (auto st = setup_sessions(done); !st.ok()) return st;
    if (auto st = warm_prefix(); !st.ok()) return st;

    // Play the rest, phase by phase.
    size_t cur_phase = SIZE_MAX;
    auto phase_t0 = steady::now();
    int64_t phase_steps = 0;
    auto end_phase = [&] {
        if (cur_phase == SIZE_MAX) return;
        char buf[160];
        std::snprintf(buf, sizeof buf, "[play] phase %s done: %lld steps in %.2f s", sc_.phases[cur_phase].id.c_str(),
                      static_cast<long long>(phase_steps), seconds_since(phase_t0));
        progress(buf);
    };
    for (int64_t idx = static_cast<int64_t>(done.size()); idx < rep_.n_steps; ++idx) {
        if (opt_.max_steps >= 0 && idx >= opt_.max_steps) break;
        const step& s = steps_[static_cast<size_t>(idx)];
        if (s.phase_idx != cur_phase) {
            end_phase();
            cur_phase = s.phase_idx;
            phase_t0 = steady::now();
            phase_steps = 0;
            int64_t n = 0;
            for (const auto& x : steps_) n += x.phase_idx == cur_phase;
            const auto& ph = sc_.phases[cur_phase];
            progress("[play] phase " + std::to_string(cur_phase + 1) + "/" + std::to_string(sc_.phases.size()) + " " +
                     ph.id + " (" + phase_kind_name(ph.kind) + ") " + ph.title + ": " + std::to_string(n) + " steps");
        }
        auto ev = run_step(idx);
        if (!ev) return ev.error();
        auto seq = sessions_->append_raw_event(game_id_, ev.value());
        if (!seq) return seq.error();
        done.push_back(std::move(ev.value()));
        ++phase_steps;
        if (opt_.on_step) opt_.on_step(idx, rep_.n_steps);
    }
    end_phase();

    // Results.
    for (const auto& ev : done) {
        if (ev.value("kind", "") != "probe") continue;
        for (const auto& p : sc_.probes)
            if (p.id == ev.value("probe", "")) {
                probe_result pr{p.id,
                                p.asked_to,
                                p.question,
                                ev.value("text", ""),
                                score_probe(p, ev.value("text", ""), tools_called(ev)),
                                ev.value("context_full", false),
                                tools_called(ev)};
                if (pr.context_full) pr.score.passed = false;
                rep_.n_probes_passed += pr.score.passed;
                rep_.probes.push_back(std::move(pr));
            }
    }
    for (const auto& ev : done) {
        if (ev.value("windowed", false)) ++rep_.n_windowed;
        if (ev.value("kind", "") != "turn") continue;
        if (!ev.value("context_full", false)) ++char_rep_[ev.value("speaker", "")].n_turns;
        const auto& st = steps_[static_cast<size_t>(ev.value("idx", int64_t(0)))];
        if (st.expect_tools.empty()) continue;
        tool_turn_result tt{ev.value("idx", int64_t(0)), st.speaker, st.expect_tools, tools_called(ev), {}, false};
        for (const auto& want : st.expect_tools)
            if (std::find(tt.called.begin(), tt.called.end(), want) == tt.called.end()) tt.missing.push_back(want);
        tt.passed = tt.missing.empty();
        rep_.n_tool_turns_passed += tt.passed;
        rep_.tool_turns.push_back(std::move(tt));
    }
    for (const auto& c : sc_.characters) {
        auto& cr = char_rep_[c.id];
        auto s = chars_[c.id];
        std::lock_guard lk(s->mu);
        cr.n_tokens = static_cast<int64_t>(s->tokens.size());
        rep_.characters.push_back(cr);
    }
    std::promise<engine::kv_cache_stats> kvp;
    runner_->run_on_engine_thread([&kvp](engine::engine& e) { kvp.set_value(e.kv().stats()); });
    const auto kv = kvp.get_future().get();
    rep_.hits_resident = kv.hits_resident;
    rep_.hits_store = kv.hits_store;
    rep_.misses = kv.misses;
    rep_.seconds = seconds_since(t_start);

    std::string tr = sc_.title + "\n";
    size_t last_phase = SIZE_MAX;
    for (size_t i = 0; i < done.size(); ++i) {
        if (steps_[i].phase_idx != last_phase) {
            last_phase = steps_[i].phase_idx;
            tr += "\n== " + sc_.phases[last_phase].title + " ==\n";
        }
        tr += transcript_line(done[i]);
    }
    rep_.transcript = std::move(tr);

    json res = {{"scenario", sc_.id},       {"title", sc_.title},
                {"game_session", game_id_}, {"temperature", opt_.temperature},
                {"seed", opt_.seed},        {"max_tokens", opt_.max_tokens},
                {"steps", rep_.n_steps},    {"steps_resumed", rep_.n_steps_resumed},
                {"seconds", rep_.seconds}};
    json probes = json::array();
    for (const auto& p : rep_.probes)
        probes.push_back({{"id", p.id},
                          {"asked_to", p.asked_to},
                          {"question", p.question},
                          {"answer", p.answer},
                          {"passed", p.score.passed},
                          {"missing", p.score.missing},
                          {"revealed", p.score.revealed},
                          {"tools_called", p.tools_called},
                          {"tools_missing", p.score.tools_missing},
                          {"context_full", p.context_full}});
    res["probes"] = probes;
    json tool_turns = json::array();
    for (const auto& t : rep_.tool_turns)
        tool_turns.push_back({{"step", t.step_idx},
                              {"speaker", t.speaker},
                              {"expected", t.expected},
                              {"called", t.called},
                              {"missing", t.missing},
                              {"passed", t.passed}});
    res["tool_turns"] = tool_turns;
    res["tool_score"] = {{"passed", rep_.n_tool_turns_passed}, {"total", rep_.tool_turns.size()}};
    res["context"] = {
        {"n_ctx", runner_->n_ctx()},
        {"window_tokens", window()},
        {"windowed_steps", rep_.n_windowed},
        {"policy",
         "a generation whose context (plus room to answer) exceeds the window sees the character's system text "
         "(shared prefix and character) and its most recent messages that fit; older messages stay in the "
         "durable log, reachable only through recall where the scenario offers it"}};
    const size_t n_probes = rep_.probes.size();
    res["score"] = {{"passed", rep_.n_probes_passed},
                    {"total", n_probes},
                    {"fraction", n_probes ? double(rep_.n_probes_passed) / double(n_probes) : 0.0}};
    json chars = json::array();
    for (const auto& c : rep_.characters)
        chars.push_back({{"id", c.id},
                         {"session", c.session_id},
                         {"tokens", c.n_tokens},
                         {"generated", c.n_generated},
                         {"turns", c.n_turns},
                         {"system_tokens", c.n_system_tokens},
                         {"prefix_reused", c.n_prefix_reused}});
    res["characters"] = chars;
    res["prefix_cache"] = {
        {"hits_resident", rep_.hits_resident}, {"hits_store", rep_.hits_store}, {"misses", rep_.misses}};
    json turns = json::array();
    for (const auto& t : rep_.timings)
        turns.push_back({{"step", t.step_idx},
                         {"kind", t.kind},
                         {"speaker", t.speaker},
                         {"seconds", t.seconds},
                         {"prompt", t.n_prompt},
                         {"reused", t.n_reused},
                         {"generated", t.n_generated}});
    res["turns"] = turns;
    rep_.results_json = res.dump(2);

    auto write = [](const std::string& path, const std::string& text) -> status {
        if (path.empty()) return {};
        std::ofstream f(path, std::ios::binary);
        f << text;
        if (!f) return make_error(errc::io_error, "cannot write " + path);
        return {};
    };
    if (auto st = write(opt_.transcript_path, rep_.transcript); !st.ok()) return st;
    if (auto st = write(opt_.results_path, rep_.results_json + "\n"); !st.ok()) return st;
    teardown();
    return std::move(rep_);
}

}  // namespace

std::string play_game_session_id(const scenario& sc) { return sanitize_id(sc.id) + ".game"; }

std::string play_character_session_id(const scenario& sc, std::string_view character_id) {
    return sanitize_id(sc.id) + "." + sanitize_id(character_id);
}

result<play_report> play_scenario(const scenario& sc, std::shared_ptr<const engine::model> m,
                                  const play_options& options) {
    if (!m) return make_error(errc::invalid_argument, "no model");
    game g(sc, options);
    return g.run(std::move(m));
}

}  // namespace mnemos::agent
