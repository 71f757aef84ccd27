#include "gating/alert.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace veer::gating {
namespace {

namespace json = boost::json;

// An Alertmanager notification carries a handful of alerts; a flood is refused whole.
constexpr std::size_t max_alerts = 1000;

const json::string* string_at(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v ? v->if_string() : nullptr;
}

}  // namespace

std::string alert::name() const {
    for (const auto& [k, v] : labels)
        if (k == "alertname") return v;
    return "(unnamed)";
}

std::optional<std::vector<alert>> parse_webhook(std::string_view body, std::string& error) {
    boost::system::error_code ec;
    const auto v = json::parse(body, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o) {
        error = "the body is not a JSON object";
        return std::nullopt;
    }
    const auto* version = string_at(*o, "version");
    if (!version || *version != "4") {
        error = "not an Alertmanager webhook of version \"4\"";
        return std::nullopt;
    }
    const auto* list = o->if_contains("alerts");
    if (!list || !list->is_array() || list->as_array().size() > max_alerts) {
        error = "\"alerts\" must be an array of at most 1000 alerts";
        return std::nullopt;
    }
    std::vector<alert> out;
    for (const auto& item : list->as_array()) {
        const auto* a = item.if_object();
        const auto* status = a ? string_at(*a, "status") : nullptr;
        const auto* labels = a ? a->if_contains("labels") : nullptr;
        if (!status || (*status != "firing" && *status != "resolved") || !labels ||
            !labels->is_object()) {
            error = "every alert needs \"status\" (firing or resolved) and \"labels\"";
            return std::nullopt;
        }
        alert parsed;
        parsed.status = std::string(*status);
        for (const auto& [k, lv] : labels->as_object()) {
            if (!lv.is_string()) {
                error = "label values must be strings";
                return std::nullopt;
            }
            parsed.labels.emplace_back(std::string(k), std::string(lv.as_string()));
        }
        if (const auto* starts = string_at(*a, "startsAt")) parsed.starts_at = std::string(*starts);
        out.push_back(std::move(parsed));
    }
    return out;
}

bool matches(const alert& a, const std::vector<std::pair<std::string, std::string>>& match) {
    return std::all_of(match.begin(), match.end(), [&](const auto& want) {
        return std::find(a.labels.begin(), a.labels.end(), want) != a.labels.end();
    });
}

std::string label_text(const alert& a) {
    std::string out;
    for (const auto& [k, v] : a.labels)
        out += (out.empty() ? "" : ", ") + k + "=" + v;
    return out;
}

json::object figures(const alert& a) {
    json::object labels;
    for (const auto& [k, v] : a.labels)
        labels[k] = v;
    return {{"alert", a.name()},
            {"status", a.status},
            {"labels", std::move(labels)},
            {"starts_at", a.starts_at}};
}

}  // namespace veer::gating
