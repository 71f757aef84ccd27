// libFuzzer: the upstream response head parser and the client response writer.
#include <cstdint>
#include <string_view>

#include "proxy/http/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace veer::proxy::http;
    if (size < 1) return 0;
    const bool head_request = data[0] & 1;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    response_head head;
    if (parse_response(in, 8192, head_request, head).status != parse_status::done) return 0;
    if (head.size > in.size() || head.status < 100 || head.status > 999) __builtin_trap();
    std::string out;
    write_client_response(head, data[0] & 2 ? 1 : 0, true, data[0] & 4, out);
    return 0;
}
