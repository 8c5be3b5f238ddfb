// session_store_i on memory::store (RocksDB): the durable session store.
#include <nlohmann/json.hpp>

#include "agent/core/runtime.h"
#include "engine/sha256.h"
#include "memory/store.h"

namespace mnemos::agent {

namespace {

class durable_session_store final : public session_store_i {
  public:
    durable_session_store(memory::store& st, const engine::block_hash& fingerprint, int32_t page_size)
        : st_(st), fingerprint_(fingerprint), page_size_(page_size) {}

    // Keeps the store's own fields (token count, last block, created) and fills
    // character and model fingerprint from the agent's metadata.
    status put_session(const std::string& id, const std::string& meta_json) override {
        memory::session_meta m;
        if (auto old = st_.get_session(id)) m = std::move(old.value());
        m.id = id;
        m.extra_json = meta_json;
        m.model_fingerprint = engine::to_hex(fingerprint_.bytes);
        const auto j = nlohmann::json::parse(meta_json, nullptr, false);
        if (j.is_object() && j.contains("character") && j["character"].is_object()) {
            const auto& c = j["character"];
            if (c.contains("name") && c["name"].is_string()) m.character = c["name"].get<std::string>();
        }
        return st_.put_session(m);
    }
    result<std::string> get_session(const std::string& id) override {
        auto m = st_.get_session(id);
        if (!m) return m.error();
        if (m->extra_json.empty()) return std::string("{}");
        return m->extra_json;
    }
    std::vector<std::string> list_sessions() override {
        std::vector<std::string> ids;
        auto all = st_.list_sessions();
        if (all)
            for (const auto& m : all.value())
                if (m.id != k_prefix_log_id) ids.push_back(m.id);
        return ids;
    }
    status delete_session(const std::string& id) override { return st_.delete_session(id); }
    result<uint64_t> append_event(const std::string& id, const std::string& event_json) override {
        return st_.append_event(id, event_json);
    }
    result<std::vector<std::string>> read_events(const std::string& id) override {
        auto evs = st_.read_events(id);
        if (!evs) return evs.error();
        std::vector<std::string> out;
        out.reserve(evs->size());
        for (auto& e : evs.value()) out.push_back(std::move(e.json));
        return out;
    }
    status note_tokens(const std::string& id, const std::vector<engine::token_id>& tokens,
                       const engine::cache_scope& scope) override {
        const auto hashes = memory::store::block_hashes(fingerprint_, tokens, page_size_, scope);
        if (!hashes.empty())
            if (auto st = st_.add_block_refs(id, hashes); !st.ok()) return st;
        // Token count and last full block in the session's metadata.
        auto m = st_.get_session(id);
        if (!m) return m.error();
        m->n_tokens = static_cast<int64_t>(tokens.size());
        m->last_block_hash = hashes.empty() ? std::string() : engine::to_hex(hashes.back().bytes);
        return st_.put_session(m.value());
    }

  private:
    memory::store& st_;
    engine::block_hash fingerprint_;  // root of the engine's block hash chain
    int32_t page_size_;               // tokens per KV block
};

}  // namespace

std::unique_ptr<session_store_i> make_durable_session_store(memory::store& st, const engine::block_hash& fingerprint,
                                                            int32_t page_size) {
    return std::make_unique<durable_session_store>(st, fingerprint, page_size);
}

}  // namespace mnemos::agent
