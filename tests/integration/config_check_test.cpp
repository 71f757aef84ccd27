// `veer --check-config` (SPEC section 2): shipped configs pass; errors name file, line,
// column and key, and veer refuses to start on them.
#include <filesystem>
#include <regex>
#include <string>

#include "harness.hpp"

namespace veer::it {
namespace {

// A config valid but for `broken_line`, which sits on line 9.
std::string config_with(const std::string& broken_line) {
    return "[listener]\n"  // 1
           "address = \"127.0.0.1:8080\"\n"  // 2
           "\n"  // 3
           "[pools.blue]\n"  // 4
           "endpoints = [\"127.0.0.1:9001\"]\n"  // 5
           "[pools.green]\n"  // 6
           "endpoints = [\"127.0.0.1:9101\"]\n"  // 7
           "[slo]\n"  // 8
           + broken_line + "\n";  // 9
}

TEST(ConfigCheck, EveryShippedConfigPasses) {
    temp_dir dir;
    int checked = 0;
    const std::filesystem::path conf = std::filesystem::path(source_dir) / "conf";
    if (!std::filesystem::is_directory(conf)) GTEST_SKIP() << "no conf/ directory";
    for (const auto& entry : std::filesystem::directory_iterator(conf)) {
        if (entry.path().extension() != ".toml") continue;
        ++checked;
        const auto r = run_command(veer_binary, {"--check-config", entry.path().string()},
                                   dir.file("check.log"));
        EXPECT_EQ(r.exit_code, 0) << entry.path() << ":\n" << r.output;
    }
    if (checked == 0) GTEST_SKIP() << "no .toml file in conf/";
}

TEST(ConfigCheck, AnOutOfRangeValueIsReportedWithFileLineColumnAndKey) {
    temp_dir dir;
    const auto path = dir.file("bad.toml");
    write_file(path, config_with("max_error_rate = 5"));
    const auto r = run_command(veer_binary, {"--check-config", path}, dir.file("check.log"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    const std::regex where(
        std::regex_replace(path, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
        R"(:9:(\d+): slo\.max_error_rate: )");
    EXPECT_TRUE(std::regex_search(r.output, where)) << r.output;
}

TEST(ConfigCheck, UnknownKeyAndSyntaxErrorAreReportedWithTheirPlace) {
    temp_dir dir;
    const auto unknown = dir.file("unknown.toml");
    write_file(unknown, config_with("max_eror_rate = 0.1"));
    auto r = run_command(veer_binary, {"--check-config", unknown}, dir.file("check.log"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(unknown + ":9:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("slo.max_eror_rate"), std::string::npos) << r.output;

    const auto syntax = dir.file("syntax.toml");
    write_file(syntax, config_with("window = \"5s"));
    r = run_command(veer_binary, {"--check-config", syntax}, dir.file("check.log"));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(syntax + ":9:"), std::string::npos) << r.output;
}

TEST(ConfigCheck, VeerRefusesToStartOnABadConfig) {
    temp_dir dir;
    veer_process v(dir, {dead_address()}, {dead_address()},
                   toml_config().set("timeouts", "connect", "\"soon\""));
    v.launch();
    const auto code = v.proc().wait_exit(ms(10000));
    ASSERT_TRUE(code) << "veer started on a bad config";
    EXPECT_EQ(*code, 1);
    EXPECT_NE(v.log().find("timeouts.connect"), std::string::npos) << v.log();
    EXPECT_FALSE(tcp_accepts(v.port()));
    EXPECT_FALSE(unix_accepts(v.socket()));
}

}  // namespace
}  // namespace veer::it
