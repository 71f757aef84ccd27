// Active health transitions: consecutive passes and failures flip an endpoint, and an
// interrupted streak starts over.
#include <gtest/gtest.h>

#include "health/state.hpp"

namespace veer::health {
namespace {

TEST(health_state, healthy_from_the_start) {
    check_state s;
    EXPECT_TRUE(s.healthy);
    EXPECT_FALSE(observe(s, true, 2, 3));  // already healthy: no flip
    EXPECT_TRUE(s.healthy);
}

TEST(health_state, unhealthy_after_consecutive_failures_only) {
    check_state s;
    EXPECT_FALSE(observe(s, false, 2, 3));
    EXPECT_FALSE(observe(s, false, 2, 3));
    EXPECT_FALSE(observe(s, true, 2, 3));  // a pass breaks the streak
    EXPECT_FALSE(observe(s, false, 2, 3));
    EXPECT_FALSE(observe(s, false, 2, 3));
    EXPECT_TRUE(s.healthy);
    EXPECT_TRUE(observe(s, false, 2, 3));  // third in a row: flips
    EXPECT_FALSE(s.healthy);
    EXPECT_FALSE(observe(s, false, 2, 3));  // stays down, no second flip
}

TEST(health_state, healthy_again_after_consecutive_passes) {
    check_state s;
    for (int i = 0; i < 3; ++i)
        observe(s, false, 2, 3);
    ASSERT_FALSE(s.healthy);
    EXPECT_FALSE(observe(s, true, 2, 3));
    EXPECT_FALSE(observe(s, false, 2, 3));  // a failure resets the passes
    EXPECT_FALSE(observe(s, true, 2, 3));
    EXPECT_TRUE(observe(s, true, 2, 3));
    EXPECT_TRUE(s.healthy);
}

TEST(health_state, thresholds_of_one_flip_at_once) {
    check_state s;
    EXPECT_TRUE(observe(s, false, 1, 1));
    EXPECT_FALSE(s.healthy);
    EXPECT_TRUE(observe(s, true, 1, 1));
    EXPECT_TRUE(s.healthy);
}

}  // namespace
}  // namespace veer::health
