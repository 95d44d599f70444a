// The neighbour table lookup that ties a client's IP address to the MAC its
// packets came from (serve/netif.h), on /proc/net/arp text.
#include "serve/netif.h"

#include <gtest/gtest.h>

namespace isoboot::serve {
namespace {

constexpr char kTable[] =
    "IP address       HW type     Flags       HW address            Mask     Device\n"
    "10.88.0.50       0x1         0x2         52:54:00:12:34:56     *        br0\n"
    "10.88.0.51       0x1         0x0         00:00:00:00:00:00     *        br0\n"
    "10.88.0.52       0x1         0x2         52:54:00:00:00:52     *        eth1\n"
    "10.88.0.5        0x1         0x6         52:54:00:00:00:05     *        br0\n";

TEST(NeighbourMacTest, FindsACompleteEntryOnTheInterface) {
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.50", "br0"), ParseMac("52:54:00:12:34:56"));
  // Flags 0x6: complete and permanent.
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.5", "br0"), ParseMac("52:54:00:00:00:05"));
}

TEST(NeighbourMacTest, NothingForIncompleteOtherInterfacesOrUnknownAddresses) {
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.51", "br0"), std::nullopt);  // still resolving
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.52", "br0"), std::nullopt);  // another network
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.99", "br0"), std::nullopt);
  // A prefix of an address is not the address.
  EXPECT_EQ(NeighbourMacIn(kTable, "10.88.0.", "br0"), std::nullopt);
  EXPECT_EQ(NeighbourMacIn(kTable, "127.0.0.1", "lo"), std::nullopt);
  EXPECT_EQ(NeighbourMacIn("", "10.88.0.50", "br0"), std::nullopt);
  EXPECT_EQ(NeighbourMacIn("IP address HW type\n10.88.0.50 0x1\n", "10.88.0.50", "br0"),
            std::nullopt);
}

}  // namespace
}  // namespace isoboot::serve
