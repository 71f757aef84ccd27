// TLS (SPEC sections 3 and 4: listener.tls, pools.*.tls), tested with real certificates
// made by `openssl req` in each test's directory and real clients and servers: curl,
// openssl s_client and openssl s_server, all on loopback. Every external command runs
// under `timeout` as well as the harness's own deadline.
//
// TLS settings are honoured or refused, never silently dropped: either would send in
// plain text what the operator asked to encrypt.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/serialize.hpp>

#include "harness.hpp"

namespace veer::it {
namespace {

constexpr const char* openssl_bin = "/usr/bin/openssl";
constexpr const char* curl_bin = "/usr/bin/curl";
constexpr const char* timeout_bin = "/usr/bin/timeout";
constexpr const char* sh_bin = "/bin/sh";

bool tools_present() {
    for (const char* p : {openssl_bin, curl_bin, timeout_bin, sh_bin})
        if (::access(p, X_OK) != 0) return false;
    return true;
}

#define REQUIRE_TLS_TOOLS()                                                                        \
    do {                                                                                           \
        if (!tools_present()) GTEST_SKIP() << "needs /usr/bin/openssl, /usr/bin/curl and timeout"; \
    } while (0)

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

// Single quotes for sh: the temp directories have no quotes, but be safe anyway.
std::string sq(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

// A tool under `timeout 10`, stdin from /dev/null; output in the test's directory.
command_result run_tool(const temp_dir& dir, const std::string& log_name, const std::string& binary,
                        std::vector<std::string> args) {
    args.insert(args.begin(), {"10", binary});
    return run_command(timeout_bin, std::move(args), dir.file(log_name), ms(15000));
}

// A shell pipeline (for feeding a client's stdin); each command in it carries its own
// `timeout`, and the whole is bounded too.
command_result run_sh(const temp_dir& dir, const std::string& log_name, const std::string& script) {
    return run_command(timeout_bin, {"20", sh_bin, "-c", script}, dir.file(log_name), ms(25000));
}

void must(const command_result& r, const std::string& what) {
    if (r.exit_code != 0)
        throw std::runtime_error(what + " failed (exit " + std::to_string(r.exit_code) + "):\n" +
                                 r.output);
}

// ---------------------------------------------------------------------------------------
// Certificates

struct pki {
    std::string ca;  // the CA certificate (trust anchor for clients)
    std::string ca_key;
    std::string cert;  // leaf: CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by ca
    std::string key;
};

// A CA and a server certificate it signed, EC P-256, in `dir` as PREFIX-*.pem.
pki make_pki(const temp_dir& dir, const std::string& prefix) {
    pki p{dir.file(prefix + "-ca.pem"), dir.file(prefix + "-ca.key"),
          dir.file(prefix + "-cert.pem"), dir.file(prefix + "-key.pem")};
    must(run_tool(dir, prefix + "-ca.log", openssl_bin,
                  {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", p.ca_key, "-out", p.ca, "-days", "2", "-subj",
                   "/CN=veer test CA " + prefix}),
         "openssl req (CA " + prefix + ")");
    must(run_tool(dir, prefix + "-leaf.log", openssl_bin,
                  {"req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:P-256",
                   "-nodes",
                   "-keyout",
                   p.key,
                   "-out",
                   p.cert,
                   "-days",
                   "2",
                   "-subj",
                   "/CN=localhost",
                   "-CA",
                   p.ca,
                   "-CAkey",
                   p.ca_key,
                   "-addext",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1",
                   "-addext",
                   "basicConstraints=critical,CA:FALSE",
                   "-addext",
                   "extendedKeyUsage=serverAuth"}),
         "openssl req (leaf " + prefix + ")");
    return p;
}

// A self-signed certificate for CN/SAN `name` only (nothing for localhost or 127.0.0.1).
pki make_self_signed(const temp_dir& dir, const std::string& prefix, const std::string& name) {
    pki p{dir.file(prefix + "-cert.pem"), "", dir.file(prefix + "-cert.pem"),
          dir.file(prefix + "-key.pem")};
    must(run_tool(dir, prefix + "-self.log", openssl_bin,
                  {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", p.key, "-out", p.cert, "-days", "2", "-subj", "/CN=" + name,
                   "-addext", "subjectAltName=DNS:" + name}),
         "openssl req (self-signed " + prefix + ")");
    return p;
}

// A fresh P-256 key that matches no certificate.
void make_stray_key(const temp_dir& dir, const std::string& path) {
    must(run_tool(
             dir, "stray-key.log", openssl_bin,
             {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path}),
         "openssl genpkey");
}

std::string after(std::string_view text, std::string_view marker) {
    const auto at = text.find(marker);
    if (at == std::string_view::npos) return "";
    const auto from = at + marker.size();
    const auto eol = text.find('\n', from);
    return std::string(
        text.substr(from, eol == std::string_view::npos ? std::string_view::npos : eol - from));
}

// "AB:CD:..." of a PEM certificate file.
std::string fingerprint_of_file(const temp_dir& dir, const std::string& pem) {
    const auto r = run_tool(dir, "fingerprint.log", openssl_bin,
                            {"x509", "-in", pem, "-noout", "-fingerprint", "-sha256"});
    must(r, "openssl x509 -fingerprint " + pem);
    return after(r.output, "Fingerprint=");
}

// The fingerprint of the certificate a TLS server on `port` presents now ("" if none).
std::string served_fingerprint(const temp_dir& dir, int port) {
    const auto r = run_tool(dir, "showcerts.log", openssl_bin,
                            {"s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                             "-servername", "localhost", "-showcerts"});
    const auto begin = r.output.find("-----BEGIN CERTIFICATE-----");
    const auto end =
        r.output.find("-----END CERTIFICATE-----", begin == std::string::npos ? 0 : begin);
    if (begin == std::string::npos || end == std::string::npos) return "";
    const auto pem = dir.file("served.pem");
    write_file(pem, r.output.substr(begin, end + 25 - begin) + "\n");
    return fingerprint_of_file(dir, pem);
}

// ---------------------------------------------------------------------------------------
// Clients

struct handshake {
    bool ok = false;  // s_client exited 0 and a cipher was agreed
    std::string protocol;  // "TLSv1.2"
    std::string cipher;  // "ECDHE-ECDSA-AES128-GCM-SHA256"
    std::string alpn;  // "http/1.1", or "" when none was negotiated
    std::string output;
};

handshake s_client(const temp_dir& dir, int port, const std::vector<std::string>& extra) {
    std::vector<std::string> args{"s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                                  "-servername", "localhost"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_tool(dir, "s_client.log", openssl_bin, args);
    handshake h;
    h.output = r.output;
    h.protocol = after(r.output, "    Protocol  : ");
    h.cipher = after(r.output, ", Cipher is ");
    if (h.protocol.empty()) {
        // TLS 1.3 prints no session when s_client leaves before the session tickets: the
        // "New, TLSv1.3, Cipher is ..." line names the protocol then.
        const auto line = after(r.output, "\nNew, ");
        h.protocol = line.substr(0, line.find(','));
    }
    h.alpn = after(r.output, "ALPN protocol: ");
    h.ok = r.exit_code == 0 && !h.cipher.empty() && h.cipher != "(NONE)";
    return h;
}

// Up to `n` characters of `text` from the first `marker` on ("" if there is none).
std::string around(const std::string& text, std::string_view marker, std::size_t n = 300) {
    const auto at = text.find(marker);
    return at == std::string::npos ? std::string() : text.substr(at, n);
}

std::string describe(const handshake& h) {
    return "protocol=" + h.protocol + " cipher=" + h.cipher + " alpn=" + h.alpn + "\n" +
           h.output.substr(0, 1500);
}

// curl over https with the CA given; `args` are URLs and options.
command_result curl(const temp_dir& dir, const std::string& ca, std::vector<std::string> args) {
    args.insert(args.begin(), {"-sS", "--max-time", "8", "--cacert", ca});
    return run_tool(dir, "curl.log", curl_bin, std::move(args));
}

std::string https_url(int port, std::string_view path) {
    return "https://localhost:" + std::to_string(port) + std::string(path);
}

toml_config tls_listener(const std::string& cert, const std::string& key) {
    return toml_config().set(
        "listener", "tls", "{ cert = " + toml_string(cert) + ", key = " + toml_string(key) + " }");
}

// ---------------------------------------------------------------------------------------
// openssl s_server

// An `openssl s_server` on 127.0.0.1, run from `cwd` (what -WWW serves), under `timeout`.
// With `observe`, its stdin is a FIFO the test holds open: s_server then stays in its
// plain mode, printing every byte it decrypts into its log, and never answers.
class tls_server {
public:
    tls_server(const temp_dir& dir, const std::string& name, std::vector<std::string> args,
               bool observe = false)
        : port_(free_port()) {
        std::string cmd = "cd ";
        cmd.append(sq(dir.path()))
            .append(" && exec ")
            .append(timeout_bin)
            .append(" 60 ")
            .append(openssl_bin);
        cmd.append(" s_server -accept 127.0.0.1:").append(std::to_string(port_));
        for (const auto& a : args)
            cmd.append(" ").append(sq(a));
        if (observe) {
            const auto fifo = dir.file(name + ".stdin");
            ::unlink(fifo.c_str());
            if (::mkfifo(fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + fifo);
            stdin_fd_ = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // a writer that never writes
            cmd.append(" < ").append(sq(fifo));
        }
        proc_ = std::make_unique<process>(sh_bin, std::vector<std::string>{"-c", cmd},
                                          dir.file(name + ".log"));
        if (!wait_for([&] { return contains(proc_->output(), "ACCEPT") || !proc_->running(); },
                      ms(10000)) ||
            !proc_->running())
            throw std::runtime_error("openssl s_server did not start: " + proc_->output());
    }
    ~tls_server() {
        proc_->stop(ms(3000));
        if (stdin_fd_ >= 0) ::close(stdin_fd_);
    }
    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return proc_->output(); }

private:
    int port_;
    int stdin_fd_ = -1;
    std::unique_ptr<process> proc_;
};

// An upstream that answers every request with 200 and keeps the connection.
void answer_ok(script_conn& c, upstream_request& first) {
    for (std::optional<upstream_request> r = first; r; r = c.read_request(ms(5000)))
        if (!c.send(ok_response("tls-ok " + r->target + "\n"))) return;
}

// =======================================================================================
// Listener: configuration

// A TLS listener must be TLS or nothing: plain HTTP served on it would be a silent
// downgrade. The certificate files here do not even exist.
TEST(Tls, ListenerWithMissingCertificateIsNeverServedInPlainText) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(
        dir, {blue.address()}, {dead_address()},
        toml_config().set("listener", "tls",
                          "{ cert = " + toml_string(dir.file("missing-cert.pem")) +
                              ", key = " + toml_string(dir.file("missing-key.pem")) + " }"));
    const auto check =
        run_command(veer_binary, {"--check-config", v.config_path()}, dir.file("check.log"));
    EXPECT_NE(check.exit_code, 0)
        << "--check-config accepted certificate files that do not exist:\n"
        << check.output;

    v.launch();
    std::optional<int> code;
    bool listening = false;
    ASSERT_TRUE(wait_for(
        [&] {
            code = v.proc().wait_exit(ms(0));
            listening = !code && tcp_accepts(v.port());
            return code || listening;
        },
        ms(10000)));
    if (listening) {
        const auto got = raw_exchange(
            v.port(), make_request("GET", "/plain", {{"Connection", "close"}}), ms(3000));
        EXPECT_NE(got.data.substr(0, 9), "HTTP/1.1 ")
            << "listener.tls is set, yet veer answered plain HTTP: " << got.data.substr(0, 120);
        ADD_FAILURE()
            << "veer started with listener.tls naming certificate files that do not exist";
    } else {
        EXPECT_NE(*code, 0);
    }
}

// --check-config names the key and the file it cannot read: listener.tls.cert,
// listener.tls.key and pools.NAME.tls.ca.
TEST(Tls, CheckConfigNamesTheUnreadableTlsFile) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    const auto missing = dir.file("nowhere/missing.pem");
    struct variant {
        std::string key;
        toml_config cfg;
    };
    const std::vector<variant> variants{
        {"listener.tls.cert", tls_listener(missing, a.key)},
        {"listener.tls.key", tls_listener(a.cert, missing)},
        {"pools.blue.tls.ca",
         toml_config().set("pools.blue", "tls",
                           "{ sni = \"localhost\", ca = " + toml_string(missing) + " }")},
    };
    for (const auto& var : variants) {
        SCOPED_TRACE(var.key);
        veer_process v(dir, {"127.0.0.1:1"}, {dead_address()}, var.cfg);
        const auto check =
            run_command(veer_binary, {"--check-config", v.config_path()}, dir.file("check.log"));
        EXPECT_EQ(check.exit_code, 1) << check.output;
        EXPECT_TRUE(contains(check.output, v.config_path() + ":"))
            << "no file:line:col: " << check.output;
        EXPECT_TRUE(contains(check.output, var.key + ":"))
            << "the key is not named: " << check.output;
        EXPECT_TRUE(contains(check.output, missing)) << "the file is not named: " << check.output;
        // And veer itself refuses to start on it.
        v.launch();
        const auto code = v.proc().wait_exit(ms(10000));
        ASSERT_TRUE(code) << "veer started on an unreadable " << var.key;
        EXPECT_NE(*code, 0);
    }
}

// A key that does not belong to the certificate: veer must refuse to start and say why.
TEST(Tls, KeyThatDoesNotMatchCertificateRefusesToStart) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    const auto stray = dir.file("stray-key.pem");
    make_stray_key(dir, stray);
    veer_process v(dir, {"127.0.0.1:1"}, {dead_address()}, tls_listener(a.cert, stray));
    v.launch();
    const auto code = v.proc().wait_exit(ms(10000));
    ASSERT_TRUE(code) << "veer started with a key that does not match its certificate:\n"
                      << v.log();
    EXPECT_NE(*code, 0);
    const auto log = v.log();
    EXPECT_TRUE(contains(log, "listener.tls.key")) << log;
    EXPECT_TRUE(contains(log, stray)) << log;
    EXPECT_TRUE(contains(log, "mismatch") || contains(log, "does not match")) << log;
    EXPECT_FALSE(tcp_accepts(v.port()));
}

// --check-config must catch what makes veer refuse to start: a key that does not match
// the certificate, or a "certificate" file that holds no certificate (nginx -t and
// haproxy -c both load the certificates).
TEST(Tls, CheckConfigRejectsUnusableCertificateOrKey) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    const auto stray = dir.file("stray-key.pem");
    make_stray_key(dir, stray);
    const auto garbage = dir.file("garbage.pem");
    write_file(garbage, "this is not a certificate\n");
    {
        veer_process v(dir, {"127.0.0.1:1"}, {dead_address()}, tls_listener(a.cert, stray));
        const auto check =
            run_command(veer_binary, {"--check-config", v.config_path()}, dir.file("check.log"));
        EXPECT_EQ(check.exit_code, 1)
            << "--check-config accepted a key that does not match the certificate "
               "(veer --config refuses to start on it):\n"
            << check.output;
    }
    {
        veer_process v(dir, {"127.0.0.1:1"}, {dead_address()}, tls_listener(garbage, a.key));
        const auto check =
            run_command(veer_binary, {"--check-config", v.config_path()}, dir.file("check.log"));
        EXPECT_EQ(check.exit_code, 1)
            << "--check-config accepted a certificate file with no certificate in it:\n"
            << check.output;
    }
}

// =======================================================================================
// Listener: the data path over TLS

// curl --cacert: 200; the upstream sees X-Forwarded-Proto: https (a client's own value
// replaced) and X-Forwarded-For; several requests share one TLS connection.
TEST(Tls, HttpsRequestsAreServedWithForwardedHeadersAndKeepAlive) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());

    const auto verbose = dir.file("curl-verbose.log");
    const auto r = curl(
        dir, a.ca,
        {"-v", "--stderr", verbose, "-w", "[status=%{http_code} connects=%{num_connects}]\\n", "-H",
         "X-Forwarded-Proto: http", "-H", "X-Forwarded-For: 203.0.113.9",
         https_url(v.port(), "/one"), https_url(v.port(), "/two"), https_url(v.port(), "/three")});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "tls-ok /one\n[status=200 connects=1]")) << r.output;
    EXPECT_TRUE(contains(r.output, "tls-ok /two\n[status=200 connects=0]")) << "no keep-alive:\n"
                                                                            << r.output;
    EXPECT_TRUE(contains(r.output, "tls-ok /three\n[status=200 connects=0]")) << "no keep-alive:\n"
                                                                              << r.output;
    const auto trace = read_file(verbose);
    EXPECT_TRUE(contains(trace, "ALPN: server accepted h2")) << trace;  // SPEC 10
    EXPECT_TRUE(contains(trace, "Re-using existing connection")) << trace;

    ASSERT_TRUE(up.wait_requests(3, ms(5000)));
    for (const auto& req : up.requests()) {
        SCOPED_TRACE(req.target);
        EXPECT_EQ(req.count("X-Forwarded-Proto"), 1) << req.head;
        EXPECT_EQ(req.get("X-Forwarded-Proto"), "https") << req.head;
        EXPECT_EQ(req.get("X-Forwarded-For"), "203.0.113.9, 127.0.0.1") << req.head;
        EXPECT_TRUE(req.has("X-Request-Id")) << req.head;
    }
}

// Bodies of several MiB both ways through TLS (OpenSSL's partial reads and writes), and
// two requests pipelined in one TLS record: the second sits decrypted in OpenSSL's buffer
// while the socket shows nothing more to read, and must still be answered.
TEST(Tls, LargeBodiesAndPipelinedRequestsOverTls) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());

    const auto upload = dir.file("upload.bin");
    write_file(upload, std::string(4 * 1024 * 1024 + 7, 'u'));
    const auto up =
        curl(dir, a.ca, {"--data-binary", "@" + upload, https_url(v.port(), "/upload")});
    EXPECT_EQ(up.exit_code, 0) << up.output;
    EXPECT_TRUE(contains(up.output, "blue POST /upload 4194311")) << up.output.substr(0, 300);

    const auto down = curl(dir, a.ca,
                           {"-o", dir.file("download.bin"), "-w", "[%{http_code} %{size_download}]",
                            https_url(v.port(), "/bytes/8388608")});
    EXPECT_EQ(down.exit_code, 0) << down.output;
    EXPECT_TRUE(contains(down.output, "[200 8388608]")) << down.output;

    const auto piped = run_sh(dir, "pipelined.log",
                              "(printf 'GET /first HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\nGET "
                              "/second HTTP/1.1\\r\\nHost: localhost\\r\\n"
                              "Connection: close\\r\\n\\r\\n'; sleep 3) | " +
                                  std::string(timeout_bin) + " 10 " + openssl_bin +
                                  " s_client -connect 127.0.0.1:" + std::to_string(v.port()) +
                                  " -servername localhost -ign_eof -quiet 2>&1");
    EXPECT_TRUE(contains(piped.output, "blue GET /first 0")) << piped.output;
    EXPECT_TRUE(contains(piped.output, "blue GET /second 0"))
        << "the pipelined request was not answered:\n"
        << piped.output;
}

// Session tickets (TLS 1.3) resume, and their keys rotate: with a rotation of a second a
// ticket still resumes one rotation later (the key before is kept, and the ticket renewed),
// and no longer two rotations later. Rotation happens at the first ticket sealed after the
// current key's time is up: a full handshake after each wait seals some.
TEST(Tls, SessionTicketsResumeAndTheirKeysRotate) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("listener", "tls",
                                     "{ cert = " + toml_string(a.cert) + ", key = " +
                                         toml_string(a.key) + ", ticket_key_rotation = \"1s\" }"));
    ASSERT_TRUE(v.start());
    const auto session = dir.file("session.pem");
    int step = 0;
    auto connect = [&](const std::string& args) {
        const auto r = run_sh(dir, "s_client-" + std::to_string(++step) + ".log",
                              "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | " + std::string(timeout_bin) +
                                  " 10 " + openssl_bin + " s_client -connect 127.0.0.1:" +
                                  std::to_string(v.port()) + " -servername localhost -ign_eof " +
                                  args + " 2>&1");
        if (contains(r.output, "\nReused, TLSv1.3")) return std::string("reused");
        if (contains(r.output, "\nNew, TLSv1.3")) return std::string("new");
        return r.output.substr(0, 400);
    };
    EXPECT_EQ(connect("-sess_out " + session), "new");
    EXPECT_EQ(connect("-sess_in " + session), "reused") << "a ticket resumes";
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // the behaviour is in time
    EXPECT_EQ(connect(""), "new");  // a full handshake seals tickets: the first rotation
    EXPECT_EQ(connect("-sess_in " + session), "reused") << "one rotation later";
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_EQ(connect(""), "new");  // the second rotation
    EXPECT_EQ(connect("-sess_in " + session), "new") << "two rotations later: a full handshake";
}

// A TLS connection idle for over a second parks: the worker keeps its socket and OpenSSL's
// state, and its session ends. The next request wakes it, TLS goes on where it was, and that
// request (longer than a small first read) is answered whole.
TEST(Tls, IdleConnectionParksAndIsServedAgain) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());

    // The pause is the condition under test: idle past worker::park_after_ns (1 s).
    const auto idle =
        run_sh(dir, "idle.log",
               "(printf 'GET /before HTTP/1.1\r\nHost: localhost\r\n\r\n'; sleep 1.6; "
               "printf 'GET /after-a-long-idle-with-a-head-longer-than-64-bytes HTTP/1.1\r\nHost: "
               "localhost\r\n"
               "Connection: close\r\n\r\n'; sleep 2) | " +
                   std::string(timeout_bin) + " 10 " + openssl_bin +
                   " s_client -connect 127.0.0.1:" + std::to_string(v.port()) +
                   " -servername localhost -ign_eof -quiet 2>&1");
    EXPECT_TRUE(contains(idle.output, "blue GET /before 0")) << idle.output;
    EXPECT_TRUE(
        contains(idle.output, "blue GET /after-a-long-idle-with-a-head-longer-than-64-bytes 0"))
        << "the request after the idle was not answered:\n"
        << idle.output;
}

// A parked TLS connection closed for idling sends close_notify first (RFC 8446 6.1): the
// client sees a clean end (Python's ssl returns b""), not a cut (SSLEOFError).
TEST(Tls, ParkedConnectionClosedForIdlingSendsCloseNotify) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   tls_listener(a.cert, a.key).set("timeouts", "idle", "\"1500ms\""));
    ASSERT_TRUE(v.start());
    const std::string client =
        "import socket, ssl\n"
        "c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE\n"
        "c.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF\n"  // set by default: a cut would read as an end
        "s = c.wrap_socket(socket.create_connection(('127.0.0.1', " + std::to_string(v.port()) +
        ")), server_hostname='localhost',\n"
        "                  suppress_ragged_eofs=False)\n"
        "s.sendall(b'GET /park HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')\n"
        "print(s.recv(65536).split(b'\\r\\n')[0].decode())\n"
        "s.settimeout(10)\n"
        "try:\n"
        "    print('clean' + ' end' if s.recv(100) == b'' else 'more data')\n"  // a traceback quotes this line
        "except ssl.SSLError:\n"
        "    print('cut without close_notify')\n";
    write_file(dir.path() + "/idle_client.py", client);
    // Parked after 1 s idle, closed at 1.5 s: the close is the parked connection's.
    const auto run = run_sh(dir, "idle_client.log",
                            std::string(timeout_bin) + " 20 /usr/bin/python3 " + dir.path() +
                                "/idle_client.py 2>&1");
    EXPECT_TRUE(contains(run.output, "HTTP/1.1 200")) << run.output;
    EXPECT_TRUE(contains(run.output, "clean end")) << run.output;
}

// Plain HTTP sent to the TLS listener gets no plain HTTP answer and reaches no upstream.
TEST(Tls, PlainHttpOnTlsListenerIsNotServed) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());
    const auto got =
        raw_exchange(v.port(), make_request("GET", "/plain", {{"Connection", "close"}}), ms(5000));
    EXPECT_TRUE(got.closed);
    EXPECT_NE(got.data.substr(0, 5), "HTTP/") << got.data.substr(0, 200);
    EXPECT_EQ(up.data_connections(), 0u);
}

// Protocols and ciphers: TLS 1.2 and 1.3 only, ECDHE + AEAD only, ALPN http/1.1, no
// client renegotiation. Refusals are checked against a positive control: the same client
// command succeeds against an openssl s_server that allows it.
TEST(Tls, OnlyTls12And13WithEcdheAeadCiphers) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());
    const std::vector<std::string> legacy{"-cipher", "DEFAULT:@SECLEVEL=0"};

    {
        // Control: this client can speak TLS 1.1 (and 1.0) when a server allows it.
        tls_server old(
            dir, "s_server-tls11",
            {"-cert", a.cert, "-key", a.key, "-www", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"});
        auto args = legacy;
        args.insert(args.begin(), "-tls1_1");
        const auto control = s_client(dir, old.port(), args);
        ASSERT_TRUE(control.ok)
            << "control: TLS 1.1 client against s_server -tls1_1 failed, so a refusal by veer "
               "would prove nothing\n"
            << describe(control);
        EXPECT_EQ(control.protocol, "TLSv1.1");

        const auto h = s_client(dir, v.port(), args);
        EXPECT_FALSE(h.ok) << "veer accepted TLS 1.1\n" << describe(h);
    }
    {
        tls_server old(
            dir, "s_server-tls10",
            {"-cert", a.cert, "-key", a.key, "-www", "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"});
        auto args = legacy;
        args.insert(args.begin(), "-tls1");
        const auto control = s_client(dir, old.port(), args);
        ASSERT_TRUE(control.ok) << describe(control);
        const auto h = s_client(dir, v.port(), args);
        EXPECT_FALSE(h.ok) << "veer accepted TLS 1.0\n" << describe(h);
    }
    {
        // TLS 1.2 with suites that lack forward secrecy (AES128-SHA, AES128-GCM-SHA256) or
        // authenticated encryption (ECDHE-ECDSA-AES128-SHA, ECDHE-ECDSA-AES128-SHA256).
        tls_server lax(
            dir, "s_server-tls12-any",
            {"-cert", a.cert, "-key", a.key, "-www", "-tls1_2", "-cipher", "ALL:@SECLEVEL=0"});
        for (const std::string cipher : {"AES128-SHA", "AES128-GCM-SHA256",
                                         "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"}) {
            SCOPED_TRACE(cipher);
            const std::vector<std::string> args{"-tls1_2", "-cipher", cipher + ":@SECLEVEL=0"};
            const auto control = s_client(dir, lax.port(), args);
            // An ECDSA certificate cannot serve the RSA-key-exchange suites: no control there.
            if (cipher.rfind("ECDHE", 0) == 0) {
                ASSERT_TRUE(control.ok) << describe(control);
            }
            const auto h = s_client(dir, v.port(), args);
            EXPECT_FALSE(h.ok) << "veer accepted TLS 1.2 with " << cipher << "\n" << describe(h);
        }
    }

    const auto gcm =
        s_client(dir, v.port(), {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
    EXPECT_TRUE(gcm.ok) << describe(gcm);
    EXPECT_EQ(gcm.protocol, "TLSv1.2");
    EXPECT_EQ(gcm.cipher, "ECDHE-ECDSA-AES128-GCM-SHA256");
    EXPECT_TRUE(contains(gcm.output, "Compression: NONE")) << describe(gcm);

    const auto chacha =
        s_client(dir, v.port(), {"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"});
    EXPECT_TRUE(chacha.ok) << describe(chacha);

    const auto tls13 = s_client(dir, v.port(), {"-tls1_3"});
    EXPECT_TRUE(tls13.ok) << describe(tls13);
    EXPECT_EQ(tls13.protocol, "TLSv1.3");

    const auto alpn12 = s_client(dir, v.port(), {"-tls1_2", "-alpn", "h2,http/1.1"});
    EXPECT_TRUE(alpn12.ok) << describe(alpn12);
    EXPECT_EQ(alpn12.alpn, "h2") << describe(alpn12);  // listener.http2 is on by default
    const auto alpn13 = s_client(dir, v.port(), {"-tls1_3", "-alpn", "http/1.1"});
    EXPECT_EQ(alpn13.alpn, "http/1.1") << describe(alpn13);
    // A client that offers nothing veer speaks gets no ALPN, not a failed handshake.
    const auto spdy = s_client(dir, v.port(), {"-alpn", "spdy/3"});
    EXPECT_TRUE(spdy.ok) << describe(spdy);
    EXPECT_EQ(spdy.alpn, "") << describe(spdy);

    // Client-initiated renegotiation (TLS 1.2, s_client's "R" command) is refused...
    const std::string reneg =
        "(sleep 1; printf 'R\\n'; sleep 1) | " + std::string(timeout_bin) + " 10 " + openssl_bin +
        " s_client -connect 127.0.0.1:%PORT% -servername localhost -tls1_2 2>&1";
    auto with_port = [&](int port) {
        std::string s = reneg;
        s.replace(s.find("%PORT%"), 6, std::to_string(port));
        return s;
    };
    {
        // ...control: against a server that allows it, the same client renegotiates.
        tls_server allow(dir, "s_server-reneg",
                         {"-cert", a.cert, "-key", a.key, "-www", "-client_renegotiation"});
        const auto control = run_sh(dir, "reneg-control.log", with_port(allow.port()));
        ASSERT_TRUE(contains(control.output, "RENEGOTIATING")) << control.output;
        ASSERT_FALSE(contains(control.output, "no renegotiation")) << control.output;
        ASSERT_EQ(control.exit_code, 0) << control.output;
    }
    const auto r = run_sh(dir, "reneg.log", with_port(v.port()));
    EXPECT_TRUE(contains(r.output, "RENEGOTIATING")) << r.output;
    EXPECT_TRUE(contains(r.output, "no renegotiation") || r.exit_code != 0)
        << "veer allowed a client-initiated renegotiation:\n"
        << r.output;
    EXPECT_TRUE(v.proc().running());
}

// The handshake is part of the request head: it must finish within timeouts.header_read.
// A client that sends nothing, half a ClientHello, or a ClientHello one byte at a time is
// closed after about header_read, while a normal client is served meanwhile.
TEST(Tls, HandshakeMustFinishWithinHeaderRead) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()},
                   tls_listener(a.cert, a.key).set("timeouts", "header_read", "\"300ms\""));
    ASSERT_TRUE(v.start());

    // A TLS 1.2 record header and the start of a ClientHello that announces 512 bytes.
    std::string hello_start("\x16\x03\x01\x02\x04\x01\x00\x02\x00\x03\x03", 11);
    hello_start.append(32, '\x5a');  // "random"

    struct outcome {
        std::atomic<bool> closed{false};
        std::atomic<long long> after_ms{-1};
    };
    outcome silent, half, trickle;
    auto watch = [&](outcome& o, const std::string& first_bytes, bool drip) {
        const auto t0 = steady::now();
        tcp_conn c(v.port());
        if (!c.connected()) return;
        if (!first_bytes.empty()) c.send_all(first_bytes);
        if (drip) {
            // One byte every 50ms: 10s in all, unless veer hangs up first.
            for (int i = 0; i < 200; ++i) {
                if (!c.send_all(std::string_view("\x00", 1), ms(1000))) break;
                tcp_conn::read_status s = c.fill(deadline(ms(50)));
                if (s == tcp_conn::read_status::closed) break;
            }
        }
        o.closed =
            c.peer_closed() || c.was_reset() || c.read_until_close(ms(4000)) || c.peer_closed();
        o.after_ms = std::chrono::duration_cast<ms>(steady::now() - t0).count();
    };
    std::thread t1([&] { watch(silent, "", false); });
    std::thread t2([&] { watch(half, hello_start, false); });
    std::thread t3([&] { watch(trickle, std::string("\x16\x03\x01\x02\x00", 5), true); });

    // Meanwhile a real client gets through.
    const auto r = curl(dir, a.ca, {"-w", "[%{http_code}]", https_url(v.port(), "/meanwhile")});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "tls-ok /meanwhile\n[200]")) << r.output;

    t1.join();
    t2.join();
    t3.join();
    for (auto* o : {&silent, &half, &trickle}) {
        const char* what = o == &silent ? "silent client"
                           : o == &half ? "half a ClientHello"
                                        : "byte-by-byte ClientHello";
        SCOPED_TRACE(what);
        EXPECT_TRUE(o->closed.load()) << what << " was not closed";
        EXPECT_GE(o->after_ms.load(), 200) << what << " closed before header_read";
        EXPECT_LE(o->after_ms.load(), 2000) << what << " outlived header_read = 300ms";
    }
    // After all that, TLS still works.
    const auto again = curl(dir, a.ca, {https_url(v.port(), "/after")});
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_TRUE(contains(again.output, "tls-ok /after")) << again.output;
}

// RFC 8446 6.1: each side sends close_notify before closing. Without it a client cannot
// tell a body that ends at the close (an HTTP/1.0 upstream without Content-Length) from a
// truncated one. Control: openssl s_server -WWW does send it, and s_client is content.
TEST(Tls, ClosingConnectionSendsCloseNotify) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    scripted_upstream up([](script_conn& c, upstream_request&) {
        c.send("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close\n");
        c.close();
    });
    veer_process v(dir, {up.address()}, {dead_address()}, tls_listener(a.cert, a.key));
    ASSERT_TRUE(v.start());
    write_file(dir.file("www.txt"), "body until close\n");
    auto fetch = [&](int port, const std::string& target, const std::string& log) {
        return run_sh(dir, log,
                      "(printf 'GET " + target +
                          " HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n'; "
                          "sleep 3) | " +
                          timeout_bin + " 10 " + openssl_bin +
                          " s_client -connect 127.0.0.1:" + std::to_string(port) +
                          " -servername localhost -CAfile " + sq(a.ca) + " -ign_eof -quiet 2>&1");
    };
    {
        tls_server www(dir, "s_server-www", {"-cert", a.cert, "-key", a.key, "-WWW"});
        const auto control = fetch(www.port(), "/www.txt", "close-control.log");
        ASSERT_TRUE(contains(control.output, "body until close")) << control.output;
        ASSERT_FALSE(contains(control.output, "unexpected eof")) << control.output;
    }
    const auto r = fetch(v.port(), "/", "close.log");
    EXPECT_TRUE(contains(r.output, "body until close")) << r.output;
    EXPECT_FALSE(contains(r.output, "unexpected eof"))
        << "veer closed the TLS connection without close_notify:\n"
        << r.output;
}

// =======================================================================================
// Listener: certificate reload

// New certificate files and SIGHUP: new handshakes present the new certificate. Then a key
// that does not match: `reload` answers ok:false and the last good certificate stays.
TEST(Tls, ReloadSwapsCertificateAndKeepsTheOldOneOnABadKey) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    const auto b = make_pki(dir, "b");
    const auto cert = dir.file("server-cert.pem");
    const auto key = dir.file("server-key.pem");
    write_file(cert, read_file(a.cert));
    write_file(key, read_file(a.key));
    const auto fp_a = fingerprint_of_file(dir, a.cert);
    const auto fp_b = fingerprint_of_file(dir, b.cert);
    ASSERT_FALSE(fp_a.empty());
    ASSERT_NE(fp_a, fp_b);

    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()}, tls_listener(cert, key));
    ASSERT_TRUE(v.start());
    EXPECT_EQ(served_fingerprint(dir, v.port()), fp_a);
    EXPECT_EQ(curl(dir, a.ca, {https_url(v.port(), "/a")}).exit_code, 0);

    write_file(cert, read_file(b.cert));
    write_file(key, read_file(b.key));
    v.proc().send_signal(SIGHUP);
    std::string served;
    EXPECT_TRUE(wait_for([&] { return (served = served_fingerprint(dir, v.port())) == fp_b; },
                         ms(10000), ms(200)))
        << "after SIGHUP veer still presents " << served << ", not the new " << fp_b << "\n"
        << v.log();
    const auto with_b = curl(dir, b.ca, {https_url(v.port(), "/b")});
    EXPECT_EQ(with_b.exit_code, 0) << with_b.output;
    EXPECT_TRUE(contains(with_b.output, "tls-ok /b")) << with_b.output;
    const auto with_a = curl(dir, a.ca, {https_url(v.port(), "/a-again")});
    EXPECT_EQ(with_a.exit_code, 60) << "the old CA still verifies the served certificate:\n"
                                    << with_a.output;

    // A key that matches nothing: rejected, and the certificate from B keeps being served.
    make_stray_key(dir, key);
    const auto answer = v.admin("reload");
    EXPECT_FALSE(json_bool(answer, "ok")) << boost::json::serialize(answer);
    EXPECT_TRUE(contains(json_string(answer, "error"), "listener.tls.key"))
        << boost::json::serialize(answer);
    EXPECT_EQ(served_fingerprint(dir, v.port()), fp_b);
    const auto still_b = curl(dir, b.ca, {https_url(v.port(), "/still-b")});
    EXPECT_EQ(still_b.exit_code, 0) << still_b.output;
    EXPECT_TRUE(contains(still_b.output, "tls-ok /still-b")) << still_b.output;
    // SIGHUP on the same bad files: logged, not fatal, B still served.
    v.proc().send_signal(SIGHUP);
    EXPECT_TRUE(wait_for([&] { return contains(v.log(), "reload rejected"); }, ms(5000)))
        << v.log();
    EXPECT_TRUE(v.proc().running());
    EXPECT_EQ(served_fingerprint(dir, v.port()), fp_b);
}

// =======================================================================================
// Upstream TLS

toml_config pool_tls(const std::string& inline_table) {
    // Health checks far apart: these tests are about the data path (see
    // UpstreamTlsPoolPassesHealthChecks for the checks themselves).
    return toml_config()
        .set("pools.blue", "tls", inline_table)
        .set("health", "interval", "\"60s\"")
        .set("timeouts", "upstream_response", "\"1500ms\"");
}

// An openssl s_server -WWW upstream with a certificate for localhost; the pool verifies it
// against the CA and sni = "localhost": 200 through veer.
TEST(Tls, UpstreamTlsVerifiedAgainstCaAndSni) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    write_file(dir.file("hello.txt"), "hello from the TLS upstream\n");
    tls_server origin(dir, "origin", {"-cert", a.cert, "-key", a.key, "-WWW", "-trace"});
    veer_process v(dir, {origin.address()}, {dead_address()},
                   pool_tls("{ sni = \"localhost\", ca = " + toml_string(a.ca) + " }"));
    ASSERT_TRUE(v.start());
    const auto r = http_get(v.port(), "/hello.txt", {{"Connection", "close"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->head << r->body;
    EXPECT_EQ(r->body, "hello from the TLS upstream\n");
    // The SNI veer sent is the configured name (s_server -trace dumps it in hex and ASCII).
    const auto sni = around(origin.log(), "extension_type=server_name", 200);
    EXPECT_TRUE(contains(sni, "localhost")) << "no SNI \"localhost\" in the ClientHello:\n"
                                            << origin.log().substr(0, 3000);
}

// No sni: the certificate is checked against the endpoint's host, here 127.0.0.1 (the
// certificate's IP SAN). RFC 6066 3: an IP literal is not a HostName and must not be sent
// as SNI.
TEST(Tls, UpstreamTlsWithoutSniChecksEndpointIpAndSendsNoIpSni) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    write_file(dir.file("hello.txt"), "hello over ip\n");
    tls_server origin(dir, "origin", {"-cert", a.cert, "-key", a.key, "-WWW", "-trace"});
    veer_process v(dir, {origin.address()}, {dead_address()},
                   pool_tls("{ ca = " + toml_string(a.ca) + " }"));
    ASSERT_TRUE(v.start());
    const auto r = http_get(v.port(), "/hello.txt", {{"Connection", "close"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->head << r->body;
    EXPECT_EQ(r->body, "hello over ip\n");
    const auto log = origin.log();
    ASSERT_TRUE(contains(log, "ClientHello")) << "s_server -trace printed no handshake:\n"
                                              << log.substr(0, 2000);
    EXPECT_FALSE(contains(log, "extension_type=server_name"))
        << "veer sent an IP literal as SNI:\n"
        << around(log, "extension_type=server_name");
}

// A certificate that fails verification (a name it was not issued for, or a CA that did
// not sign it): 502, and the upstream never receives the request, encrypted or not. The
// upstream here is an observing s_server that prints every byte it decrypts; the control
// at the end (the right name and CA) shows that a request would have been seen.
TEST(Tls, UpstreamCertificateThatFailsVerificationGets502AndNoRequest) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    const auto b = make_pki(dir, "b");
    tls_server observer(dir, "observer", {"-cert", a.cert, "-key", a.key}, /*observe=*/true);
    veer_process v(dir, {observer.address()}, {dead_address()},
                   pool_tls("{ sni = \"wrong.example\", ca = " + toml_string(a.ca) + " }"));
    ASSERT_TRUE(v.start());

    const auto wrong_name = http_get(v.port(), "/secret-wrong-name", {{"Connection", "close"}});
    ASSERT_TRUE(wrong_name);
    EXPECT_EQ(wrong_name->status, 502) << wrong_name->head;

    v.rewrite_config(pool_tls("{ sni = \"localhost\", ca = " + toml_string(b.ca) + " }"));
    ASSERT_TRUE(json_bool(v.admin("reload"), "ok"));
    const auto wrong_ca = http_get(v.port(), "/secret-wrong-ca", {{"Connection", "close"}});
    ASSERT_TRUE(wrong_ca);
    EXPECT_EQ(wrong_ca->status, 502) << wrong_ca->head;

    // Control: verification passes, the observer prints the request (and never answers).
    v.rewrite_config(pool_tls("{ sni = \"localhost\", ca = " + toml_string(a.ca) + " }"));
    ASSERT_TRUE(json_bool(v.admin("reload"), "ok"));
    const auto control = http_get(v.port(), "/control-seen", {{"Connection", "close"}});
    ASSERT_TRUE(control);
    EXPECT_EQ(control->status, 504) << control->head;
    ASSERT_TRUE(wait_for([&] { return contains(observer.log(), "GET /control-seen"); }, ms(5000)))
        << "control: the observing upstream never printed the request, so its silence proves "
           "nothing\n"
        << observer.log().substr(0, 3000);

    const auto log = observer.log();
    EXPECT_FALSE(contains(log, "secret-wrong-name")) << log.substr(0, 3000);
    EXPECT_FALSE(contains(log, "secret-wrong-ca")) << log.substr(0, 3000);
}

// verify = false accepts a self-signed certificate for another name; the default
// (verify = true, the system store) refuses the same upstream.
TEST(Tls, UpstreamVerifyFalseAcceptsSelfSignedCertificate) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto self = make_self_signed(dir, "self", "self.example");
    write_file(dir.file("hello.txt"), "self-signed hello\n");
    tls_server origin(dir, "origin", {"-cert", self.cert, "-key", self.key, "-WWW"});
    veer_process v(dir, {origin.address()}, {dead_address()}, pool_tls("{ verify = false }"));
    ASSERT_TRUE(v.start());
    const auto r = http_get(v.port(), "/hello.txt", {{"Connection", "close"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->head << r->body;
    EXPECT_EQ(r->body, "self-signed hello\n");

    v.rewrite_config(pool_tls("{ sni = \"self.example\" }"));
    ASSERT_TRUE(json_bool(v.admin("reload"), "ok"));
    const auto verified = http_get(v.port(), "/hello.txt", {{"Connection", "close"}});
    ASSERT_TRUE(verified);
    EXPECT_EQ(verified->status, 502)
        << "a self-signed certificate passed verification against the system store\n"
        << verified->head << verified->body;
}

// Active health checks of a TLS pool must speak TLS too: in plain HTTP they fail against
// every TLS upstream, the pool turns unhealthy and serves nothing.
TEST(Tls, UpstreamTlsPoolPassesHealthChecks) {
    REQUIRE_TLS_TOOLS();
    temp_dir dir;
    const auto a = make_pki(dir, "a");
    write_file(dir.file("healthz"), "ok\n");
    write_file(dir.file("hello.txt"), "still here\n");
    tls_server origin(dir, "origin", {"-cert", a.cert, "-key", a.key, "-WWW"});
    veer_process v(dir, {origin.address()}, {dead_address()},
                   toml_config().set("pools.blue", "tls",
                                     "{ sni = \"localhost\", ca = " + toml_string(a.ca) + " }"));
    ASSERT_TRUE(v.start());
    // Health every 200ms, unhealthy after 3 failures: 2s is ten rounds.
    boost::json::object last;
    const bool went_unhealthy = v.wait_status(
        [&](const boost::json::object& s) {
            const auto ep = endpoint_status(s, origin.address());
            return !ep.empty() && ep.contains("healthy") && ep.at("healthy").is_bool() &&
                   !ep.at("healthy").as_bool();
        },
        ms(2000), &last);
    EXPECT_FALSE(went_unhealthy) << "the TLS endpoint was marked unhealthy:\n"
                                 << boost::json::serialize(endpoint_status(last, origin.address()))
                                 << "\n"
                                 << v.log().substr(0, 3000);
    const auto r = http_get(v.port(), "/hello.txt", {{"Connection", "close"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->head << r->body;
}

// Same on the upstream side: a pool configured for TLS must never get plain HTTP.
TEST(Tls, PoolTlsIsNeverSpokenInPlainText) {
    temp_dir dir;
    scripted_upstream up(
        [](script_conn& c, upstream_request&) { c.send(ok_response("plaintext\n")); });
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config()
                       .set("pools.blue", "tls", "{ sni = \"blue.example\", verify = false }")
                       .set("health", "interval", "\"60s\""));
    v.launch();
    std::optional<int> code;
    bool listening = false;
    ASSERT_TRUE(wait_for(
        [&] {
            code = v.proc().wait_exit(ms(0));
            listening = !code && tcp_accepts(v.port()) && unix_accepts(v.socket());
            return code || listening;
        },
        ms(10000)));
    if (!listening) return;  // refusing a setting it cannot honour is fine
    const auto got =
        raw_exchange(v.port(), make_request("GET", "/secret", {{"Connection", "close"}}), ms(3000));
    EXPECT_EQ(up.requests().size(), 0u)
        << "pools.blue.tls is set, yet the upstream got a plain HTTP request:\n"
        << (up.requests().empty() ? "" : up.requests().front().head);
    // This upstream speaks no TLS: the handshake fails, and the client hears 502.
    EXPECT_EQ(got.data.substr(0, 13), "HTTP/1.1 502 ") << got.data.substr(0, 120);
}

}  // namespace
}  // namespace veer::it
