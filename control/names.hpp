// Endpoints by DNS name (SPEC 12): which addresses each configured name stands for.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace veer::control {

// By endpoint as configured ("api.internal:8080"): the addresses of its last good answer.
using resolved_names = std::map<std::string, std::vector<std::string>>;

// Resolves, one after the other and blocking, every name `cfg`'s pools list that `known`
// does not hold yet: at start, on reload and for --check-config, where nothing is waiting
// on the thread. "" or the first failure, naming its key.
std::string resolve_names(const config::config& cfg, resolved_names& known);

// One address a pool stands for, and the name it came from ("" for an IP literal).
struct pool_address {
    std::string address;  // "10.0.0.7:80"
    std::string name;  // "api.internal:80" as configured, or ""
};

// What `p` stands for: its IP literals as written, and the addresses of its names, in the
// order they are listed.
std::vector<pool_address> addresses_of(const config::pool& p, const resolved_names& names);

}  // namespace veer::control
