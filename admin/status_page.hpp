// The status page served at GET / on admin.http: self-contained (no CDN), it polls
// /status once a second and draws weights, state, per-pool figures, a chart of the last
// minutes and the events.
#pragma once

#include <string_view>

namespace veer::admin {
std::string_view status_page_html();
}
