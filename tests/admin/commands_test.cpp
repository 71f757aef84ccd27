// The admin command language (SPEC section 6): every verb, its arguments and their bounds,
// and lines that must be refused without reaching the state.
#include "admin/commands.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace veer::admin {
namespace {

using namespace std::string_literals;

struct accepted_case {
    std::string line;
    verb what;
    int number = 0;
    std::string text;
};

TEST(ParseCommand, AcceptedLines) {
    const accepted_case cases[] = {
        {"status", verb::status, 0, ""},
        {"help", verb::help, 0, ""},
        {"start", verb::start, 0, ""},
        {"pause", verb::pause, 0, ""},
        {"resume", verb::resume, 0, ""},
        {"promote", verb::promote, 0, ""},
        {"reload", verb::reload, 0, ""},
        {"set weight 0", verb::set_weight, 0, ""},
        {"set weight 1", verb::set_weight, 100, ""},  // basis points (SPEC 12)
        {"set weight 42", verb::set_weight, 4200, ""},
        {"set weight 100", verb::set_weight, 10000, ""},
        {"set weight 0.5", verb::set_weight, 50, ""},
        {"set weight 12.25", verb::set_weight, 1225, ""},
        {"set weight 0.05", verb::set_weight, 5, ""},
        {"set weight 100.00", verb::set_weight, 10000, ""},
        {"set\tweight\t7", verb::set_weight, 700, ""},
        {"  set   weight  9  ", verb::set_weight, 900, ""},
        {"rollback", verb::rollback, 0, ""},
        {"rollback   ", verb::rollback, 0, ""},
        {"rollback p99 too high", verb::rollback, 0, "p99 too high"},
        {"rollback\t bad  deploy \t", verb::rollback, 0, "bad  deploy"},  // inner spacing kept
        {"rollback set weight 5", verb::rollback, 0, "set weight 5"},
        {"drain 10.0.0.1:8080", verb::drain, 0, "10.0.0.1:8080"},
        {"undrain [::1]:9001", verb::undrain, 0, "[::1]:9001"},
        {"events", verb::events, 20, ""},
        {"events 0", verb::events, 0, ""},
        {"events 5", verb::events, 5, ""},
        {"events 1000", verb::events, 1000, ""},
        {" \tstatus\t ", verb::status, 0, ""},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("line: '" + c.line + "'");
        const auto cmd = parse_command(c.line);
        EXPECT_EQ(cmd.error, "");
        EXPECT_EQ(cmd.what, c.what);
        EXPECT_EQ(cmd.number, c.number);
        EXPECT_EQ(cmd.text, c.text);
    }
}

TEST(ParseCommand, RefusedLines) {
    const std::vector<std::string> lines = {
        // Empty or unknown.
        "",
        " ",
        "\t \t",
        "bogus",
        "STATUS",
        "Status",
        "stat",
        "statuses",
        "weight 5",
        "rollbackx",
        // Extra arguments.
        "status now",
        "help me",
        "start 1",
        "pause x",
        "resume now",
        "promote green",
        "reload conf/veer.toml",
        // set weight: missing, out of range, a third decimal, not a number, extra.
        "set",
        "set weight",
        "set weight ",
        "set weight 101",
        "set weight 1000",
        "set weight -1",
        "set weight x",
        "set weight 5x",
        "set weight 1.555",
        "set weight 1.",
        "set weight .5",
        "set weight 100.01",
        "set weight 1e1",
        "set weight 1,5",
        "set weight 0x10",
        "set weight +5",
        "set weight 99999999999999999999",
        "set weight 5 6",
        "set weigh 5",
        "set canary 5",
        "set 5",
        // drain / undrain need exactly one address.
        "drain",
        "undrain",
        "drain a b",
        "undrain 10.0.0.1:80 now",
        // events: bounds and arguments.
        "events -1",
        "events 1001",
        "events x",
        "events 1 2",
        "events 2.5",
        // Control characters anywhere.
        "status\n",
        "status\r",
        "stat\0us"s,
        "\x1b[Astatus",
        "rollback bad\x01reason",
        "rollback bad\x7freason",
        "drain 10.0.0.1:80\x08",
        "set weight 5\x0b",
    };
    for (const auto& line : lines) {
        const auto cmd = parse_command(line);
        EXPECT_NE(cmd.error, "") << "line: '" << line << "' was accepted";
    }
}

TEST(ParseCommand, ErrorsSayWhatWasWrong) {
    // Operators read these at 3 a.m.: the refused value is echoed back.
    EXPECT_NE(parse_command("set weight 101").error.find("101"), std::string::npos);
    EXPECT_NE(parse_command("frobnicate").error.find("frobnicate"), std::string::npos);
}

TEST(ParseCommand, LongInputIsEchoedOnlyInPart) {
    const std::string junk(4000, 'z');
    EXPECT_LT(parse_command(junk).error.size(), 200u);
    EXPECT_LT(parse_command("set weight " + junk).error.size(), 200u);
}

TEST(HelpText, NamesEveryCommand) {
    const std::string help(help_text());
    for (const char* word : {"status", "set weight", "start", "pause", "resume", "promote",
                             "rollback", "drain", "undrain", "reload", "events", "help"}) {
        EXPECT_NE(help.find(word), std::string::npos) << word;
    }
}

}  // namespace
}  // namespace veer::admin
