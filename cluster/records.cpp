#include "cluster/records.hpp"

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <cstdio>

#include "control/state_file.hpp"

namespace veer::cluster {
namespace {

namespace json = boost::json;

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
    const auto at = alphabet.find(c);
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

std::optional<std::uint64_t> to_u64(const json::value& v) {
    if (const auto* i = v.if_int64(); i && *i >= 0) return static_cast<std::uint64_t>(*i);
    if (const auto* u = v.if_uint64()) return *u;
    return std::nullopt;
}

std::optional<std::uint64_t> u64_at(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v ? to_u64(*v) : std::nullopt;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const auto b = [&](std::size_t k) {
            return i + k < bytes.size() ? static_cast<unsigned char>(bytes[i + k]) : 0u;
        };
        const unsigned n = (b(0) << 16) | (b(1) << 8) | b(2);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? alphabet[(n >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? alphabet[n & 63] : '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
        if (pad == 1 && text[i + 2] == '=') return std::nullopt;
        unsigned n = 0;
        for (int k = 0; k < 4 - pad; ++k) {
            const int v = sextet(text[i + static_cast<std::size_t>(k)]);
            if (v < 0) return std::nullopt;
            n = (n << 6) | static_cast<unsigned>(v);
        }
        // Canonical only: the bits past the last whole byte must be zero ("/w==", not "/0==").
        if ((n & ((1u << (2 * pad)) - 1)) != 0) return std::nullopt;
        n <<= 6 * pad;
        out += static_cast<char>((n >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

keys::keys(std::string_view name)
    : prefix("/veer/" + std::string(name) + "/"),
      release(prefix + "release"),
      events(prefix + "events/"),
      election(prefix + "election/"),
      reports(prefix + "reports/") {}

std::string keys::event(std::uint64_t seq) const {
    char digits[21];
    std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
    return events + digits;
}

std::optional<std::uint64_t> keys::event_seq(std::string_view key) const {
    if (!key.starts_with(events) || key.size() != events.size() + 20) return std::nullopt;
    std::uint64_t seq = 0;
    const auto digits = key.substr(events.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return seq;
}

std::string_view keys::instance_of(std::string_view key, std::string_view dir) {
    return key.starts_with(dir) ? key.substr(dir.size()) : std::string_view{};
}

std::string prefix_end(std::string_view prefix) {
    std::string end(prefix);
    while (!end.empty()) {
        if (static_cast<unsigned char>(end.back()) < 0xff) {
            end.back() = static_cast<char>(end.back() + 1);
            return end;
        }
        end.pop_back();
    }
    return std::string(1, '\0');  // every key
}

std::string to_text(const shared_release& r) {
    json::object o = control::rollout_to_json(r.rollout);
    json::array drained;
    for (const auto& d : r.drained)
        drained.push_back(json::string(d));
    o["drained"] = std::move(drained);
    o["event_seq"] = r.event_seq;
    return json::serialize(o);
}

std::optional<shared_release> release_from_text(std::string_view text, std::string& error) {
    boost::system::error_code ec;
    const auto v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        error = "release: not a JSON object";
        return std::nullopt;
    }
    auto rollout = control::rollout_from_json(v, error);
    if (!rollout) return std::nullopt;
    shared_release r{*rollout};
    const auto& o = v.as_object();
    if (const auto seq = u64_at(o, "event_seq")) r.event_seq = *seq;
    if (const auto* d = o.if_contains("drained"); d && d->is_array())
        for (const auto& e : d->as_array())
            if (e.is_string()) r.drained.emplace_back(e.as_string());
    return r;
}

json::object window_to_json(const metrics::window_stats& w) {
    json::object o;
    o["n"] = w.requests;
    o["f"] = w.failures;
    json::array by_result;
    for (auto c : w.by_result)
        by_result.push_back(c);
    o["r"] = std::move(by_result);
    o["s"] = w.seconds;
    o["sum"] = w.latency.sum_us();
    json::array h;
    w.latency.for_each_bucket([&](double, double, std::uint64_t count, std::size_t index) {
        h.push_back(index);
        h.push_back(count);
    });
    o["h"] = std::move(h);
    return o;
}

bool window_from_json(const json::value& v, metrics::window_stats& out) {
    const auto* o = v.if_object();
    if (!o) return false;
    const auto n = u64_at(*o, "n"), f = u64_at(*o, "f");
    const auto* r = o->if_contains("r");
    const auto* h = o->if_contains("h");
    if (!n || !f || !r || !r->is_array() || r->as_array().size() != metrics::result_count || !h ||
        !h->is_array() || h->as_array().size() % 2 != 0)
        return false;
    out = {};
    out.requests = *n;
    out.failures = *f;
    for (std::size_t i = 0; i < metrics::result_count; ++i) {
        const auto c = to_u64(r->as_array()[i]);
        if (!c) return false;
        out.by_result[i] = *c;
    }
    const auto& buckets = h->as_array();
    for (std::size_t i = 0; i < buckets.size(); i += 2) {
        const auto index = to_u64(buckets[i]), count = to_u64(buckets[i + 1]);
        if (!index || !count || *index >= metrics::histogram::bucket_count) return false;
        out.latency.add_bucket(static_cast<std::size_t>(*index), *count);
    }
    if (const auto* s = o->if_contains("s"); s && s->is_number())
        out.seconds = s->to_number<double>();
    if (const auto* sum = o->if_contains("sum"); sum && sum->is_number())
        out.latency.add_sum_us(sum->to_number<double>());
    return true;
}

void merge_window(metrics::window_stats& into, const metrics::window_stats& w) {
    into.requests += w.requests;
    into.failures += w.failures;
    for (std::size_t i = 0; i < metrics::result_count; ++i)
        into.by_result[i] += w.by_result[i];
    into.latency.merge(w.latency);
    into.seconds = std::max(into.seconds, w.seconds);
}

std::string to_text(const report& r) {
    json::object o;
    o["time_ms"] = r.time_ms;
    json::object pools;
    for (const auto& [name, w] : r.pools)
        pools[name] = window_to_json(w);
    o["pools"] = std::move(pools);
    if (!r.verdict.empty()) o["verdict"] = r.verdict;
    return json::serialize(o);
}

std::optional<report> report_from_text(std::string_view text) {
    boost::system::error_code ec;
    const auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    report r;
    if (const auto* t = o.if_contains("time_ms"); t && t->is_int64()) r.time_ms = t->as_int64();
    const auto* pools = o.if_contains("pools");
    if (!pools || !pools->is_object()) return std::nullopt;
    for (const auto& [name, w] : pools->as_object())
        if (!window_from_json(w, r.pools[std::string(name)])) return std::nullopt;
    if (const auto* verdict = o.if_contains("verdict"); verdict && verdict->is_object())
        r.verdict = verdict->as_object();
    return r;
}

std::int64_t int64_field(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (!v->is_string()) return 0;
    const auto& s = v->as_string();
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size() ? out : 0;
}

std::optional<kv> kv_from_json(const json::value& v) {
    const auto* o = v.if_object();
    if (!o) return std::nullopt;
    kv out;
    const auto* key = o->if_contains("key");
    if (!key || !key->is_string()) return std::nullopt;
    auto k = base64_decode(key->as_string());
    if (!k) return std::nullopt;
    out.key = std::move(*k);
    if (const auto* value = o->if_contains("value"); value && value->is_string()) {
        auto decoded = base64_decode(value->as_string());
        if (!decoded) return std::nullopt;
        out.value = std::move(*decoded);
    }
    out.create_revision = int64_field(*o, "create_revision");
    out.mod_revision = int64_field(*o, "mod_revision");
    out.lease = int64_field(*o, "lease");
    return out;
}

}  // namespace veer::cluster
