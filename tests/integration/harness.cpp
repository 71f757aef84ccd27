#include "harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

extern char** environ;

namespace veer::it {
namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::string find_header(const header_list& headers, std::string_view name) {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return {};
}

int count_header(const header_list& headers, std::string_view name) {
    int n = 0;
    for (const auto& [k, v] : headers)
        n += iequals(k, name);
    return n;
}

// Splits a head's field lines ("Name: value\r\n"...) after its first line.
header_list parse_fields(std::string_view head) {
    header_list out;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos) {
        pos += 2;
        const std::size_t eol = head.find("\r\n", pos);
        if (eol == std::string_view::npos || eol == pos) break;
        const auto line = head.substr(pos, eol - pos);
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos)
            out.emplace_back(std::string(line.substr(0, colon)),
                             std::string(trim(line.substr(colon + 1))));
        pos = eol;
    }
    return out;
}

bool has_token(std::string_view list, std::string_view token) {
    std::size_t pos = 0;
    while (pos <= list.size()) {
        std::size_t comma = list.find(',', pos);
        if (comma == std::string_view::npos) comma = list.size();
        if (iequals(trim(list.substr(pos, comma - pos)), token)) return true;
        pos = comma + 1;
    }
    return false;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

// A blocking connect to an IP literal on this machine: answered (or refused) at once.
int connect_tcp(const std::string& host, int port) {
    sockaddr_storage storage{};
    socklen_t len = 0;
    int family = AF_INET;
    if (host.find(':') != std::string::npos) {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&storage);
        a6->sin6_family = family = AF_INET6;
        a6->sin6_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return -1;
        len = sizeof *a6;
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&storage);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<std::uint16_t>(port));
        if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return -1;
        len = sizeof *a4;
    }
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), len) != 0) {
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int connect_unix(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return -1;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Waits for `events` on fd until the deadline; the revents, 0 on timeout. Once the
// deadline has passed it is always 0, so every caller's retry loop ends.
short wait_fd(int fd, short events, const deadline& d) {
    while (!d.expired()) {
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, d.poll_ms());
        if (n > 0) return p.revents;
        if (n == 0) return 0;
        if (errno != EINTR) return POLLERR;
    }
    return 0;
}

// Decodes a chunked body at the start of `in`: the data into `out`, and how many bytes
// of `in` it used; 0 when incomplete, npos when malformed.
std::size_t dechunk(std::string_view in, std::string& out) {
    std::string data;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t eol = in.find("\r\n", pos);
        if (eol == std::string_view::npos) return 0;
        auto size_text = in.substr(pos, eol - pos);
        if (const auto semi = size_text.find(';'); semi != std::string_view::npos)
            size_text = size_text.substr(0, semi);
        size_text = trim(size_text);
        if (size_text.empty()) return std::string_view::npos;
        std::uint64_t size = 0;
        for (char c : size_text) {
            int d = -1;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            if (d < 0 || size > (1ull << 40)) return std::string_view::npos;
            size = size * 16 + static_cast<std::uint64_t>(d);
        }
        pos = eol + 2;
        if (size == 0) {
            // Trailers, then the empty line.
            for (;;) {
                const std::size_t t = in.find("\r\n", pos);
                if (t == std::string_view::npos) return 0;
                const bool last = t == pos;
                pos = t + 2;
                if (last) {
                    out += data;
                    return pos;
                }
            }
        }
        if (in.size() < pos + size + 2) return 0;
        data.append(in.substr(pos, size));
        if (in.substr(pos + size, 2) != "\r\n") return std::string_view::npos;
        pos += size + 2;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Time

int deadline::poll_ms() const {
    const auto left = std::chrono::duration_cast<ms>(end_ - steady::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left + 1, 1 << 30));
}

bool wait_for(const std::function<bool()>& done, ms timeout, ms step) {
    const deadline d(timeout);
    for (;;) {
        if (done()) return true;
        if (d.expired()) return false;
        std::this_thread::sleep_for(step);
    }
}

// ---------------------------------------------------------------------------------------
// Files, ports, processes

temp_dir::temp_dir() {
    char templ[] = "/tmp/veer-it-XXXXXX";
    if (!::mkdtemp(templ))
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    path_ = templ;
}

temp_dir::~temp_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    if (info && info->result() && info->result()->Failed()) {
        std::fprintf(stderr, "[ harness  ] kept %s (logs of the failed test)\n", path_.c_str());
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = loopback(0);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("free_port: bind failed");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string dead_address() { return "127.0.0.1:" + std::to_string(free_port()); }

bool tcp_accepts(int port, const std::string& host) {
    const int fd = connect_tcp(host, port);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

bool unix_accepts(const std::string& path) {
    const int fd = connect_unix(path);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

process::process(std::string binary, std::vector<std::string> args, std::string log_path)
    : log_path_(std::move(log_path)) {
    std::vector<std::string> argv_store;
    argv_store.push_back(binary);
    for (auto& a : args)
        argv_store.push_back(std::move(a));
    std::vector<char*> argv;
    for (auto& a : argv_store)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    // The child starts with default signal handling whatever this process ignores.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t reset;
    sigemptyset(&reset);
    for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD})
        sigaddset(&reset, sig);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const int rc = ::posix_spawn(&pid_, argv[0], &files, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0) {
        pid_ = -1;
        throw std::runtime_error("posix_spawn " + binary + ": " + std::strerror(rc));
    }
}

process::~process() {
    if (running()) stop();
}

bool process::running() {
    if (pid_ < 0 || exit_code_) return false;
    return !wait_exit(ms(0));
}

void process::send_signal(int sig) {
    if (running()) ::kill(pid_, sig);
}

std::optional<int> process::wait_exit(ms timeout) {
    if (exit_code_) return exit_code_;
    if (pid_ < 0) return std::nullopt;
    const deadline d(timeout);
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return exit_code_;
        }
        if (r < 0 && errno != EINTR) return std::nullopt;
        if (d.expired()) return std::nullopt;
        std::this_thread::sleep_for(ms(5));
    }
}

int process::stop(ms grace) {
    if (!running()) return exit_code_.value_or(-1);
    ::kill(pid_, SIGTERM);
    if (auto code = wait_exit(grace)) return *code;
    ::kill(pid_, SIGKILL);
    return wait_exit(ms(10000)).value_or(-1);
}

void process::kill_now() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    wait_exit(ms(10000));
}

command_result run_command(const std::string& binary, std::vector<std::string> args,
                           const std::string& log_path, ms timeout) {
    ::unlink(log_path.c_str());
    process p(binary, std::move(args), log_path);
    command_result r;
    if (auto code = p.wait_exit(timeout))
        r.exit_code = *code;
    else
        p.kill_now();
    r.output = p.output();
    return r;
}

// ---------------------------------------------------------------------------------------
// Client sockets

tcp_conn::tcp_conn(int port, const std::string& host) : fd_(connect_tcp(host, port)) {
    if (fd_ >= 0) set_nonblocking(fd_);
}

tcp_conn::~tcp_conn() { close(); }

void tcp_conn::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void tcp_conn::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool tcp_conn::send_all(std::string_view data, ms timeout) {
    if (fd_ < 0) return false;
    const deadline d(timeout);
    while (!data.empty()) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            const short ev = wait_fd(fd_, POLLOUT, d);
            if (ev == 0) return false;
            continue;
        }
        return false;  // EPIPE, ECONNRESET
    }
    return true;
}

tcp_conn::read_status tcp_conn::fill(const deadline& d) {
    if (fd_ < 0 || peer_closed_) return read_status::closed;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            buffer_.append(buf, static_cast<std::size_t>(n));
            return read_status::data;
        }
        if (n == 0) {
            peer_closed_ = true;
            return read_status::closed;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (wait_fd(fd_, POLLIN, d) == 0) return read_status::timeout;
            continue;
        }
        peer_closed_ = true;
        reset_ = errno == ECONNRESET;
        return read_status::closed;
    }
}

bool tcp_conn::read_until_close(ms timeout) {
    const deadline d(timeout);
    for (;;) {
        const auto s = fill(d);
        if (s == read_status::closed) return true;
        if (s == read_status::timeout) return false;
    }
}

std::string tcp_conn::exchange_until_close(std::string_view data, ms timeout, bool* closed) {
    const deadline d(timeout);
    bool sending = fd_ >= 0;
    bool done = fd_ < 0;
    while (!done) {
        if (sending && data.empty()) sending = false;
        pollfd p{fd_, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
        const int n = ::poll(&p, 1, d.poll_ms());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // the deadline
        if (sending && (p.revents & POLLOUT)) {
            const ssize_t w = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (w > 0)
                data.remove_prefix(static_cast<std::size_t>(w));
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                sending = false;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            // Answered and closed while request bytes were unread: the kernel resets the
            // connection, but what was answered is read first.
            if (fill(deadline(ms(0))) == read_status::closed) done = true;
        }
    }
    if (closed) *closed = peer_closed_;
    return buffer_;
}

raw_result raw_exchange(int port, std::string_view data, ms timeout) {
    tcp_conn c(port);
    raw_result r;
    r.data = c.exchange_until_close(data, timeout, &r.closed);
    return r;
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 from the client side

bool http_response::has(std::string_view name) const { return count_header(headers, name) > 0; }
std::string http_response::get(std::string_view name) const { return find_header(headers, name); }
int http_response::count(std::string_view name) const { return count_header(headers, name); }

std::optional<http_response> take_head(std::string& bytes, std::string* error) {
    const std::size_t end = bytes.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (error) *error = "no complete response head in: " + bytes.substr(0, 200);
        return std::nullopt;
    }
    http_response r;
    r.head = bytes.substr(0, end + 4);
    bytes.erase(0, end + 4);
    const auto line = std::string_view(r.head).substr(0, r.head.find("\r\n"));
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') {
        if (error) *error = "bad status line: " + std::string(line);
        return std::nullopt;
    }
    r.version = std::string(line.substr(0, 8));
    r.status = std::atoi(std::string(line.substr(9, 3)).c_str());
    r.reason = line.size() > 13 ? std::string(line.substr(13)) : "";
    r.headers = parse_fields(r.head);
    r.chunked = has_token(r.get("Transfer-Encoding"), "chunked");
    return r;
}

std::optional<http_response> read_head(tcp_conn& c, ms timeout, std::string* error) {
    const deadline d(timeout);
    while (c.buffer().find("\r\n\r\n") == std::string::npos) {
        const auto s = c.fill(d);
        if (s != tcp_conn::read_status::data) {
            if (error)
                *error = std::string(s == tcp_conn::read_status::closed ? "closed" : "timed out") +
                         " before a complete response head; got: " + c.buffer().substr(0, 200);
            return std::nullopt;
        }
    }
    return take_head(c.buffer(), error);
}

bool read_body(tcp_conn& c, http_response& r, bool head_request, ms timeout, std::string* error) {
    const deadline d(timeout);
    const bool bodyless = head_request || r.status / 100 == 1 || r.status == 204 || r.status == 304;
    if (bodyless) return true;
    auto more = [&](const char* what) {
        const auto s = c.fill(d);
        if (s == tcp_conn::read_status::data) return true;
        if (error)
            *error = std::string(s == tcp_conn::read_status::closed ? "closed" : "timed out") +
                     " during " + what;
        return false;
    };
    if (r.chunked) {
        for (;;) {
            std::string data;
            const std::size_t used = dechunk(c.buffer(), data);
            if (used == std::string_view::npos) {
                if (error) *error = "malformed chunked body";
                return false;
            }
            if (used > 0) {
                r.body = std::move(data);
                c.buffer().erase(0, used);
                return true;
            }
            if (!more("a chunked body")) {
                r.body = c.buffer();
                return false;
            }
        }
    }
    if (r.has("Content-Length")) {
        const auto want =
            static_cast<std::size_t>(std::strtoull(r.get("Content-Length").c_str(), nullptr, 10));
        while (c.buffer().size() < want)
            if (!more("a Content-Length body")) {
                r.body = c.buffer();
                c.buffer().clear();
                return false;
            }
        r.body = c.buffer().substr(0, want);
        c.buffer().erase(0, want);
        return true;
    }
    // Delimited by close.
    const bool closed = c.read_until_close(ms(d.poll_ms()));
    r.body = std::move(c.buffer());
    c.buffer().clear();
    if (!closed && error) *error = "timed out before the close that ends the body";
    return closed;
}

std::optional<http_response> read_response(tcp_conn& c, ms timeout, bool head_request,
                                           std::string* error) {
    const deadline d(timeout);
    auto r = read_head(c, timeout, error);
    if (!r) return r;
    if (!read_body(c, *r, head_request, ms(d.poll_ms()), error)) return std::nullopt;
    return r;
}

std::string make_request(std::string_view method, std::string_view target,
                         const header_list& headers, std::string_view body) {
    std::string out;
    out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    bool host = false, length = false;
    for (const auto& [k, v] : headers) {
        host |= iequals(k, "host");
        length |= iequals(k, "content-length") || iequals(k, "transfer-encoding");
    }
    if (!host) out.append("Host: 127.0.0.1\r\n");
    for (const auto& [k, v] : headers)
        out.append(k).append(": ").append(v).append("\r\n");
    if (!body.empty() && !length)
        out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    out.append("\r\n").append(body);
    return out;
}

std::optional<http_response> http_client::request(std::string_view method, std::string_view target,
                                                  const header_list& headers, std::string_view body,
                                                  ms timeout) {
    error_.clear();
    if (!conn_.connected()) {
        error_ = "not connected";
        return std::nullopt;
    }
    if (!conn_.send_all(make_request(method, target, headers, body), timeout)) {
        error_ = "send failed";
        return std::nullopt;
    }
    return read_response(conn_, timeout, method == "HEAD", &error_);
}

std::optional<http_response> http_get(int port, std::string_view target,
                                      const header_list& headers) {
    http_client c(port);
    return c.get(target, headers);
}

// ---------------------------------------------------------------------------------------
// Admin socket

std::vector<std::string> unix_lines(const std::string& path, std::string_view bytes,
                                    std::size_t lines, ms timeout, bool* closed_after) {
    if (closed_after) *closed_after = false;
    std::vector<std::string> out;
    const int fd = connect_unix(path);
    if (fd < 0) return out;
    set_nonblocking(fd);
    const deadline d(timeout);
    std::string in;
    std::string_view pending = bytes;
    bool closed = false;
    while (!closed && out.size() < lines && !d.expired()) {
        pollfd p{fd, static_cast<short>(POLLIN | (pending.empty() ? 0 : POLLOUT)), 0};
        const int n = ::poll(&p, 1, d.poll_ms());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!pending.empty() && (p.revents & POLLOUT)) {
            const ssize_t w = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
            if (w > 0)
                pending.remove_prefix(static_cast<std::size_t>(w));
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                pending = {};
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[65536];
            const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
            if (r > 0)
                in.append(buf, static_cast<std::size_t>(r));
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                closed = true;
        }
        for (std::size_t nl; out.size() < lines && (nl = in.find('\n')) != std::string::npos;) {
            out.push_back(in.substr(0, nl));
            in.erase(0, nl + 1);
        }
    }
    if (closed_after && !closed) {
        // Does the other side hang up after these answers? Wait for it, briefly.
        const deadline brief(ms(std::min(d.poll_ms(), 2000)));
        char b[4096];
        for (;;) {
            const ssize_t r = ::recv(fd, b, sizeof b, 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                closed = true;
                break;
            }
            if (r < 0 && wait_fd(fd, POLLIN, brief) == 0) break;
        }
    }
    if (closed_after) *closed_after = closed;
    ::close(fd);
    return out;
}

std::string unix_exchange(const std::string& path, std::string_view bytes, ms timeout) {
    auto lines = unix_lines(path, bytes, 1, timeout);
    return lines.empty() ? std::string() : std::move(lines.front());
}

boost::json::object admin_command(const std::string& socket, std::string_view line, ms timeout) {
    std::string bytes(line);
    bytes.push_back('\n');
    const auto answer = unix_exchange(socket, bytes, timeout);
    boost::system::error_code ec;
    auto v = boost::json::parse(answer, ec);
    if (ec || !v.is_object())
        throw std::runtime_error("admin '" + std::string(line) + "': not a JSON object: '" +
                                 answer + "'");
    return v.as_object();
}

bool json_bool(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_bool() && v->as_bool();
}

double json_number(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_double()) return v->as_double();
    if (v->is_int64()) return static_cast<double>(v->as_int64());
    if (v->is_uint64()) return static_cast<double>(v->as_uint64());
    return 0;
}

std::string json_string(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

boost::json::object endpoint_status(const boost::json::object& status, std::string_view address) {
    const auto* pools = status.if_contains("pools");
    if (!pools || !pools->is_object()) return {};
    for (const auto& [name, pool] : pools->as_object()) {
        if (!pool.is_object()) continue;
        const auto* eps = pool.as_object().if_contains("endpoints");
        if (!eps || !eps->is_array()) continue;
        for (const auto& e : eps->as_array())
            if (e.is_object() && json_string(e.as_object(), "address") == address)
                return e.as_object();
    }
    return {};
}

// ---------------------------------------------------------------------------------------
// Configuration

std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out + "\"";
}

std::string toml_strings(const std::vector<std::string>& items) {
    std::string out = "[";
    for (const auto& i : items)
        out += (out.size() > 1 ? ", " : "") + toml_string(i);
    return out + "]";
}

toml_config& toml_config::set(std::string_view table, std::string_view key, std::string raw_value) {
    auto t = std::find_if(tables_.begin(), tables_.end(),
                          [&](const auto& e) { return e.first == table; });
    if (t == tables_.end()) {
        tables_.emplace_back(std::string(table), header_list{});
        t = std::prev(tables_.end());
    }
    for (auto& [k, v] : t->second)
        if (k == key) {
            v = std::move(raw_value);
            return *this;
        }
    t->second.emplace_back(std::string(key), std::move(raw_value));
    return *this;
}

toml_config& toml_config::append(std::string raw_text) {
    raw_ += raw_text;
    if (!raw_.empty() && raw_.back() != '\n') raw_.push_back('\n');
    return *this;
}

toml_config toml_config::merged(const toml_config& overrides) const {
    toml_config out = *this;
    for (const auto& [table, keys] : overrides.tables_)
        for (const auto& [k, v] : keys)
            out.set(table, k, v);
    out.append(overrides.raw_);
    return out;
}

std::string toml_config::render() const {
    std::string out;
    for (const auto& [table, keys] : tables_) {
        out += "[" + table + "]\n";
        for (const auto& [k, v] : keys)
            out += k + " = " + v + "\n";
        out += "\n";
    }
    return out + raw_;
}

// ---------------------------------------------------------------------------------------
// Upstreams

upstream::upstream(const temp_dir& dir, std::string name, std::vector<std::string> extra_args)
    : name_(std::move(name)) {
    std::vector<std::string> args{"--name", name_, "--port", "0"};
    for (const auto& a : extra_args)
        args.push_back(a);
    const auto log = dir.file("up-" + name_ + ".log");
    proc_ = std::make_unique<process>(upstream_binary, std::move(args), log);
    for (std::size_t i = 0; i + 1 < extra_args.size(); ++i)
        if (extra_args[i] == "--address") host_ = extra_args[i + 1];
    // It names the port it got: "veer-upstream NAME listening on 127.0.0.1:PORT" (or [::1]:PORT).
    const bool up = wait_for(
        [&] {
            const auto text = proc_->output();
            const auto at = text.find("listening on ");
            if (at == std::string::npos) return false;
            const auto eol = text.find('\n', at);
            if (eol == std::string::npos) return false;
            const auto colon = text.rfind(':', eol);
            port_ = std::atoi(text.c_str() + colon + 1);
            return port_ > 0 && tcp_accepts(port_, host_);
        },
        ms(10000));
    if (!up)
        throw std::runtime_error("veer-upstream " + name_ + " did not start: " + proc_->output());
}

std::string upstream::address() const {
    const auto port = std::to_string(port_);
    return host_.find(':') != std::string::npos ? "[" + host_ + "]:" + port : host_ + ":" + port;
}

std::optional<http_response> upstream::get(std::string_view target) {
    http_client c(port_, host_);
    return c.get(target);
}

bool upstream_request::has(std::string_view name) const { return count_header(headers, name) > 0; }
std::string upstream_request::get(std::string_view name) const {
    return find_header(headers, name);
}
int upstream_request::count(std::string_view name) const { return count_header(headers, name); }

script_conn::script_conn(int fd, scripted_upstream& owner) : fd_(fd), owner_(owner) {
    set_nonblocking(fd_);
    owner_.track(fd_, true);
}

script_conn::~script_conn() { close(); }

void script_conn::close() {
    if (fd_ < 0) return;
    owner_.track(fd_, false);  // under the owner's lock: never shut down a reused number
    ::close(fd_);
    fd_ = -1;
}

bool script_conn::fill(const deadline& d) {
    if (fd_ < 0) return false;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            buffer_.append(buf, static_cast<std::size_t>(n));
            bytes_read_ += static_cast<std::uint64_t>(n);
            if (counted_) owner_.note_data_bytes(static_cast<std::uint64_t>(n));
            return true;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
        if (wait_fd(fd_, POLLIN, d) == 0) return false;
    }
}

std::optional<upstream_request> script_conn::read_request(ms timeout) {
    const deadline d(timeout);
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
        if (!fill(d)) return std::nullopt;
    upstream_request r;
    r.head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    const auto line = std::string_view(r.head).substr(0, r.head.find("\r\n"));
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 != std::string_view::npos && sp2 > sp1) {
        r.method = std::string(line.substr(0, sp1));
        r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
        r.version = std::string(line.substr(sp2 + 1));
    }
    r.headers = parse_fields(r.head);
    if (counted_) owner_.note_request(r);
    return r;
}

bool script_conn::read_body(const upstream_request& r, std::string& body, ms timeout) {
    const deadline d(timeout);
    body.clear();
    if (has_token(r.get("Transfer-Encoding"), "chunked")) {
        for (;;) {
            const std::size_t used = dechunk(buffer_, body);
            if (used == std::string_view::npos) return false;
            if (used > 0) {
                buffer_.erase(0, used);
                return true;
            }
            if (!fill(d)) return false;
        }
    }
    const auto want =
        static_cast<std::size_t>(std::strtoull(r.get("Content-Length").c_str(), nullptr, 10));
    while (buffer_.size() < want)
        if (!fill(d)) return false;
    body = buffer_.substr(0, want);
    buffer_.erase(0, want);
    return true;
}

bool script_conn::send(std::string_view bytes) {
    const deadline d(ms(10000));
    while (!bytes.empty() && fd_ >= 0) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd_, POLLOUT, d) != 0)
            continue;
        return false;
    }
    return bytes.empty();
}

bool script_conn::wait_closed(ms timeout) {
    const deadline d(timeout);
    if (fd_ < 0) return true;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n > 0) {
            bytes_read_ += static_cast<std::uint64_t>(n);
            if (counted_) owner_.note_data_bytes(static_cast<std::uint64_t>(n));
            continue;
        }
        if (n == 0) return true;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return true;  // reset: closed too
        if (wait_fd(fd_, POLLIN, d) == 0) return false;
    }
}

void script_conn::echo_until_closed(ms timeout) {
    const deadline d(timeout);
    while (!d.expired()) {
        if (!buffer_.empty()) {
            if (!send(buffer_)) return;
            buffer_.clear();
        }
        if (!fill(d)) return;
    }
}

scripted_upstream::scripted_upstream(handler h, std::string health_path)
    : handler_(std::move(h)), health_path_(std::move(health_path)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = loopback(0);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0)
        throw std::runtime_error("scripted_upstream: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    set_nonblocking(listen_fd_);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
        throw std::runtime_error("scripted_upstream: pipe");
    acceptor_ = std::thread([this] { accept_loop(); });
}

scripted_upstream::~scripted_upstream() {
    stopping_ = true;
    (void)!::write(wake_[1], "x", 1);
    acceptor_.join();
    {
        // Handlers blocked in a read see the end of their connection at once.
        std::lock_guard lock(mutex_);
        for (int fd : open_fds_)
            ::shutdown(fd, SHUT_RDWR);
        gate_open_ = true;
        changed_.notify_all();
    }
    for (auto& t : threads_)
        t.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void scripted_upstream::accept_loop() {
    while (!stopping_) {
        pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
        if (stopping_) return;
        for (;;) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) break;
            ++open_;
            std::lock_guard lock(mutex_);
            threads_.emplace_back([this, fd] { serve(fd); });
        }
    }
}

void scripted_upstream::serve(int fd) {
    {
        script_conn c(fd, *this);
        auto first = c.read_request(ms(10000));
        const bool health = first && first->method == "GET" && first->target == health_path_;
        if (health) {
            ++health_checks_;
            c.send("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
        } else if (c.bytes_read() > 0) {
            // A data connection: everything it brought counts, from now on as it arrives.
            ++data_connections_;
            c.counted_ = true;
            note_data_bytes(c.bytes_read());
            if (first) {
                note_request(*first);
                try {
                    handler_(c, *first);
                } catch (const std::exception& e) {
                    ADD_FAILURE() << "scripted upstream handler threw: " << e.what();
                }
            } else {
                std::lock_guard lock(mutex_);
                fragments_.push_back(c.buffer_);
                changed_.notify_all();
            }
        }
    }
    --open_;
    std::lock_guard lock(mutex_);
    changed_.notify_all();
}

void scripted_upstream::note_request(const upstream_request& r) {
    std::lock_guard lock(mutex_);
    requests_.push_back(r);
    changed_.notify_all();
}

void scripted_upstream::track(int fd, bool add) {
    std::lock_guard lock(mutex_);
    if (add)
        open_fds_.push_back(fd);
    else
        open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
}

std::vector<upstream_request> scripted_upstream::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::vector<std::string> scripted_upstream::fragments() const {
    std::lock_guard lock(mutex_);
    return fragments_;
}

bool scripted_upstream::wait_requests(std::size_t n, ms timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

bool scripted_upstream::wait_quiet(ms timeout) const {
    return wait_for(
        [&] {
            pollfd p{listen_fd_, POLLIN, 0};
            const bool pending = ::poll(&p, 1, 0) > 0;
            return !pending && open_.load() == 0;
        },
        timeout, ms(10));
}

void scripted_upstream::open_gate() {
    std::lock_guard lock(mutex_);
    gate_open_ = true;
    changed_.notify_all();
}

bool scripted_upstream::wait_gate(ms timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return gate_open_; });
}

std::string ok_response(std::string_view body, std::string_view extra_headers) {
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n";
    out.append(extra_headers).append("\r\n").append(body);
    return out;
}

// ---------------------------------------------------------------------------------------
// veer

veer_process::veer_process(const temp_dir& dir, std::vector<std::string> blue,
                           std::vector<std::string> green, const toml_config& overrides,
                           std::string name)
    : dir_(dir),
      name_(std::move(name)),
      blue_(std::move(blue)),
      green_(std::move(green)),
      port_(free_port()),
      admin_http_port_(free_port()),
      socket_(dir.file(name_ + ".sock")),
      state_path_(dir.file(name_ + "-state.json")),
      config_path_(dir.file(name_ + ".toml")) {
    rewrite_config(overrides);
}

veer_process::~veer_process() {
    if (proc_) proc_->stop(ms(10000));
}

toml_config veer_process::defaults() const {
    toml_config c;
    c.set("listener", "address", toml_string("127.0.0.1:" + std::to_string(port_)))
        .set("listener", "threads", "2")
        .set("admin", "socket", toml_string(socket_))
        .set("admin", "http", toml_string("127.0.0.1:" + std::to_string(admin_http_port_)))
        .set("pools.blue", "endpoints", toml_strings(blue_))
        .set("pools.green", "endpoints", toml_strings(green_))
        .set("split", "stable", toml_string("blue"))
        .set("split", "canary_weight", "0")
        .set("health", "interval", toml_string("200ms"))
        .set("health", "timeout", toml_string("200ms"))
        .set("slo", "window", toml_string("5s"))
        .set("slo", "evaluate_every", toml_string("200ms"))
        .set("slo", "min_requests", "20")
        // Short, so that a test that leaves a request hanging still ends quickly.
        .set("timeouts", "drain", toml_string("2s"))
        .set("state", "path", toml_string(state_path_));
    return c;
}

void veer_process::rewrite_config(const toml_config& overrides) {
    overrides_ = overrides;
    write_file(config_path_, defaults().merged(overrides).render());
}

void veer_process::launch() {
    proc_ = std::make_unique<process>(
        veer_binary, std::vector<std::string>{"--config", config_path_}, dir_.file(name_ + ".log"));
}

::testing::AssertionResult veer_process::start(ms timeout, const std::string& host) {
    launch();
    const deadline d(timeout);
    int port_retries = 3;
    while (!d.expired()) {
        if (auto code = proc_->wait_exit(ms(0))) {
            // free_port() only found a port free a moment ago; a test running in parallel
            // may have taken it since. Other ports then, a bounded number of times.
            if (port_retries-- > 0 && log().find("Address already in use") != std::string::npos) {
                port_ = free_port();
                admin_http_port_ = free_port();
                rewrite_config(overrides_);
                launch();
                continue;
            }
            return ::testing::AssertionFailure() << "veer exited with " << *code << ":\n" << log();
        }
        // A socket file left by an earlier veer is not enough: it must answer.
        if (tcp_accepts(port_, host) && unix_accepts(socket_)) return ::testing::AssertionSuccess();
        std::this_thread::sleep_for(ms(20));
    }
    proc_->kill_now();
    return ::testing::AssertionFailure()
           << "veer did not open its listener and admin socket in time:\n"
           << log();
}

std::string veer_process::log() const { return proc_ ? proc_->output() : std::string(); }

bool veer_process::wait_status(const std::function<bool(const boost::json::object&)>& pred,
                               ms timeout, boost::json::object* last) {
    boost::json::object seen;
    const bool ok = wait_for(
        [&] {
            try {
                seen = status();
            } catch (const std::exception&) {
                return false;
            }
            return pred(seen);
        },
        timeout, ms(25));
    if (last) *last = std::move(seen);
    return ok;
}

std::optional<http_response> veer_process::admin_http(std::string_view target) {
    return http_get(admin_http_port_, target);
}

std::string upstream_name_of(const http_response& r) { return r.body.substr(0, r.body.find(' ')); }

}  // namespace veer::it
