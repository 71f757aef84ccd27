// health.grpc's reading of a framed grpc.health.v1.HealthCheckResponse (SPEC 10): the
// status field, proto3 defaults, unknown fields skipped, anything malformed refused.
#include <gtest/gtest.h>

#include <string>

#include "health/checker.hpp"

namespace veer::health {
namespace {

std::string framed(const std::string& message) {
    std::string out(5, '\0');
    out[4] = static_cast<char>(message.size());
    return out + message;
}

TEST(GrpcHealth, ReadsTheStatusField) {
    EXPECT_EQ(grpc_health_status(framed("\x08\x01")), 1);  // SERVING
    EXPECT_EQ(grpc_health_status(framed("\x08\x02")), 2);  // NOT_SERVING
    EXPECT_EQ(grpc_health_status(framed("")), 0);  // proto3: left out is UNKNOWN
    // An unknown length-delimited field (2: "ab") and varint field (3) are skipped.
    EXPECT_EQ(grpc_health_status(framed(std::string("\x12\x02" "ab\x18\x05\x08\x01", 8))), 1);
}

TEST(GrpcHealth, RefusesWhatIsNotAResponse) {
    EXPECT_EQ(grpc_health_status(""), -1);
    EXPECT_EQ(grpc_health_status(std::string("\x01\0\0\0\x02\x08\x01", 7)), -1);  // compressed
    EXPECT_EQ(grpc_health_status(std::string("\0\0\0\0\x09\x08\x01", 7)), -1);  // cut short
    EXPECT_EQ(grpc_health_status(framed("\x08")), -1);  // a varint without its value
    EXPECT_EQ(grpc_health_status(framed("\x12\x09" "ab")), -1);  // a field past the message
    EXPECT_EQ(grpc_health_status(framed("\x0d\x01\x02\x03\x04")), -1);  // fixed32: not expected
    EXPECT_EQ(grpc_health_status(framed(std::string(11, '\xff'))), -1);  // an endless varint
}

}  // namespace
}  // namespace veer::health
