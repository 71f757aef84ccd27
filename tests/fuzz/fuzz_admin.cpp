// libFuzzer: the admin command parser. A refused line carries an error; an accepted one
// has its arguments in range.
#include <cstdint>
#include <string_view>

#include "admin/commands.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace veer::admin;
    const auto c = parse_command(std::string_view(reinterpret_cast<const char*>(data), size));
    if (c.error.empty() && c.what == verb::set_weight && (c.number < 0 || c.number > 10000))
        __builtin_trap();
    return 0;
}
