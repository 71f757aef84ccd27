// The admin command language (SPEC section 6), parsed without side effects: a bad line
// becomes an error here and never reaches the state.
#pragma once

#include <string>
#include <string_view>

namespace veer::admin {

enum class verb {
    status,
    help,
    set_weight,
    start,
    pause,
    resume,
    promote,
    rollback,
    drain,
    undrain,
    reload,
    events
};

struct command {
    verb what = verb::help;
    int number = 0;  // events [N]; set weight N in basis points
    std::string text;  // rollback [reason], drain/undrain ADDRESS
    std::string error;  // non-empty: the line is refused
};

command parse_command(std::string_view line);
std::string_view help_text();

}  // namespace veer::admin
