// The HTTP/1.x codec: strict parsing of request and response heads, chunked framing and
// the head rewriting a proxy does. No I/O: bytes in, plain structs out, so it is tested
// by feeding bytes (proxygen's codec does the same).
//
// Views returned point into the caller's buffer and live as long as it is unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace veer::proxy::http {

struct field {
    std::string_view name;
    std::string_view value;
};

enum class body_kind : std::uint8_t { none, length, chunked, until_close };

// Why a head or body is refused; each maps to the status veer answers with.
enum class error : std::uint8_t {
    none,
    bad_request,  // 400: malformed or ambiguous (RFC 9112 smuggling rules)
    header_too_large,  // 431
    not_implemented,  // 501: a transfer coding other than chunked
    bad_version,  // 505
    expectation_failed,  // 417: an Expect other than 100-continue
};
int status_of(error e);
std::string_view reason_of(int status);

enum class parse_status : std::uint8_t { incomplete, done, failed };

struct request_head {
    std::string_view method;
    std::string_view target;  // as the client sent it
    std::string_view forward_target;  // as it goes upstream: origin-form, or "*"
    std::string_view authority;  // of an absolute-form target: the Host sent upstream
    int version_minor = 1;
    std::vector<field> fields;  // cleared, not freed, per request: no allocation in steady state
    std::size_t size = 0;  // bytes of the head, final CRLF included
    body_kind body = body_kind::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    bool expect_continue = false;
    bool upgrade_websocket = false;
    bool is_head = false;
    bool has_host = false;
    bool explicit_zero_length = false;  // "Content-Length: 0": restated, some servers want it (411)
    std::string_view
        connection_tokens;  // the raw Connection value(s): names more hop-by-hop fields
    std::string_view x_forwarded_for;  // the last one given by the client (all are forwarded)
    std::string_view x_request_id;

    // The value of the first field named `name` (case-insensitive), or empty.
    std::string_view find(std::string_view name) const;
};

struct response_head {
    int status = 0;
    int version_minor = 1;
    std::string_view reason;
    std::vector<field> fields;
    std::size_t size = 0;
    body_kind body = body_kind::none;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    std::string_view connection_tokens;
};

struct parse_result {
    parse_status status = parse_status::incomplete;
    error err = error::none;
    std::string_view detail;  // a short static text naming the defect
};

// Parses the request head at the start of `in`. `max_head` bounds the head's size:
// a head not complete within it is header_too_large.
parse_result parse_request(std::string_view in, std::size_t max_head, request_head& out);

// Parses a response head. `request_was_head` and the status decide whether a body follows.
parse_result parse_response(std::string_view in, std::size_t max_head, bool request_was_head,
                            response_head& out);

// For clients of veer's own (health checks, the webhook) that only need the status: the
// status of the complete, valid final response head at the start of `in` (done; interim
// heads before it are skipped), or why not.
parse_status response_status(std::string_view in, std::size_t max_head, int& status);

// Incremental chunked-body decoder. Each call consumes framing bytes and at most one run of
// chunk data, reporting where that data lies in the input; call again with the rest.
class chunk_decoder {
public:
    struct step {
        std::size_t consumed = 0;  // bytes of `in` used, framing and data
        std::size_t data_offset = 0;  // data run inside `in`
        std::size_t data_size = 0;
        bool done = false;  // the last chunk and trailers are complete
        bool failed = false;  // bad chunk size, line or trailer
    };
    explicit chunk_decoder(std::size_t max_line = 4096) : max_line_(max_line) {}
    step feed(std::string_view in);
    void reset() {
        const auto keep = keep_max_;
        *this = chunk_decoder(max_line_);
        keep_max_ = keep;
    }
    // Keeps the trailer section's lines (at most `max_bytes` of them, else the body fails)
    // for a peer that carries trailers (HTTP/2); otherwise they are checked and dropped.
    void keep_trailers(std::size_t max_bytes) { keep_max_ = max_bytes; }
    // The kept lines, each ending in '\n' (CR removed): parse with trailer_fields().
    std::string_view trailers() const { return trailers_; }
    bool done() const { return state_ == state::done; }
    std::uint64_t data_total() const { return data_total_; }

private:
    enum class state : std::uint8_t {
        size,
        ext,
        size_lf,
        data,
        data_cr,
        data_lf,
        trailer_start,
        trailer,
        trailer_lf,
        last_lf,
        done
    };
    bool keep(char c);  // one byte of the trailer section; false past keep_max_

    state state_ = state::size;
    std::uint64_t remaining_ = 0;
    std::size_t line_ = 0;  // bytes in the current size or trailer line
    int digits_ = 0;
    std::uint64_t data_total_ = 0;
    std::size_t max_line_;
    std::size_t keep_max_ = 0;
    std::string trailers_;
};

// The forwardable fields of a kept trailer section, names lower-cased (HTTP/2's form).
// Lines that are not `token: value` with a clean value, and fields that must not be
// trailers (hop-by-hop, Content-Length, Host, framing), are left out.
std::vector<std::pair<std::string, std::string>> trailer_fields(std::string_view lines);

// True for fields that belong to one connection and are never forwarded: Connection,
// Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection, and any field
// the Connection header names.
bool is_hop_by_hop(std::string_view name, std::string_view connection_tokens);

struct forward_info {
    std::string_view client_ip;
    bool tls = false;
    std::string_view request_id;  // used when the client sent none
    std::string_view host;  // Host for an HTTP/1.0 request that has none: the endpoint
};

// Appends the upstream request head for `req` to `out`: hop-by-hop fields dropped before
// veer's own are added, framing re-stated, X-Forwarded-For/-Proto and X-Request-Id set.
void write_upstream_request(const request_head& req, const forward_info& info, std::string& out);

// Appends the head sent back to the client. `chunked_to_client` says whether a chunked
// upstream body is passed through as chunked; `close` adds Connection: close.
void write_client_response(const response_head& resp, int client_minor, bool chunked_to_client,
                           bool close, std::string& out);

// A complete small response veer makes itself (errors, 100 Continue excluded).
void write_simple_response(int status, bool close, std::string_view body, std::string& out);

// RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
bool idempotent(std::string_view method);
// Whether a request that may have reached an upstream (`reused`: it went out on a pooled
// connection that then failed) is sent again: only an idempotent one whose body is whole
// in memory (veer keeps only bodyless requests so). RFC 9110 9.2.2: a proxy must not
// retry a non-idempotent request automatically.
bool may_resend(const request_head& req, bool reused);

bool iequals(std::string_view a, std::string_view b);
// Whether the comma-separated list `list` holds `token` (case-insensitive).
bool has_token(std::string_view list, std::string_view token);

}  // namespace veer::proxy::http
