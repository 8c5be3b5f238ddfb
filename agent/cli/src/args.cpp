// arg_parser (agent/cli/args.h).
#include "agent/cli/args.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mnemos::cli {

namespace {

std::vector<std::string> split_names(const std::string& names) {
    std::vector<std::string> v;
    std::stringstream ss(names);
    for (std::string n; std::getline(ss, n, ',');)
        if (!n.empty()) v.push_back(n);
    return v;
}

status bad_value(const std::string& what, const std::string& v) {
    return make_error(errc::invalid_argument, "expects " + what + ", got '" + v + "'");
}

template <class T>
status parse_integer(const std::string& v, T lo, T hi, T& out) {
    T n{};
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || n < lo || n > hi)
        return bad_value("an integer from " + std::to_string(lo) + " to " + std::to_string(hi), v);
    out = n;
    return {};
}

constexpr size_t k_help_indent = 24, k_help_width = 100;

// text broken at spaces into lines of at most `width` characters, lines after the first indented.
std::string wrap(const std::string& text, size_t width, size_t indent) {
    std::string out, word;
    size_t col = 0;
    std::stringstream ss(text);
    while (ss >> word) {
        if (col > 0 && col + 1 + word.size() > width) {
            out += "\n" + std::string(indent, ' ');
            col = 0;
        } else if (col > 0) {
            out += ' ';
            ++col;
        }
        out += word;
        col += word.size();
    }
    return out;
}

std::string format_number(double d) {
    std::ostringstream os;
    os << d;
    return os.str();
}

}  // namespace

result<int64_t> parse_integer_value(const std::string& v, int64_t lo, int64_t hi) {
    int64_t n = 0;
    if (auto st = parse_integer<int64_t>(v, lo, hi, n); !st.ok()) return st;
    return n;
}

arg_parser::arg_parser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void arg_parser::add(const std::string& names, const std::string& value_name, const std::string& help,
                     std::function<status(const std::string&)> apply) {
    flags_.push_back({split_names(names), value_name, help, std::move(apply), pending_section_});
    pending_section_.clear();
}

void arg_parser::text(const std::string& names, std::string& out, const std::string& value_name,
                      const std::string& help) {
    add(names, value_name, help, [&out](const std::string& v) {
        out = v;
        return status{};
    });
}

void arg_parser::integer(const std::string& names, int32_t& out, int64_t lo, int64_t hi, const std::string& value_name,
                         const std::string& help) {
    add(names, value_name, help, [&out, lo, hi](const std::string& v) {
        auto n = parse_integer_value(v, lo, hi);
        if (!n) return n.error();
        out = static_cast<int32_t>(n.value());
        return status{};
    });
}

void arg_parser::integer(const std::string& names, uint64_t& out, uint64_t lo, uint64_t hi,
                         const std::string& value_name, const std::string& help) {
    add(names, value_name, help, [&out, lo, hi](const std::string& v) { return parse_integer(v, lo, hi, out); });
}

namespace {

// v as a finite number in [lo, hi].
result<double> parse_real_value(const std::string& v, double lo, double hi) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != 0 || !std::isfinite(d) || d < lo || d > hi)
        return bad_value("a number from " + format_number(lo) + " to " + format_number(hi), v);
    return d;
}

}  // namespace

void arg_parser::real(const std::string& names, float& out, double lo, double hi, const std::string& value_name,
                      const std::string& help) {
    add(names, value_name, help, [&out, lo, hi](const std::string& v) {
        auto d = parse_real_value(v, lo, hi);
        if (!d) return d.error();
        out = static_cast<float>(d.value());
        return status{};
    });
}

void arg_parser::real(const std::string& names, double& out, double lo, double hi, const std::string& value_name,
                      const std::string& help) {
    add(names, value_name, help, [&out, lo, hi](const std::string& v) {
        auto d = parse_real_value(v, lo, hi);
        if (!d) return d.error();
        out = d.value();
        return status{};
    });
}

void arg_parser::integer(const std::string& names, int64_t& out, int64_t lo, int64_t hi, const std::string& value_name,
                         const std::string& help) {
    add(names, value_name, help, [&out, lo, hi](const std::string& v) { return parse_integer(v, lo, hi, out); });
}

void arg_parser::toggle(const std::string& names, bool& out, const std::string& help, bool value) {
    add(names, "", help, [&out, value](const std::string&) {
        out = value;
        return status{};
    });
}

void arg_parser::repeated(const std::string& names, std::vector<std::string>& out, const std::string& value_name,
                          const std::string& help) {
    add(names, value_name, help, [&out](const std::string& v) {
        out.push_back(v);
        return status{};
    });
}

void arg_parser::custom(const std::string& names, const std::string& value_name, const std::string& help,
                        std::function<status(const std::string&)> apply) {
    add(names, value_name, help, std::move(apply));
}

void arg_parser::positional(const std::string& name, std::string& out, bool required, const std::string& help) {
    positionals_.push_back({name, &out, required, help});
}

void arg_parser::section(const std::string& title) { pending_section_ = title; }
void arg_parser::epilog(const std::string& text) { epilog_ = text; }

const arg_parser::spec* arg_parser::find(const std::string& name) const {
    for (const auto& f : flags_)
        for (const auto& n : f.names)
            if (n == name) return &f;
    return nullptr;
}

result<arg_parser::outcome> arg_parser::parse(int argc, char** argv) const {
    return parse(std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
}

result<arg_parser::outcome> arg_parser::parse(const std::vector<std::string>& args) const {
    size_t n_positional = 0;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") return outcome::help;
        if (a.size() > 1 && a[0] == '-') {
            const spec* f = find(a);
            if (!f) return make_error(errc::invalid_argument, "unknown option '" + a + "'");
            if (!f->value_name.empty() && i + 1 >= args.size())
                return make_error(errc::invalid_argument, a + " needs a value (" + f->value_name + ")");
            const std::string v = f->value_name.empty() ? std::string() : args[++i];
            if (auto st = f->apply(v); !st.ok()) return make_error(st.code(), a + " " + st.message());
            continue;
        }
        if (n_positional >= positionals_.size())
            return make_error(errc::invalid_argument, "unexpected argument '" + a + "'");
        *positionals_[n_positional++].out = a;
    }
    for (size_t i = n_positional; i < positionals_.size(); ++i)
        if (positionals_[i].required) return make_error(errc::invalid_argument, positionals_[i].name + " is required");
    return outcome::run;
}

std::string arg_parser::help() const {
    std::string h = "usage: " + usage_ + "\n";
    if (!description_.empty()) h += "\n" + description_ + "\n";
    auto line = [&h](std::string left, const std::string& text) {
        left = "  " + left;
        if (left.size() < k_help_indent)
            left.resize(k_help_indent, ' ');
        else
            left += "\n" + std::string(k_help_indent, ' ');
        h += left + wrap(text, k_help_width - k_help_indent, k_help_indent) + "\n";
    };
    if (!positionals_.empty()) h += "\narguments:\n";
    for (const auto& p : positionals_) line(p.name, p.help);
    h += "\noptions:\n";
    for (const auto& f : flags_) {
        if (!f.section.empty()) h += "\n" + f.section + ":\n";
        std::string left;
        for (const auto& n : f.names) left += (left.empty() ? "" : ", ") + n;
        if (!f.value_name.empty()) left += " " + f.value_name;
        line(left, f.help);
    }
    line("-h, --help", "show this help");
    if (!epilog_.empty()) h += "\n" + epilog_ + "\n";
    return h;
}

int arg_parser::run(int argc, char** argv) const {
    auto r = parse(argc, argv);
    if (r && r.value() == outcome::help) {
        std::fputs(help().c_str(), stdout);
        return 0;
    }
    if (r) return -1;
    const std::string cmd = argc > 0 ? argv[0] : "mnemos";
    std::fprintf(stderr, "mnemos %s: %s (see --help)\n", cmd.c_str(), r.error().message().c_str());
    return 2;
}

}  // namespace mnemos::cli
