// The HTTP/1.x codec, fed bytes: strict request and response heads (SPEC section 4, the
// RFC 9112 request-smuggling rules), chunked framing, and the head rewriting a proxy does.
#include "proxy/http/codec.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace veer::proxy::http {

// Readable enums in failure messages (found by argument-dependent lookup).
static std::ostream& operator<<(std::ostream& os, parse_status s) {
    constexpr const char* names[] = {"incomplete", "done", "failed"};
    return os << names[static_cast<int>(s)];
}
static std::ostream& operator<<(std::ostream& os, error e) {
    return os << "error(" << status_of(e) << ")";
}
static std::ostream& operator<<(std::ostream& os, body_kind b) {
    constexpr const char* names[] = {"none", "length", "chunked", "until_close"};
    return os << names[static_cast<int>(b)];
}

namespace {

using namespace std::string_literals;

constexpr std::size_t k_max_head = 8 * 1024;

// A head: `line`, then `fields` (each ending in CRLF), then the empty line.
std::string head(std::string_view line, std::string_view fields) {
    return std::string(line) + "\r\n" + std::string(fields) + "\r\n";
}
std::string get(std::string_view fields) { return head("GET / HTTP/1.1", fields); }
std::string post(std::string_view fields) {
    return head("POST /submit HTTP/1.1", "Host: a\r\n"s + std::string(fields));
}

// Every value of the fields called `name` in a written head, found without the codec's
// parser so that the writers are checked independently of it.
std::vector<std::string> values_of(std::string_view text, std::string_view name) {
    std::vector<std::string> out;
    const auto lower = [](std::string_view s) {
        std::string l(s);
        std::transform(l.begin(), l.end(), l.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return l;
    };
    std::size_t pos = text.find("\r\n");  // skip the start line
    while (pos != std::string_view::npos && pos + 2 < text.size()) {
        pos += 2;
        const std::size_t eol = text.find("\r\n", pos);
        const auto line = text.substr(pos, eol - pos);
        if (line.empty()) break;
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && lower(line.substr(0, colon)) == lower(name)) {
            auto v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ')
                v.remove_prefix(1);
            out.emplace_back(v);
        }
        pos = eol;
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Requests refused: each case is a valid request with one defect.

struct refused_case {
    std::string name;
    std::string input;
    error expected = error::bad_request;
};

std::ostream& operator<<(std::ostream& os, const refused_case& c) { return os << c.name; }

class RefusedRequest : public ::testing::TestWithParam<refused_case> {};

TEST_P(RefusedRequest, FailsWithTheRightError) {
    const auto& c = GetParam();
    request_head h;
    const auto r = parse_request(c.input, k_max_head, h);
    EXPECT_EQ(r.status, parse_status::failed);
    EXPECT_EQ(r.err, c.expected) << "detail: " << r.detail;
}

std::vector<refused_case> smuggling_cases() {
    return {
        // Both framings: which one wins differs between parsers.
        {"cl_then_te", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")},
        {"te_then_cl", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")},
        {"cl_zero_and_te", post("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n")},
        // Content-Length: differing or malformed.
        {"cl_differing", post("Content-Length: 5\r\nContent-Length: 6\r\n")},
        {"cl_second_malformed", post("Content-Length: 5\r\nContent-Length: x\r\n")},
        {"cl_plus", post("Content-Length: +5\r\n")},
        {"cl_minus", post("Content-Length: -1\r\n")},
        {"cl_empty", post("Content-Length: \r\n")},
        {"cl_inner_space", post("Content-Length: 1 2\r\n")},
        {"cl_hex", post("Content-Length: 0x10\r\n")},
        {"cl_list", post("Content-Length: 5, 6\r\n")},
        {"cl_overflow", post("Content-Length: 99999999999999999999999\r\n")},
        {"cl_two_to_the_64", post("Content-Length: 18446744073709551616\r\n")},
        // Transfer-Encoding whose last coding is not chunked, or chunked twice.
        {"te_gzip", post("Transfer-Encoding: gzip\r\n")},
        {"te_chunked_chunked", post("Transfer-Encoding: chunked, chunked\r\n")},
        {"te_chunked_in_two_fields",
         post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")},
        {"te_xchunked", post("Transfer-Encoding: xchunked\r\n")},
        {"te_chunked_gzip", post("Transfer-Encoding: chunked, gzip\r\n")},
        {"te_empty", post("Transfer-Encoding: \r\n")},
        {"te_gzip_chunked", post("Transfer-Encoding: gzip, chunked\r\n"), error::not_implemented},
        {"te_gzip_then_chunked_fields",
         post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), error::not_implemented},
        {"te_in_http10", head("POST / HTTP/1.0", "Host: a\r\nTransfer-Encoding: chunked\r\n")},
        {"te_in_http10_without_host", head("POST / HTTP/1.0", "Transfer-Encoding: chunked\r\n")},
        // Bare CR or LF anywhere in the head.
        {"bare_cr_after_request_line", "GET / HTTP/1.1\rHost: a\r\n\r\n"},
        {"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"},
        {"bare_cr_before_end", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"},
        {"bare_lf_after_request_line", "GET / HTTP/1.1\nHost: a\r\n\r\n"},
        {"bare_lf_after_field", "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n"},
        {"bare_lf_as_end", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
        {"lf_only_head", "GET / HTTP/1.1\nHost: a\n\n"},
        // Invalid field names.
        {"space_in_name", get("Host: a\r\nX A: 1\r\n")},
        {"tab_in_name", get("Host: a\r\nX\tA: 1\r\n")},
        {"empty_name", get("Host: a\r\n: 1\r\n")},
        {"space_before_colon", get("Host: a\r\nX-A : 1\r\n")},
        {"host_space_before_colon", get("Host : a\r\n")},
        {"paren_in_name", get("Host: a\r\nX(A): 1\r\n")},
        {"at_in_name", get("Host: a\r\nX@A: 1\r\n")},
        {"quote_in_name", get("Host: a\r\nX\"A: 1\r\n")},
        {"slash_in_name", get("Host: a\r\nX/A: 1\r\n")},
        {"non_ascii_name", get("Host: a\r\nX\xC3\xA9: 1\r\n")},
        {"no_colon", get("Host: a\r\nNoColonHere\r\n")},
        // obs-fold: a line starting with whitespace continues the previous one.
        {"obs_fold_space", get("Host: a\r\nX-A: 1\r\n 2\r\n")},
        {"obs_fold_tab", get("Host: a\r\nX-A: 1\r\n\t2\r\n")},
        {"obs_fold_first_line", get(" Host: a\r\n")},
        // Host in HTTP/1.1: exactly one; in HTTP/1.0 at most one.
        {"missing_host", get("X-A: 1\r\n")},
        {"no_fields_at_all", get("")},
        {"repeated_host", get("Host: a\r\nHost: a\r\n")},
        {"repeated_host_other_case", get("Host: a\r\nhOST: b\r\n")},
        {"repeated_host_http10", head("GET / HTTP/1.0", "Host: a\r\nHost: b\r\n")},
        // Control characters in values.
        {"ctl_soh_in_value", get("Host: a\r\nX-A: a\x01z\r\n")},
        {"ctl_nul_in_value", get("Host: a\r\nX-A: a\0z\r\n"s)},
        {"ctl_esc_in_value", get("Host: a\r\nX-A: \x1b[0m\r\n")},
        {"ctl_del_in_value", get("Host: a\r\nX-A: a\x7f\r\n")},
        {"ctl_in_host", get("Host: a\x08\r\n")},
        // Bad request lines.
        {"line_missing_version", head("GET /", "Host: a\r\n")},
        {"line_method_only", head("GET", "Host: a\r\n")},
        {"line_double_space", head("GET  / HTTP/1.1", "Host: a\r\n")},
        {"line_leading_space", head(" GET / HTTP/1.1", "Host: a\r\n")},
        {"line_trailing_space", head("GET / HTTP/1.1 ", "Host: a\r\n")},
        {"line_tabs", head("GET\t/\tHTTP/1.1", "Host: a\r\n")},
        {"line_lowercase_http", head("GET / http/1.1", "Host: a\r\n")},
        {"line_version_suffix", head("GET / HTTP/1.1x", "Host: a\r\n")},
        {"line_version_short", head("GET / HTTP/1", "Host: a\r\n")},
        {"line_version_no_dot", head("GET / HTTP/11", "Host: a\r\n")},
        {"line_http09", head("GET / HTTP/0.9", "Host: a\r\n")},
        {"line_bad_method", head("G(T / HTTP/1.1", "Host: a\r\n")},
        {"line_ctl_in_target", head("GET /a\x01z HTTP/1.1", "Host: a\r\n")},
        {"line_del_in_target", head("GET /a\x7f HTTP/1.1", "Host: a\r\n")},
        {"line_empty", "\r\n\r\n\r\n\r\n\r\n\r\n"},
        // Versions and expectations veer does not serve.
        {"http20", head("GET / HTTP/2.0", "Host: a\r\n"), error::bad_version},
        {"http30", head("GET / HTTP/3.0", "Host: a\r\n"), error::bad_version},
        {"expect_other", get("Host: a\r\nExpect: something-else\r\n"), error::expectation_failed},
        {"expect_continue_suffix", get("Host: a\r\nExpect: 100-continue-please\r\n"),
         error::expectation_failed},
    };
}

INSTANTIATE_TEST_SUITE_P(Smuggling, RefusedRequest, ::testing::ValuesIn(smuggling_cases()),
                         [](const auto& info) { return info.param.name; });

TEST(ParseRequest, IdenticalDuplicateContentLengthsAreAccepted) {
    const auto in = post("Content-Length: 5\r\nContent-Length: 5\r\n");
    request_head h;
    ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
    EXPECT_EQ(h.body, body_kind::length);
    EXPECT_EQ(h.content_length, 5u);
}

TEST(ParseRequest, Http10WithoutHostIsAccepted) {
    const auto in = head("GET /old HTTP/1.0", "User-Agent: x\r\n");
    request_head h;
    ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
    EXPECT_EQ(h.version_minor, 0);
    EXPECT_EQ(h.target, "/old");
}

TEST(ParseRequest, ReadsLineFieldsAndFraming) {
    const auto in =
        head("POST /a/b?c=d HTTP/1.1",
             "Host: example.com\r\nX-Spaced:   some value \t\r\ncontent-length: 12\r\n"
             "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nX-Request-Id: abc\r\n");
    request_head h;
    const auto r = parse_request(in, k_max_head, h);
    ASSERT_EQ(r.status, parse_status::done) << r.detail;
    EXPECT_EQ(h.method, "POST");
    EXPECT_EQ(h.target, "/a/b?c=d");
    EXPECT_EQ(h.version_minor, 1);
    EXPECT_EQ(h.size, in.size());
    EXPECT_EQ(h.fields.size(), 6u);
    EXPECT_EQ(h.find("x-spaced"), "some value");  // case-insensitive name, trimmed value
    EXPECT_EQ(h.find("HOST"), "example.com");
    EXPECT_EQ(h.find("absent"), "");
    EXPECT_EQ(h.body, body_kind::length);
    EXPECT_EQ(h.content_length, 12u);
    EXPECT_EQ(h.x_forwarded_for, "2.2.2.2");
    EXPECT_EQ(h.x_request_id, "abc");
    EXPECT_FALSE(h.is_head);
}

TEST(ParseRequest, BodyKinds) {
    struct body_case {
        std::string fields;
        body_kind body;
        std::uint64_t length;
    };
    const body_case cases[] = {
        {"", body_kind::none, 0},
        {"Content-Length: 0\r\n", body_kind::none, 0},
        {"Content-Length: 7\r\n", body_kind::length, 7},
        {"Content-Length: 007\r\n", body_kind::length, 7},
        {"Content-Length: 1099511627776\r\n", body_kind::length,
         1099511627776ULL},  // 1 TiB: streamed, not held
        {"Transfer-Encoding: chunked\r\n", body_kind::chunked, 0},
        {"Transfer-Encoding: Chunked\r\n", body_kind::chunked, 0},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.fields);
        const auto in = post(c.fields);
        request_head h;
        ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
        EXPECT_EQ(h.body, c.body);
        EXPECT_EQ(h.content_length, c.length);
    }
}

TEST(ParseRequest, HeadMethodIsNoted) {
    const auto in = head("HEAD / HTTP/1.1", "Host: a\r\n");
    request_head h;
    ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
    EXPECT_TRUE(h.is_head);
}

TEST(ParseRequest, EveryPrefixOfAValidRequestIsIncomplete) {
    const std::string requests[] = {
        post("Content-Length: 5\r\nX-A: b\r\n"),
        post("Transfer-Encoding: chunked\r\n"),
        "\r\n\r\n" + get("Host: a\r\n"),  // empty lines before the request line are skipped
        head("GET / HTTP/1.0", ""),
    };
    for (const auto& full : requests) {
        SCOPED_TRACE(full);
        for (std::size_t n = 0; n < full.size(); ++n) {
            request_head h;
            const auto r = parse_request(std::string_view(full).substr(0, n), k_max_head, h);
            ASSERT_EQ(r.status, parse_status::incomplete)
                << "prefix of " << n << " bytes: " << r.detail;
        }
        request_head h;
        ASSERT_EQ(parse_request(full, k_max_head, h).status, parse_status::done);
        EXPECT_EQ(h.size, full.size());
    }
}

TEST(ParseRequest, PipelinedInputSizeCoversOnlyTheFirstRequest) {
    const auto first = post("Content-Length: 5\r\n");
    const auto second = head("GET /second HTTP/1.1", "Host: a\r\n");
    const std::string in = first + "hello" + second;
    request_head h;
    ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
    EXPECT_EQ(h.size, first.size());
    EXPECT_EQ(h.target, "/submit");

    const auto rest = std::string_view(in).substr(h.size + h.content_length);
    ASSERT_EQ(parse_request(rest, k_max_head, h).status, parse_status::done);
    EXPECT_EQ(h.target, "/second");
    EXPECT_EQ(h.size, second.size());
    EXPECT_EQ(h.body, body_kind::none);  // nothing left over from the first request
}

TEST(ParseRequest, ReusedHeadIsReset) {
    request_head h;
    const auto first =
        get("Host: a\r\nConnection: close\r\nExpect: 100-continue\r\nX-Request-Id: r1\r\n"
            "Content-Length: 3\r\n");
    ASSERT_EQ(parse_request(first, k_max_head, h).status, parse_status::done);
    const auto second = get("Host: a\r\n");
    ASSERT_EQ(parse_request(second, k_max_head, h).status, parse_status::done);
    EXPECT_EQ(h.fields.size(), 1u);
    EXPECT_TRUE(h.keep_alive);
    EXPECT_FALSE(h.expect_continue);
    EXPECT_EQ(h.x_request_id, "");
    EXPECT_EQ(h.body, body_kind::none);
    EXPECT_EQ(h.content_length, 0u);
}

TEST(ParseRequest, HeadSizeLimit) {
    constexpr std::size_t max = 64;
    const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    // A complete head of exactly `max` bytes fits; one byte more does not, complete or not.
    const std::string exact = start + std::string(max - start.size() - 4, 'p') + "\r\n\r\n";
    ASSERT_EQ(exact.size(), max);
    const std::string over = start + std::string(max - start.size() - 3, 'p') + "\r\n\r\n";
    const std::string big = start + std::string(1000, 'p') + "\r\n\r\n";
    const std::string open_below = start + std::string(max - 1 - start.size(), 'p');
    const std::string open_at = start + std::string(max - start.size(), 'p');
    // Ends in CR: at least one more byte is needed, so the head cannot fit any more.
    const std::string open_at_cr = start + std::string(max - 1 - start.size(), 'p') + "\r";

    struct limit_case {
        const char* name;
        const std::string& input;
        parse_status status;
        error err;
    };
    const limit_case cases[] = {
        {"exactly max", exact, parse_status::done, error::none},
        {"complete, one byte over", over, parse_status::failed, error::header_too_large},
        {"complete, far over", big, parse_status::failed, error::header_too_large},
        {"incomplete below max", open_below, parse_status::incomplete, error::none},
        {"incomplete at max", open_at, parse_status::failed, error::header_too_large},
        {"incomplete at max, ends in CR", open_at_cr, parse_status::failed,
         error::header_too_large},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        request_head h;
        const auto r = parse_request(c.input, max, h);
        EXPECT_EQ(r.status, c.status) << r.detail;
        EXPECT_EQ(r.err, c.err);
    }
    EXPECT_EQ(status_of(error::header_too_large), 431);
}

TEST(ParseRequest, TooManyFieldsIsHeaderTooLarge) {
    std::string fields = "Host: a\r\n";
    for (int i = 1; i < 128; ++i)
        fields += "X-F" + std::to_string(i) + ": v\r\n";
    const auto at_limit = get(fields);
    request_head h;
    ASSERT_EQ(parse_request(at_limit, 1 << 20, h).status, parse_status::done);
    EXPECT_EQ(h.fields.size(), 128u);

    const auto over = get(fields + "X-One-More: v\r\n");
    const auto r = parse_request(over, 1 << 20, h);
    EXPECT_EQ(r.status, parse_status::failed);
    EXPECT_EQ(r.err, error::header_too_large);
}

TEST(ParseRequest, Expect) {
    struct expect_case {
        std::string line;
        std::string fields;
        bool expect_continue;
    };
    const expect_case cases[] = {
        {"POST / HTTP/1.1", "Host: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n", true},
        {"POST / HTTP/1.1", "Host: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n", true},
        {"POST / HTTP/1.1", "Host: a\r\nContent-Length: 3\r\n", false},
        // An HTTP/1.0 client cannot understand 100 Continue: the expectation is ignored.
        {"POST / HTTP/1.0", "Content-Length: 3\r\nExpect: 100-continue\r\n", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line + " " + c.fields);
        const auto in = head(c.line, c.fields);
        request_head h;
        ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
        EXPECT_EQ(h.expect_continue, c.expect_continue);
    }
    EXPECT_EQ(status_of(error::expectation_failed), 417);
}

TEST(ParseRequest, KeepAliveDefaults) {
    struct keep_alive_case {
        std::string line;
        std::string fields;
        bool keep_alive;
    };
    const keep_alive_case cases[] = {
        {"GET / HTTP/1.1", "Host: a\r\n", true},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: close\r\n", false},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: CLOSE\r\n", false},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: X-A, close\r\n", false},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: keep-alive\r\n", true},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: closed\r\n", true},  // a token, not a substring
        {"GET / HTTP/1.0", "", false},
        {"GET / HTTP/1.0", "Connection: keep-alive\r\n", true},
        {"GET / HTTP/1.0", "Connection: Keep-Alive\r\n", true},
        {"GET / HTTP/1.0", "Connection: close\r\n", false},
        // "close" wins whatever the order of the Connection fields (RFC 9112 9.3).
        {"GET / HTTP/1.0", "Connection: close\r\nConnection: keep-alive\r\n", false},
        {"GET / HTTP/1.0", "Connection: keep-alive\r\nConnection: close\r\n", false},
        {"GET / HTTP/1.1", "Host: a\r\nConnection: close\r\nConnection: keep-alive\r\n", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line + " " + c.fields);
        const auto in = head(c.line, c.fields);
        request_head h;
        ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
        EXPECT_EQ(h.keep_alive, c.keep_alive);
    }
}

TEST(ParseRequest, UpgradeWebsocket) {
    struct upgrade_case {
        std::string fields;
        bool websocket;
    };
    const upgrade_case cases[] = {
        {"Connection: Upgrade\r\nUpgrade: websocket\r\n", true},
        {"Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n", true},
        {"Upgrade: websocket\r\nConnection: upgrade\r\n", true},
        {"Upgrade: websocket\r\n",
         false},  // without Connection: upgrade it is not a request to upgrade
        {"Connection: Upgrade\r\nUpgrade: h2c\r\n", false},
        {"Connection: Upgrade\r\n", false},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.fields);
        const auto in = get("Host: a\r\n" + c.fields);
        request_head h;
        ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
        EXPECT_EQ(h.upgrade_websocket, c.websocket);
    }
}

TEST(ParseRequest, ErrorsMapToStatuses) {
    EXPECT_EQ(status_of(error::bad_request), 400);
    EXPECT_EQ(status_of(error::not_implemented), 501);
    EXPECT_EQ(status_of(error::bad_version), 505);
    EXPECT_EQ(reason_of(400), "Bad Request");
    EXPECT_EQ(reason_of(431), "Request Header Fields Too Large");
}

// ---------------------------------------------------------------------------------------
// Responses

TEST(ParseResponse, StatusLine) {
    struct line_case {
        std::string line;
        int status;
        int minor;
        std::string reason;
    };
    const line_case cases[] = {
        {"HTTP/1.1 200 OK", 200, 1, "OK"},
        {"HTTP/1.1 404 Not Found", 404, 1, "Not Found"},
        {"HTTP/1.0 503 Service Unavailable", 503, 0, "Service Unavailable"},
        {"HTTP/1.1 204", 204, 1, ""},
        {"HTTP/1.1 204 ", 204, 1, ""},
        {"HTTP/1.1 599 Custom", 599, 1, "Custom"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.line);
        const auto in = head(c.line, "Content-Length: 0\r\n");
        response_head h;
        const auto r = parse_response(in, k_max_head, false, h);
        ASSERT_EQ(r.status, parse_status::done) << r.detail;
        EXPECT_EQ(h.status, c.status);
        EXPECT_EQ(h.version_minor, c.minor);
        EXPECT_EQ(h.reason, c.reason);
        EXPECT_EQ(h.size, in.size());
    }
}

TEST(ParseResponse, BodyKinds) {
    struct body_case {
        std::string name;
        std::string line;
        std::string fields;
        bool request_was_head;
        body_kind body;
        std::uint64_t length;
        bool keep_alive;
    };
    const body_case cases[] = {
        {"length", "HTTP/1.1 200 OK", "Content-Length: 5\r\n", false, body_kind::length, 5, true},
        {"length duplicate", "HTTP/1.1 200 OK", "Content-Length: 5\r\nContent-Length: 5\r\n", false,
         body_kind::length, 5, true},
        {"length zero", "HTTP/1.1 200 OK", "Content-Length: 0\r\n", false, body_kind::length, 0,
         true},
        {"chunked", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", false, body_kind::chunked,
         0, true},
        {"until close", "HTTP/1.1 200 OK", "", false, body_kind::until_close, 0, false},
        {"until close http10", "HTTP/1.0 200 OK", "Connection: keep-alive\r\n", false,
         body_kind::until_close, 0, false},
        {"http10 length", "HTTP/1.0 200 OK", "Content-Length: 3\r\n", false, body_kind::length, 3,
         false},
        {"http10 keep-alive", "HTTP/1.0 200 OK", "Content-Length: 3\r\nConnection: keep-alive\r\n",
         false, body_kind::length, 3, true},
        {"connection close", "HTTP/1.1 200 OK", "Content-Length: 3\r\nConnection: close\r\n", false,
         body_kind::length, 3, false},
        // HEAD, 1xx, 204 and 304 have no body whatever their fields say.
        {"head", "HTTP/1.1 200 OK", "Content-Length: 5\r\n", true, body_kind::none, 5, true},
        {"head chunked", "HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n", true, body_kind::none,
         0, true},
        {"100", "HTTP/1.1 100 Continue", "", false, body_kind::none, 0, true},
        {"101", "HTTP/1.1 101 Switching Protocols", "Connection: Upgrade\r\nUpgrade: websocket\r\n",
         false, body_kind::none, 0, true},
        {"204", "HTTP/1.1 204 No Content", "", false, body_kind::none, 0, true},
        {"304", "HTTP/1.1 304 Not Modified", "Content-Length: 42\r\n", false, body_kind::none, 42,
         true},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto in = head(c.line, c.fields);
        response_head h;
        const auto r = parse_response(in, k_max_head, c.request_was_head, h);
        ASSERT_EQ(r.status, parse_status::done) << r.detail;
        EXPECT_EQ(h.body, c.body);
        EXPECT_EQ(h.content_length, c.length);
        EXPECT_EQ(h.keep_alive, c.keep_alive);
    }
}

TEST(ParseResponse, RefusesDefectiveResponses) {
    // SPEC section 4: an upstream response with the request's defects is a 502.
    struct bad_case {
        std::string name;
        std::string input;
    };
    const bad_case cases[] = {
        {"cl and te",
         head("HTTP/1.1 200 OK", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")},
        {"te and cl",
         head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")},
        {"differing cl", head("HTTP/1.1 200 OK", "Content-Length: 5\r\nContent-Length: 6\r\n")},
        {"malformed cl", head("HTTP/1.1 200 OK", "Content-Length: -1\r\n")},
        {"cl hex", head("HTTP/1.1 200 OK", "Content-Length: 0x10\r\n")},
        {"chunked twice", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, chunked\r\n")},
        {"te gzip", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip\r\n")},
        {"te xchunked", head("HTTP/1.1 200 OK", "Transfer-Encoding: xchunked\r\n")},
        {"te chunked gzip", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip\r\n")},
        {"te gzip chunked", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked\r\n")},
        {"te in http10", head("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\n")},
        {"bare lf", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
        {"bare cr", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\r\n\r\n"},
        {"obs-fold", head("HTTP/1.1 200 OK", "X-A: 1\r\n 2\r\nContent-Length: 0\r\n")},
        {"bad name", head("HTTP/1.1 200 OK", "X A: 1\r\nContent-Length: 0\r\n")},
        {"ctl in value", head("HTTP/1.1 200 OK", "X-A: \x01\r\nContent-Length: 0\r\n")},
        {"two digit status", head("HTTP/1.1 20 OK", "")},
        {"four digit status", head("HTTP/1.1 2000 OK", "")},
        {"letters status", head("HTTP/1.1 abc OK", "")},
        {"status below 100", head("HTTP/1.1 099 Low", "")},
        {"no space after version", head("HTTP/1.1200 OK", "")},
        {"http2", head("HTTP/2.0 200 OK", "")},
        {"not http", head("ICY 200 OK", "")},
        {"empty status line", head("", "Content-Length: 0\r\n")},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        response_head h;
        const auto r = parse_response(c.input, k_max_head, false, h);
        EXPECT_EQ(r.status, parse_status::failed);
        EXPECT_NE(r.err, error::none);
    }
}

TEST(ParseResponse, EveryPrefixIsIncompleteAndTheLimitHolds) {
    const auto full = head("HTTP/1.1 200 OK", "Content-Type: text/plain\r\nContent-Length: 5\r\n");
    for (std::size_t n = 0; n < full.size(); ++n) {
        response_head h;
        ASSERT_EQ(parse_response(std::string_view(full).substr(0, n), k_max_head, false, h).status,
                  parse_status::incomplete)
            << "prefix of " << n << " bytes";
    }
    response_head h;
    const auto r = parse_response(full, full.size() - 1, false, h);
    EXPECT_EQ(r.status, parse_status::failed);
    EXPECT_EQ(r.err, error::header_too_large);
}

TEST(ParseResponse, PipelinedSizeCoversOnlyTheHead) {
    const auto first = head("HTTP/1.1 200 OK", "Content-Length: 2\r\n");
    const std::string in = first + "hi" + head("HTTP/1.1 204 No Content", "");
    response_head h;
    ASSERT_EQ(parse_response(in, k_max_head, false, h).status, parse_status::done);
    EXPECT_EQ(h.size, first.size());
}

// ---------------------------------------------------------------------------------------
// Chunked bodies

struct decoded {
    std::string data;
    bool done = false;
    bool failed = false;
    std::size_t consumed = 0;
    std::uint64_t total = 0;
};

// Feeds `in` to a fresh decoder as a socket would deliver it, `piece` bytes at a time, and
// calls again with the unconsumed rest after each data run.
decoded decode(std::string_view in, std::size_t piece = std::string_view::npos,
               std::size_t max_line = 4096) {
    chunk_decoder d(max_line);
    decoded out;
    std::size_t pos = 0;
    std::size_t delivered = 0;
    for (;;) {
        if (pos == delivered) {
            if (delivered == in.size()) break;
            delivered = std::min(in.size(), delivered + std::min(piece, in.size()));
        }
        const auto s = d.feed(in.substr(pos, delivered - pos));
        EXPECT_LE(s.consumed, delivered - pos);
        if (s.data_size > 0) {
            EXPECT_LE(s.data_offset + s.data_size, s.consumed);
            out.data.append(in.substr(pos + s.data_offset, s.data_size));
        }
        pos += s.consumed;
        if (s.failed) {
            out.failed = true;
            break;
        }
        if (s.done) {
            out.done = true;
            EXPECT_TRUE(d.done());
            break;
        }
        if (s.consumed == 0) {
            ADD_FAILURE() << "no progress at byte " << pos;
            break;
        }
    }
    out.consumed = pos;
    out.total = d.data_total();
    return out;
}

TEST(ChunkDecoder, ValidBodies) {
    struct body_case {
        std::string name;
        std::string body;
        std::string data;
    };
    const body_case cases[] = {
        {"empty", "0\r\n\r\n", ""},
        {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
        {"several chunks", "3\r\nabc\r\na\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n", "abc0123456789!"},
        {"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
        {"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
        {"crlf in data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
        {"extensions", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"},
        {"extension with quoted string", "5;a=\"x y\"\r\nhello\r\n0\r\n\r\n", "hello"},
        {"space before extension", "5 ;a=1\r\nhello\r\n0\r\n\r\n", "hello"},
        {"trailers", "5\r\nhello\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n", "hello"},
        {"big chunk", "400\r\n" + std::string(1024, 'x') + "\r\n0\r\n\r\n", std::string(1024, 'x')},
    };
    for (const auto& c : cases) {
        for (const std::size_t piece : {std::string_view::npos, std::size_t{1}, std::size_t{3}}) {
            SCOPED_TRACE(c.name + " in pieces of " + std::to_string(piece));
            const auto d = decode(c.body, piece);
            EXPECT_FALSE(d.failed);
            EXPECT_TRUE(d.done);
            EXPECT_EQ(d.data, c.data);
            EXPECT_EQ(d.total, c.data.size());
            EXPECT_EQ(d.consumed, c.body.size());
        }
        SCOPED_TRACE(c.name);
        for (std::size_t n = 0; n < c.body.size(); ++n) {
            const auto d = decode(std::string_view(c.body).substr(0, n));
            ASSERT_FALSE(d.done) << "prefix of " << n << " bytes";
            ASSERT_FALSE(d.failed) << "prefix of " << n << " bytes";
        }
    }
}

TEST(ChunkDecoder, StopsAtTheEndOfTheBody) {
    const std::string in = "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    const auto d = decode(in);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.consumed, in.find("GET"));

    chunk_decoder dec;
    auto s = dec.feed("0\r\n\r\n");
    ASSERT_TRUE(s.done);
    s = dec.feed("more");  // a finished decoder takes nothing more
    EXPECT_TRUE(s.done);
    EXPECT_EQ(s.consumed, 0u);

    dec.reset();  // and a reset one starts over
    EXPECT_FALSE(dec.done());
    EXPECT_EQ(dec.data_total(), 0u);
    s = dec.feed("1\r\n");
    EXPECT_FALSE(s.done);
    EXPECT_FALSE(s.failed);
}

TEST(ChunkDecoder, KeepsTheTrailersWhenAsked) {
    const std::string in = "2\r\nhi\r\n0\r\ngrpc-status: 0\r\nX-Note:  a b \r\n\r\n";
    chunk_decoder dec;
    dec.keep_trailers(1024);
    std::size_t at = 0;
    for (int i = 0; i < 8 && at < in.size(); ++i)  // one byte at a time where it can
        at += dec.feed(std::string_view(in).substr(at, i == 0 ? 5 : in.size())).consumed;
    ASSERT_TRUE(dec.done());
    EXPECT_EQ(dec.trailers(), "grpc-status: 0\nX-Note:  a b \n");
    const auto fields = trailer_fields(dec.trailers());
    ASSERT_EQ(fields.size(), 2u);
    EXPECT_EQ(fields[0], (std::pair<std::string, std::string>{"grpc-status", "0"}));
    EXPECT_EQ(fields[1], (std::pair<std::string, std::string>{"x-note", "a b"}));

    dec.reset();  // a reset decoder still keeps, from nothing
    EXPECT_TRUE(dec.trailers().empty());
    EXPECT_TRUE(dec.feed("0\r\na: 1\r\n\r\n").done);
    EXPECT_EQ(dec.trailers(), "a: 1\n");
}

TEST(ChunkDecoder, KeptTrailersAreBoundedAndFiltered) {
    chunk_decoder dec;
    dec.keep_trailers(8);
    EXPECT_TRUE(dec.feed("0\r\nabcdefghijk: 1\r\n\r\n").failed);  // past 8 bytes

    chunk_decoder plain;  // not kept: any size within the line limit passes, nothing held
    EXPECT_TRUE(plain.feed("0\r\nabcdefghijk: 1\r\n\r\n").done);
    EXPECT_TRUE(plain.trailers().empty());

    const auto fields = trailer_fields(
        "no colon\nbad name: 1\nContent-Length: 5\nTransfer-Encoding: x\nhost: h\n"
        "connection: close\nbad: \x01\nok: fine\n");
    ASSERT_EQ(fields.size(), 1u);
    EXPECT_EQ(fields[0].first, "ok");
}

TEST(ChunkDecoder, FifteenHexDigitsAreAccepted) {
    chunk_decoder dec;
    const auto s = dec.feed("fffffffffffffff\r\nab");
    EXPECT_FALSE(s.failed);
    EXPECT_EQ(s.data_size, 2u);
}

TEST(ChunkDecoder, RefusesBadFraming) {
    struct bad_case {
        std::string name;
        std::string body;
    };
    const bad_case cases[] = {
        {"non-hex size", "zz\r\nhi\r\n0\r\n\r\n"},
        {"negative size", "-1\r\nh\r\n0\r\n\r\n"},
        {"plus size", "+1\r\nh\r\n0\r\n\r\n"},
        {"empty size line", "\r\nhello\r\n0\r\n\r\n"},
        {"hex prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
        {"too many hex digits", "10000000000000000\r\n"},
        {"sixteen digits", "0000000000000001\r\nx\r\n0\r\n\r\n"},
        {"garbage after size", "5x\r\nhello\r\n0\r\n\r\n"},
        {"size line LF without CR", "5\nhello\r\n0\r\n\r\n"},
        {"extension LF without CR", "5;a=1\nhello\r\n0\r\n\r\n"},
        {"CR without LF after size", "5\rhello\r\n0\r\n\r\n"},
        {"missing CRLF after data", "5\r\nhelloXX0\r\n\r\n"},
        {"data longer than size", "3\r\nhello\r\n0\r\n\r\n"},
        {"LF without CR after data", "5\r\nhello\n0\r\n\r\n"},
        {"last chunk LF without CR", "0\n\r\n"},
        {"end LF without CR", "0\r\n\n"},
        {"trailer LF without CR", "0\r\nX-A: 1\n\r\n"},
        {"end CR without LF", "0\r\n\rX"},
    };
    for (const auto& c : cases) {
        for (const std::size_t piece : {std::string_view::npos, std::size_t{1}}) {
            SCOPED_TRACE(c.name + " in pieces of " + std::to_string(piece));
            const auto d = decode(c.body, piece);
            EXPECT_TRUE(d.failed);
            EXPECT_FALSE(d.done);
        }
    }
}

TEST(ChunkDecoder, BoundsExtensionAndTrailerLines) {
    const std::string long_ext = "1;" + std::string(100, 'e') + "\r\nx\r\n0\r\n\r\n";
    EXPECT_TRUE(decode(long_ext, std::string_view::npos, 32).failed);
    EXPECT_TRUE(decode(long_ext, std::string_view::npos, 200).done);

    const std::string long_trailer = "0\r\nX-T: " + std::string(100, 't') + "\r\n\r\n";
    EXPECT_TRUE(decode(long_trailer, std::string_view::npos, 32).failed);
    EXPECT_TRUE(decode(long_trailer, std::string_view::npos, 200).done);
}

// ---------------------------------------------------------------------------------------
// Hop-by-hop fields and the heads veer writes

TEST(HopByHop, FixedNamesAndConnectionTokens) {
    for (const char* name :
         {"Connection", "connection", "Keep-Alive", "KEEP-ALIVE", "TE", "te", "Trailer",
          "Transfer-Encoding", "transfer-encoding", "Upgrade", "Proxy-Connection"}) {
        EXPECT_TRUE(is_hop_by_hop(name, "")) << name;
    }
    for (const char* name :
         {"Host", "Content-Length", "X-Forwarded-For", "Connections", "T", "Trailers",
          "Upgrade-Insecure-Requests", "Proxy-Authorization", "Keep"}) {
        EXPECT_FALSE(is_hop_by_hop(name, "")) << name;
    }
    EXPECT_TRUE(is_hop_by_hop("X-Secret", "close, X-Secret"));
    EXPECT_TRUE(is_hop_by_hop("x-secret", "close,X-SECRET ,other"));
    EXPECT_FALSE(is_hop_by_hop("X-Secre", "close, X-Secret"));
    EXPECT_FALSE(is_hop_by_hop("X-Secrets", "close, X-Secret"));
    EXPECT_FALSE(is_hop_by_hop("X-Other", "close, X-Secret"));
}

const forward_info k_from_client{"10.0.0.9", false, "veer-id-1"};

// Parses `in` (which outlives the call) and returns the upstream head veer writes for it.
std::string upstream_for(const std::string& in, const forward_info& info = k_from_client) {
    request_head h;
    const auto r = parse_request(in, k_max_head, h);
    EXPECT_EQ(r.status, parse_status::done) << r.detail;
    std::string out;
    write_upstream_request(h, info, out);
    return out;
}

TEST(WriteUpstreamRequest, KeepsTheRequestAndItsEndToEndFields) {
    const auto out = upstream_for(
        head("PUT /a?b=c HTTP/1.1",
             "Host: example.com\r\nAccept: */*\r\nCookie: s=1\r\nContent-Length: 3\r\n"));
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "PUT /a?b=c HTTP/1.1");
    EXPECT_EQ(values_of(out, "Host"), std::vector<std::string>{"example.com"});
    EXPECT_EQ(values_of(out, "Accept"), std::vector<std::string>{"*/*"});
    EXPECT_EQ(values_of(out, "Cookie"), std::vector<std::string>{"s=1"});
    EXPECT_LT(out.find("Accept"), out.find("Cookie"));  // order kept
    ASSERT_GE(out.size(), 4u);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");

    // What veer writes is itself a valid head of the same size.
    request_head again;
    ASSERT_EQ(parse_request(out, k_max_head, again).status, parse_status::done);
    EXPECT_EQ(again.size, out.size());
    EXPECT_EQ(again.content_length, 3u);
}

TEST(WriteUpstreamRequest, Http10RequestIsForwardedAsHttp11) {
    const auto out = upstream_for(head("GET /x HTTP/1.0", "Host: a\r\n"));
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /x HTTP/1.1");
}

// An HTTP/1.0 request without Host goes upstream as HTTP/1.1, which needs one (RFC 9112
// section 3.2): the endpoint's address is used.
TEST(WriteUpstreamRequest, Http10WithoutHostGetsTheEndpointAsHost) {
    forward_info info = k_from_client;
    info.host = "127.0.0.1:9001";
    const auto out = upstream_for(head("GET /x HTTP/1.0", "User-Agent: old\r\n"), info);
    EXPECT_EQ(values_of(out, "Host"), std::vector<std::string>{"127.0.0.1:9001"}) << out;
    const auto kept = upstream_for(head("GET /x HTTP/1.0", "Host: a\r\n"), info);
    EXPECT_EQ(values_of(kept, "Host"), std::vector<std::string>{"a"}) << kept;
}

TEST(WriteUpstreamRequest, ExplicitZeroContentLengthIsRestated) {
    const auto out = upstream_for(head("POST /x HTTP/1.1", "Host: a\r\nContent-Length: 0\r\n"));
    EXPECT_EQ(values_of(out, "Content-Length"), std::vector<std::string>{"0"}) << out;
}

TEST(WriteUpstreamRequest, DropsHopByHopFields) {
    const auto out = upstream_for(
        get("Host: a\r\nConnection: close, X-Secret\r\nKeep-Alive: timeout=5\r\n"
            "TE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n"
            "X-Secret: s\r\nX-Kept: k\r\n"));
    for (const char* name : {"Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding",
                             "Upgrade", "Proxy-Connection", "X-Secret"}) {
        EXPECT_TRUE(values_of(out, name).empty()) << name << " in\n" << out;
    }
    EXPECT_EQ(values_of(out, "X-Kept"), std::vector<std::string>{"k"});
    EXPECT_EQ(values_of(out, "Host"), std::vector<std::string>{"a"});
}

TEST(WriteUpstreamRequest, EveryConnectionFieldNamesHopByHopFields) {
    const auto out =
        upstream_for(get("Host: a\r\nConnection: X-Secret\r\nConnection: keep-alive\r\n"
                         "X-Secret: s\r\nX-Kept: k\r\n"));
    EXPECT_TRUE(values_of(out, "X-Secret").empty()) << out;
    EXPECT_EQ(values_of(out, "X-Kept"), std::vector<std::string>{"k"});
}

TEST(WriteUpstreamRequest, ConnectionCannotRemoveVeersFields) {
    // The client's copies are dropped as hop-by-hop, but veer's own are added after.
    const auto out = upstream_for(
        get("Host: a\r\nConnection: close, X-Forwarded-For, X-Forwarded-Proto, X-Request-Id\r\n"
            "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-Proto: https\r\nX-Request-Id: client-id\r\n"));
    const auto xff = values_of(out, "X-Forwarded-For");
    ASSERT_EQ(xff.size(), 1u) << out;
    EXPECT_EQ(xff[0], "10.0.0.9") << "the client's hop, named in Connection, is dropped";
    EXPECT_EQ(values_of(out, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    EXPECT_EQ(values_of(out, "X-Request-Id").size(), 1u) << out;

    const auto bare = upstream_for(get("Host: a\r\nConnection: close, X-Forwarded-For\r\n"));
    EXPECT_EQ(values_of(bare, "X-Forwarded-For"), std::vector<std::string>{"10.0.0.9"});
}

TEST(WriteUpstreamRequest, ForwardedFor) {
    struct xff_case {
        std::string fields;
        std::string expected;
    };
    const xff_case cases[] = {
        {"", "10.0.0.9"},
        {"X-Forwarded-For: 1.1.1.1\r\n", "1.1.1.1, 10.0.0.9"},
        {"x-forwarded-for: 1.1.1.1, 2.2.2.2\r\n", "1.1.1.1, 2.2.2.2, 10.0.0.9"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.fields);
        const auto out = upstream_for(get("Host: a\r\n" + c.fields));
        EXPECT_EQ(values_of(out, "X-Forwarded-For"), std::vector<std::string>{c.expected});
    }
}

TEST(WriteUpstreamRequest, ForwardedProtoIsReplaced) {
    const auto in = get("Host: a\r\nX-Forwarded-Proto: https\r\n");
    EXPECT_EQ(values_of(upstream_for(in), "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    const auto plain = get("Host: a\r\nX-Forwarded-Proto: http\r\n");
    EXPECT_EQ(values_of(upstream_for(plain, {"10.0.0.9", true, "id"}), "X-Forwarded-Proto"),
              std::vector<std::string>{"https"});
}

TEST(WriteUpstreamRequest, RequestIdOnlyWhenAbsent) {
    const auto absent = get("Host: a\r\n");
    EXPECT_EQ(values_of(upstream_for(absent), "X-Request-Id"),
              std::vector<std::string>{"veer-id-1"});
    const auto given = get("Host: a\r\nX-Request-Id: client-7\r\n");
    EXPECT_EQ(values_of(upstream_for(given), "X-Request-Id"), std::vector<std::string>{"client-7"});
    // An empty one counts as absent, and the upstream still sees exactly one id.
    const auto empty = get("Host: a\r\nX-Request-Id:\r\n");
    EXPECT_EQ(values_of(upstream_for(empty), "X-Request-Id"),
              std::vector<std::string>{"veer-id-1"});
}

TEST(WriteUpstreamRequest, FramingIsRestated) {
    struct framing_case {
        std::string name;
        std::string input;
        std::vector<std::string> content_length;
        std::vector<std::string> transfer_encoding;
    };
    const framing_case cases[] = {
        {"no body", get("Host: a\r\n"), {}, {}},
        {"length", post("content-length: 005\r\n"), {"5"}, {}},
        {"duplicate length", post("Content-Length: 5\r\nContent-Length: 5\r\n"), {"5"}, {}},
        {"chunked", post("Transfer-Encoding: chunked\r\n"), {}, {"chunked"}},
        {"chunked with spaces", post("Transfer-Encoding:  Chunked \r\n"), {}, {"chunked"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto out = upstream_for(c.input);
        EXPECT_EQ(values_of(out, "Content-Length"), c.content_length) << out;
        EXPECT_EQ(values_of(out, "Transfer-Encoding"), c.transfer_encoding) << out;
    }
}

TEST(WriteUpstreamRequest, WebsocketUpgradeIsRestated) {
    const auto out =
        upstream_for(get("Host: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
                         "Sec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n"));
    EXPECT_EQ(values_of(out, "Connection"), std::vector<std::string>{"Upgrade"});
    EXPECT_EQ(values_of(out, "Upgrade"), std::vector<std::string>{"websocket"});
    EXPECT_EQ(values_of(out, "Sec-WebSocket-Key"), std::vector<std::string>{"k"});
}

TEST(WriteUpstreamRequest, AppendsToTheBuffer) {
    const auto in = get("Host: a\r\n");
    request_head h;
    ASSERT_EQ(parse_request(in, k_max_head, h).status, parse_status::done);
    std::string out = "KEEP";
    write_upstream_request(h, k_from_client, out);
    EXPECT_EQ(out.substr(0, 8), "KEEPGET ");
}

// ---------------------------------------------------------------------------------------
// Request-targets (RFC 9112 3.2, SPEC 4): the forms veer takes and what goes upstream.

struct target_case {
    std::string line;  // the request line
    error expected;  // none: accepted
    std::string forward = "";  // accepted: the target sent upstream
    std::string authority = "";
};

std::ostream& operator<<(std::ostream& os, const target_case& c) { return os << c.line; }

class RequestTarget : public ::testing::TestWithParam<target_case> {};

TEST_P(RequestTarget, FormIsCheckedAndRewritten) {
    const auto& c = GetParam();
    request_head h;
    const auto in = head(c.line, "Host: a\r\n");  // the head's views point into it
    const auto r = parse_request(in, k_max_head, h);
    if (c.expected != error::none) {
        EXPECT_EQ(r.status, parse_status::failed);
        EXPECT_EQ(r.err, c.expected);
        return;
    }
    ASSERT_EQ(r.status, parse_status::done) << r.detail;
    EXPECT_EQ(h.forward_target, c.forward);
    EXPECT_EQ(h.authority, c.authority);
}

INSTANTIATE_TEST_SUITE_P(
    Forms, RequestTarget,
    ::testing::Values(
        target_case{"GET /a?b HTTP/1.1", error::none, "/a?b"},
        target_case{"OPTIONS * HTTP/1.1", error::none, "*"},
        target_case{"GET http://host/x HTTP/1.1", error::none, "/x", "host"},
        target_case{"GET https://host:8443/x?y HTTP/1.1", error::none, "/x?y", "host:8443"},
        target_case{"GET HTTP://Host HTTP/1.1", error::none, "/", "Host"},
        target_case{"OPTIONS http://host:81 HTTP/1.1", error::none, "*", "host:81"},
        target_case{"GET http://host?q HTTP/1.1", error::none, "?q", "host"},
        target_case{"GET http://[::1]:80/v6 HTTP/1.1", error::none, "/v6", "[::1]:80"},
        target_case{"OPTIONS */test HTTP/1.1", error::bad_request},
        target_case{"GET * HTTP/1.1", error::bad_request},
        target_case{"GET admin HTTP/1.1", error::bad_request},
        target_case{"GET admin/a/b HTTP/1.1", error::bad_request},
        target_case{"GET host:80 HTTP/1.1", error::bad_request},
        target_case{"GET ftp://host/x HTTP/1.1", error::bad_request},
        target_case{"GET http:///x HTTP/1.1", error::bad_request},
        target_case{"GET http://user@host/x HTTP/1.1", error::bad_request},
        target_case{"GET http://host:8x/ HTTP/1.1", error::bad_request},
        target_case{"GET http://host#frag HTTP/1.1", error::bad_request},
        target_case{"GET http://host/abc#frag HTTP/1.1", error::bad_request},
        target_case{"GET /a#b HTTP/1.1", error::bad_request},
        target_case{"CONNECT host HTTP/1.1", error::bad_request},
        target_case{"CONNECT / HTTP/1.1", error::bad_request},
        target_case{"CONNECT host:80 HTTP/1.1", error::not_implemented},
        target_case{"CONNECT [::1]:443 HTTP/1.1", error::not_implemented}));

TEST(WriteUpstreamRequest, AbsoluteFormGoesAsOriginFormWithItsAuthorityAsHost) {
    const auto out =
        upstream_for(head("GET http://inner:8080/p?q HTTP/1.1", "Host: outer\r\nAccept: */*\r\n"));
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /p?q HTTP/1.1");
    EXPECT_EQ(values_of(out, "Host"), std::vector<std::string>{"inner:8080"}) << out;
    const auto query_only = upstream_for(head("GET http://h?q HTTP/1.1", "Host: h\r\n"));
    EXPECT_EQ(query_only.substr(0, query_only.find("\r\n")), "GET /?q HTTP/1.1");
}

// RFC 9110 9.2.2: what may reach an upstream twice.
TEST(MayResend, OnlyIdempotentBodylessRequestsThatMayHaveArrived) {
    std::vector<std::string> inputs;  // the heads' views point into them
    inputs.reserve(32);
    const auto parsed = [&inputs](std::string_view line, std::string_view fields) {
        request_head h;
        inputs.push_back(head(line, "Host: a\r\n"s + std::string(fields)));
        EXPECT_EQ(parse_request(inputs.back(), k_max_head, h).status, parse_status::done);
        return h;
    };
    for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
        EXPECT_TRUE(may_resend(parsed(std::string(m) + " / HTTP/1.1", ""), true)) << m;
        EXPECT_FALSE(may_resend(parsed(std::string(m) + " / HTTP/1.1", ""), false))
            << m << " on a fresh connection";
    }
    for (const char* m : {"POST", "PATCH", "LOCK"})
        EXPECT_FALSE(
            may_resend(parsed(std::string(m) + " / HTTP/1.1", "Content-Length: 0\r\n"), true))
            << m;
    EXPECT_FALSE(may_resend(parsed("PUT / HTTP/1.1", "Content-Length: 3\r\n"), true))
        << "its body is gone";
}

// Parses the upstream response `in` (which outlives the call) and returns the head veer
// writes to the client.
std::string client_response_for(const std::string& in, int client_minor, bool chunked_to_client,
                                bool close, bool request_was_head = false) {
    response_head h;
    const auto r = parse_response(in, k_max_head, request_was_head, h);
    EXPECT_EQ(r.status, parse_status::done) << r.detail;
    std::string out;
    write_client_response(h, client_minor, chunked_to_client, close, out);
    return out;
}

TEST(WriteClientResponse, DropsHopByHopFields) {
    const auto out = client_response_for(
        head("HTTP/1.1 200 OK",
             "Content-Length: 2\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\n"
             "Trailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-Internal: i\r\n"
             "Content-Type: text/plain\r\n"),
        1, true, false);
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "HTTP/1.1 200 OK");
    for (const char* name :
         {"Connection", "Keep-Alive", "Trailer", "Upgrade", "Proxy-Connection", "X-Internal"}) {
        EXPECT_TRUE(values_of(out, name).empty()) << name << " in\n" << out;
    }
    EXPECT_EQ(values_of(out, "Content-Type"), std::vector<std::string>{"text/plain"});
    EXPECT_EQ(values_of(out, "Content-Length"), std::vector<std::string>{"2"});
    ASSERT_GE(out.size(), 4u);
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(WriteClientResponse, EveryConnectionFieldNamesHopByHopFields) {
    const auto out = client_response_for(
        head("HTTP/1.1 200 OK",
             "Connection: X-Internal\r\nConnection: keep-alive\r\nX-Internal: i\r\n"
             "Content-Length: 0\r\n"),
        1, true, false);
    EXPECT_TRUE(values_of(out, "X-Internal").empty()) << out;
}

TEST(WriteClientResponse, ConnectionHandling) {
    struct connection_case {
        std::string name;
        std::string upstream_fields;
        int client_minor;
        bool close;
        std::vector<std::string> connection;
    };
    const connection_case cases[] = {
        {"1.1 kept", "Content-Length: 0\r\n", 1, false, {}},
        {"1.1 close", "Content-Length: 0\r\n", 1, true, {"close"}},
        {"upstream close is not passed on",
         "Content-Length: 0\r\nConnection: close\r\n",
         1,
         false,
         {}},
        {"1.0 kept", "Content-Length: 0\r\n", 0, false, {"keep-alive"}},
        {"1.0 close", "Content-Length: 0\r\nConnection: keep-alive\r\n", 0, true, {"close"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto out = client_response_for(head("HTTP/1.1 200 OK", c.upstream_fields),
                                             c.client_minor, true, c.close);
        EXPECT_EQ(values_of(out, "Connection"), c.connection) << out;
    }
}

TEST(WriteClientResponse, Framing) {
    struct framing_case {
        std::string name;
        std::string upstream;
        bool request_was_head;
        bool chunked_to_client;
        std::vector<std::string> content_length;
        std::vector<std::string> transfer_encoding;
    };
    const framing_case cases[] = {
        {"length", head("HTTP/1.1 200 OK", "Content-Length: 007\r\n"), false, true, {"7"}, {}},
        {"chunked passed on",
         head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n"),
         false,
         true,
         {},
         {"chunked"}},
        {"chunked decoded",
         head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked\r\n"),
         false,
         false,
         {},
         {}},
        {"until close", head("HTTP/1.1 200 OK", ""), false, true, {}, {}},
        // Without a body, Content-Length describes the entity and is passed on.
        {"head", head("HTTP/1.1 200 OK", "Content-Length: 99\r\n"), true, true, {"99"}, {}},
        {"304",
         head("HTTP/1.1 304 Not Modified", "Content-Length: 99\r\n"),
         false,
         true,
         {"99"},
         {}},
        {"204", head("HTTP/1.1 204 No Content", ""), false, true, {}, {}},
        // RFC 9110 8.6: never in a 204.
        {"204 with a length",
         head("HTTP/1.1 204 No Content", "Content-Length: 5\r\n"),
         false,
         true,
         {},
         {}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const auto out =
            client_response_for(c.upstream, 1, c.chunked_to_client, false, c.request_was_head);
        EXPECT_EQ(values_of(out, "Content-Length"), c.content_length) << out;
        EXPECT_EQ(values_of(out, "Transfer-Encoding"), c.transfer_encoding) << out;
    }
}

TEST(WriteClientResponse, StatusLine) {
    EXPECT_EQ(
        client_response_for(head("HTTP/1.0 404 Nope", "Content-Length: 0\r\n"), 1, true, false)
            .substr(0, 19),
        "HTTP/1.1 404 Nope\r\n");
    const auto no_reason = client_response_for(head("HTTP/1.1 204", ""), 1, true, false);
    EXPECT_EQ(no_reason.substr(0, no_reason.find("\r\n")), "HTTP/1.1 204 No Content");
}

TEST(WriteClientResponse, SwitchingProtocols) {
    const auto out = client_response_for(
        head("HTTP/1.1 101 Switching Protocols",
             "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: abc\r\n"),
        1, true, false);
    EXPECT_EQ(values_of(out, "Connection"), std::vector<std::string>{"Upgrade"});
    EXPECT_EQ(values_of(out, "Upgrade"), std::vector<std::string>{"websocket"});
    EXPECT_EQ(values_of(out, "Sec-WebSocket-Accept"), std::vector<std::string>{"abc"});
}

TEST(WriteSimpleResponse, ExactBytes) {
    std::string out;
    write_simple_response(400, true, "Bad Request", out);
    EXPECT_EQ(out,
              "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
              "Connection: close\r\n\r\nBad Request");

    out = "prefix|";
    write_simple_response(503, false, "", out);
    EXPECT_EQ(out,
              "prefix|HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
              "text/plain\r\nContent-Length: 0\r\n\r\n");
}

TEST(WriteSimpleResponse, ParsesBackAsAResponse) {
    for (const int status : {400, 413, 417, 431, 501, 502, 503, 504, 505}) {
        SCOPED_TRACE(status);
        std::string out;
        const std::string body(reason_of(status));
        write_simple_response(status, false, body, out);
        response_head h;
        ASSERT_EQ(parse_response(out, k_max_head, false, h).status, parse_status::done);
        EXPECT_EQ(h.status, status);
        EXPECT_EQ(h.body, body_kind::length);
        EXPECT_EQ(h.content_length, body.size());
        EXPECT_EQ(out.substr(h.size), body);
    }
}

}  // namespace
}  // namespace veer::proxy::http

namespace veer::proxy::http {
namespace {

// What health checks and the webhook read of an answer: the final status of a whole, valid head.
TEST(ResponseStatus, FinalStatusOfAValidHead) {
    int status = -1;
    EXPECT_EQ(response_status("HTTP/1.1 204 No Content\r\n\r\n", 4096, status), parse_status::done);
    EXPECT_EQ(status, 204);
    EXPECT_EQ(response_status(
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
                  4096, status),
              parse_status::done);
    EXPECT_EQ(status, 503);
    EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nContent-Le", 4096, status),
              parse_status::incomplete);
    EXPECT_EQ(response_status("HTTP/1.1 100 Continue\r\n\r\n", 4096, status),
              parse_status::incomplete);
    EXPECT_EQ(response_status("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 4096, status),
              parse_status::failed);
    EXPECT_EQ(response_status("SSH-2.0-OpenSSH_9.2\r\n\r\n", 4096, status), parse_status::failed);
    EXPECT_EQ(response_status(std::string(5000, 'a'), 4096, status), parse_status::failed);
}

}  // namespace
}  // namespace veer::proxy::http
