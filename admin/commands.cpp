#include "admin/commands.hpp"

#include "common/weight.hpp"

#include <charconv>
#include <vector>

namespace veer::admin {
namespace {

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t')
            ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

bool parse_int(std::string_view s, int& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// The rest of the line after the first `n` words, trimmed.
std::string rest_after(std::string_view line, std::string_view last_word) {
    auto tail =
        line.substr(static_cast<std::size_t>(last_word.data() + last_word.size() - line.data()));
    while (!tail.empty() && (tail.front() == ' ' || tail.front() == '\t'))
        tail.remove_prefix(1);
    while (!tail.empty() && (tail.back() == ' ' || tail.back() == '\t'))
        tail.remove_suffix(1);
    return std::string(tail);
}

command refuse(std::string why) {
    command c;
    c.error = std::move(why);
    return c;
}

}  // namespace

std::string_view help_text() {
    return "status | set weight N (percent 0..100, two decimals, pauses a rollout) | start | pause | resume | promote | "
           "rollback [reason] | drain ADDRESS | undrain ADDRESS | reload | events [N] | help";
}

command parse_command(std::string_view line) {
    for (char c : line)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
            return refuse("control character in command");
    const auto w = words(line);
    if (w.empty()) return refuse("empty command; try: help");
    command c;
    const auto& name = w[0];
    auto exact = [&](verb v, std::size_t n) {
        if (w.size() != n) return refuse(std::string(name) + ": unexpected arguments; try: help");
        c.what = v;
        return c;
    };
    if (name == "status") return exact(verb::status, 1);
    if (name == "help") return exact(verb::help, 1);
    if (name == "start") return exact(verb::start, 1);
    if (name == "pause") return exact(verb::pause, 1);
    if (name == "resume") return exact(verb::resume, 1);
    if (name == "promote") return exact(verb::promote, 1);
    if (name == "reload") return exact(verb::reload, 1);
    if (name == "set") {
        if (w.size() != 3 || w[1] != "weight") return refuse("usage: set weight N (0..100)");
        const auto bp = parse_percent(w[2]);
        if (!bp)
            return refuse("set weight: N must be a percent from 0 to 100 with at most two "
                          "decimals (got " + std::string(w[2].substr(0, 32)) + ")");
        c.number = *bp;
        c.what = verb::set_weight;
        return c;
    }
    if (name == "rollback") {
        c.what = verb::rollback;
        c.text = w.size() > 1 ? rest_after(line, w[0]) : "";
        return c;
    }
    if (name == "drain" || name == "undrain") {
        if (w.size() != 2)
            return refuse(std::string(name) + ": usage: " + std::string(name) + " ADDRESS");
        c.what = name == "drain" ? verb::drain : verb::undrain;
        c.text = std::string(w[1]);
        return c;
    }
    if (name == "events") {
        c.what = verb::events;
        c.number = 20;
        if (w.size() > 2) return refuse("usage: events [N]");
        if (w.size() == 2 && (!parse_int(w[1], c.number) || c.number < 0 || c.number > 1000))
            return refuse("events: N must be an integer from 0 to 1000");
        return c;
    }
    return refuse("unknown command: " + std::string(name.substr(0, 64)) + "; try: help");
}

}  // namespace veer::admin
