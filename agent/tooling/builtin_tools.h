#pragma once
// The built-in tools by name: the one list the server's agent sessions, the
// scenarios (tools.builtin) and the scenario runner all read. tools/builtins.h
// makes them; this header only names them.
#include <array>
#include <string>
#include <string_view>

namespace mnemos::agent::builtin_tools {

inline constexpr std::string_view roll_dice = "roll_dice";
inline constexpr std::string_view clock = "clock";
inline constexpr std::string_view note = "note";
inline constexpr std::string_view recall = "recall";

// Every built-in, in the order an agent session lists them when it offers all of them.
inline constexpr std::array<std::string_view, 4> all = {roll_dice, clock, note, recall};

// Whether name is a built-in tool.
constexpr bool is_builtin(std::string_view name) {
    for (auto n : all)
        if (n == name) return true;
    return false;
}

// "roll_dice, clock, note, recall" (for error messages).
inline std::string names() {
    std::string s;
    for (auto n : all) (s += s.empty() ? "" : ", ") += n;
    return s;
}

}  // namespace mnemos::agent::builtin_tools
