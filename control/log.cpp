#include "control/log.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>

#include "gating/event.hpp"

namespace veer::control {
namespace {

int rank(std::string_view level) {
    if (level == "trace") return 0;
    if (level == "debug") return 1;
    if (level == "info") return 2;
    if (level == "warn") return 3;
    return 4;
}

// Set once at startup and on reload, both on the control thread.
int min_rank = 2;
config::log_format format = config::log_format::json;

}  // namespace

void configure_log(const config::log& settings) {
    min_rank = rank(settings.level);
    format = settings.format;
}

void log(std::string_view level, std::string_view msg, const boost::json::object& fields) {
    if (rank(level) < min_rank) return;
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::string line;
    if (format == config::log_format::json) {
        boost::json::object o;
        o["time"] = gating::format_rfc3339_ms(now);
        o["level"] = level;
        o["msg"] = msg;
        for (const auto& kv : fields)
            o[kv.key()] = kv.value();
        line = boost::json::serialize(o);
    } else {
        line = gating::format_rfc3339_ms(now) + " " + std::string(level) + " " + std::string(msg);
        for (const auto& kv :
             fields) {  // appended piece by piece (GCC 12 warns on " " + temporary)
            line.append(" ").append(kv.key()).append("=");
            line.append(boost::json::serialize(kv.value()));
        }
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace veer::control
