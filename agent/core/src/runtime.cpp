// engine_runner, sessions, characters (agent/runtime.h).
#include "agent/core/runtime.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

namespace mnemos::agent {

using json = nlohmann::json;

// ---------------------------------------------------------------------------
// engine_runner
// ---------------------------------------------------------------------------

result<std::unique_ptr<engine_runner>> engine_runner::start(std::shared_ptr<const engine::model> m,
                                                            const engine::engine_options& options) {
    auto e = engine::engine::create(m, options);
    if (!e) return e.error();
    std::unique_ptr<engine_runner> r(new engine_runner());
    r->model_ = std::move(m);
    r->engine_ = std::move(e.value());
    r->n_ctx_ = r->engine_->n_ctx();
    r->history_limit_ = r->engine_->max_sequence_tokens();
    r->attention_ = r->engine_->attention();
    r->kv_snap_ = r->engine_->kv().stats();
    r->thread_ = std::thread([p = r.get()] { p->loop(); });
    return r;
}

engine_runner::~engine_runner() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

engine::seq_id engine_runner::submit(engine::request r) {
    n_in_flight_.fetch_add(1);
    auto finish = std::move(r.on_finish);
    r.on_finish = [this, finish = std::move(finish)](const engine::finish_info& info) {
        n_in_flight_.fetch_sub(1);
        if (finish) finish(info);
    };
    const engine::seq_id id = engine_->submit(std::move(r));
    {
        std::lock_guard lk(mu_);
        wake_ = true;
    }
    cv_.notify_one();
    return id;
}

void engine_runner::cancel(engine::seq_id id) {
    engine_->cancel(id);
    {
        std::lock_guard lk(mu_);
        wake_ = true;
    }
    cv_.notify_one();
}

void engine_runner::run_on_engine_thread(std::function<void(engine::engine&)> fn) {
    {
        std::lock_guard lk(mu_);
        tasks_.push_back(std::move(fn));
        wake_ = true;
    }
    cv_.notify_one();
}

engine::engine_stats engine_runner::stats() const {
    std::lock_guard lk(mu_);
    return stats_snap_;
}

engine::kv_cache_stats engine_runner::kv_stats() const {
    std::lock_guard lk(mu_);
    return kv_snap_;
}

void engine_runner::loop() {
    for (;;) {
        std::vector<std::function<void(engine::engine&)>> tasks;
        {
            std::lock_guard lk(mu_);
            if (stop_) return;
            tasks.swap(tasks_);
            wake_ = false;
        }
        for (auto& t : tasks) t(*engine_);
        const bool did = engine_->step();
        {
            std::unique_lock lk(mu_);
            stats_snap_ = engine_->stats();
            kv_snap_ = engine_->kv().stats();
            if (!did) cv_.wait(lk, [&] { return wake_ || stop_; });
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        int len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (i + len > n) return false;
        for (int k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

std::string random_hex(size_t n) {
    static thread_local std::mt19937_64 rng(
        std::random_device{}() ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
    static const char* digits = "0123456789abcdef";
    std::string s(n, '0');
    for (auto& c : s) c = digits[rng() & 15];
    return s;
}

static int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string character_system_prompt(const character& c, const std::string& shared_prefix_text) {
    std::string s;
    auto section = [&](const std::string& title, const std::string& text) {
        if (text.empty()) return;
        if (!s.empty()) s += "\n\n";
        if (!title.empty()) s += title + ":\n";
        s += text;
    };
    auto list = [](const std::vector<std::string>& v) {
        std::string r;
        for (const auto& x : v) r += (r.empty() ? "- " : "\n- ") + x;
        return r;
    };
    section("", shared_prefix_text);
    if (!c.persona.empty())
        section("", c.persona);
    else if (!c.name.empty())
        section("", "You are " + c.name + ".");
    // Secrets and goals are short and decisive: they come before the knowledge sections, which can be whole
    // scripts of thousands of tokens, so they sit near the persona whatever the length of the rest.
    section("Secrets (never reveal)", list(c.secrets));
    section("Goals", list(c.goals));
    section("Public knowledge", c.public_knowledge);
    section("Private knowledge (do not reveal unless appropriate)", c.private_knowledge);
    return s;
}

json character_to_json(const character& c, bool include_private) {
    json j = {{"name", c.name}, {"public_knowledge", c.public_knowledge}};
    if (!c.shared_prefix.empty()) j["shared_prefix"] = c.shared_prefix;
    if (include_private) {
        j["persona"] = c.persona;
        j["private_knowledge"] = c.private_knowledge;
        j["secrets"] = c.secrets;
        j["goals"] = c.goals;
    }
    return j;
}

result<character> character_from_json(const json& j) {
    if (!j.is_object()) return make_error(errc::invalid_argument, "character must be an object");
    character c;
    auto str = [&](const char* key, std::string& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (!it->is_string())
            return make_error(errc::invalid_argument, std::string("character.") + key + " must be a string");
        out = it->get<std::string>();
        if (!valid_utf8(out))
            return make_error(errc::invalid_argument, std::string("character.") + key + " is not valid UTF-8");
        return {};
    };
    auto strs = [&](const char* key, std::vector<std::string>& out) -> status {
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return {};
        if (it->is_string()) {
            out.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& e : *it) {
                if (!e.is_string())
                    return make_error(errc::invalid_argument, std::string("character.") + key + " must hold strings");
                out.push_back(e.get<std::string>());
            }
        } else {
            return make_error(errc::invalid_argument, std::string("character.") + key + " must be an array of strings");
        }
        for (const auto& x : out)
            if (!valid_utf8(x))
                return make_error(errc::invalid_argument, std::string("character.") + key + " is not valid UTF-8");
        return {};
    };
    std::string system_prompt;
    for (auto st : {str("name", c.name), str("persona", c.persona), str("system_prompt", system_prompt),
                    str("public_knowledge", c.public_knowledge), str("private_knowledge", c.private_knowledge),
                    strs("secrets", c.secrets), strs("goals", c.goals), str("shared_prefix", c.shared_prefix)})
        if (!st.ok()) return st;
    if (c.persona.empty()) c.persona = system_prompt;
    return c;
}

// ---------------------------------------------------------------------------
// memory_session_store
// ---------------------------------------------------------------------------

namespace {

class memory_session_store final : public session_store_i {
  public:
    status put_session(const std::string& id, const std::string& meta_json) override {
        std::lock_guard lk(mu_);
        meta_[id] = meta_json;
        return {};
    }
    result<std::string> get_session(const std::string& id) override {
        std::lock_guard lk(mu_);
        auto it = meta_.find(id);
        if (it == meta_.end()) return make_error(errc::not_found, "no session '" + id + "'");
        return it->second;
    }
    std::vector<std::string> list_sessions() override {
        std::lock_guard lk(mu_);
        std::vector<std::string> v;
        for (auto& [k, _] : meta_)
            if (k != k_prefix_log_id) v.push_back(k);
        return v;
    }
    status delete_session(const std::string& id) override {
        std::lock_guard lk(mu_);
        if (!meta_.erase(id)) return make_error(errc::not_found, "no session '" + id + "'");
        events_.erase(id);
        return {};
    }
    result<uint64_t> append_event(const std::string& id, const std::string& event_json) override {
        std::lock_guard lk(mu_);
        auto& v = events_[id];
        v.push_back(event_json);
        return static_cast<uint64_t>(v.size() - 1);
    }
    result<std::vector<std::string>> read_events(const std::string& id) override {
        std::lock_guard lk(mu_);
        if (!meta_.count(id)) return make_error(errc::not_found, "no session '" + id + "'");
        auto it = events_.find(id);
        if (it == events_.end()) return std::vector<std::string>{};
        return it->second;
    }

  private:
    std::mutex mu_;
    std::map<std::string, std::string> meta_;
    std::map<std::string, std::vector<std::string>> events_;
};

bool valid_session_id(const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
    return true;
}

}  // namespace

std::unique_ptr<session_store_i> make_memory_session_store() { return std::make_unique<memory_session_store>(); }

status session_store_i::put_prefix(const std::string& id, const std::string& text) {
    if (!get_session(k_prefix_log_id).ok()) {
        const json meta = {{"id", k_prefix_log_id}, {"reserved", "shared prefixes"}};
        if (auto st = put_session(k_prefix_log_id, meta.dump()); !st.ok()) return st;
    }
    const json ev = {{"type", "prefix"}, {"id", id}, {"text", text}, {"ts", unix_now()}};
    auto r = append_event(k_prefix_log_id, ev.dump());
    if (!r) return r.error();
    return {};
}

std::map<std::string, std::string> session_store_i::load_prefixes() {
    std::map<std::string, std::string> out;
    auto evs = read_events(k_prefix_log_id);
    if (!evs) return out;
    for (const auto& e : evs.value()) {
        const json ev = json::parse(e, nullptr, false);
        if (!ev.is_object() || ev.value("type", "") != "prefix") continue;
        if (!ev.contains("id") || !ev["id"].is_string() || !ev.contains("text") || !ev["text"].is_string()) continue;
        out[ev["id"].get<std::string>()] = ev["text"].get<std::string>();
    }
    return out;
}

// ---------------------------------------------------------------------------
// session_manager
// ---------------------------------------------------------------------------

session_manager::session_manager(const engine::model& m, session_store_i& store)
    : model_(m), store_(store), prefixes_(store.load_prefixes()) {}

status session_manager::put_shared_prefix(const std::string& id, std::string text) {
    if (!valid_session_id(id))
        return make_error(errc::invalid_argument, "prefix id must be 1-64 characters of [A-Za-z0-9_.-]");
    if (auto st = store_.put_prefix(id, text); !st.ok()) return st;
    set_shared_prefix(id, std::move(text));
    return {};
}

std::map<std::string, std::string> session_manager::shared_prefixes() const {
    std::lock_guard lk(mu_);
    return prefixes_;
}

void session_manager::set_shared_prefix(const std::string& id, std::string text) {
    std::lock_guard lk(mu_);
    prefixes_[id] = std::move(text);
}

std::optional<std::string> session_manager::shared_prefix(const std::string& id) const {
    std::lock_guard lk(mu_);
    auto it = prefixes_.find(id);
    if (it == prefixes_.end()) return std::nullopt;
    return it->second;
}

size_t session_manager::n_resident() const {
    std::lock_guard lk(mu_);
    return sessions_.size();
}

void session_manager::append_tokens(session& s, size_t msg_idx) {
    s.message_starts.push_back(static_cast<int32_t>(s.tokens.size()));
    // Markup only yields special tokens; message content is plain text (no control-token injection).
    const auto& tok = model_.tok();
    auto t = model_.chat().encode_message(tok, s.messages, msg_idx, s.tokens.empty() && tok.add_bos_default());
    s.tokens.insert(s.tokens.end(), t.begin(), t.end());
}

status session_manager::append_event(session& s, const engine::chat_message& m, const json* extra) {
    json ev = {{"type", "message"}, {"role", m.role}, {"content", m.content}, {"ts", unix_now()}};
    if (extra && extra->is_object())
        for (auto it = extra->begin(); it != extra->end(); ++it)
            if (!ev.contains(it.key())) ev[it.key()] = it.value();
    const std::string text = ev.dump();
    auto r = store_.append_event(s.id, text);
    if (!r) return r.error();
    notify(s.id, r.value(), text);
    return {};
}

void session_manager::set_event_observer(event_observer fn) {
    std::lock_guard lk(observer_mu_);
    observer_ = fn ? std::make_shared<const event_observer>(std::move(fn)) : nullptr;
}

void session_manager::notify(const std::string& id, uint64_t seq, const std::string& event_json) const {
    std::shared_ptr<const event_observer> fn;
    {
        std::lock_guard lk(observer_mu_);
        fn = observer_;
    }
    if (fn) (*fn)(id, seq, event_json);
}

void session_manager::set_token_observer(token_observer fn) {
    std::lock_guard lk(observer_mu_);
    token_observer_ = fn ? std::make_shared<const token_observer>(std::move(fn)) : nullptr;
}

void session_manager::notify_token(const std::string& id, std::string_view text) const {
    std::shared_ptr<const token_observer> fn;
    {
        std::lock_guard lk(observer_mu_);
        fn = token_observer_;
    }
    if (fn && !text.empty()) (*fn)(id, text);
}

result<session_ptr> session_manager::create(std::string id, character chr, std::string owner_key,
                                            std::string system_extra, std::string agent_json) {
    if (id.empty()) id = "s_" + random_hex(16);
    if (!valid_session_id(id))
        return make_error(errc::invalid_argument, "session id must be 1-64 characters of [A-Za-z0-9_.-]");
    std::optional<std::string> prefix_text;
    if (!chr.shared_prefix.empty()) {
        prefix_text = shared_prefix(chr.shared_prefix);
        if (!prefix_text)
            return make_error(errc::invalid_argument, "unknown shared_prefix '" + chr.shared_prefix + "'");
    }
    auto s = std::make_shared<session>();
    s->id = id;
    s->chr = std::move(chr);
    s->owner_key = std::move(owner_key);
    s->created = unix_now();
    s->agent_json = std::move(agent_json);
    if (store_.get_session(id).ok()) return make_error(errc::already_exists, "session '" + id + "' exists");
    // Reserved in the map before anything is written: a find() that runs while the session is being
    // written (an event observer checking access) sees this object instead of loading a second copy
    // from the store, and a concurrent create of the same id is refused.
    std::unique_lock slk(s->mu);
    {
        std::lock_guard lk(mu_);
        if (!sessions_.emplace(id, s).second) return make_error(errc::already_exists, "session '" + id + "' exists");
    }
    auto unreserve = [&](status st) {
        std::lock_guard lk(mu_);
        if (auto it = sessions_.find(id); it != sessions_.end() && it->second == s) sessions_.erase(it);
        return st;
    };
    json meta = {
        {"id", id}, {"character", character_to_json(s->chr, true)}, {"owner", s->owner_key}, {"created", s->created}};
    if (!s->agent_json.empty()) {
        json a = json::parse(s->agent_json, nullptr, false);
        if (!a.is_discarded()) meta["agent"] = a;
    }
    if (auto st = store_.put_session(id, meta.dump()); !st.ok()) return unreserve(st);
    std::string sys = character_system_prompt(s->chr, prefix_text.value_or(""));
    if (!system_extra.empty()) sys += (sys.empty() ? "" : "\n\n") + system_extra;
    if (!sys.empty()) {
        s->messages.push_back({"system", sys});
        if (auto st = append_event(*s, s->messages.back()); !st.ok()) return unreserve(st);
        append_tokens(*s, 0);
    }
    return s;
}

result<session_ptr> session_manager::find(const std::string& id) {
    {
        std::lock_guard lk(mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) return it->second;
    }
    if (!valid_session_id(id)) return make_error(errc::not_found, "no session '" + id + "'");
    // Resume from the store: metadata, then re-render every message event.
    auto meta_text = store_.get_session(id);
    if (!meta_text) return meta_text.error();
    json meta = json::parse(meta_text.value(), nullptr, false);
    if (meta.is_discarded() || !meta.is_object()) return make_error(errc::corrupt, "session '" + id + "' metadata");
    auto s = std::make_shared<session>();
    s->id = id;
    if (meta.contains("character")) {
        auto c = character_from_json(meta["character"]);
        if (c) s->chr = std::move(c.value());
    }
    if (meta.contains("owner") && meta["owner"].is_string()) s->owner_key = meta["owner"].get<std::string>();
    if (meta.contains("created") && meta["created"].is_number_integer()) s->created = meta["created"].get<int64_t>();
    if (meta.contains("agent") && meta["agent"].is_object()) s->agent_json = meta["agent"].dump();
    auto evs = store_.read_events(id);
    if (!evs) return evs.error();
    for (const auto& e : evs.value()) {
        json ev = json::parse(e, nullptr, false);
        if (ev.is_discarded() || !ev.is_object() || ev.value("type", "") != "message") continue;
        if (!ev.contains("role") || !ev["role"].is_string() || !ev.contains("content") || !ev["content"].is_string())
            continue;
        s->messages.push_back({ev["role"].get<std::string>(), ev["content"].get<std::string>()});
        append_tokens(*s, s->messages.size() - 1);
        if (s->messages.back().role == "assistant" && !ev.contains("kind")) ++s->n_turns;  // not a tool call
    }
    std::lock_guard lk(mu_);
    auto [it, inserted] = sessions_.emplace(id, s);
    return it->second;
}

status session_manager::remove(const std::string& id) {
    session_ptr s;
    {
        std::lock_guard lk(mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) {
            s = it->second;
            sessions_.erase(it);
        }
    }
    auto st = store_.delete_session(id);
    if (!st.ok() && s && st.code() == errc::not_found) return {};
    return st;
}

result<std::vector<std::string>> session_manager::events(const std::string& id) {
    auto s = find(id);
    if (!s) return s.error();
    return store_.read_events(id);
}

result<turn_plan> session_manager::begin_turn(const session_ptr& s, const std::vector<engine::chat_message>& msgs) {
    if (msgs.empty()) return make_error(errc::invalid_argument, "no message");
    bool expected = false;
    if (!s->busy.compare_exchange_strong(expected, true))
        return make_error(errc::busy, "session '" + s->id + "' is busy with another turn");
    std::lock_guard lk(s->mu);
    for (const auto& m : msgs) {
        if (auto st = append_event(*s, m); !st.ok()) {
            s->busy = false;
            return st;
        }
        s->messages.push_back(m);
        append_tokens(*s, s->messages.size() - 1);
    }
    return plan_for(*s);
}

namespace {

// The generation prompt and stop strings after plan.prompt / message_starts hold the messages' tokens.
void finish_plan(const engine::model& m, bool first_is_system, turn_plan& plan) {
    const auto& tok = m.tok();
    const auto gen = tok.encode(m.chat().generation_prompt(), plan.prompt.empty() && tok.add_bos_default(), true);
    plan.prompt.insert(plan.prompt.end(), gen.begin(), gen.end());
    plan.stop = m.chat().stop_strings();
    if (first_is_system && !plan.message_starts.empty())
        plan.n_first =
            plan.message_starts.size() > 1 ? plan.message_starts[1] : static_cast<int32_t>(plan.prompt.size());
    else
        plan.n_first = !plan.prompt.empty() && tok.bos() >= 0 && plan.prompt[0] == tok.bos() ? 1 : 0;
}

}  // namespace

turn_plan session_manager::plan_for(const session& s) const {
    turn_plan plan;
    plan.prompt = s.tokens;
    plan.message_starts = s.message_starts;
    finish_plan(model_, !s.messages.empty() && s.messages[0].role == "system", plan);
    return plan;
}

turn_plan plan_for_messages(const engine::model& m, std::span<const engine::chat_message> messages) {
    turn_plan plan;
    const auto& tok = m.tok();
    for (size_t i = 0; i < messages.size(); ++i) {
        plan.message_starts.push_back(static_cast<int32_t>(plan.prompt.size()));
        const auto t = m.chat().encode_message(tok, messages, i, plan.prompt.empty() && tok.add_bos_default());
        plan.prompt.insert(plan.prompt.end(), t.begin(), t.end());
    }
    finish_plan(m, !messages.empty() && messages[0].role == "system", plan);
    return plan;
}

json context_window_json(const context_window& c) {
    json j = {{"truncated", c.truncated},
              {"n_kept_first", c.n_kept_first},
              {"n_dropped", c.n_dropped},
              {"n_kept_recent", c.n_kept_recent},
              {"attention", c.sparse ? "sparse" : "full"}};
    if (c.sparse) {
        j["sink_tokens"] = c.n_sink;
        j["window_tokens"] = c.n_window;
        j["pages_per_query"] = c.n_pages;
        j["pages_resident"] = c.n_pages_resident;
        j["pages_loaded"] = c.n_pages_loaded;
    }
    return j;
}

void note_attention(context_window& c, const engine::attention_report& r) {
    if (!r.sparse) return;
    c.sparse = true;
    c.n_sink = r.n_sink, c.n_window = r.n_window, c.n_pages = r.n_pages;
    c.n_pages_resident = r.n_pages_resident;
    c.n_pages_loaded = r.n_pages_loaded;
}

status fit_to_window(turn_plan& plan, int32_t n_ctx, int32_t reserve, int32_t page_size) {
    const int32_t n_prompt = static_cast<int32_t>(plan.prompt.size());
    reserve = std::clamp(reserve, 1, std::max(1, n_ctx / 2));
    plan.context = {};
    plan.context.n_kept_recent = n_prompt;
    if (n_prompt + reserve <= n_ctx) return {};
    const int32_t budget = n_ctx - reserve;  // prompt tokens we may keep
    const int32_t page = std::max(1, page_size);
    // The first block: the system message (its KV is shared and cached), kept whole: a message is never cut.
    const int32_t first = std::clamp(plan.n_first, 0, n_prompt);
    const int32_t recent_budget = budget - first;
    const int32_t min_cut = n_prompt - recent_budget;  // the earliest token that must still be kept
    if (recent_budget < page || min_cut <= first)
        return make_error(errc::context_exceeded, "the window holds " + std::to_string(n_ctx) +
                                                      " tokens, too few to keep a prompt of " +
                                                      std::to_string(n_prompt) + " and reply");
    // The cut sits on a coarse grid anchored at `first`, so it stays put while the history grows by a step.
    const int32_t step = std::max(page, recent_budget / 4 / page * page);
    int32_t cut = first + (min_cut - first + step - 1) / step * step;
    // Prefer a message start within half a step after the grid point (fixed tokens: stable across turns).
    auto it = std::lower_bound(plan.message_starts.begin(), plan.message_starts.end(), cut);
    if (it != plan.message_starts.end() && *it < cut + step / 2 && *it < n_prompt) cut = *it;
    // Old history is dropped, never part of the newest message.
    if (cut >= n_prompt || (!plan.message_starts.empty() && cut > plan.message_starts.back()))
        return make_error(errc::context_exceeded, "the last message does not fit in the " + std::to_string(n_ctx) +
                                                      "-token window with room for a reply");
    std::vector<engine::token_id> kept(plan.prompt.begin(), plan.prompt.begin() + first);
    kept.insert(kept.end(), plan.prompt.begin() + cut, plan.prompt.end());
    plan.prompt = std::move(kept);
    std::vector<int32_t> starts;
    for (int32_t st : plan.message_starts) {
        if (st < first)
            starts.push_back(st);
        else if (st >= cut)
            starts.push_back(st - cut + first);
    }
    plan.message_starts = std::move(starts);
    plan.n_first = first;
    plan.context = {true, first, cut - first, n_prompt - cut};
    return {};
}

result<turn_plan> session_manager::continue_turn(const session_ptr& s, const std::vector<engine::chat_message>& msgs,
                                                 const std::vector<json>& extra) {
    if (msgs.empty()) return make_error(errc::invalid_argument, "no message");
    if (!s->busy) return make_error(errc::invalid_argument, "session '" + s->id + "' has no turn in progress");
    std::lock_guard lk(s->mu);
    for (size_t i = 0; i < msgs.size(); ++i) {
        if (auto st = append_event(*s, msgs[i], i < extra.size() ? &extra[i] : nullptr); !st.ok()) return st;
        s->messages.push_back(msgs[i]);
        append_tokens(*s, s->messages.size() - 1);
    }
    return plan_for(*s);
}

result<uint64_t> session_manager::append_raw_event(const std::string& id, const json& event) {
    json ev = event;
    if (!ev.contains("ts")) ev["ts"] = unix_now();
    const std::string text = ev.dump();
    auto r = store_.append_event(id, text);
    if (r) notify(id, r.value(), text);
    return r;
}

status session_manager::end_turn(const session_ptr& s, const std::string& reply, bool append_reply) {
    return end_turn(s, reply, append_reply, json());
}

status session_manager::end_turn(const session_ptr& s, const std::string& reply, bool append_reply, const json& extra) {
    status st;
    if (append_reply) {
        std::lock_guard lk(s->mu);
        engine::chat_message m{"assistant", reply};
        st = append_event(*s, m, extra.is_object() ? &extra : nullptr);
        if (st.ok()) {
            s->messages.push_back(std::move(m));
            append_tokens(*s, s->messages.size() - 1);
            ++s->n_turns;
            store_.note_tokens(s->id, s->tokens);
        }
    }
    s->busy = false;
    return st;
}

}  // namespace mnemos::agent
