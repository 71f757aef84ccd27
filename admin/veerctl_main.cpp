// veerctl: the operator's client for veer's admin socket (SPEC section 6).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"

namespace {

namespace json = boost::json;

constexpr const char* usage =
    "usage: veerctl [--socket PATH | --config FILE] [--json] COMMAND [ARGS]\n"
    "       veerctl status [--watch]\n"
    "commands: status, set weight N, start, pause, resume, promote, rollback [reason],\n"
    "          drain ADDRESS, undrain ADDRESS, reload, events [N], help\n"
    "The socket is --socket, else admin.socket of --config, else /tmp/veer.sock.\n";

// Sends one line, returns the answer line; empty + `error` set on failure.
std::string ask(const std::string& socket_path, const std::string& line, std::string& error) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) {
        error = "socket path too long: " + socket_path;
        ::close(fd);
        return {};
    }
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        error = "cannot reach veer at " + socket_path + ": " + std::strerror(errno) +
                " (is veer running? try --socket PATH)";
        ::close(fd);
        return {};
    }
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string out = line + "\n";
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
        error = "cannot send to " + socket_path;
        ::close(fd);
        return {};
    }
    std::string in;
    char buf[65536];
    while (in.empty() || in.back() != '\n') {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (in.empty()) error = "veer closed the connection without an answer";
    return in;
}

double num(const json::value& v) {
    if (v.is_double()) return v.as_double();
    if (v.is_int64()) return static_cast<double>(v.as_int64());
    if (v.is_uint64()) return static_cast<double>(v.as_uint64());
    return 0;
}

std::string str(const json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_null()) return "-";
    return json::serialize(v);
}

// A weight as people write it: 10, 0.5, 12.25 (JSON may carry it as 5E-1).
std::string weight_text(const json::value& v) {
    char out[32];
    std::snprintf(out, sizeof out, "%.2f", num(v));
    std::string s(out);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

std::string bar(int percent, int width) {
    const int filled = percent * width / 100;
    std::string out(static_cast<std::size_t>(width + 2), '.');
    out.front() = '[';
    out.back() = ']';
    for (int i = 1; i <= filled; ++i)
        out[static_cast<std::size_t>(i)] = '#';
    return out;
}

// Fleet mode: who leads, whether etcd answers, and each instance's last report.
void print_fleet(const json::object& c) {
    std::printf("\nFLEET %s: this instance %s, leader %s, etcd %s (pools above: the fleet's)\n",
                str(c.at("name")).c_str(), str(c.at("instance")).c_str(),
                str(c.at("leader")).c_str(), c.at("etcd_up").as_bool() ? "up" : "UNREACHABLE");
    std::printf("%-24s %-7s %10s  %s\n", "INSTANCE", "ROLE", "REPORT AGE",
                "REQUESTS/ERRORS BY POOL");
    for (const auto& iv : c.at("instances").as_array()) {
        const auto& i = iv.as_object();
        std::string pools;
        for (const auto& [name, pv] : i.at("pools").as_object())
            pools += std::string(name) + " " + str(pv.at("requests")) + "/" +
                     str(pv.at("failures")) + "  ";
        const auto& age = i.at("report_age_ms");
        std::printf("%-24s %-7s %10s  %s\n", str(i.at("instance")).c_str(),
                    i.at("leader").as_bool() ? "leader" : "",
                    age.is_null() ? "-" : (str(age) + " ms").c_str(), pools.c_str());
    }
}

void print_status(const json::object& s) {
    const auto& o = s;
    const auto& weight = o.at("canary_weight");
    std::printf("state      %s%s\n", str(o.at("state")).c_str(),
                o.at("paused").as_bool() ? " (paused)" : "");
    std::printf("stable     %s    canary %s\n", str(o.at("stable")).c_str(),
                str(o.at("canary")).c_str());
    std::printf("weight     %s %s%% to canary\n", bar(static_cast<int>(num(weight)), 40).c_str(),
                weight_text(weight).c_str());
    if (const auto* steps = o.if_contains("steps"); steps && steps->is_array()) {
        std::string list;
        for (const auto& w : steps->as_array())
            list += (list.empty() ? "" : " → ") + weight_text(w) + "%";
        const auto state = str(o.at("state"));
        const auto steps_n = steps->as_array().size();
        std::printf("rollout    %s: %s\n", str(o.at("strategy")).c_str(), list.c_str());
        if (state == "progressing" || state == "baking") {
            // The rollout's progress: which step, how long it has held, how long is left.
            const double hold_ms = num(o.at(state == "baking" ? "bake_ms" : "step_interval_ms"));
            const double held_ms = std::min(num(o.at("step_elapsed_ms")), hold_ms);
            const int pct = hold_ms > 0 ? static_cast<int>(100 * held_ms / hold_ms) : 100;
            std::printf("progress   %s %s %d of %zu, held %.1fs of %.0fs, %.1fs left%s\n",
                        bar(pct, 20).c_str(), state == "baking" ? "bake after step" : "step",
                        static_cast<int>(num(o.at("step"))) + 1, steps_n, held_ms / 1000.0,
                        hold_ms / 1000.0, (hold_ms - held_ms) / 1000.0,
                        o.at("paused").as_bool() ? " (paused)" : "");
        }
    }
    if (o.at("holding").as_bool())
        std::printf("judge      holding: %s more canary requests needed before any verdict\n",
                    str(o.at("needed_requests")).c_str());
    else if (const auto* v = o.if_contains("verdict");
             v && v->is_object() && v->as_object().if_contains("verdict")) {
        const auto& vo = v->as_object();
        std::printf("judge      %s, evidence %s canary / %s stable requests in the window",
                    str(vo.at("verdict")).c_str(), str(vo.at("canary_requests")).c_str(),
                    str(vo.at("stable_requests")).c_str());
        const auto reason = vo.if_contains("reason") ? str(vo.at("reason")) : "";
        std::printf("%s%s\n", reason.empty() ? "" : ": ", reason.c_str());
    } else {
        std::printf("judge      not judging: the canary has no traffic\n");
    }
    std::printf("\n%-10s %-7s %9s %8s %7s %8s %8s %8s\n", "POOL", "ROLE", "REQUESTS", "RPS",
                "ERRORS", "P50 MS", "P95 MS", "P99 MS");
    for (const auto& [name, pv] : o.at("pools").as_object()) {
        const auto& p = pv.as_object();
        std::printf("%-10s %-7s %9.0f %8.1f %6.2f%% %8.1f %8.1f %8.1f\n", std::string(name).c_str(),
                    str(p.at("role")).c_str(), num(p.at("requests")), num(p.at("rps")),
                    num(p.at("error_rate")) * 100, num(p.at("p50_ms")), num(p.at("p95_ms")),
                    num(p.at("p99_ms")));
        for (const auto& ev : p.at("endpoints").as_array()) {
            const auto& e = ev.as_object();
            const char* h = e.at("drained").as_bool()   ? "drained"
                            : e.at("ejected").as_bool() ? "EJECTED"
                            : e.at("healthy").as_bool() ? "healthy"
                                                        : "UNHEALTHY";
            std::printf("  %-28s %s\n", str(e.at("address")).c_str(), h);
        }
    }
    if (const auto* c = o.if_contains("cluster"); c && c->is_object()) print_fleet(c->as_object());
    if (const auto* evs = o.if_contains("events");
        evs && evs->is_array() && !evs->as_array().empty()) {
        std::printf("\nLAST EVENTS\n");
        for (const auto& ev : evs->as_array()) {
            const auto& e = ev.as_object();
            std::printf("  %s  %-14s %-8s %s\n", str(e.at("time")).c_str(),
                        str(e.at("kind")).c_str(), str(e.at("by")).c_str(),
                        str(e.at("reason")).c_str());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path, config_path;
    bool raw = false, watch = false;
    std::vector<std::string> words;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--socket" && i + 1 < argc)
            socket_path = argv[++i];
        else if (a == "--config" && i + 1 < argc)
            config_path = argv[++i];
        else if (a == "--json")
            raw = true;
        else if (a == "--watch" || a == "-w")
            watch = true;
        else if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        } else
            words.push_back(a);
    }
    if (words.empty()) {
        std::fputs(usage, stderr);
        return 2;
    }
    if (socket_path.empty() && !config_path.empty()) {
        auto r = veer::config::load_file(config_path);
        if (!r.cfg) {
            for (const auto& e : r.errors)
                std::fprintf(stderr, "%s\n", e.c_str());
            return 1;
        }
        socket_path = r.cfg->admin.socket;
    }
    if (socket_path.empty()) socket_path = "/tmp/veer.sock";
    std::string line;
    for (const auto& w : words)
        line += (line.empty() ? "" : " ") + w;

    for (;;) {
        std::string error;
        const auto answer = ask(socket_path, line, error);
        if (!error.empty()) {
            std::fprintf(stderr, "veerctl: %s\n", error.c_str());
            return 1;
        }
        json::value v;
        try {
            v = json::parse(answer);
        } catch (const std::exception&) {
            std::fprintf(stderr, "veerctl: veer sent something that is not JSON: %s",
                         answer.c_str());
            return 1;
        }
        const auto& o = v.as_object();
        const bool ok = o.if_contains("ok") && o.at("ok").is_bool() && o.at("ok").as_bool();
        if (!ok) {
            std::fprintf(stderr, "veerctl: %s\n",
                         o.if_contains("error") ? str(o.at("error")).c_str() : answer.c_str());
            return 1;
        }
        if (watch) std::printf("\033[H\033[2J");
        if (raw)
            std::printf("%s", answer.c_str());
        else if (words[0] == "status")
            print_status(o);
        else if (words[0] == "help")
            std::printf("%s\n", str(o.at("commands")).c_str());
        else if (words[0] == "events") {
            for (const auto& ev : o.at("events").as_array()) {
                const auto& e = ev.as_object();
                std::printf("%s  %-14s %-8s %s\n", str(e.at("time")).c_str(),
                            str(e.at("kind")).c_str(), str(e.at("by")).c_str(),
                            str(e.at("reason")).c_str());
            }
        } else {
            std::printf("ok");
            for (const auto& [k, val] : o)
                if (k != "ok") std::printf("  %s=%s", std::string(k).c_str(), str(val).c_str());
            std::printf("\n");
        }
        std::fflush(stdout);
        if (!watch) return 0;
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}
