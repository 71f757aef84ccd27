// Loads veer's TOML config (SPEC section 3) into config::config and checks every key.
// A `walker` reads one table at a time: each typed read marks its key as known and
// records errors at the key's source position, so a loader reports every problem in
// one pass and an unknown key never slips through.
#include "config/config.hpp"

#include "common/ascii.hpp"
#include "common/duration.hpp"
#include "common/weight.hpp"
#include "routing/snapshot.hpp"

#include <toml++/toml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <system_error>
#include <tuple>
#include <utility>

namespace veer::config {

namespace {

constexpr std::int64_t no_max = std::numeric_limits<std::int64_t>::max();
constexpr double infinity = std::numeric_limits<double>::infinity();

// sun_path holds 108 bytes with the terminating NUL; SPEC asks for a margin of one.
constexpr std::size_t max_socket_path = 107;

// ---------------------------------------------------------------------------------
// Formatting values back into messages.

std::string show(std::int64_t value) { return std::to_string(value); }

std::string show(double value);

std::string percent_error(double got) {
    return "must be a percent from 0 to 100 with at most two decimals (got " + show(got) + ")";
}

std::string show(double value) {
    char buffer[32];
    // Shortest round-trip form: 5 -> "5", 0.05 -> "0.05".
    const auto result = std::to_chars(std::begin(buffer), std::end(buffer), value);
    return std::string(buffer, result.ptr);
}

std::string in_quotes(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        // Control characters would garble a terminal; show them as '?'.
        out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
    }
    return out + '"';
}

std::string show_duration(duration value) { return in_quotes(format_duration_ms(value.count())); }

std::string show_size(std::uint64_t bytes) {
    constexpr std::pair<std::uint64_t, std::string_view> units[] = {
        {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
    for (const auto& [size, unit] : units)
        if (bytes != 0 && bytes % size == 0)
            return std::to_string(bytes / size) + std::string(unit);
    return std::to_string(bytes);
}

// "must be between LO and HI (got X)", or "must be at least LO (got X)" without HI.
std::string out_of_range(const std::string& lo, const std::string& hi, const std::string& got) {
    if (hi.empty()) return "must be at least " + lo + " (got " + got + ")";
    return "must be between " + lo + " and " + hi + " (got " + got + ")";
}

// Name -> value tables (units, enum spellings): the entry called `name`, or nullptr.
template <class T, std::size_t N>
const std::pair<std::string_view, T>* find_named(const std::pair<std::string_view, T> (&table)[N],
                                                 std::string_view name) {
    const auto named = [&](const auto& entry) { return entry.first == name; };
    const auto* it = std::find_if(std::begin(table), std::end(table), named);
    return it == std::end(table) ? nullptr : it;
}

// "\"a\", \"b\", \"c\"", for "must be one of ..." messages.
template <class T, std::size_t N>
std::string list_names(const std::pair<std::string_view, T> (&table)[N]) {
    std::string out;
    for (const auto& entry : table)
        out += (out.empty() ? "" : ", ") + in_quotes(entry.first);
    return out;
}

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::array: return "an array";
        case toml::node_type::table: return "a table";
        case toml::node_type::none: break;
    }
    return "nothing";
}

// ---------------------------------------------------------------------------------
// Syntax of the values themselves: addresses, header names, paths.

using ascii::is_alnum;
using ascii::is_digit;
using ascii::is_token;

// "host:port" / "[v6]:port" in one spelling per address ("[0::1]:80" -> "[::1]:80",
// names lower-cased), to spot an endpoint listed twice; nullopt when malformed.
std::optional<std::string> canonical_address(std::string_view text, unsigned min_port) {
    std::string_view host;
    std::string_view port;
    std::string canonical_host;
    if (text.starts_with('[')) {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || text.substr(close + 1, 1) != ":")
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        // A zone ("%eth0") is kept as written; only the address part is checked.
        const std::size_t percent = std::min(host.find('%'), host.size());
        const std::string_view zone = host.substr(percent);  // "" or "%eth0"
        const auto zone_char = [](char c) {
            return is_alnum(c) || c == '_' || c == '.' || c == '-';
        };
        if (!zone.empty() &&
            (zone.size() == 1 || !std::all_of(zone.begin() + 1, zone.end(), zone_char)))
            return std::nullopt;
        in6_addr v6{};
        if (inet_pton(AF_INET6, std::string(host.substr(0, percent)).c_str(), &v6) != 1)
            return std::nullopt;
        char buffer[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &v6, buffer, sizeof buffer);
        canonical_host = "[" + std::string(buffer) + std::string(zone) + "]";
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        in_addr v4{};
        const bool ipv4 = inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1;
        // A bare IPv6 address fails here too: it needs brackets to be told from the port.
        if (!ipv4 && !routing::is_hostname(host)) return std::nullopt;
        canonical_host = host;
        std::transform(canonical_host.begin(), canonical_host.end(), canonical_host.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    unsigned number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (port.empty() || port.size() > 5 || !is_digit(port.front()) || ec != std::errc{} ||
        end != port.data() + port.size() || number < min_port || number > 65535)
        return std::nullopt;
    return canonical_host + ":" + std::to_string(number);
}

// ---------------------------------------------------------------------------------
// String checks: "" when the value is fine, else the message.

using string_check = std::string (*)(std::string_view);

std::string check_non_empty(std::string_view text) {
    return text.empty() ? "must not be empty" : "";
}

std::string check_address(std::string_view text, unsigned min_port) {
    if (canonical_address(text, min_port)) return "";
    return "must be \"host:port\" or \"[v6]:port\" with a port from " + std::to_string(min_port) +
           " to 65535 (got " + in_quotes(text) + ")";
}

// Listen addresses may use port 0: the kernel picks one (tests rely on it).
std::string check_listen_address(std::string_view text) { return check_address(text, 0); }

std::string check_optional_listen_address(std::string_view text) {
    return text.empty() ? "" : check_listen_address(text);
}

std::string check_token(std::string_view text) {
    if (is_token(text)) return "";
    return "must be a header name made of token characters (got " + in_quotes(text) + ")";
}

std::string check_socket_path(std::string_view text) {
    if (text.empty()) return "must not be empty";
    if (text.size() >= max_socket_path)
        return "must be shorter than " + std::to_string(max_socket_path) + " bytes (got " +
               std::to_string(text.size()) + ")";
    return "";
}

std::optional<unsigned> parse_socket_mode(std::string_view text) {
    const bool octal =
        !text.empty() && text.size() <= 4 &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '7'; });
    unsigned mode = 0;
    if (!octal) return std::nullopt;
    std::from_chars(text.data(), text.data() + text.size(), mode, 8);
    // Four digits may carry setuid/sticky bits: a socket has no use for them.
    return mode <= 0777 ? std::optional(mode) : std::nullopt;
}

std::string check_socket_mode(std::string_view text) {
    if (parse_socket_mode(text)) return "";
    return "must be octal digits from \"0000\" to \"0777\" like \"0600\" (got " + in_quotes(text) +
           ")";
}

std::string check_http_path(std::string_view text) {
    const bool ok = text.starts_with('/') && std::none_of(text.begin(), text.end(), [](char c) {
                        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
                    });
    return ok ? "" : "must be a request path starting with \"/\" (got " + in_quotes(text) + ")";
}

std::string check_webhook(std::string_view text) {
    if (text.empty() || (text.starts_with("http://") && text.size() > 7)) return "";
    return "must be empty or an \"http://\" URL (got " + in_quotes(text) + ")";
}

std::string check_etcd_url(std::string_view text) {
    const auto rest = text.substr(std::min<std::size_t>(7, text.size()));
    const auto colon = rest.rfind(':');
    const bool ok = text.starts_with("http://") && colon != std::string_view::npos && colon > 0 &&
                    colon + 1 < rest.size() && rest.find('/') == std::string_view::npos &&
                    std::all_of(rest.begin() + static_cast<std::ptrdiff_t>(colon) + 1, rest.end(),
                                [](char c) { return c >= '0' && c <= '9'; });
    return ok ? ""
              : "must be an \"http://host:port\" URL without a path (got " + in_quotes(text) + ")";
}

// Cluster and instance names become etcd keys: no '/', nothing a person would misread.
std::string check_key_name(std::string_view text) {
    const bool ok =
        !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), [](char c) {
            return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
        });
    return ok ? "" : "must be 1 to 128 of A-Z a-z 0-9 - _ . : (got " + in_quotes(text) + ")";
}

// ---------------------------------------------------------------------------------
// Error collection.

class reporter {
public:
    explicit reporter(std::string file) : file_(std::move(file)) {}

    void add(const toml::source_region& at, std::string_view key, std::string_view message) {
        const auto line = std::max<toml::source_index>(at.begin.line, 1);
        const auto column = std::max<toml::source_index>(at.begin.column, 1);
        entries_.push_back({line, column,
                            file_ + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                ": " + std::string(key) + ": " + std::string(message)});
    }

    // In file order, like a compiler, whatever order the sections were checked in.
    std::vector<std::string> take() {
        std::stable_sort(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
            return std::tie(a.line, a.column) < std::tie(b.line, b.column);
        });
        std::vector<std::string> out;
        for (auto& e : entries_)
            out.push_back(std::move(e.text));
        return out;
    }

private:
    struct entry {
        toml::source_index line;
        toml::source_index column;
        std::string text;
    };
    std::string file_;
    std::vector<entry> entries_;
};

// One element of a TOML array, named for messages ("slo.errors[2]").
template <class T>
struct list_item {
    T value;
    std::string name;
    const toml::node* node;
};

template <class T>
constexpr std::string_view element_type_name() {
    if constexpr (std::is_same_v<T, std::string>)
        return "a string";
    else if constexpr (std::is_same_v<T, double>)
        return "a number";
    else
        return "an integer";
}

enum class lower_bound { non_negative, positive };
constexpr auto positive = lower_bound::positive;
constexpr auto non_negative = lower_bound::non_negative;

// Reads one TOML table. Each read marks its key as known and leaves `out` untouched when
// the key is absent; it returns whether a well-typed value was stored. Range errors are
// recorded too (the value is stored anyway: any error discards the whole config).
class walker {
public:
    walker(const toml::table& table, std::string path, reporter& errors)
        : table_(&table), path_(std::move(path)), errors_(&errors) {}

    // "slo" + "window" -> "slo.window".
    std::string name(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    bool has(std::string_view key) const { return table_->contains(key); }

    // An error about `key`: at the key when it is there, else at this table.
    void error(std::string_view key, std::string_view message) const {
        const auto it = table_->find(key);
        errors_->add(it != table_->end() ? it->first.source() : table_->source(), name(key),
                     message);
    }

    // An error about this table as a whole.
    void error_here(std::string_view message) const {
        errors_->add(table_->source(), path_, message);
    }

    template <class T>
    void error_at(const list_item<T>& item, std::string_view message) const {
        errors_->add(item.node->source(), item.name, message);
    }

    void require(std::string_view key) const {
        if (!has(key)) errors_->add(table_->source(), name(key), "is required");
    }

    // The keys of this table in file order (toml++ keeps them sorted by name).
    std::vector<std::string> keys_in_file_order() const {
        std::vector<std::pair<toml::source_position, std::string>> keys;
        for (auto&& [key, node] : *table_)
            keys.emplace_back(key.source().begin, std::string(key.str()));
        std::sort(keys.begin(), keys.end());
        std::vector<std::string> out;
        for (auto& entry : keys)
            out.push_back(std::move(entry.second));
        return out;
    }

    // Reports every key nobody asked for: a typo must not pass silently.
    void reject_unknown() const {
        for (auto&& [key, node] : *table_)
            if (std::find(known_.begin(), known_.end(), key.str()) == known_.end())
                errors_->add(key.source(), name(key.str()), "unknown key");
    }

    template <class Out>
    bool read_string(std::string_view key, Out& out, string_check check = nullptr) {
        const auto* value = typed<std::string>(key, "a string");
        if (!value) return false;
        if (check) {
            if (const std::string message = check(value->get()); !message.empty())
                error(key, message);
        }
        out = value->get();
        return true;
    }

    bool read_bool(std::string_view key, bool& out) {
        const auto* value = typed<bool>(key, "a boolean");
        if (value) out = value->get();
        return value != nullptr;
    }

    // hi = no_max: only a lower bound (the type of `out` still caps it).
    template <class Int>
    bool read_int(std::string_view key, Int& out, std::int64_t lo, std::int64_t hi) {
        const auto* value = typed<std::int64_t>(key, "an integer");
        if (!value) return false;
        const std::int64_t got = value->get();
        const std::int64_t top = std::min<std::int64_t>(hi, std::numeric_limits<Int>::max());
        if (got < lo || got > top)
            error(key,
                  out_of_range(show(lo), (got < lo && hi == no_max) ? "" : show(top), show(got)));
        out = static_cast<Int>(got);
        return true;
    }

    // Integers are numbers too: `max_error_rate = 0` is fine.
    template <class Out>
    bool read_number(std::string_view key, Out& out) {
        const toml::node* node = find(key);
        if (!node) return false;
        if (const auto* real = node->as_floating_point())
            out = real->get();
        else if (const auto* whole = node->as_integer())
            out = static_cast<double>(whole->get());
        else
            return type_error(key, *node, "a number");
        return true;
    }

    // hi = infinity: only a lower bound.
    template <class Out>
    bool read_number(std::string_view key, Out& out, double lo, double hi) {
        double got = 0;
        if (!read_number(key, got)) return false;
        // Written so that NaN fails too.
        if (!(got >= lo && got <= hi))
            error(key, out_of_range(show(lo), std::isinf(hi) ? "" : show(hi), show(got)));
        out = got;
        return true;
    }

    // A canary weight: a percent from 0 to 100 with at most two decimals, in basis points.
    bool read_percent(std::string_view key, int& bp) {
        double got = 0;
        if (!read_number(key, got)) return false;
        const auto value = percent_bp(got);
        if (!value) {
            error(key, percent_error(got));
            return false;
        }
        bp = *value;
        return true;
    }

    template <class Out>
    bool read_duration(std::string_view key, Out& out, lower_bound bound) {
        const auto* text = typed<std::string>(key, "a duration string like \"250ms\"");
        if (!text) return false;
        const auto value = parse_duration(text->get());
        if (!value) {
            error(key,
                  "must be a duration string like \"250ms\" (got " + in_quotes(text->get()) + ")");
            return false;
        }
        if (bound == positive && value->count() == 0)
            error(key, "must be greater than 0 (got " + in_quotes(text->get()) + ")");
        out = *value;
        return true;
    }

    // A size string ("64KiB") or a plain number of bytes.
    bool read_size(std::string_view key, std::uint64_t& out, std::uint64_t lo, std::uint64_t hi) {
        static constexpr std::string_view expected = "a size like \"64KiB\" or a number of bytes";
        const toml::node* node = find(key);
        if (!node) return false;
        std::optional<std::uint64_t> value;
        if (const auto* text = node->as_string()) {
            value = parse_size(text->get());
            if (!value)
                error(key,
                      "must be " + std::string(expected) + " (got " + in_quotes(text->get()) + ")");
        } else if (const auto* whole = node->as_integer()) {
            if (whole->get() >= 0)
                value = static_cast<std::uint64_t>(whole->get());
            else
                error(key, "must not be negative (got " + show(whole->get()) + ")");
        } else {
            return type_error(key, *node, expected);
        }
        if (!value) return false;
        const bool bounded = hi != std::numeric_limits<std::uint64_t>::max();
        if (*value < lo || *value > hi)
            error(key,
                  out_of_range(show_size(lo), bounded ? show_size(hi) : "", show_size(*value)));
        out = *value;
        return true;
    }

    // A string naming one of `choices`.
    template <class Out, class T, std::size_t N>
    bool read_choice(std::string_view key, Out& out,
                     const std::pair<std::string_view, T> (&choices)[N]) {
        std::string text;
        if (!read_string(key, text)) return false;
        if (const auto* choice = find_named(choices, text)) {
            out = choice->second;
            return true;
        }
        error(key, "must be one of " + list_names(choices) + " (got " + in_quotes(text) + ")");
        return false;
    }

    // An array whose elements all have type T; nullopt when absent or ill-typed.
    template <class T>
    std::optional<std::vector<list_item<T>>> read_list(std::string_view key) {
        const toml::node* node = find(key);
        if (!node) return std::nullopt;
        const auto* array = node->as_array();
        if (!array) {
            type_error(key, *node, "an array");
            return std::nullopt;
        }
        std::vector<list_item<T>> items;
        bool all_typed = true;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            list_item<T> item{T{}, name(key) + "[" + std::to_string(i) + "]", &element};
            if (const auto* value = element.as<T>()) {
                item.value = value->get();
                items.push_back(std::move(item));
            } else if (const auto* whole = element.as_integer();
                       whole && std::is_same_v<T, double>) {  // integers are numbers too
                if constexpr (std::is_same_v<T, double>) item.value = static_cast<T>(whole->get());
                items.push_back(std::move(item));
            } else {
                error_at(item, "must be " + std::string(element_type_name<T>()) + " (got " +
                                   std::string(type_name(element.type())) + ")");
                all_typed = false;
            }
        }
        if (!all_typed) return std::nullopt;
        return items;
    }

    // A sub-table, [x.y] or inline { ... }.
    std::optional<walker> table(std::string_view key) {
        const toml::node* node = find(key);
        if (!node) return std::nullopt;
        if (const auto* sub = node->as_table()) return walker(*sub, name(key), *errors_);
        type_error(key, *node, "a table");
        return std::nullopt;
    }

    // [[x.y]] entries, each read by its own walker ("split.rules[0]").
    std::vector<walker> array_of_tables(std::string_view key) {
        std::vector<walker> out;
        const toml::node* node = find(key);
        if (!node) return out;
        const auto* array = node->as_array();
        if (!array) {
            type_error(key, *node, "an array of tables");
            return out;
        }
        for (std::size_t i = 0; i < array->size(); ++i) {
            const std::string element_name = name(key) + "[" + std::to_string(i) + "]";
            if (const auto* sub = array->get(i)->as_table())
                out.emplace_back(*sub, element_name, *errors_);
            else
                errors_->add(array->get(i)->source(), element_name, "must be a table");
        }
        return out;
    }

private:
    const toml::node* find(std::string_view key) {
        known_.emplace_back(key);
        return table_->get(key);
    }

    template <class T>
    const toml::value<T>* typed(std::string_view key, std::string_view expected) {
        const toml::node* node = find(key);
        if (!node) return nullptr;
        const auto* value = node->as<T>();
        if (!value) type_error(key, *node, expected);
        return value;
    }

    bool type_error(std::string_view key, const toml::node& node, std::string_view expected) const {
        error(key, "must be " + std::string(expected) + " (got " +
                       std::string(type_name(node.type())) + ")");
        return false;
    }

    const toml::table* table_;
    std::string path_;
    reporter* errors_;
    std::vector<std::string> known_;
};

// A list of names that switches flags on: `errors = ["5xx", "timeout"]`. When the key is
// given, only the listed flags are on.
template <class S, std::size_t N>
void read_flag_list(walker& w, std::string_view key, S& out,
                    const std::pair<std::string_view, bool S::*> (&flags)[N]) {
    const auto items = w.read_list<std::string>(key);
    if (!items) return;
    for (const auto& flag : flags)
        out.*flag.second = false;
    for (const auto& item : *items) {
        if (const auto* flag = find_named(flags, item.value))
            out.*flag->second = true;
        else
            w.error_at(item, "must be one of " + list_names(flags) + " (got " +
                                 in_quotes(item.value) + ")");
    }
}

// ---------------------------------------------------------------------------------
// The sections of SPEC section 3.

constexpr std::pair<std::string_view, balance> balances[] = {{"p2c", balance::p2c},
                                                             {"round_robin", balance::round_robin}};
constexpr std::pair<std::string_view, protocol> protocols[] = {{"http1", protocol::http1},
                                                               {"h2", protocol::h2}};
constexpr std::string_view grpc_codes[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

void read_grpc_errors(walker& w, std::uint32_t& mask) {
    const auto items = w.read_list<std::string>("grpc_errors");
    if (!items) return;
    mask = 0;
    for (const auto& item : *items) {
        const auto* end = std::end(grpc_codes);
        const auto* it = std::find(std::begin(grpc_codes), end, item.value);
        if (it == end)
            w.error_at(item, "must be a gRPC status code name such as \"UNAVAILABLE\" (got " +
                                 in_quotes(item.value) + ")");
        else
            mask |= 1u << (it - std::begin(grpc_codes));
    }
}

constexpr std::pair<std::string_view, strategy> strategies[] = {
    {"canary", strategy::canary},
    {"linear", strategy::linear},
    {"all-at-once", strategy::all_at_once},
    {"manual", strategy::manual}};
constexpr std::pair<std::string_view, std::string_view> log_levels[] = {
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}};
constexpr std::pair<std::string_view, log_format> log_formats[] = {{"json", log_format::json},
                                                                   {"text", log_format::text}};
constexpr std::pair<std::string_view, bool error_kinds::*> error_kind_names[] = {
    {"4xx", &error_kinds::status_4xx},
    {"5xx", &error_kinds::status_5xx},
    {"connect", &error_kinds::connect},
    {"timeout", &error_kinds::timeout},
    {"reset", &error_kinds::reset}};
constexpr std::pair<std::string_view, bool retry::*> retry_kind_names[] = {
    {"connect", &retry::on_connect}};

void read_listener(walker& root, listener& out) {
    auto w = root.table("listener");
    if (!w) return;
    w->read_string("address", out.address, check_listen_address);
    w->read_int("threads", out.threads, 0, 256);
    w->read_bool("http2", out.http2);
    if (auto tls = w->table("tls")) {
        tls_server t;
        tls->require("cert");
        tls->require("key");
        tls->read_string("cert", t.cert, check_non_empty);
        tls->read_string("key", t.key, check_non_empty);
        tls->read_duration("ticket_key_rotation", t.ticket_key_rotation, positive);
        tls->reject_unknown();
        out.tls = t;
    }
    w->reject_unknown();
}

void read_admin(walker& root, admin& out) {
    auto w = root.table("admin");
    if (!w) return;
    w->read_string("socket", out.socket, check_socket_path);
    std::string mode;
    if (w->read_string("socket_mode", mode, check_socket_mode))
        out.socket_mode = parse_socket_mode(mode).value_or(out.socket_mode);
    w->read_string("http", out.http, check_optional_listen_address);
    w->reject_unknown();
}

// Pool names end up in metric labels, the admin protocol and split.rules.
std::string check_pool_name(std::string_view name) {
    if (name == "canary" || name == "stable")
        return "\"canary\" and \"stable\" name roles in split.rules; pick another pool name";
    const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return is_alnum(c) || c == '_' || c == '-';
    });
    return ok ? "" : "a pool name may use letters, digits, '_' and '-' only";
}

void read_pool_health(walker& w, health& out);

void read_pools(walker& root, config& cfg) {
    auto w = root.table("pools");
    const std::vector<std::string> names = w ? w->keys_in_file_order() : std::vector<std::string>{};
    // Canonical endpoint -> where it was first listed, across all pools.
    std::map<std::string, std::string> seen;
    for (const std::string& name : names) {
        auto p = w->table(name);
        if (!p) continue;
        pool out;
        out.name = name;
        if (const std::string message = check_pool_name(name); !message.empty())
            p->error_here(message);
        p->require("endpoints");
        if (const auto endpoints = p->read_list<std::string>("endpoints")) {
            if (endpoints->empty()) p->error("endpoints", "must list at least one endpoint");
            for (const auto& endpoint : *endpoints) {
                const auto canonical = canonical_address(endpoint.value, 1);
                if (!canonical) {
                    p->error_at(endpoint, check_address(endpoint.value, 1));
                    continue;
                }
                // What the runtime can use is decided by its own parser, not a second
                // opinion: an IP literal, or a DNS name it resolves (SPEC 12).
                if (!routing::parse_endpoint_spec(endpoint.value)) {
                    p->error_at(endpoint,
                                "must be an IP address or a DNS name with a port: \"1.2.3.4:80\", "
                                "\"[::1]:80\" or \"api.internal:80\" (got " +
                                    in_quotes(endpoint.value) + ")");
                    continue;
                }
                const auto [first, fresh] = seen.emplace(*canonical, endpoint.name);
                if (!fresh)
                    p->error_at(endpoint, in_quotes(endpoint.value) + " is already listed as " +
                                              first->second);
                out.endpoints.push_back(endpoint.value);
            }
        }
        p->read_choice("balance", out.balance_, balances);
        p->read_choice("protocol", out.protocol_, protocols);
        if (auto tls = p->table("tls")) {
            tls_client t;
            tls->read_string("sni", t.sni);
            tls->read_bool("verify", t.verify);
            tls->read_string("ca", t.ca);
            tls->reject_unknown();
            out.tls = t;
        }
        out.health = cfg.health;
        if (auto h = p->table("health")) {
            read_pool_health(*h, out.health);
            if (h->has("grpc") && out.health.grpc && out.protocol_ != protocol::h2)
                h->error("grpc", "needs protocol = \"h2\" (gRPC health checks are HTTP/2)");
        }
        p->reject_unknown();
        cfg.pools.push_back(std::move(out));
    }
    if (names.size() < 2)
        root.error("pools", "needs at least two pools, a stable one and a canary (got " +
                                std::to_string(names.size()) + ")");
    if (w) w->reject_unknown();
}

void read_rule(walker& w, const config& cfg, rule& out) {
    w.require("header");
    w.require("pool");
    w.read_string("header", out.header, check_token);
    w.read_string("equals", out.equals);
    w.read_string("prefix", out.prefix);
    if (w.read_bool("present", out.present) && !out.present)
        w.error("present", "must be true (leave it out to test equals or prefix instead)");
    const int tests = int{w.has("equals")} + int{w.has("prefix")} + int{w.has("present")};
    if (tests != 1)
        w.error_here(tests == 0 ? "needs one of equals, prefix or present"
                                : "must have only one of equals, prefix or present");
    if (w.read_string("pool", out.pool) && out.pool != "canary" && out.pool != "stable" &&
        !cfg.find_pool(out.pool))
        w.error("pool", "must be \"canary\", \"stable\" or a pool in [pools] (got " +
                            in_quotes(out.pool) + ")");
    w.reject_unknown();
}

// After read_pools: the split names pools.
void read_split(walker& root, config& cfg) {
    split& out = cfg.split;
    auto w = root.table("split");
    bool stable_given = false;
    if (w) {
        stable_given = w->read_string("stable", out.stable);
        if (stable_given && !cfg.find_pool(out.stable))
            w->error("stable", "must name a pool in [pools] (got " + in_quotes(out.stable) + ")");
        w->read_percent("canary_weight", out.canary_bp);
        if (auto sticky = w->table("sticky")) {
            sticky->read_string("header", out.sticky_header, check_token);
            sticky->read_string("cookie", out.sticky_cookie, check_token);
            if (sticky->has("header") == sticky->has("cookie"))
                sticky->error_here("needs exactly one of header or cookie");
            sticky->reject_unknown();
        }
        for (walker& entry : w->array_of_tables("rules"))
            read_rule(entry, cfg, out.rules.emplace_back());
        w->reject_unknown();
    }
    // Without split.stable, pools not called "blue" still work: the first one is stable.
    if (!stable_given && !cfg.find_pool(out.stable) && !cfg.pools.empty())
        out.stable = cfg.pools.front().name;
}

// The keys [health] and [pools.NAME.health] share.
void read_health_keys(walker& w, health& out) {
    w.read_bool("enabled", out.enabled);
    w.read_string("path", out.path, check_http_path);
    w.read_duration("interval", out.interval, positive);
    w.read_duration("timeout", out.timeout, positive);
    w.read_int("healthy_after", out.healthy_after, 1, no_max);
    w.read_int("unhealthy_after", out.unhealthy_after, 1, no_max);
    w.read_int("eject_after_failures", out.eject_after_failures, 1, no_max);
    w.read_duration("eject_for", out.eject_for, positive);
    w.read_bool("grpc", out.grpc);
}

void read_health(walker& root, health& out) {
    auto w = root.table("health");
    if (!w) return;
    read_health_keys(*w, out);
    w->reject_unknown();
}

// [pools.NAME.health]: any [health] key for this pool, plus port, host and expect.
void read_pool_health(walker& w, health& out) {
    read_health_keys(w, out);
    w.read_int("port", out.port, 1, 65535);
    w.read_string("host", out.host, check_non_empty);
    if (const auto range = w.read_list<std::int64_t>("expect")) {
        if (range->size() != 2 || (*range)[0].value < 100 || (*range)[1].value > 599 ||
            (*range)[0].value > (*range)[1].value)
            w.error("expect", "must be [lowest, highest] passing status, within 100..599");
        else {
            out.expect_min = static_cast<int>((*range)[0].value);
            out.expect_max = static_cast<int>((*range)[1].value);
        }
    }
    w.reject_unknown();
}

void read_slo(walker& root, slo& out) {
    auto w = root.table("slo");
    if (!w) return;
    w->read_duration("window", out.window, positive);
    if (w->read_duration("evaluate_every", out.evaluate_every, positive) &&
        out.evaluate_every > out.window)
        w->error("evaluate_every", "must not be longer than slo.window, " +
                                       show_duration(out.window) + " (got " +
                                       show_duration(out.evaluate_every) + ")");
    w->read_int("min_requests", out.min_requests, 0, no_max);
    w->read_number("max_error_rate", out.max_error_rate, 0, 1);
    w->read_duration("max_p95", out.max_p95, positive);
    w->read_duration("max_p99", out.max_p99, positive);
    w->read_duration("max_mean", out.max_mean, positive);
    w->read_number("max_error_rate_increase", out.max_error_rate_increase, 0, 1);
    w->read_number("max_p99_ratio", out.max_p99_ratio, 1, infinity);
    w->read_bool("compare", out.compare);
    // Below 0.5 a "sure" comparison is a coin toss; at 1 nothing is ever sure.
    if (w->read_number("confidence", out.confidence) &&
        !(out.confidence > 0.5 && out.confidence < 1))
        w->error("confidence",
                 "must be greater than 0.5 and less than 1 (got " + show(out.confidence) + ")");
    w->read_int("violations_to_rollback", out.violations_to_rollback, 1, no_max);
    read_flag_list(*w, "errors", out.errors, error_kind_names);
    read_grpc_errors(*w, out.errors.grpc);
    w->read_bool("dry_run", out.dry_run);
    w->reject_unknown();
}

// Steps are canary weights: each above 0 and up to 100 with at most two decimals, rising,
// ending at 100.
void read_steps(walker& w, rollout& out) {
    const auto steps = w.read_list<double>("steps");
    if (!steps) return;
    const bool fixed = out.strategy_ == strategy::all_at_once || out.strategy_ == strategy::manual;
    if (fixed) {
        w.error("steps", "must be left out with strategy " +
                             in_quotes(strategy_name(out.strategy_)) + ", which sets its own");
        return;
    }
    if (steps->empty()) {
        w.error("steps", "must list at least one step");
        return;
    }
    out.steps.clear();
    int previous = 0;
    for (const auto& step : *steps) {
        const auto bp = percent_bp(step.value);
        if (!bp || *bp == 0) {
            w.error_at(step,
                       "must be a percent above 0 and up to 100 with at most two decimals "
                       "(got " +
                           show(step.value) + ")");
            continue;
        }
        if (*bp <= previous)
            w.error_at(step, "must be greater than the step before, " + percent_text(previous) +
                                 " (got " + show(step.value) + ")");
        previous = std::max(previous, *bp);
        out.steps.push_back(*bp);
    }
    if (steps->back().value != 100)
        w.error("steps", "must end at 100 (got " + show(steps->back().value) + ")");
}

void read_rollout(walker& root, rollout& out) {
    auto w = root.table("rollout");
    if (w) w->read_choice("strategy", out.strategy_, strategies);
    out.steps = default_steps(out.strategy_);
    if (!w) return;
    read_steps(*w, out);
    w->read_duration("step_interval", out.step_interval, non_negative);
    w->read_duration("bake", out.bake, non_negative);
    w->read_bool("auto_start", out.auto_start);
    w->reject_unknown();
}

void read_timeouts(walker& root, timeouts& out) {
    auto w = root.table("timeouts");
    if (!w) return;
    w->read_duration("connect", out.connect, positive);
    w->read_duration("header_read", out.header_read, positive);
    w->read_duration("upstream_response", out.upstream_response, positive);
    w->read_duration("idle", out.idle, positive);
    w->read_duration("drain", out.drain, positive);
    w->reject_unknown();
}

void read_limits(walker& root, limits& out) {
    auto w = root.table("limits");
    if (!w) return;
    w->read_size("max_header_bytes", out.max_header_bytes, 1 << 10, 1 << 20);
    w->read_size("max_body_bytes", out.max_body_bytes, 0,
                 std::numeric_limits<std::uint64_t>::max());
    w->read_int("max_connections", out.max_connections, 1, no_max);
    w->read_int("max_concurrent_streams", out.max_concurrent_streams, 1, 10000);
    w->reject_unknown();
}

void read_retry(walker& root, retry& out) {
    auto w = root.table("retry");
    if (!w) return;
    read_flag_list(*w, "on", out, retry_kind_names);
    w->read_int("attempts", out.attempts, 1, 10);
    w->reject_unknown();
}

void read_state(walker& root, state& out) {
    auto w = root.table("state");
    if (!w) return;
    w->read_string("path", out.path, check_non_empty);
    w->reject_unknown();
}

void read_log(walker& root, log& out) {
    auto w = root.table("log");
    if (!w) return;
    w->read_choice("level", out.level, log_levels);
    w->read_string("access_log", out.access_log);
    w->read_choice("format", out.format, log_formats);
    w->reject_unknown();
}

void read_notify(walker& root, notify& out) {
    auto w = root.table("notify");
    if (!w) return;
    w->read_string("webhook", out.webhook, check_webhook);
    w->reject_unknown();
}

void read_cluster(walker& root, cluster& out) {
    auto w = root.table("cluster");
    if (!w) return;
    if (const auto urls = w->read_list<std::string>("etcd"))
        for (const auto& url : *urls) {
            if (auto err = check_etcd_url(url.value); !err.empty())
                w->error_at(url, err);
            else
                out.etcd.push_back(url.value);
        }
    w->read_string("name", out.name, check_key_name);
    w->read_string("instance", out.instance, [](std::string_view t) {
        return t.empty() ? std::string() : check_key_name(t);
    });
    if (w->read_duration("lease", out.lease, positive) &&
        (out.lease.count() < 2000 || out.lease.count() % 1000 != 0))
        w->error("lease", "must be whole seconds, at least \"2s\" (etcd's shortest lease)");
    w->reject_unknown();
}

void read_dns(walker& root, dns& out) {
    auto w = root.table("dns");
    if (!w) return;
    if (const auto servers = w->read_list<std::string>("servers"))
        for (const auto& s : *servers) {
            if (routing::endpoint ip; !routing::parse_ip_endpoint(s.value, ip))
                w->error_at(s,
                            "must be a resolver's IP address and port, \"127.0.0.1:53\" or "
                            "\"[::1]:53\" (got " +
                                in_quotes(s.value) + ")");
            else
                out.servers.push_back(s.value);
        }
    w->read_duration("refresh", out.refresh, positive);
    w->reject_unknown();
}

constexpr std::pair<std::string_view, no_data> no_data_choices[] = {
    {"hold", no_data::hold}, {"pass", no_data::pass}, {"fail", no_data::fail}};

std::string check_prometheus_url(std::string_view text) {
    const auto rest = text.substr(std::min<std::size_t>(7, text.size()));
    const auto authority = rest.substr(0, rest.find('/'));
    const bool ok = text.starts_with("http://") && !authority.empty() &&
                    authority.find(':') != std::string_view::npos && !text.ends_with('/') &&
                    text.find_first_of("?# ") == std::string_view::npos;
    return ok ? ""
              : "must be an \"http://host:port\" URL, optionally with a path prefix and no "
                "trailing '/' (got " +
                    in_quotes(text) + ")";
}

void read_prometheus_gate(walker& g, std::vector<prometheus_gate>& all) {
    prometheus_gate out;
    for (const char* key : {"name", "url", "query"})
        g.require(key);
    g.read_string("name", out.name, check_key_name);
    g.read_string("url", out.url, check_prometheus_url);
    g.read_string("query", out.query, check_non_empty);
    double limit = 0;
    if (g.read_number("max", limit)) out.max = limit;
    if (g.read_number("min", limit)) out.min = limit;
    if (out.max.has_value() == out.min.has_value()) g.error_here("needs exactly one of max or min");
    g.read_duration("interval", out.interval, positive);
    g.read_choice("on_no_data", out.on_no_data, no_data_choices);
    for (const auto& other : all)
        if (other.name == out.name) g.error("name", "another gate is named " + in_quotes(out.name));
    g.reject_unknown();
    all.push_back(std::move(out));
}

void read_gates(walker& root, gates& out) {
    auto w = root.table("gates");
    if (!w) return;
    for (auto& g : w->array_of_tables("prometheus"))
        read_prometheus_gate(g, out.prometheus);
    if (auto a = w->table("alerts")) {
        a->read_string("listen", out.alerts.listen, [](std::string_view t) {
            return t.empty() ? std::string() : check_listen_address(t);
        });
        a->read_string("token_file", out.alerts.token_file);
        if (!out.alerts.listen.empty() && out.alerts.token_file.empty())
            a->error_here(
                "needs token_file with listen: the receiver takes only bearer-token requests");
        if (auto m = a->table("match")) {
            for (const auto& label : m->keys_in_file_order()) {
                std::string value;
                if (m->read_string(label, value)) out.alerts.match.emplace_back(label, value);
            }
            m->reject_unknown();
        }
        a->reject_unknown();
    }
    w->reject_unknown();
}

void read_document(const toml::table& document, config& cfg, reporter& errors) {
    walker root(document, "", errors);
    read_listener(root, cfg.listener);
    read_admin(root, cfg.admin);
    read_health(root, cfg.health);  // first: a pool's health starts from it
    read_pools(root, cfg);
    read_split(root, cfg);
    read_slo(root, cfg.slo);
    read_rollout(root, cfg.rollout);
    read_timeouts(root, cfg.timeouts);
    read_limits(root, cfg.limits);
    read_retry(root, cfg.retry);
    read_state(root, cfg.state);
    read_log(root, cfg.log);
    read_notify(root, cfg.notify);
    read_cluster(root, cfg.cluster);
    read_dns(root, cfg.dns);
    read_gates(root, cfg.gates);
    root.reject_unknown();
}

// Digits at the front of `text`, consumed.
std::string_view take_digits(std::string_view& text) {
    const auto end = std::find_if(text.begin(), text.end(), [](char c) { return !is_digit(c); });
    const std::string_view digits = text.substr(0, static_cast<std::size_t>(end - text.begin()));
    text.remove_prefix(digits.size());
    return digits;
}

std::optional<std::uint64_t> to_number(std::string_view digits) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size())
        return std::nullopt;
    return value;
}

}  // namespace

// ---------------------------------------------------------------------------------

const pool* config::find_pool(const std::string& name) const {
    const auto it =
        std::find_if(pools.begin(), pools.end(), [&](const pool& p) { return p.name == name; });
    return it == pools.end() ? nullptr : &*it;
}

std::optional<duration> parse_duration(std::string_view text) {
    const auto whole = to_number(take_digits(text));
    if (!whole) return std::nullopt;
    std::string_view fraction;
    if (text.starts_with('.')) {
        text.remove_prefix(1);
        fraction = take_digits(text);
        if (fraction.empty()) return std::nullopt;
    }
    constexpr std::pair<std::string_view, std::int64_t> units[] = {
        {"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}};
    const auto* unit = find_named(units, text);
    if (!unit) return std::nullopt;
    const std::int64_t unit_ms = unit->second;
    constexpr auto max_ms = std::numeric_limits<duration::rep>::max();
    if (*whole > static_cast<std::uint64_t>(max_ms / unit_ms)) return std::nullopt;
    std::int64_t ms = static_cast<std::int64_t>(*whole) * unit_ms;

    // The fraction must come out to whole milliseconds ("1.5s" yes, "1.5ms" no). With
    // trailing zeros gone, more than 9 digits never does, and 9 cannot overflow.
    while (fraction.ends_with('0'))
        fraction.remove_suffix(1);
    if (fraction.size() > 9) return std::nullopt;
    std::int64_t numerator = 0;
    std::int64_t scale = 1;
    for (const char c : fraction) {
        numerator = numerator * 10 + (c - '0');
        scale *= 10;
    }
    if (numerator * unit_ms % scale != 0) return std::nullopt;
    const std::int64_t extra = numerator * unit_ms / scale;
    if (ms > max_ms - extra) return std::nullopt;
    return duration{ms + extra};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    const auto count = to_number(take_digits(text));
    if (!count) return std::nullopt;
    constexpr std::pair<std::string_view, std::uint64_t> units[] = {{"", 1},
                                                                    {"B", 1},
                                                                    {"kB", 1'000},
                                                                    {"KB", 1'000},
                                                                    {"MB", 1'000'000},
                                                                    {"GB", 1'000'000'000},
                                                                    {"TB", 1'000'000'000'000},
                                                                    {"KiB", 1ull << 10},
                                                                    {"MiB", 1ull << 20},
                                                                    {"GiB", 1ull << 30},
                                                                    {"TiB", 1ull << 40}};
    const auto* unit = find_named(units, text);
    if (!unit) return std::nullopt;
    if (*count > std::numeric_limits<std::uint64_t>::max() / unit->second) return std::nullopt;
    return *count * unit->second;
}

// toml++ 3.3 has inputs that break its own assumptions (an assert, or UB in a release
// build): a table header whose key starts with another character (`[+x]`), and a non-ASCII
// character where it looks for whitespace (its Unicode table misses some ranges). Both
// were found by fuzz_config; this check answers them with a parse error before toml++
// sees them. veer's keys and values are ASCII; comments may hold anything.
std::optional<std::string> precheck(const std::string& text, const std::string& file) {
    std::size_t line = 1, pos = 0;
    auto at = [&](std::size_t i, std::string_view what) {
        return file + ":" + std::to_string(line) + ":" + std::to_string(i - pos + 1) +
               ": parse error: " + std::string(what);
    };
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::size_t i = pos;
        while (i < end && (text[i] == ' ' || text[i] == '\t'))
            ++i;
        if (i < end && text[i] == '[') {
            std::size_t k = i + 1;
            if (k < end && text[k] == '[') ++k;
            while (k < end && (text[k] == ' ' || text[k] == '\t'))
                ++k;
            const char c = k < end ? text[k] : '\n';
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '"' ||
                  c == '\''))
                return at(k, "expected a key in the table header");
        }
        bool quoted = false;
        for (std::size_t k = pos; k < end; ++k) {
            const char c = text[k];
            if (c == '"' || c == '\'')
                quoted = !quoted;  // close enough: only '#' and bytes >= 0x80 matter
            if (c == '#' && !quoted) break;
            if (static_cast<unsigned char>(c) >= 0x80)
                return at(k, "non-ASCII character outside a comment");
        }
        pos = end + 1;
        ++line;
    }
    return std::nullopt;
}

load_result load_string(const std::string& text, const std::string& file) {
    load_result result;
    if (auto e = precheck(text, file)) {
        result.errors.push_back(*e);
        return result;
    }
    toml::table document;
    try {
        document = toml::parse(std::string_view{text}, std::string_view{file});
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        result.errors.push_back(file + ":" + std::to_string(at.line) + ":" +
                                std::to_string(at.column) +
                                ": parse error: " + std::string(e.description()));
        return result;
    }
    reporter errors(file);
    config cfg;
    cfg.file = file;
    read_document(document, cfg, errors);
    result.errors = errors.take();
    if (result.errors.empty()) result.cfg = std::move(cfg);
    return result;
}

load_result load_file(const std::string& path) {
    std::error_code ec;
    // An ifstream opens a directory and reads nothing: say what is wrong instead.
    if (std::filesystem::is_directory(path, ec))
        return {std::nullopt, {path + ": cannot read: is a directory"}};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return {std::nullopt, {path + ": cannot read: " + std::generic_category().message(errno)}};
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad())
        return {std::nullopt, {path + ": cannot read: " + std::generic_category().message(errno)}};
    return load_string(text, path);
}

std::string_view strategy_name(strategy s) {
    for (const auto& [name, value] : strategies)
        if (value == s) return name;
    return "canary";
}

std::string_view grpc_code_name(int code) {
    return code >= 0 && code < static_cast<int>(std::size(grpc_codes)) ? grpc_codes[code] : "";
}

std::vector<int> default_steps(strategy s) {
    switch (s) {
        case strategy::canary: return {1000, 10000};
        case strategy::linear: return {1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000};
        case strategy::all_at_once:
        case strategy::manual: return {10000};
    }
    return {100};
}

}  // namespace veer::config
