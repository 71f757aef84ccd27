// libFuzzer: the config loader on arbitrary text. It must never throw or crash, and
// either a config or errors come back, never both or neither.
#include <cstdint>
#include <string>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto r = veer::config::load_string(text, "fuzz.toml");
    if (r.cfg.has_value() == !r.errors.empty()) __builtin_trap();
    return 0;
}
