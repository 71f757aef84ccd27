// The durable state file and the event JSON it carries: round trips, and every way a
// file on disk can be wrong (missing, corrupt, wrong fields, a stale .tmp beside it).
#include "control/state_file.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include <boost/json.hpp>

namespace veer::control {
namespace {

namespace fs = std::filesystem;
using gating::event;
using gating::phase;

class state_file_test : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "veer-state-test-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        path_ = (dir_ / "state.json").string();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    static void write_text(const std::string& path, const std::string& text) {
        std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    }
    static std::string read_text(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    static persisted sample() {
        persisted p;
        p.rollout.stable = "green";
        p.rollout.canary = "blue";
        p.rollout.canary_bp = 5000;
        p.rollout.state = phase::progressing;
        p.rollout.step = 1;
        p.rollout.paused = true;
        p.rollout.step_started_ms = 1'795'000'123'456;
        p.rollout.consecutive_violations = 1;
        event e;
        e.time_ms = 1'795'000'123'456;
        e.kind = "step";
        e.by = "judge";
        e.reason = "step 1 of 3 held 5m with SLOs met: canary weight 10 -> 50";
        e.figures = {{"requests", 1234}, {"error_rate", 0.0125}, {"p99_ms", 87.5}};
        p.events.push_back(e);
        e.kind = "paused";
        e.by = "operator";
        e.reason = "rollout paused by operator";
        e.figures = {};
        e.time_ms += 1000;
        p.events.push_back(e);
        return p;
    }

    fs::path dir_;
    std::string path_;
};

void expect_same(const persisted& a, const persisted& b) {
    EXPECT_EQ(a.rollout.stable, b.rollout.stable);
    EXPECT_EQ(a.rollout.canary, b.rollout.canary);
    EXPECT_EQ(a.rollout.canary_bp, b.rollout.canary_bp);
    EXPECT_EQ(a.rollout.state, b.rollout.state);
    EXPECT_EQ(a.rollout.step, b.rollout.step);
    EXPECT_EQ(a.rollout.paused, b.rollout.paused);
    EXPECT_EQ(a.rollout.step_started_ms, b.rollout.step_started_ms);
    EXPECT_EQ(a.rollout.consecutive_violations, b.rollout.consecutive_violations);
    ASSERT_EQ(a.events.size(), b.events.size());
    for (std::size_t i = 0; i < a.events.size(); ++i) {
        EXPECT_EQ(a.events[i].time_ms, b.events[i].time_ms);
        EXPECT_EQ(a.events[i].kind, b.events[i].kind);
        EXPECT_EQ(a.events[i].by, b.events[i].by);
        EXPECT_EQ(a.events[i].reason, b.events[i].reason);
        EXPECT_EQ(a.events[i].figures, b.events[i].figures);
    }
}

TEST(event_json, time_is_rfc3339_utc_with_milliseconds) {
    EXPECT_EQ(gating::format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
    // 2026-11-22T14:03:07.123Z
    const std::int64_t t = 1'795'356'187'123;
    EXPECT_EQ(gating::format_rfc3339_ms(t), "2026-11-22T14:03:07.123Z");
    EXPECT_EQ(gating::format_rfc3339_ms(951'782'400'000), "2000-02-29T00:00:00.000Z");
    EXPECT_EQ(gating::parse_rfc3339_ms("2026-11-22T14:03:07.123Z"), t);
    EXPECT_EQ(gating::parse_rfc3339_ms("2026-11-22T14:03:07.123456789Z"), t);
    EXPECT_EQ(gating::parse_rfc3339_ms("2026-11-22T15:03:07.123+01:00"), t);
    EXPECT_EQ(gating::parse_rfc3339_ms("2026-11-22T14:03:07Z"), t - 123);
    EXPECT_EQ(gating::parse_rfc3339_ms("2026-11-22T14:03:07.1Z"), t - 23);
    for (const char* bad :
         {"", "2026-11-22", "2026-11-22T14:03:07", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
          "2026-11-22T14:03:07.Z", "2026-11-22T14:03:07ZZ", "2026-11-22T24:00:00Z", "yesterday"})
        EXPECT_FALSE(gating::parse_rfc3339_ms(bad).has_value()) << bad;
}

TEST(event_json, fields_and_round_trip) {
    event e{1'795'356'187'123,
            "rollback",
            "judge",
            "error_rate 0.48 > max_error_rate 0.05",
            {{"error_rate", 0.48}, {"requests", 250}, {"window", {{"seconds", 30}}}}};
    const auto json = gating::to_json(e);
    EXPECT_EQ(json.at("time").as_string(), "2026-11-22T14:03:07.123Z");
    EXPECT_EQ(json.at("kind").as_string(), "rollback");
    EXPECT_EQ(json.at("by").as_string(), "judge");
    EXPECT_EQ(json.at("reason").as_string(), "error_rate 0.48 > max_error_rate 0.05");
    EXPECT_EQ(json.at("figures").at("requests").as_int64(), 250);
    EXPECT_EQ(json.size(), 5u);

    const auto back = gating::event_from_json(boost::json::parse(boost::json::serialize(json)));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->time_ms, e.time_ms);
    EXPECT_EQ(back->kind, e.kind);
    EXPECT_EQ(back->by, e.by);
    EXPECT_EQ(back->reason, e.reason);
    EXPECT_EQ(back->figures, e.figures);
}

TEST(event_json, rejects_wrong_fields) {
    const auto parse = [](const char* text) {
        return gating::event_from_json(boost::json::parse(text));
    };
    EXPECT_TRUE(parse(R"({"time":"2026-11-22T14:03:07.123Z","kind":"step","by":"judge"})"));
    EXPECT_FALSE(parse(R"([])"));
    EXPECT_FALSE(parse(R"({"kind":"step","by":"judge"})"));
    EXPECT_FALSE(parse(R"({"time":12,"kind":"step","by":"judge"})"));
    EXPECT_FALSE(parse(R"({"time":"2026-11-22T14:03:07.123Z","kind":"","by":"judge"})"));
    EXPECT_FALSE(parse(R"({"time":"2026-11-22T14:03:07.123Z","kind":"step"})"));
    EXPECT_FALSE(
        parse(R"({"time":"2026-11-22T14:03:07.123Z","kind":"step","by":"judge","reason":1})"));
    EXPECT_FALSE(
        parse(R"({"time":"2026-11-22T14:03:07.123Z","kind":"step","by":"judge","figures":[1]})"));
}

TEST_F(state_file_test, round_trip) {
    const auto written = sample();
    ASSERT_EQ(write_state(path_, written), "");
    std::string error;
    const auto read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    EXPECT_EQ(error, "");
    expect_same(*read, written);
}

TEST_F(state_file_test, every_phase_round_trips) {
    for (auto p :
         {phase::idle, phase::progressing, phase::baking, phase::promoted, phase::rolled_back}) {
        auto written = sample();
        written.rollout.state = p;
        ASSERT_EQ(write_state(path_, written), "");
        std::string error;
        const auto read = read_state(path_, error);
        ASSERT_TRUE(read.has_value()) << error;
        EXPECT_EQ(read->rollout.state, p);
    }
}

TEST_F(state_file_test, file_is_private_and_tmp_is_gone) {
    ASSERT_EQ(write_state(path_, sample()), "");
    struct stat info {};
    ASSERT_EQ(::stat(path_.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_F(state_file_test, overwrite_replaces_previous_state) {
    auto first = sample();
    ASSERT_EQ(write_state(path_, first), "");
    auto second = sample();
    second.rollout.state = phase::rolled_back;
    second.rollout.canary_bp = 0;
    second.events.clear();
    ASSERT_EQ(write_state(path_, second), "");
    std::string error;
    const auto read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    expect_same(*read, second);
}

TEST_F(state_file_test, keeps_the_last_200_events) {
    auto p = sample();
    p.events.clear();
    for (int i = 0; i < 250; ++i) {
        event e;
        e.time_ms = 1'795'000'000'000 + i;
        e.kind = "weight";
        e.by = "operator";
        e.reason = "event " + std::to_string(i);
        p.events.push_back(e);
    }
    ASSERT_EQ(write_state(path_, p), "");
    std::string error;
    const auto read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    ASSERT_EQ(read->events.size(), max_persisted_events);
    EXPECT_EQ(read->events.front().reason, "event 50");  // oldest kept
    EXPECT_EQ(read->events.back().reason, "event 249");
}

TEST_F(state_file_test, missing_file_is_not_an_error) {
    std::string error = "stale";
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_EQ(error, "");
}

TEST_F(state_file_test, corrupt_file_is_reported) {
    write_text(path_, "{\"version\":1,\"rollout\":{\"stab");  // torn write
    std::string error;
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_NE(error.find(path_), std::string::npos) << error;
    EXPECT_NE(error.find("JSON"), std::string::npos) << error;

    write_text(path_, "");
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_FALSE(error.empty());

    write_text(path_, "\x01\x02garbage");
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_FALSE(error.empty());
}

TEST_F(state_file_test, fine_weights_survive_as_percent_with_two_decimals) {
    auto p = sample();
    p.rollout.canary_bp = 50;  // 0.5%
    ASSERT_EQ(write_state(path_, p), "");
    const auto doc = boost::json::parse(serialize_state(p)).as_object();
    EXPECT_DOUBLE_EQ(doc.at("rollout").at("canary_weight").as_double(), 0.5);
    std::string error;
    const auto read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    EXPECT_EQ(read->rollout.canary_bp, 50);
    p.rollout.canary_bp = 1000;  // a whole percent stays an integer
    EXPECT_EQ(boost::json::parse(serialize_state(p)).at("rollout").at("canary_weight").as_int64(),
              10);
}

TEST_F(state_file_test, wrong_fields_are_reported) {
    const auto text = serialize_state(sample());
    const auto original = boost::json::parse(text).as_object();
    const auto expect_rejected = [&](const boost::json::object& doc, const char* what) {
        write_text(path_, boost::json::serialize(doc));
        std::string error;
        EXPECT_FALSE(read_state(path_, error).has_value()) << what;
        EXPECT_FALSE(error.empty()) << what;
    };
    const auto with_rollout = [&](const char* key, boost::json::value v) {
        auto doc = original;
        doc["rollout"].as_object()[key] = std::move(v);
        return doc;
    };
    const auto without_rollout = [&](const char* key) {
        auto doc = original;
        doc["rollout"].as_object().erase(key);
        return doc;
    };

    expect_rejected(with_rollout("state", "finished"), "unknown state");
    expect_rejected(with_rollout("canary_weight", 101), "weight > 100");
    expect_rejected(with_rollout("canary_weight", -1), "weight < 0");
    expect_rejected(with_rollout("canary_weight", "10"), "weight as string");
    expect_rejected(with_rollout("canary_weight", 10.125), "a third decimal");
    expect_rejected(with_rollout("paused", 1), "paused as number");
    expect_rejected(with_rollout("stable", nullptr), "stable null");
    expect_rejected(with_rollout("step", -2), "negative step");
    expect_rejected(without_rollout("canary"), "no canary");
    expect_rejected(without_rollout("step_started_ms"), "no step_started_ms");
    {
        auto doc = original;
        doc.erase("rollout");
        expect_rejected(doc, "no rollout");
    }
    {
        auto doc = original;
        doc["events"] = boost::json::array{1, 2};
        expect_rejected(doc, "bad events");
    }
    {
        auto doc = original;
        doc["version"] = 99;
        expect_rejected(doc, "future version");
    }
    expect_rejected(boost::json::object{}, "empty object");
    write_text(path_, "[1,2,3]");
    std::string error;
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_FALSE(error.empty());
}

TEST_F(state_file_test, leftover_tmp_file_does_not_break_reading_or_writing) {
    const auto written = sample();
    ASSERT_EQ(write_state(path_, written), "");
    // A crash between creating the temp file and the rename leaves this behind.
    write_text(path_ + ".tmp", "{\"version\":1,\"rollo");
    std::string error;
    auto read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    expect_same(*read, written);

    // The next write replaces it (even a wider-mode leftover) and succeeds.
    ::chmod((path_ + ".tmp").c_str(), 0644);
    auto next = sample();
    next.rollout.canary_bp = 1000;
    ASSERT_EQ(write_state(path_, next), "");
    EXPECT_FALSE(fs::exists(path_ + ".tmp"));
    read = read_state(path_, error);
    ASSERT_TRUE(read.has_value()) << error;
    EXPECT_EQ(read->rollout.canary_bp, 1000);
    struct stat info {};
    ASSERT_EQ(::stat(path_.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(state_file_test, only_a_tmp_file_counts_as_missing) {
    write_text(path_ + ".tmp", serialize_state(sample()));
    std::string error;
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_EQ(error, "");
}

TEST_F(state_file_test, unwritable_location_is_an_error) {
    const std::string path = (dir_ / "no-such-dir" / "state.json").string();
    const auto error = write_state(path, sample());
    EXPECT_FALSE(error.empty());
    EXPECT_NE(error.find("no-such-dir"), std::string::npos) << error;
}

TEST_F(state_file_test, directory_instead_of_file_is_reported) {
    fs::create_directory(path_);
    std::string error;
    EXPECT_FALSE(read_state(path_, error).has_value());
    EXPECT_FALSE(error.empty());
}

TEST_F(state_file_test, file_is_one_json_document) {
    ASSERT_EQ(write_state(path_, sample()), "");
    const auto doc = boost::json::parse(read_text(path_)).as_object();
    EXPECT_EQ(doc.at("version").as_int64(), 1);
    const auto& rollout = doc.at("rollout").as_object();
    EXPECT_EQ(rollout.at("state").as_string(), "progressing");
    EXPECT_EQ(rollout.at("stable").as_string(), "green");
    EXPECT_EQ(rollout.at("canary_weight").as_int64(), 50);
    EXPECT_EQ(doc.at("events").as_array().size(), 2u);
    EXPECT_EQ(doc.at("events").as_array()[0].at("time").as_string(), "2026-11-18T11:08:43.456Z");
}

}  // namespace
}  // namespace veer::control
