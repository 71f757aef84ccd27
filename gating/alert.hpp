// Alertmanager's webhook (SPEC 13), the pure part: its JSON (format version 4) read into
// alerts, the match that decides which firing alerts roll the canary back, and the words
// their events carry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

namespace veer::gating {

struct alert {
    std::string status;  // "firing" or "resolved"
    std::vector<std::pair<std::string, std::string>> labels;  // in the order sent
    std::string starts_at;

    std::string name() const;  // labels.alertname, or "(unnamed)"
    bool firing() const { return status == "firing"; }
};

// {"version":"4","status":..,"alerts":[{"status":..,"labels":{..},"startsAt":..},..],..}.
// nullopt with `error` set when the body is not that.
std::optional<std::vector<alert>> parse_webhook(std::string_view body, std::string& error);

// Whether `a` carries every label of `match` with its value (an empty match: any alert).
bool matches(const alert& a, const std::vector<std::pair<std::string, std::string>>& match);

// "alertname=CheckoutFailing, severity=critical"
std::string label_text(const alert& a);
// {"alert":..,"status":..,"labels":{..},"starts_at":..}
boost::json::object figures(const alert& a);

}  // namespace veer::gating
