#include "proxy/http/codec.hpp"

#include "common/ascii.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace veer::proxy::http {
namespace {

constexpr std::size_t max_fields = 128;

using ascii::trim;

parse_result fail(error e, std::string_view why) { return {parse_status::failed, e, why}; }

// Finds the end of the head (CRLFCRLF), a memchr per line. A complete head needs no other
// check here: the request or status line and the field lines reject every control byte,
// so a bare CR or LF inside it fails there. An incomplete one is checked for them now
// rather than after header_read: a lone LF is how some parsers and not others split
// lines, which is a smuggling vector.
parse_result find_head_end(std::string_view in, std::size_t max_head, std::size_t& end) {
    const std::size_t limit = std::min(in.size(), max_head);
    const char* const base = in.data();
    for (std::size_t from = 0; from < limit;) {
        const auto* nl = static_cast<const char*>(std::memchr(base + from, '\n', limit - from));
        if (!nl) break;
        const auto i = static_cast<std::size_t>(nl - base);
        if (i >= 3 && base[i - 1] == '\r' && base[i - 2] == '\n' && base[i - 3] == '\r') {
            end = i + 1;
            return {parse_status::done, error::none, {}};
        }
        from = i + 1;
    }
    for (std::size_t i = 0; i < limit; ++i) {
        const char c = in[i];
        if (c == '\r') {
            if (i + 1 >= in.size()) break;  // its LF has not arrived: the size check below decides
            if (in[i + 1] != '\n') return fail(error::bad_request, "bare CR");
        } else if (c == '\n' && (i == 0 || in[i - 1] != '\r')) {
            return fail(error::bad_request, "bare LF");
        }
    }
    if (in.size() >= max_head) return fail(error::header_too_large, "head too large");
    return {};
}

bool parse_version(std::string_view v, int& minor) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return false;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return false;
    minor = v[7] - '0';
    return true;
}

bool parse_decimal(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// What the fields of a head say about framing, gathered in one pass.
struct framing {
    int content_lengths = 0;
    std::uint64_t content_length = 0;
    bool bad_content_length = false;
    int transfer_encodings = 0;
    int chunked_count = 0;
    bool chunked_last = false;
    bool other_coding = false;
    int hosts = 0;
    bool connection_close = false;
};

void note_transfer_encoding(std::string_view value, framing& f) {
    ++f.transfer_encodings;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        std::size_t comma = value.find(',', pos);
        if (comma == std::string_view::npos) comma = value.size();
        const auto coding = trim(value.substr(pos, comma - pos));
        if (!coding.empty()) {
            const bool chunked = iequals(coding, "chunked");
            f.chunked_count += chunked;
            f.other_coding |= !chunked;
            f.chunked_last = chunked;
        }
        pos = comma + 1;
    }
}

// A message with Transfer-Encoding, requests and responses alike: HTTP/1.1 only, and
// exactly one `chunked`, last (RFC 9112 6.1, 6.3); any other coding is not implemented.
parse_result check_codings(const framing& f, int version_minor) {
    if (version_minor == 0) return fail(error::bad_request, "Transfer-Encoding in HTTP/1.0");
    if (!f.chunked_last || f.chunked_count != 1)
        return fail(error::bad_request, "last coding is not chunked");
    if (f.other_coding) return fail(error::not_implemented, "transfer coding other than chunked");
    return {parse_status::done, error::none, {}};
}

// Parses the field lines between `begin` and the head's end into `fields`, noting framing.
template <class Head>
parse_result parse_fields(std::string_view head, Head& out, framing& f) {
    out.fields.clear();
    std::size_t pos = 0;
    while (pos < head.size()) {
        const std::size_t eol = head.find("\r\n", pos);
        const auto line = head.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.empty()) break;  // the final empty line
        if (line.front() == ' ' || line.front() == '\t')
            return fail(error::bad_request, "obs-fold");
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return fail(error::bad_request, "bad field line");
        const auto name = line.substr(0, colon);
        for (char c : name)
            if (!ascii::is_tchar(c)) return fail(error::bad_request, "invalid field name");
        const auto value = trim(line.substr(colon + 1));
        for (char c : value) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7f)
                return fail(error::bad_request, "control character in field");
        }
        if (out.fields.size() == max_fields)
            return fail(error::header_too_large, "too many fields");
        out.fields.push_back({name, value});

        if (iequals(name, "content-length")) {
            std::uint64_t n = 0;
            if (!parse_decimal(value, n))
                f.bad_content_length = true;
            else if (f.content_lengths > 0 && n != f.content_length)
                f.bad_content_length = true;
            f.content_length = n;
            ++f.content_lengths;
        } else if (iequals(name, "transfer-encoding")) {
            note_transfer_encoding(value, f);
        } else if (iequals(name, "connection")) {
            out.connection_tokens = value;  // several Connection fields: the checks below see each
            if (has_token(value, "close")) {
                out.keep_alive = false;
                f.connection_close = true;
            } else if (has_token(value, "keep-alive") && out.version_minor == 0 &&
                       !f.connection_close) {
                out.keep_alive = true;  // "close" wins, whatever the order of the fields
            }
        } else if (iequals(name, "host")) {
            ++f.hosts;
        }
    }
    return {parse_status::done, error::none, {}};
}

// host [":" port] of RFC 3986 3.2.2, loosely: the characters a reg-name, an IP literal
// in brackets or an IPv4 address may have, and no userinfo (RFC 9110 4.2.4 calls that an
// error in an http URI).
bool valid_authority(std::string_view a, bool port_required) {
    if (a.empty() || a.front() == ':') return false;
    for (char c : a) {
        const bool ok = ascii::is_alnum(c) ||
                        std::string_view("-._~!$&'()*+,;=%:[]").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    const std::size_t colon = a.rfind(':');
    const std::size_t bracket = a.rfind(']');
    const bool has_port =
        colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
    if (!has_port) return !port_required;
    const auto port = a.substr(colon + 1);
    if (port.empty()) return !port_required;
    for (char c : port)
        if (c < '0' || c > '9') return false;
    return true;
}

// RFC 9112 3.2, as SPEC 4 narrows it: origin-form for every method, absolute-form only as
// an http(s) URI with an authority, "*" only for OPTIONS, never a fragment; CONNECT's
// authority-form is well formed but refused (501: veer is a reverse proxy, it tunnels
// nothing). Sets what goes upstream: the origin-form, with the authority as Host.
parse_result check_target(request_head& out) {
    const auto t = out.target;
    if (t.find('#') != std::string_view::npos)
        return fail(error::bad_request, "fragment in target");
    if (out.method == "CONNECT") {
        if (!valid_authority(t, true)) return fail(error::bad_request, "bad CONNECT target");
        return fail(error::not_implemented, "CONNECT");
    }
    if (t.front() == '/') {
        out.forward_target = t;
        return {parse_status::done, error::none, {}};
    }
    if (t == "*") {
        if (out.method != "OPTIONS") return fail(error::bad_request, "* target without OPTIONS");
        out.forward_target = t;
        return {parse_status::done, error::none, {}};
    }
    std::size_t scheme = 0;
    if (t.size() > 7 && iequals(t.substr(0, 7), "http://"))
        scheme = 7;
    else if (t.size() > 8 && iequals(t.substr(0, 8), "https://"))
        scheme = 8;
    if (scheme == 0) return fail(error::bad_request, "bad target form");
    const auto rest = t.substr(scheme);
    const std::size_t end = std::min(rest.find('/'), rest.find('?'));
    out.authority = rest.substr(0, end);
    if (!valid_authority(out.authority, false))
        return fail(error::bad_request, "bad authority in target");
    // An empty path is "/" upstream (RFC 9112 3.2.1), or "*" for OPTIONS (3.2.4); a query
    // without a path keeps its "?" and gets the "/" when written.
    if (end == std::string_view::npos)
        out.forward_target = out.method == "OPTIONS" ? "*" : "/";
    else
        out.forward_target = rest.substr(end);
    return {parse_status::done, error::none, {}};
}

// Resets a head but keeps its fields' capacity, so steady-state parsing does not allocate.
template <class Head>
void reset_keeping_fields(Head& h) {
    auto fields = std::move(h.fields);
    fields.clear();
    h = Head{};
    h.fields = std::move(fields);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

// The head keeps only the last Connection value; with several Connection fields (rare),
// the names in each are hop-by-hop too (RFC 9110 7.6.1).
template <class Head>
bool several_connection_fields(const Head& h) {
    int n = 0;
    for (const auto& f : h.fields)
        n += iequals(f.name, "connection");
    return n > 1;
}

template <class Head>
bool hop_by_hop_in(const Head& h, std::string_view name, bool several_connections) {
    if (is_hop_by_hop(name, h.connection_tokens)) return true;
    if (!several_connections) return false;
    for (const auto& c : h.fields)
        if (iequals(c.name, "connection") && has_token(c.value, name)) return true;
    return false;
}

void append_uint(std::string& out, std::uint64_t n) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, p);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) { return ascii::iequals(a, b); }

bool idempotent(std::string_view m) {
    return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" ||
           m == "DELETE";
}

bool may_resend(const request_head& req, bool reused) {
    return reused && req.body == body_kind::none && idempotent(req.method);
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

int status_of(error e) {
    switch (e) {
        case error::none: return 200;
        case error::bad_request: return 400;
        case error::header_too_large: return 431;
        case error::not_implemented: return 501;
        case error::bad_version: return 505;
        case error::expectation_failed: return 417;
    }
    return 400;
}

std::string_view reason_of(int status) {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 204: return "No Content";
        case 304: return "Not Modified";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 413: return "Content Too Large";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

std::string_view request_head::find(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return f.value;
    return {};
}

parse_result parse_request(std::string_view in, std::size_t max_head, request_head& out) {
    // RFC 9112 2.2: a server should ignore at least one empty line before the request line.
    std::size_t skip = 0;
    while (skip + 1 < in.size() && in[skip] == '\r' && in[skip + 1] == '\n' && skip < 8)
        skip += 2;
    std::size_t end = 0;
    auto r = find_head_end(in.substr(skip), max_head, end);
    if (r.status != parse_status::done) return r;
    const auto head = in.substr(skip, end);

    const std::size_t eol = head.find("\r\n");
    const auto line = head.substr(0, eol);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return fail(error::bad_request, "bad request line");
    reset_keeping_fields(out);
    out.method = line.substr(0, sp1);
    out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = line.substr(sp2 + 1);
    if (out.method.empty() || out.target.empty())
        return fail(error::bad_request, "bad request line");
    for (char c : out.method)
        if (!ascii::is_tchar(c)) return fail(error::bad_request, "bad method");
    for (char c : out.target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return fail(error::bad_request, "bad target");
    }
    if (!parse_version(version, out.version_minor)) {
        if (version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[5] >= '2' &&
            version[5] <= '9')
            return fail(error::bad_version, "unsupported version");
        return fail(error::bad_request, "bad version");
    }
    r = check_target(out);
    if (r.status != parse_status::done) return r;
    out.keep_alive = out.version_minor == 1;
    out.is_head = out.method == "HEAD";

    framing f;
    r = parse_fields(head.substr(eol + 2), out, f);
    if (r.status != parse_status::done) return r;

    if (out.version_minor == 1 && f.hosts != 1)
        return fail(error::bad_request, "missing or repeated Host");
    if (f.hosts > 1) return fail(error::bad_request, "repeated Host");
    if (f.bad_content_length) return fail(error::bad_request, "bad or differing Content-Length");
    if (f.transfer_encodings > 0) {
        if (f.content_lengths > 0)
            return fail(error::bad_request, "both Content-Length and Transfer-Encoding");
        if (r = check_codings(f, out.version_minor); r.status == parse_status::failed) return r;
        out.body = body_kind::chunked;
    } else if (f.content_lengths > 0) {
        out.content_length = f.content_length;
        out.body = f.content_length > 0 ? body_kind::length : body_kind::none;
        out.explicit_zero_length = f.content_length == 0;
    }
    out.has_host = f.hosts == 1;

    for (const auto& fl : out.fields) {
        if (iequals(fl.name, "expect")) {
            if (!iequals(fl.value, "100-continue"))
                return fail(error::expectation_failed, "unsupported Expect");
            out.expect_continue = out.version_minor == 1;
        } else if (iequals(fl.name, "upgrade")) {
            out.upgrade_websocket =
                has_token(fl.value, "websocket") && has_token(out.connection_tokens, "upgrade");
        } else if (iequals(fl.name, "x-forwarded-for")) {
            out.x_forwarded_for = fl.value;
        } else if (iequals(fl.name, "x-request-id")) {
            out.x_request_id = fl.value;
        }
    }
    out.size = skip + end;
    return {parse_status::done, error::none, {}};
}

parse_result parse_response(std::string_view in, std::size_t max_head, bool request_was_head,
                            response_head& out) {
    std::size_t end = 0;
    auto r = find_head_end(in, max_head, end);
    if (r.status != parse_status::done) return r;
    const auto head = in.substr(0, end);
    const std::size_t eol = head.find("\r\n");
    const auto line = head.substr(0, eol);
    // "HTTP/1.1 200 OK": version, a 3-digit status, then an optional reason.
    if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
        return fail(error::bad_request, "bad status line");
    reset_keeping_fields(out);
    if (!parse_version(line.substr(0, 8), out.version_minor))
        return fail(error::bad_request, "bad version");
    const auto code = line.substr(9, 3);
    for (char c : code)
        if (c < '0' || c > '9') return fail(error::bad_request, "bad status");
    out.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    if (out.status < 100) return fail(error::bad_request, "bad status");
    out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    for (char c : out.reason) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            return fail(error::bad_request, "control character in reason");
    }
    out.keep_alive = out.version_minor == 1;

    framing f;
    r = parse_fields(head.substr(eol + 2), out, f);
    if (r.status != parse_status::done) return r;
    if (f.bad_content_length) return fail(error::bad_request, "bad or differing Content-Length");
    if (f.transfer_encodings > 0 && f.content_lengths > 0)
        return fail(error::bad_request, "both Content-Length and Transfer-Encoding");

    const bool bodyless =
        request_was_head || out.status < 200 || out.status == 204 || out.status == 304;
    if (bodyless) {
        out.body = body_kind::none;
        out.content_length = f.content_length;  // kept for HEAD/304, where it describes the entity
    } else if (f.transfer_encodings > 0) {
        // SPEC 4: the request's framing defects make a response a 502 too. Reading a final
        // coding other than chunked until close (RFC 9112 6.3) would not do here: veer strips
        // Transfer-Encoding as hop-by-hop, so the client would get gzip or chunk framing as
        // if it were the body.
        if (r = check_codings(f, out.version_minor); r.status == parse_status::failed) return r;
        out.body = body_kind::chunked;
    } else if (f.content_lengths > 0) {
        out.body = body_kind::length;
        out.content_length = f.content_length;
    } else {
        out.body = body_kind::until_close;
    }
    if (out.body == body_kind::until_close) out.keep_alive = false;
    out.size = end;
    return {parse_status::done, error::none, {}};
}

parse_status response_status(std::string_view in, std::size_t max_head, int& status) {
    response_head h;
    for (;;) {
        const auto r = parse_response(in, max_head, false, h);
        status = r.status == parse_status::done ? h.status : 0;
        if (r.status != parse_status::done || h.status >= 200) return r.status;
        in.remove_prefix(h.size);  // an interim answer: the final one follows
    }
}

chunk_decoder::step chunk_decoder::feed(std::string_view in) {
    step s;
    std::size_t i = 0;
    auto failed = [&] {
        s.failed = true;
        s.consumed = i;
        return s;
    };
    while (i < in.size()) {
        const char c = in[i];
        switch (state_) {
            case state::size: {
                int d = -1;
                if (c >= '0' && c <= '9')
                    d = c - '0';
                else if (c >= 'a' && c <= 'f')
                    d = c - 'a' + 10;
                else if (c >= 'A' && c <= 'F')
                    d = c - 'A' + 10;
                if (d >= 0) {
                    if (++digits_ > 15)
                        return failed();  // beyond any real body: refuse, never overflow
                    remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(d);
                } else if (digits_ == 0) {
                    return failed();
                } else if (c == ';' || c == ' ' || c == '\t') {
                    state_ = state::ext;
                } else if (c == '\r') {
                    state_ = state::size_lf;
                } else {
                    return failed();
                }
                ++i;
                break;
            }
            case state::ext:
                if (c == '\r')
                    state_ = state::size_lf;
                else if (c == '\n' || ++line_ > max_line_)
                    return failed();
                ++i;
                break;
            case state::size_lf:
                if (c != '\n') return failed();
                ++i;
                line_ = 0;
                state_ = remaining_ == 0 ? state::trailer_start : state::data;
                break;
            case state::data: {
                const std::size_t n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
                s.data_offset = i;
                s.data_size = n;
                remaining_ -= n;
                data_total_ += n;
                i += n;
                if (remaining_ == 0) state_ = state::data_cr;
                s.consumed = i;
                return s;  // one data run per call
            }
            case state::data_cr:
                if (c != '\r') return failed();
                state_ = state::data_lf;
                ++i;
                break;
            case state::data_lf:
                if (c != '\n') return failed();
                state_ = state::size;
                digits_ = 0;
                ++i;
                break;
            case state::trailer_start:
                if (c == '\r')
                    state_ = state::last_lf;
                else if (c == '\n')
                    return failed();
                else
                    state_ = state::trailer;
                if (c != '\r' && !keep(c)) return failed();
                ++i;
                break;
            case state::trailer:
                if (c == '\r')
                    state_ = state::trailer_lf;
                else if (c == '\n' || ++line_ > max_line_ || !keep(c))
                    return failed();
                ++i;
                break;
            case state::trailer_lf:
                if (c != '\n' || !keep(c)) return failed();
                state_ = state::trailer_start;
                line_ = 0;
                ++i;
                break;
            case state::last_lf:
                if (c != '\n') return failed();
                state_ = state::done;
                ++i;
                s.done = true;
                s.consumed = i;
                return s;
            case state::done:
                s.done = true;
                s.consumed = i;
                return s;
        }
    }
    s.consumed = i;
    s.done = state_ == state::done;
    return s;
}

bool chunk_decoder::keep(char c) {
    if (keep_max_ == 0) return true;
    if (trailers_.size() >= keep_max_) return false;
    trailers_.push_back(c);
    return true;
}

std::vector<std::pair<std::string, std::string>> trailer_fields(std::string_view lines) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!lines.empty()) {
        const auto eol = lines.find('\n');
        const auto line = lines.substr(0, eol);
        lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 1);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const auto name = line.substr(0, colon);
        const auto value = ascii::trim(line.substr(colon + 1));
        const bool clean = std::all_of(value.begin(), value.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u == '\t' || (u >= 0x20 && u != 0x7f);
        });
        if (!ascii::is_token(name) || !clean || is_hop_by_hop(name, {}) ||
            iequals(name, "content-length") || iequals(name, "host"))
            continue;
        std::string lowered(name);
        for (auto& ch : lowered)
            ch = ascii::lower(ch);
        out.emplace_back(std::move(lowered), std::string(value));
    }
    return out;
}

bool is_hop_by_hop(std::string_view name, std::string_view connection_tokens) {
    switch (name.size()) {
        case 2:
            if (iequals(name, "te")) return true;
            break;
        case 7:
            if (iequals(name, "trailer") || iequals(name, "upgrade")) return true;
            break;
        case 10:
            if (iequals(name, "connection") || iequals(name, "keep-alive")) return true;
            break;
        case 16:
            if (iequals(name, "proxy-connection")) return true;
            break;
        case 17:
            if (iequals(name, "transfer-encoding")) return true;
            break;
        default: break;
    }
    return !connection_tokens.empty() && has_token(connection_tokens, name);
}

void write_upstream_request(const request_head& req, const forward_info& info, std::string& out) {
    const auto target =
        req.forward_target.empty() ? req.target : req.forward_target;  // a head not parsed here
    out.append(req.method).append(" ");
    if (!target.empty() && target.front() == '?') out.push_back('/');
    out.append(target).append(" HTTP/1.1\r\n");
    const bool several = several_connection_fields(req);
    // veer's id replaces a client's that is empty or named in Connection: one id upstream.
    const bool own_id = req.x_request_id.empty() || hop_by_hop_in(req, "x-request-id", several);
    for (const auto& f : req.fields) {
        // Framing and veer's own fields are re-stated below; the client's copies never pass.
        if (hop_by_hop_in(req, f.name, several) || iequals(f.name, "content-length") ||
            iequals(f.name, "expect") || iequals(f.name, "x-forwarded-for") ||
            iequals(f.name, "x-forwarded-proto") || (own_id && iequals(f.name, "x-request-id")) ||
            (!req.authority.empty() && iequals(f.name, "host")))
            continue;
        append_field(out, f.name, f.value);
    }
    if (req.body == body_kind::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    } else if (req.body == body_kind::length) {
        out.append("Content-Length: ");
        append_uint(out, req.content_length);
        out.append("\r\n");
    } else if (req.explicit_zero_length) {
        out.append("Content-Length: 0\r\n");
    }
    // Upstream requests are HTTP/1.1, which requires Host (RFC 9112 3.2).
    // An absolute-form target names the host itself; any Host field is ignored (RFC 9112 3.2.2).
    if (!req.authority.empty())
        append_field(out, "Host", req.authority);
    else if (!req.has_host && !info.host.empty())
        append_field(out, "Host", info.host);
    if (req.upgrade_websocket) out.append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
    out.append("X-Forwarded-For: ");
    // A client's X-Forwarded-For named in its Connection is hop-by-hop: dropped, not chained.
    if (!req.x_forwarded_for.empty() && !hop_by_hop_in(req, "x-forwarded-for", several)) {
        // Every hop the client's fields name, in order, even when split over several lines.
        for (const auto& f : req.fields)
            if (iequals(f.name, "x-forwarded-for") && !f.value.empty())
                out.append(f.value).append(", ");
    }
    out.append(info.client_ip).append("\r\n");
    out.append(info.tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n");
    if (own_id) append_field(out, "X-Request-Id", info.request_id);
    out.append("\r\n");
}

void write_client_response(const response_head& resp, int client_minor, bool chunked_to_client,
                           bool close, std::string& out) {
    out.append("HTTP/1.1 ");
    append_uint(out, static_cast<std::uint64_t>(resp.status));
    out.append(" ")
        .append(resp.reason.empty() ? reason_of(resp.status) : resp.reason)
        .append("\r\n");
    const bool switching = resp.status == 101;
    const bool several = several_connection_fields(resp);
    for (const auto& f : resp.fields) {
        if (hop_by_hop_in(resp, f.name, several)) continue;
        // Re-stated below with a body; never in a 1xx or 204 (RFC 9110 8.6); a HEAD or 304
        // answer keeps it, as it describes the representation.
        if ((resp.body != body_kind::none || resp.status < 200 || resp.status == 204) &&
            iequals(f.name, "content-length"))
            continue;
        append_field(out, f.name, f.value);
    }
    if (resp.body == body_kind::length) {
        out.append("Content-Length: ");
        append_uint(out, resp.content_length);
        out.append("\r\n");
    } else if (resp.body == body_kind::chunked && chunked_to_client) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    if (switching)
        out.append("Connection: Upgrade\r\nUpgrade: websocket\r\n");
    else if (close)
        out.append("Connection: close\r\n");
    else if (client_minor == 0)
        out.append("Connection: keep-alive\r\n");
    out.append("\r\n");
}

void write_simple_response(int status, bool close, std::string_view body, std::string& out) {
    out.append("HTTP/1.1 ");
    append_uint(out, static_cast<std::uint64_t>(status));
    out.append(" ")
        .append(reason_of(status))
        .append("\r\nContent-Type: text/plain\r\nContent-Length: ");
    append_uint(out, body.size());
    out.append(close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n").append(body);
}

}  // namespace veer::proxy::http
