#include "gating/gate.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "gating/event.hpp"

namespace veer::gating {
namespace {

namespace json = boost::json;

query_result failed(std::string why) { return {query_result::kind::error, 0, std::move(why)}; }

// A sample is [time, "value"]; Prometheus writes values as strings ("NaN", "+Inf" too).
std::optional<double> sample_value(const json::value& sample) {
    const auto* pair = sample.if_array();
    if (!pair || pair->size() != 2 || !(*pair)[1].is_string()) return std::nullopt;
    const std::string text((*pair)[1].as_string());
    if (text == "NaN") return std::nan("");
    if (text == "+Inf") return HUGE_VAL;
    if (text == "-Inf") return -HUGE_VAL;
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

}  // namespace

std::string substitute(std::string_view query, std::string_view canary, std::string_view stable) {
    std::string out;
    for (std::size_t i = 0; i < query.size();) {
        if (query.substr(i).starts_with("{{canary}}")) {
            out += canary;
            i += 10;
        } else if (query.substr(i).starts_with("{{stable}}")) {
            out += stable;
            i += 10;
        } else {
            out += query[i++];
        }
    }
    return out;
}

query_result parse_query_response(std::string_view body) {
    boost::system::error_code ec;
    const auto v = json::parse(body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o) return failed("the answer is not a JSON object");
    const auto* status = o->if_contains("status");
    if (!status || !status->is_string() || status->as_string() != "success") {
        const auto* error = o->if_contains("error");
        // An error answer without a message still says why it failed.
        if (error && error->is_string() && !error->as_string().empty())
            return failed(std::string(error->as_string()));
        return failed("the answer's status is not success");
    }
    const auto* data = o->if_contains("data");
    const auto* type =
        data && data->is_object() ? data->as_object().if_contains("resultType") : nullptr;
    const auto* result =
        data && data->is_object() ? data->as_object().if_contains("result") : nullptr;
    if (!type || !type->is_string() || !result) return failed("the answer has no data.result");
    if (type->as_string() == "scalar") {
        const auto value = sample_value(*result);
        return value ? query_result{query_result::kind::value, *value, ""}
                     : failed("a scalar without a value");
    }
    if (type->as_string() != "vector" || !result->is_array())
        return failed("the query returns a " + std::string(type->as_string()) +
                      "; a gate needs an instant vector of one series or a scalar");
    const auto& series = result->as_array();
    if (series.empty()) return {query_result::kind::no_data, 0, ""};
    if (series.size() > 1)
        return failed("the query returns " + std::to_string(series.size()) +
                      " series; a gate needs one (aggregate it, e.g. sum(...) or max(...))");
    const auto* sample =
        series[0].is_object() ? series[0].as_object().if_contains("value") : nullptr;
    const auto value = sample ? sample_value(*sample) : std::nullopt;
    return value ? query_result{query_result::kind::value, *value, ""}
                 : failed("a series without a value");
}

std::string limit_text(const config::prometheus_gate& gate) {
    return gate.max ? "max " + number(*gate.max) : "min " + number(gate.min.value_or(0));
}

gate_reading judge_gate(const config::prometheus_gate& gate, const query_result& answer,
                        std::string query, std::int64_t now_ms) {
    gate_reading r;
    r.name = gate.name;
    r.query = std::move(query);
    r.limit = limit_text(gate);
    r.checked_ms = now_ms;
    switch (answer.what) {
        case query_result::kind::error:
            r.error = true;
            r.detail = answer.error;
            r.what = verdict_kind::holding;
            return r;
        case query_result::kind::no_data:
            r.detail = "no data";
            r.what = gate.on_no_data == config::no_data::pass   ? verdict_kind::ok
                     : gate.on_no_data == config::no_data::fail ? verdict_kind::violation
                                                                : verdict_kind::holding;
            return r;
        case query_result::kind::value: break;
    }
    r.value = answer.value;
    const bool broken = std::isnan(answer.value) || (gate.max && answer.value > *gate.max) ||
                        (gate.min && answer.value < *gate.min);
    r.what = broken ? verdict_kind::violation : verdict_kind::ok;
    if (broken) r.detail = number(answer.value) + (gate.max ? " > " : " < ") + r.limit;
    return r;
}

void fold_gates(verdict& v, const std::vector<gate_reading>& gates) {
    for (const auto& g : gates) {
        if (g.what == verdict_kind::violation) {
            const auto words = "gate " + g.name + ": " + g.detail;
            v.reason = v.what == verdict_kind::violation ? v.reason + "; " + words : words;
            if (v.what != verdict_kind::violation) {  // the first violating gate's figures
                v.gate = g.name;
                v.gate_query = g.query;
                v.gate_value = g.value;
                v.gate_limit = g.limit;
            }
            v.what = verdict_kind::violation;
        } else if (g.what == verdict_kind::holding && v.what == verdict_kind::ok) {
            v.what = verdict_kind::holding;
            v.reason =
                "gate " + g.name + " holding: " + (g.detail.empty() ? "not read yet" : g.detail);
        }
    }
}

json::object to_json(const gate_reading& g) {
    json::object o;
    o["name"] = g.name;
    o["kind"] = "prometheus";
    o["query"] = g.query;
    o["value"] = g.value && std::isfinite(*g.value) ? json::value(*g.value) : json::value(nullptr);
    o["limit"] = g.limit;
    o["verdict"] = g.error ? "error" : kind_name(g.what);
    if (g.error || !g.detail.empty()) o[g.error ? "error" : "detail"] = g.detail;
    o["checked"] =
        g.checked_ms ? json::value(format_rfc3339_ms(g.checked_ms)) : json::value(nullptr);
    return o;
}

}  // namespace veer::gating
