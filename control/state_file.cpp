#include "control/state_file.hpp"

#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "common/weight.hpp"

namespace veer::control {
namespace {

constexpr std::int64_t format_version = 1;
// A state file is a few tens of KiB; anything far larger is not ours.
constexpr off_t max_file_bytes = 16 * 1024 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

// Closes a descriptor on every path out of a function.
class fd_guard {
public:
    explicit fd_guard(int fd) : fd_(fd) {}
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    ~fd_guard() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    // Closes now, reporting the error (close can report a failed delayed write).
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

std::string directory_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// An integer field within [lo, hi]; JSON doubles with an integral value are accepted.
bool read_int(const boost::json::object& obj, const char* key, std::int64_t lo, std::int64_t hi,
              std::int64_t& out, std::string& error) {
    const auto* v = obj.if_contains(key);
    if (!v) {
        error = std::string("rollout.") + key + ": missing";
        return false;
    }
    boost::system::error_code ec;
    const auto n = v->to_number<std::int64_t>(ec);
    if (ec || v->is_bool()) {
        error = std::string("rollout.") + key + ": not an integer";
        return false;
    }
    if (n < lo || n > hi) {
        error = std::string("rollout.") + key + ": out of range (got " + std::to_string(n) + ")";
        return false;
    }
    out = n;
    return true;
}

bool read_string(const boost::json::object& obj, const char* key, std::string& out,
                 std::string& error) {
    const auto* v = obj.if_contains(key);
    if (!v || !v->is_string()) {
        error = std::string("rollout.") + key + (v ? ": not a string" : ": missing");
        return false;
    }
    out = v->as_string();
    return true;
}

}  // namespace

boost::json::object rollout_to_json(const gating::rollout_state& r) {
    boost::json::object out;
    out["stable"] = r.stable;
    out["canary"] = r.canary;
    out["canary_weight"] = percent_json(r.canary_bp);
    out["state"] = gating::phase_name(r.state);
    out["step"] = r.step;
    out["paused"] = r.paused;
    out["step_started_ms"] = r.step_started_ms;
    out["consecutive_violations"] = r.consecutive_violations;
    return out;
}

std::optional<gating::rollout_state> rollout_from_json(const boost::json::value& v,
                                                       std::string& error) {
    const auto* obj = v.if_object();
    if (!obj) {
        error = "rollout: not an object";
        return std::nullopt;
    }
    gating::rollout_state r;
    std::int64_t step, started, violations = 0;
    std::string state;
    constexpr auto int_max = std::numeric_limits<int>::max();
    if (!read_string(*obj, "stable", r.stable, error) ||
        !read_string(*obj, "canary", r.canary, error) ||
        !read_string(*obj, "state", state, error) ||
        !read_int(*obj, "step", 0, int_max, step, error) ||
        !read_int(*obj, "step_started_ms", 0, std::numeric_limits<std::int64_t>::max(), started,
                  error))
        return std::nullopt;
    // Optional: a streak that was in progress at shutdown.
    if (obj->contains("consecutive_violations") &&
        !read_int(*obj, "consecutive_violations", 0, int_max, violations, error))
        return std::nullopt;

    const auto phase = gating::parse_phase(state);
    if (!phase) {
        error = "rollout.state: unknown state \"" + state + "\"";
        return std::nullopt;
    }
    const auto* paused = obj->if_contains("paused");
    if (!paused || !paused->is_bool()) {
        error = paused ? "rollout.paused: not a boolean" : "rollout.paused: missing";
        return std::nullopt;
    }
    const auto* weight = obj->if_contains("canary_weight");
    const auto bp = weight ? percent_bp(*weight) : std::nullopt;
    if (!bp) {
        error = "rollout.canary_weight: not a percent from 0 to 100 with at most two decimals";
        return std::nullopt;
    }
    r.canary_bp = *bp;
    r.state = *phase;
    r.step = static_cast<int>(step);
    r.paused = paused->get_bool();
    r.step_started_ms = started;
    r.consecutive_violations = static_cast<int>(violations);
    return r;
}

std::string serialize_state(const persisted& state) {
    boost::json::array events;
    const auto& all = state.events;
    const std::size_t first =
        all.size() > max_persisted_events ? all.size() - max_persisted_events : 0;
    events.reserve(all.size() - first);
    for (std::size_t i = first; i < all.size(); ++i)
        events.push_back(gating::to_json(all[i]));

    boost::json::object doc;
    doc["version"] = format_version;
    doc["rollout"] = rollout_to_json(state.rollout);
    doc["events"] = std::move(events);
    std::string text = boost::json::serialize(doc);
    text += '\n';
    return text;
}

std::optional<persisted> parse_state(std::string_view text, std::string& error) {
    error.clear();
    boost::system::error_code ec;
    const auto doc = boost::json::parse(text, ec);
    if (ec) {
        error = "not valid JSON: " + ec.message();
        return std::nullopt;
    }
    const auto* obj = doc.if_object();
    if (!obj) {
        error = "not a JSON object";
        return std::nullopt;
    }
    if (const auto* version = obj->if_contains("version")) {
        if (!version->is_int64() || version->get_int64() != format_version) {
            error = "version: unsupported (expected " + std::to_string(format_version) + ")";
            return std::nullopt;
        }
    }
    const auto* rollout = obj->if_contains("rollout");
    if (!rollout) {
        error = "rollout: missing";
        return std::nullopt;
    }
    persisted out;
    auto r = rollout_from_json(*rollout, error);
    if (!r) return std::nullopt;
    out.rollout = std::move(*r);

    if (const auto* events = obj->if_contains("events")) {
        const auto* list = events->if_array();
        if (!list) {
            error = "events: not an array";
            return std::nullopt;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            auto e = gating::event_from_json((*list)[i]);
            if (!e) {
                error = "events[" + std::to_string(i) + "]: not a valid event";
                return std::nullopt;
            }
            out.events.push_back(std::move(*e));
        }
        // A hand-edited file may hold more; keep the newest like the writer does.
        if (out.events.size() > max_persisted_events)
            out.events.erase(out.events.begin(),
                             out.events.end() - static_cast<std::ptrdiff_t>(max_persisted_events));
    }
    return out;
}

std::string write_state(const std::string& path, const persisted& state) {
    if (path.empty()) return "state file: empty path";
    const std::string text = serialize_state(state);
    const std::string tmp = path + ".tmp";

    fd_guard file(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (file.get() < 0) return tmp + ": cannot create: " + errno_text(errno);
    // The mode of a leftover tmp file is not changed by O_CREAT: enforce 0600.
    if (::fchmod(file.get(), 0600) != 0) return tmp + ": chmod: " + errno_text(errno);
    if (!write_all(file.get(), text.data(), text.size())) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return tmp + ": write: " + errno_text(err);
    }
    // The data must be on disk before the rename makes it the state.
    if (::fsync(file.get()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return tmp + ": fsync: " + errno_text(err);
    }
    if (file.close() != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return tmp + ": close: " + errno_text(err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return path + ": rename: " + errno_text(err);
    }
    // The rename itself is durable only once the directory is synced.
    const std::string dir = directory_of(path);
    fd_guard dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) return dir + ": cannot open directory: " + errno_text(errno);
    if (::fsync(dir_fd.get()) != 0) return dir + ": fsync: " + errno_text(errno);
    return {};
}

std::optional<persisted> read_state(const std::string& path, std::string& error) {
    error.clear();
    fd_guard file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (file.get() < 0) {
        if (errno == ENOENT) return std::nullopt;  // first start: nothing to restore
        error = path + ": cannot open: " + errno_text(errno);
        return std::nullopt;
    }
    struct stat info {};
    if (::fstat(file.get(), &info) != 0) {
        error = path + ": stat: " + errno_text(errno);
        return std::nullopt;
    }
    if (!S_ISREG(info.st_mode)) {
        error = path + ": not a regular file";
        return std::nullopt;
    }
    if (info.st_size > max_file_bytes) {
        error = path + ": too large (" + std::to_string(info.st_size) + " bytes)";
        return std::nullopt;
    }

    std::string text;
    char buf[16 * 1024];
    for (;;) {
        const ssize_t n = ::read(file.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = path + ": read: " + errno_text(errno);
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > static_cast<std::size_t>(max_file_bytes)) {
            error = path + ": too large";
            return std::nullopt;
        }
    }
    auto state = parse_state(text, error);
    if (!state) error = path + ": " + error;
    return state;
}

}  // namespace veer::control
