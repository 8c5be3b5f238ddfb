// session_manager (agent/core/session_manager.h).
#include "agent/core/session_manager.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/core/cache_scope.h"
#include "agent/core/event.h"
#include "agent/core/util.h"

namespace mnemos::agent {

using json = nlohmann::json;

session_manager::session_manager(const engine::model& m, session_store_i& store)
    : model_(m), store_(store), prefixes_(store.load_prefixes()) {}

status session_manager::put_shared_prefix(const std::string& id, std::string text) {
    if (!valid_id(id)) return make_error(errc::invalid_argument, "prefix id must be 1-64 characters of [A-Za-z0-9_.-]");
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

void session_manager::set_scope(session& s, const std::string& prefix_text) const {
    s.scope = {};
    if (!isolate_) return;
    s.scope.salt = session_salt(s.id, s.owner_key, s.created);
    // Its shared prefix (only if its system message still starts with that text: a replaced prefix is another
    // version, and the session keeps the text it was created with).
    if (!prefix_text.empty() && !s.messages_.empty() && s.messages_[0].role == "system" &&
        s.messages_[0].content.compare(0, prefix_text.size(), prefix_text) == 0)
        s.scope.n_shared = shared_prefix_tokens(model_, s.tokens_, prefix_text);
}

void session_manager::append_tokens(session& s, size_t msg_idx) {
    s.message_starts_.push_back(static_cast<int32_t>(s.tokens_.size()));
    // Markup only yields special tokens; message content is plain text (no control-token injection).
    const auto& tok = model_.tok();
    auto t = model_.chat().encode_message(tok, s.messages_, msg_idx, s.tokens_.empty() && tok.add_bos_default());
    s.tokens_.insert(s.tokens_.end(), t.begin(), t.end());
}

status session_manager::append_event(session& s, const engine::chat_message& m, const json* extra) {
    json fields = extra && extra->is_object() ? *extra : json::object();
    fields.update(json{{"type", "message"}, {"role", m.role}, {"content", m.content}, {"ts", unix_now()}});
    auto ev = event_from_json(fields);  // the message's own fields win over extras of the same name
    if (!ev) return ev.error();
    const std::string text = event_json_text(ev.value());
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

void session_manager::set_status_observer(status_observer fn) {
    std::lock_guard lk(observer_mu_);
    status_observer_ = fn ? std::make_shared<const status_observer>(std::move(fn)) : nullptr;
}

void session_manager::notify_status(const std::string& id, const nlohmann::json& status) const {
    std::shared_ptr<const status_observer> fn;
    {
        std::lock_guard lk(observer_mu_);
        fn = status_observer_;
    }
    if (fn) (*fn)(id, status);
}

result<session_ptr> session_manager::create(std::string id, character chr, std::string owner_key,
                                            std::string system_extra, std::string agent_json) {
    if (id.empty()) id = "s_" + random_hex(16);
    if (!valid_id(id))
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
    std::unique_lock slk(s->mu_);
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
        s->messages_.push_back({"system", sys});
        if (auto st = append_event(*s, s->messages_.back()); !st.ok()) return unreserve(st);
        append_tokens(*s, 0);
    }
    set_scope(*s, prefix_text.value_or(""));
    return s;
}

result<session_ptr> session_manager::find(const std::string& id) {
    {
        std::lock_guard lk(mu_);
        auto it = sessions_.find(id);
        if (it != sessions_.end()) return it->second;
    }
    if (!valid_id(id)) return make_error(errc::not_found, "no session '" + id + "'");
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
    for (const auto& text : evs.value()) {
        auto ev = parse_event(text);
        const auto* m = ev ? std::get_if<message_event>(&ev.value()) : nullptr;
        if (!m || m->role.empty()) continue;
        s->messages_.push_back({m->role, m->content});
        append_tokens(*s, s->messages_.size() - 1);
        if (m->role == "assistant" && m->kind == message_kind::plain && !m->extra.contains("kind")) ++s->n_turns_;
    }
    set_scope(*s, s->chr.shared_prefix.empty() ? std::string() : shared_prefix(s->chr.shared_prefix).value_or(""));
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

void session_manager::forget(const std::string& id) {
    std::lock_guard lk(mu_);
    sessions_.erase(id);
}

result<std::vector<std::string>> session_manager::events(const std::string& id) {
    auto s = find(id);
    if (!s) return s.error();
    return store_.read_events(id);
}

result<turn_plan> session_manager::begin_turn(const session_ptr& s, const std::vector<engine::chat_message>& msgs) {
    if (msgs.empty()) return make_error(errc::invalid_argument, "no message");
    bool expected = false;
    if (!s->busy_.compare_exchange_strong(expected, true))
        return make_error(errc::busy, "session '" + s->id + "' is busy with another turn");
    std::lock_guard lk(s->mu_);
    for (const auto& m : msgs) {
        if (auto st = append_event(*s, m); !st.ok()) {
            s->busy_ = false;
            return st;
        }
        s->messages_.push_back(m);
        append_tokens(*s, s->messages_.size() - 1);
    }
    return plan_for(*s);
}

turn_plan session_manager::plan_for(const session& s) const {
    turn_plan plan;
    plan.prompt = s.tokens_;
    plan.message_starts = s.message_starts_;
    plan.scope = s.scope;
    finish_turn_plan(model_, !s.messages_.empty() && s.messages_[0].role == "system", plan);
    return plan;
}

result<turn_plan> session_manager::continue_turn(const session_ptr& s, const std::vector<engine::chat_message>& msgs,
                                                 const std::vector<json>& extra) {
    if (msgs.empty()) return make_error(errc::invalid_argument, "no message");
    if (!s->busy_) return make_error(errc::invalid_argument, "session '" + s->id + "' has no turn in progress");
    std::lock_guard lk(s->mu_);
    for (size_t i = 0; i < msgs.size(); ++i) {
        if (auto st = append_event(*s, msgs[i], i < extra.size() ? &extra[i] : nullptr); !st.ok()) return st;
        s->messages_.push_back(msgs[i]);
        append_tokens(*s, s->messages_.size() - 1);
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
        std::lock_guard lk(s->mu_);
        engine::chat_message m{"assistant", reply};
        st = append_event(*s, m, extra.is_object() ? &extra : nullptr);
        if (st.ok()) {
            s->messages_.push_back(std::move(m));
            append_tokens(*s, s->messages_.size() - 1);
            ++s->n_turns_;
            if (auto nt = store_.note_tokens(s->id, s->tokens_, s->scope); !nt.ok()) {
                // The reply is durable; only the KV block references (GC) and token count lag behind.
                n_note_failures_.fetch_add(1);
                std::fprintf(stderr, "mnemos: session '%s': block references not recorded: %s\n", s->id.c_str(),
                             nt.to_string().c_str());
            }
        }
    }
    s->busy_ = false;
    return st;
}

}  // namespace mnemos::agent
