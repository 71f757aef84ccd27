// libFuzzer: the request head parser and validator, then the chunked decoder on what
// follows the head, as the data path runs them.
#include <cstdint>
#include <string_view>

#include "proxy/http/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace veer::proxy::http;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    request_head head;
    const auto r = parse_request(in, 8192, head);
    if (r.status != parse_status::done) return 0;
    if (head.size > in.size()) __builtin_trap();
    for (const auto& f : head.fields)  // every view lies inside the input
        if (f.name.data() < in.data() || f.value.data() + f.value.size() > in.data() + in.size())
            __builtin_trap();
    std::string out;
    write_upstream_request(head, {"127.0.0.1", false, "0123456789abcdef01234567"}, out);
    if (head.body == body_kind::chunked) {
        chunk_decoder d;
        auto rest = in.substr(head.size);
        while (!rest.empty() && !d.done()) {
            const auto s = d.feed(rest);
            if (s.failed || s.consumed == 0) break;
            if (s.consumed > rest.size() || s.data_offset + s.data_size > s.consumed)
                __builtin_trap();
            rest.remove_prefix(s.consumed);
        }
    }
    return 0;
}
