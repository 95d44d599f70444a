#include "serve/router_advert.h"

#include <gtest/gtest.h>

namespace isoboot::serve {
namespace {

// RFC 4861 4.2: type 134, code 0, checksum (kernel), hop limit, M/O flags,
// router lifetime, reachable time, retrans timer; no options.
TEST(RouterAdvertTest, OffersNothing) {
  EXPECT_EQ(EmptyRouterAdvertisement(),
            (std::vector<uint8_t>{134, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace isoboot::serve
