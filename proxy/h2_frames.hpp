// Two small helpers shared by veer's HTTP/2 code (client sessions, upstream sessions,
// health checks), over libnghttp2.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace veer::proxy {

// What nghttp2 has to send, into `out` (cleared first), up to about 64 KiB: one write.
inline void gather_frames(nghttp2_session* session, std::string& out) {
    out.clear();
    while (out.size() < 64 * 1024) {
        const std::uint8_t* data = nullptr;
        const auto n = nghttp2_session_mem_send(session, &data);
        if (n <= 0) break;
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
}

// A header for nghttp2, pointing into strings that outlive the submit (nghttp2 copies).
inline nghttp2_nv h2_nv(std::string_view name, std::string_view value) {
    return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
            reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
            value.size(), NGHTTP2_NV_FLAG_NONE};
}

// Trailers for stream `id`, from a data source's read callback at its end (the callback
// then sets NGHTTP2_DATA_FLAG_NO_END_STREAM: the trailers end the stream).
inline void submit_trailers(nghttp2_session* session, std::int32_t id,
                            const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<nghttp2_nv> nva;
    nva.reserve(fields.size());
    for (const auto& [k, v] : fields)
        nva.push_back(h2_nv(k, v));
    nghttp2_submit_trailer(session, id, nva.data(), nva.size());
}

}  // namespace veer::proxy
