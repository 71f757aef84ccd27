// veer: the proxy's command line (SPEC section 2).
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.hpp"
#include "control/controller.hpp"
#include "proxy/tls.hpp"

namespace {

constexpr const char* usage =
    "usage: veer --config FILE          run in the foreground; logs to stderr\n"
    "       veer --check-config FILE    validate FILE and exit 0, or print its errors and exit 1\n"
    "       veer --version\n";

int load_or_report(const std::string& path, std::optional<veer::config::config>& out) {
    auto r = veer::config::load_file(path);
    for (const auto& e : r.errors)
        std::fprintf(stderr, "%s\n", e.c_str());
    if (!r.cfg) return 1;
    out = std::move(r.cfg);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "-v") == 0)) {
        std::printf("veer %s\n", VEER_VERSION);
        return 0;
    }
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
        std::fputs(usage, stdout);
        return 0;
    }
    if (argc != 3 ||
        (std::strcmp(argv[1], "--config") != 0 && std::strcmp(argv[1], "--check-config") != 0)) {
        std::fputs(usage, stderr);
        return 2;
    }
    std::optional<veer::config::config> cfg;
    if (load_or_report(argv[2], cfg) != 0) return 1;
    if (std::strcmp(argv[1], "--check-config") == 0) {
        // TLS files are read as a start would read them: missing, unreadable or
        // mismatched certificates and keys fail the check too (as `nginx -t` does).
        try {
            if (cfg->listener.tls)
                veer::proxy::make_server_tls(*cfg->listener.tls, cfg->listener.http2);
            for (const auto& p : cfg->pools)
                if (p.tls)
                    veer::proxy::make_client_tls(*p.tls, "pools." + p.name + ".tls",
                                                 p.protocol_ == veer::config::protocol::h2);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", argv[2], e.what());
            return 1;
        }
        // Names are looked up as a start would look them up (`nginx -t` resolves too).
        veer::control::resolved_names names;
        if (const auto err = veer::control::resolve_names(*cfg, names); !err.empty()) {
            std::fprintf(stderr, "%s: %s\n", argv[2], err.c_str());
            return 1;
        }
        std::printf("%s: ok\n", argv[2]);
        return 0;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up is an error code, not a signal
    try {
        veer::control::controller c(std::move(*cfg));
        return c.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "veer: %s\n", e.what());
        return 1;
    }
}
