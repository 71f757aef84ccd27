// TLS settings (SPEC section 3: listener.tls, pools.*.tls) are honoured or refused, never
// silently dropped: either would send in plain text what the operator asked to encrypt.
#include <optional>
#include <string>

#include "harness.hpp"

namespace veer::it {
namespace {

// A TLS listener must be TLS or nothing: plain HTTP served on it would be a silent
// downgrade. The certificate files here do not even exist.
TEST(Tls, ListenerWithMissingCertificateIsNeverServedInPlainText) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("listener", "tls",
                                     "{ cert = " + toml_string(dir.file("missing-cert.pem")) +
                                         ", key = " + toml_string(dir.file("missing-key.pem")) + " }"));
    const auto check = run_command(veer_binary, {"--check-config", v.config_path()}, dir.file("check.log"));
    EXPECT_NE(check.exit_code, 0) << "--check-config accepted certificate files that do not exist:\n" << check.output;

    v.launch();
    std::optional<int> code;
    bool listening = false;
    ASSERT_TRUE(wait_for([&] {
        code = v.proc().wait_exit(ms(0));
        listening = !code && tcp_accepts(v.port());
        return code || listening;
    }, ms(10000)));
    if (listening) {
        const auto got = raw_exchange(v.port(), make_request("GET", "/plain", {{"Connection", "close"}}), ms(3000));
        EXPECT_NE(got.data.substr(0, 9), "HTTP/1.1 ")
            << "listener.tls is set, yet veer answered plain HTTP: " << got.data.substr(0, 120);
        ADD_FAILURE() << "veer started with listener.tls naming certificate files that do not exist";
    } else {
        EXPECT_NE(*code, 0);
    }
}

// Same on the upstream side: a pool configured for TLS must never get plain HTTP.
TEST(Tls, PoolTlsIsNeverSpokenInPlainText) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request&) { c.send(ok_response("plaintext\n")); });
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config()
                       .set("pools.blue", "tls", "{ sni = \"blue.example\", verify = false }")
                       .set("health", "interval", "\"60s\""));
    v.launch();
    std::optional<int> code;
    bool listening = false;
    ASSERT_TRUE(wait_for([&] {
        code = v.proc().wait_exit(ms(0));
        listening = !code && tcp_accepts(v.port()) && unix_accepts(v.socket());
        return code || listening;
    }, ms(10000)));
    if (!listening) return;  // refusing a setting it cannot honour is fine
    const auto got = raw_exchange(v.port(), make_request("GET", "/secret", {{"Connection", "close"}}), ms(3000));
    EXPECT_EQ(up.requests().size(), 0u) << "pools.blue.tls is set, yet the upstream got a plain HTTP request:\n"
                                        << (up.requests().empty() ? "" : up.requests().front().head);
    // This upstream speaks no TLS: the handshake fails, and the client hears 502.
    EXPECT_EQ(got.data.substr(0, 13), "HTTP/1.1 502 ") << got.data.substr(0, 120);
}

}  // namespace
}  // namespace veer::it
