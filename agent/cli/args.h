#pragma once
// One flag parser for every `mnemos` command: each flag is declared with where its value goes, its
// range and its help line; parse() returns a result naming the bad flag instead of exiting, and help()
// writes the command's --help from the same declarations.
//
//   arg_parser p("mnemos chat [options]", "Reads one user message per line ...");
//   p.text("--model,-m", model, "FILE", "GGUF model");
//   p.integer("--max-tokens", max_tokens, 1, 1 << 20, "N", "per reply (default 256)");
//   if (int rc = p.run(argc, argv); rc >= 0) return rc;   // --help printed (0) or an error (2)
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/status.h"

namespace mnemos::cli {

// v as an integer in [lo, hi]. Errors: invalid_argument "expects an integer from lo to hi, got 'v'".
result<int64_t> parse_integer_value(const std::string& v, int64_t lo, int64_t hi);

class arg_parser {
  public:
    // usage: the line after "usage: "; description: paragraphs printed before the flags.
    arg_parser(std::string usage, std::string description);

    // names: comma-separated spellings ("--model,-m"). value_name: shown in help ("FILE").
    void text(const std::string& names, std::string& out, const std::string& value_name, const std::string& help);
    // Integers in [lo, hi]; anything else (fractions, trailing text, out of range) is an error.
    void integer(const std::string& names, int32_t& out, int64_t lo, int64_t hi, const std::string& value_name,
                 const std::string& help);
    void integer(const std::string& names, int64_t& out, int64_t lo, int64_t hi, const std::string& value_name,
                 const std::string& help);
    void integer(const std::string& names, uint64_t& out, uint64_t lo, uint64_t hi, const std::string& value_name,
                 const std::string& help);
    // Finite numbers in [lo, hi].
    void real(const std::string& names, float& out, double lo, double hi, const std::string& value_name,
              const std::string& help);
    void real(const std::string& names, double& out, double lo, double hi, const std::string& value_name,
              const std::string& help);
    // A flag without a value: sets out to `value`.
    void toggle(const std::string& names, bool& out, const std::string& help, bool value = true);
    // A flag that may be given several times; each value is appended.
    void repeated(const std::string& names, std::vector<std::string>& out, const std::string& value_name,
                  const std::string& help);
    // A flag whose value is checked and stored by `apply` (its error's message is shown after the flag).
    void custom(const std::string& names, const std::string& value_name, const std::string& help,
                std::function<status(const std::string&)> apply);
    // A positional argument, in declaration order.
    void positional(const std::string& name, std::string& out, bool required, const std::string& help);
    // A heading before the flags declared after it; free text printed after the flags.
    void section(const std::string& title);
    void epilog(const std::string& text);

    enum class outcome { run, help };
    // argv[0] is the command name. Errors: invalid_argument naming the flag ("--ctx expects an integer
    // from 1 to 1048576, got 'x'", "unknown option '--x'", "--model needs a value", "FILE is required").
    result<outcome> parse(int argc, char** argv) const;
    result<outcome> parse(const std::vector<std::string>& args) const;
    std::string help() const;
    // Whether `name` is one of the declared flags.
    bool knows(const std::string& name) const { return find(name) != nullptr; }
    // parse(), printing help to stdout (returns 0) or "<command>: <error> (see --help)" to stderr
    // (returns 2); -1 when the command should run.
    int run(int argc, char** argv) const;

  private:
    struct spec {
        std::vector<std::string> names;
        std::string value_name;  // empty: a toggle
        std::string help;
        std::function<status(const std::string&)> apply;
        std::string section;  // non-empty: a heading printed before this entry
    };
    struct positional_spec {
        std::string name;
        std::string* out;
        bool required;
        std::string help;
    };
    void add(const std::string& names, const std::string& value_name, const std::string& help,
             std::function<status(const std::string&)> apply);
    const spec* find(const std::string& name) const;

    std::string usage_, description_, epilog_, pending_section_;
    std::vector<spec> flags_;
    std::vector<positional_spec> positionals_;
};

}  // namespace mnemos::cli
