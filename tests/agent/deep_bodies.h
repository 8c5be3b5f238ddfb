#pragma once
// The deep-JSON request bodies of the limits tests (test_server_limits.cpp answers each with a 400, and
// test_server_limits_cpu.cpp measures the CPU each costs): "DEEP" marks where a document nested past every depth
// limit goes, in every field of a chat completion the server copies, compares or dumps.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace mnemos::test_agent {

inline std::vector<std::string> deep_field_chat_bodies() {
    return {
        "DEEP",
        R"({"messages": DEEP})",
        R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": DEEP}]})",
        R"({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
            "properties": {"a": DEEP}}}}]})",
        R"({"messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": DEEP}})",
        R"({"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": DEEP}}}})",
        R"({"messages": [{"role": "tool", "name": DEEP, "content": "x"}]})",
        R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
            "function": {"name": "f", "arguments": {"a": DEEP}}}]}, {"role": "user", "content": "hi"}]})",
        R"({"messages": [{"role": "user", "content": [{"type": "text", "text": DEEP}]}]})",
        R"({"messages": [{"role": "user", "content": "hi"}], "stop": DEEP})",
        R"({"messages": [{"role": "user", "content": "hi"}], "temperature": DEEP})",
    };
}

// body with its "DEEP" replaced by deep.
inline std::string with_deep(std::string body, const std::string& deep) {
    const size_t at = body.find("DEEP");
    REQUIRE(at != std::string::npos);
    return body.replace(at, 4, deep);
}

}  // namespace mnemos::test_agent
