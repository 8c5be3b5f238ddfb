// Salts and shared-prefix lengths of prefix-cache isolation (agent/core/cache_scope.h).
#include "agent/core/cache_scope.h"

#include <algorithm>
#include <vector>

#include "engine/sha256.h"

namespace mnemos::agent {

namespace {

engine::block_hash salt_of(std::string_view tag, std::initializer_list<std::string_view> parts) {
    engine::sha256 h;
    h.update(tag);
    for (auto p : parts) {
        const uint64_t n = p.size();  // length-prefixed: ("ab", "c") and ("a", "bc") differ
        h.update(&n, sizeof n);
        h.update(p);
    }
    engine::block_hash out;
    out.bytes = h.finish();
    if (out.is_zero()) out.bytes[0] = 1;  // zero means "no isolation"
    return out;
}

}  // namespace

engine::block_hash principal_salt(std::string_view principal) {
    return salt_of("mnemos prefix-cache salt: principal", {principal});
}

engine::block_hash session_salt(const std::string& id, const std::string& owner, int64_t created) {
    const std::string when = std::to_string(created);
    return salt_of("mnemos prefix-cache salt: session", {id, owner, when});
}

int32_t shared_prefix_tokens(const engine::model& m, std::span<const engine::token_id> tokens,
                             const std::string& prefix_text) {
    if (prefix_text.empty() || tokens.empty()) return 0;
    const auto& tok = m.tok();
    const std::vector<engine::chat_message> alone{{"system", prefix_text}};
    const auto rendered = m.chat().encode_message(tok, alone, 0, tok.add_bos_default());
    // The rendering ends with the message's closing markup; the prompt goes on with the rest of its system
    // message, so they agree up to (about) the end of the prefix's text. Whatever they agree on is the
    // rendering of prefix_text: nothing in it is private to the prompt's principal.
    const size_t n = std::min(rendered.size(), tokens.size());
    size_t common = 0;
    while (common < n && rendered[common] == tokens[common]) ++common;
    return static_cast<int32_t>(common);
}

}  // namespace mnemos::agent
