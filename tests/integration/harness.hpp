// Helpers for veer's end-to-end tests: real veer, veerctl and veer-upstream processes
// and in-process scripted upstreams, all on loopback, talked to over real sockets.
//
// Black-box on purpose: nothing here links veer's libraries or includes Asio/Beast. Only
// POSIX sockets, posix_spawn, std::thread and Boost.JSON (to read admin answers).
//
// Every wait has a deadline and polls for an event (a port that accepts, a status field, a
// request that arrived); no test synchronises on a bare sleep.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

namespace veer::it {

using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
using header_list = std::vector<std::pair<std::string, std::string>>;

inline constexpr const char* veer_binary = VEER_BINARY;
inline constexpr const char* veerctl_binary = VEERCTL_BINARY;
inline constexpr const char* upstream_binary = VEER_UPSTREAM_BINARY;
inline constexpr const char* source_dir = VEER_SOURCE_DIR;

// ---------------------------------------------------------------------------------------
// Time

class deadline {
public:
    explicit deadline(ms budget) : end_(steady::now() + budget) {}
    bool expired() const { return steady::now() >= end_; }
    // What is left, for poll(2): never negative.
    int poll_ms() const;

private:
    steady::time_point end_;
};

// Calls `done` every `step` until it returns true (true) or `timeout` passes (false).
bool wait_for(const std::function<bool()>& done, ms timeout, ms step = ms(20));

// ---------------------------------------------------------------------------------------
// Files, ports, processes

// A per-test directory under /tmp (short: Unix socket paths must stay under 108 bytes).
// Removed at the end of a passing test; kept, and named on stderr, when the test failed
// so that its logs can be read.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view text);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then close).
int free_port();
// "127.0.0.1:PORT" of a port nothing listens on: connecting to it is refused.
std::string dead_address();
// Whether a TCP connect to host:port succeeds now (host: an IPv4 or IPv6 literal).
bool tcp_accepts(int port, const std::string& host = "127.0.0.1");
// Whether a connect to the Unix socket at `path` succeeds now.
bool unix_accepts(const std::string& path);

// A child process with stdout and stderr in a log file. The destructor stops it: SIGTERM,
// then SIGKILL if it has not exited within a grace period.
class process {
public:
    process(std::string binary, std::vector<std::string> args, std::string log_path);
    ~process();
    process(const process&) = delete;
    process& operator=(const process&) = delete;

    pid_t pid() const { return pid_; }
    bool running();
    void send_signal(int sig);
    // The exit code (128 + signal number when a signal ended it), or nullopt if the
    // process is still running when `timeout` passes.
    std::optional<int> wait_exit(ms timeout);
    // SIGTERM, wait up to `grace`, then SIGKILL; the exit code.
    int stop(ms grace = ms(5000));
    // SIGKILL and reap: what a crash or `kill -9` leaves behind.
    void kill_now();
    std::string output() const { return read_file(log_path_); }
    const std::string& log_path() const { return log_path_; }

private:
    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::string log_path_;
};

struct command_result {
    int exit_code = -1;  // -1: did not finish in time (then killed)
    std::string output;  // stdout and stderr together
};
// Runs a program to completion with a deadline.
command_result run_command(const std::string& binary, std::vector<std::string> args,
                           const std::string& log_path, ms timeout = ms(10000));

// ---------------------------------------------------------------------------------------
// Client sockets

// A client TCP connection to host:port (127.0.0.1 unless told), non-blocking underneath;
// every call has a deadline. Bytes read and not yet consumed stay in buffer() (pipelined
// answers).
class tcp_conn {
public:
    enum class read_status { data, closed, timeout };

    explicit tcp_conn(int port, const std::string& host = "127.0.0.1");
    ~tcp_conn();
    tcp_conn(const tcp_conn&) = delete;
    tcp_conn& operator=(const tcp_conn&) = delete;

    bool connected() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    // False if the peer closed or reset, or the deadline passed, before all was sent.
    bool send_all(std::string_view data, ms timeout = ms(10000));
    // Waits for bytes and appends them to buffer(); `closed` on EOF or reset.
    read_status fill(const deadline& d);
    std::string& buffer() { return buffer_; }
    // Reads (keeping the bytes) until the peer closes; false if it did not in time.
    bool read_until_close(ms timeout);
    // Sends `data` while reading, so that a server that answers early and closes (400,
    // 413, 431) never deadlocks the client; returns what was read until close/timeout.
    std::string exchange_until_close(std::string_view data, ms timeout, bool* closed = nullptr);
    bool peer_closed() const { return peer_closed_; }
    bool was_reset() const { return reset_; }
    void shutdown_write();
    void close();

private:
    int fd_ = -1;
    std::string buffer_;
    bool peer_closed_ = false;
    bool reset_ = false;
};

struct raw_result {
    std::string data;  // everything read
    bool closed = false;  // the server closed (EOF or reset) before the deadline
};
// One connection: send `data` (reading meanwhile), then read until close or `timeout`.
raw_result raw_exchange(int port, std::string_view data, ms timeout = ms(5000));

// ---------------------------------------------------------------------------------------
// HTTP/1.1 from the client side

struct http_response {
    std::string version;  // "HTTP/1.1"
    int status = 0;
    std::string reason;
    header_list headers;
    std::string head;  // the raw head, final CRLF CRLF included
    std::string body;  // de-chunked
    bool chunked = false;

    bool has(std::string_view name) const;
    std::string get(std::string_view name) const;  // first value, "" if absent
    int count(std::string_view name) const;
};

// Parses the response head at the start of `bytes` and removes it from them; nullopt if
// there is no complete, well-formed head.
std::optional<http_response> take_head(std::string& bytes, std::string* error = nullptr);
// Reads one response head from `c` (1xx included) and consumes it from c.buffer().
std::optional<http_response> read_head(tcp_conn& c, ms timeout, std::string* error = nullptr);
// Reads the body that `r`'s head announces into r.body (what arrived, on failure too);
// false if the connection closed or the deadline passed before it was complete.
bool read_body(tcp_conn& c, http_response& r, bool head_request, ms timeout,
               std::string* error = nullptr);
// Head, then body.
std::optional<http_response> read_response(tcp_conn& c, ms timeout, bool head_request = false,
                                           std::string* error = nullptr);

// "METHOD TARGET HTTP/1.1", Host, the given headers, Content-Length when there is a body.
std::string make_request(std::string_view method, std::string_view target,
                         const header_list& headers = {}, std::string_view body = {});

// A keep-alive HTTP/1.1 client: one connection, one request at a time.
class http_client {
public:
    explicit http_client(int port, const std::string& host = "127.0.0.1") : conn_(port, host) {}
    std::optional<http_response> request(std::string_view method, std::string_view target,
                                         const header_list& headers = {},
                                         std::string_view body = {}, ms timeout = ms(10000));
    std::optional<http_response> get(std::string_view target, const header_list& headers = {}) {
        return request("GET", target, headers);
    }
    tcp_conn& conn() { return conn_; }
    const std::string& last_error() const { return error_; }

private:
    tcp_conn conn_;
    std::string error_;
};

// One request on a fresh connection.
std::optional<http_response> http_get(int port, std::string_view target,
                                      const header_list& headers = {});

// ---------------------------------------------------------------------------------------
// Admin socket

// Sends `bytes` to the Unix socket and reads until `lines` answer lines came back (each
// without its '\n'), the socket closed, or `timeout` passed. With `closed_after`, also
// says whether the other side hung up after those lines.
std::vector<std::string> unix_lines(const std::string& path, std::string_view bytes,
                                    std::size_t lines, ms timeout = ms(5000),
                                    bool* closed_after = nullptr);
// One line back, or "" if none came.
std::string unix_exchange(const std::string& path, std::string_view bytes, ms timeout = ms(5000));
// One command line, one JSON object back. Throws std::runtime_error when no JSON object
// comes back.
boost::json::object admin_command(const std::string& socket, std::string_view line,
                                  ms timeout = ms(5000));

// Small readers for JSON answers: a missing or mistyped field reads as its default.
bool json_bool(const boost::json::object& o, std::string_view key);
double json_number(const boost::json::object& o, std::string_view key);
std::string json_string(const boost::json::object& o, std::string_view key);
// The endpoint object for `address` in a status answer ("pools".*."endpoints"), or {}.
boost::json::object endpoint_status(const boost::json::object& status, std::string_view address);

// ---------------------------------------------------------------------------------------
// Configuration

std::string toml_string(std::string_view s);  // "s", escaped
std::string toml_strings(const std::vector<std::string>& items);  // ["a", "b"]

// A TOML document as tables of raw values; set() replaces a key or adds it. Raw text
// (arrays of tables such as [[split.rules]]) goes after every table.
class toml_config {
public:
    toml_config& set(std::string_view table, std::string_view key, std::string raw_value);
    toml_config& append(std::string raw_text);
    // This document with every key of `overrides` set on top, and its raw text added.
    toml_config merged(const toml_config& overrides) const;
    std::string render() const;

private:
    std::vector<std::pair<std::string, header_list>> tables_;
    std::string raw_;
};

// ---------------------------------------------------------------------------------------
// Upstreams

// A veer-upstream process on a port it picked itself (--port 0: no race for the port),
// on 127.0.0.1 unless extra_args say "--address", ADDR.
class upstream {
public:
    upstream(const temp_dir& dir, std::string name, std::vector<std::string> extra_args = {});
    int port() const { return port_; }
    // "127.0.0.1:PORT" or "[::1]:PORT", as a veer config names it.
    std::string address() const;
    const std::string& name() const { return name_; }
    // A request straight to it, bypassing veer (its /admin/... switches).
    std::optional<http_response> get(std::string_view target);
    process& proc() { return *proc_; }

private:
    std::string name_;
    std::string host_ = "127.0.0.1";
    std::unique_ptr<process> proc_;
    int port_ = -1;
};

// One request head as a scripted upstream received it.
struct upstream_request {
    std::string head;
    std::string method;
    std::string target;
    std::string version;
    header_list headers;

    bool has(std::string_view name) const;
    std::string get(std::string_view name) const;
    int count(std::string_view name) const;
};

class scripted_upstream;

// One connection as a scripted upstream's handler sees it.
class script_conn {
public:
    script_conn(int fd, scripted_upstream& owner);
    ~script_conn();
    script_conn(const script_conn&) = delete;
    script_conn& operator=(const script_conn&) = delete;

    // The next request head; nullopt when the peer closes or `timeout` passes first.
    std::optional<upstream_request> read_request(ms timeout = ms(10000));
    // The request's body, per its Content-Length or chunked framing (de-chunked).
    bool read_body(const upstream_request& r, std::string& body, ms timeout = ms(10000));
    bool send(std::string_view bytes);
    // Waits until the peer closes (true) or `timeout` passes (false); drops what it reads.
    bool wait_closed(ms timeout);
    // Sends back whatever arrives until the peer closes or `timeout` passes.
    void echo_until_closed(ms timeout);
    void close();
    std::uint64_t bytes_read() const { return bytes_read_; }
    // The upstream this connection belongs to (for its gate).
    scripted_upstream& owner() { return owner_; }

private:
    friend class scripted_upstream;
    bool fill(const deadline& d);

    int fd_;
    scripted_upstream& owner_;
    std::string buffer_;
    std::uint64_t bytes_read_ = 0;
    bool counted_ = false;  // a data connection: reads add to the owner's byte count
};

// An upstream played by the test itself: a listener on 127.0.0.1:0 and one thread per
// connection running `handler` with the connection's first request. Health checks
// (GET of the health path) are answered 200 and kept apart from the counts, so a test
// can assert that no data-path byte at all reached it.
class scripted_upstream {
public:
    using handler = std::function<void(script_conn&, upstream_request&)>;

    explicit scripted_upstream(handler h, std::string health_path = "/healthz");
    ~scripted_upstream();
    scripted_upstream(const scripted_upstream&) = delete;
    scripted_upstream& operator=(const scripted_upstream&) = delete;

    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    std::size_t data_connections() const { return data_connections_.load(); }
    std::uint64_t data_bytes() const { return data_bytes_.load(); }
    std::size_t health_checks() const { return health_checks_.load(); }
    // Every data-path request head received, in order of arrival.
    std::vector<upstream_request> requests() const;
    // Raw bytes of data connections that never formed a request head.
    std::vector<std::string> fragments() const;
    bool wait_requests(std::size_t n, ms timeout) const;
    // Waits until every accepted connection has ended and none waits to be accepted.
    bool wait_quiet(ms timeout) const;

    // A gate for handlers that must hold until the test says so.
    void open_gate();
    bool wait_gate(ms timeout);

private:
    friend class script_conn;
    void accept_loop();
    void serve(int fd);
    void note_request(const upstream_request& r);
    void note_data_bytes(std::uint64_t n) { data_bytes_ += n; }
    void track(int fd, bool add);

    handler handler_;
    std::string health_path_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    int port_ = -1;
    std::atomic<bool> stopping_{false};
    std::atomic<std::size_t> data_connections_{0};
    std::atomic<std::uint64_t> data_bytes_{0};
    std::atomic<std::size_t> health_checks_{0};
    std::atomic<std::size_t> open_{0};

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<upstream_request> requests_;
    std::vector<std::string> fragments_;
    std::vector<int> open_fds_;
    std::vector<std::thread> threads_;
    bool gate_open_ = false;
    std::thread acceptor_;
};

// Canned answers for scripted upstreams.
std::string ok_response(std::string_view body, std::string_view extra_headers = {});

// ---------------------------------------------------------------------------------------
// veer

// A veer process on a config written into the test's directory: the harness defaults
// (listener and admin.http on free ports, the admin socket and state file in the
// directory, health every 200ms, slo window 5s / evaluate_every 200ms / min_requests 20)
// with the test's overrides on top.
class veer_process {
public:
    veer_process(const temp_dir& dir, std::vector<std::string> blue, std::vector<std::string> green,
                 const toml_config& overrides = {}, std::string name = "veer");
    ~veer_process();

    // Spawns veer and waits until its listener (on `host`, with port()) and admin socket
    // both accept connections.
    ::testing::AssertionResult start(ms timeout = ms(15000), const std::string& host = "127.0.0.1");
    // Spawns veer without waiting (for a veer expected to refuse to start).
    void launch();
    // Rewrites the config file: the defaults with `overrides` on top.
    void rewrite_config(const toml_config& overrides);

    int port() const { return port_; }
    int admin_http_port() const { return admin_http_port_; }
    const std::string& socket() const { return socket_; }
    const std::string& config_path() const { return config_path_; }
    const std::string& state_path() const { return state_path_; }
    process& proc() { return *proc_; }
    std::string log() const;

    boost::json::object admin(std::string_view line) { return admin_command(socket_, line); }
    boost::json::object status() { return admin("status"); }
    // Polls `status` until `pred` holds; the last status seen either way, and whether it held.
    bool wait_status(const std::function<bool(const boost::json::object&)>& pred, ms timeout,
                     boost::json::object* last = nullptr);
    // GET on the admin HTTP listener.
    std::optional<http_response> admin_http(std::string_view target);

private:
    toml_config defaults() const;

    const temp_dir& dir_;
    std::string name_;
    std::vector<std::string> blue_;
    std::vector<std::string> green_;
    int port_;
    int admin_http_port_;
    toml_config overrides_;  // the last written, for a restart on other ports
    std::string socket_;
    std::string state_path_;
    std::string config_path_;
    std::unique_ptr<process> proc_;
};

// The upstream's name in a veer-upstream answer ("NAME METHOD TARGET BODYBYTES\n").
std::string upstream_name_of(const http_response& r);

}  // namespace veer::it
