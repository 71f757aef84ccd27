// veer's own log: one line per entry on stderr, JSON or text (log.format), filtered by
// log.level. Control thread and startup only: the data path logs nothing per request.
#pragma once

#include <boost/json/object.hpp>

#include <string_view>

#include "config/config.hpp"

namespace veer::control {

void configure_log(const config::log& settings);
void log(std::string_view level, std::string_view msg, const boost::json::object& fields = {});

}  // namespace veer::control
