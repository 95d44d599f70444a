#include "tftp/admission.h"

#include <gtest/gtest.h>

namespace isoboot::tftp {
namespace {

using Verdict = Admission::Verdict;

std::string FakeIp(int i) {
  return "10." + std::to_string(i >> 16 & 255) + "." + std::to_string(i >> 8 & 255) + "." +
         std::to_string(i & 255);
}

TEST(TftpAdmission, AdmitsUntilTheShareThenDisplacesTheClientsOldestUnacknowledged) {
  Admission a({.max_sessions = 100, .max_per_client = 3});
  for (Admission::Id id = 1; id <= 3; ++id) {
    EXPECT_EQ(a.Decide("10.0.0.9").verdict, Verdict::kAdmit);
    a.Add(id, "10.0.0.9");
  }
  a.Add(4, "10.0.0.7");
  a.Acknowledged(1);
  auto d = a.Decide("10.0.0.9");
  EXPECT_EQ(d.verdict, Verdict::kDisplace);
  EXPECT_EQ(d.displace, 2u);  // not 1 (acknowledged), not 4 (another client)
  // Another client is unaffected by 10.0.0.9's full share.
  EXPECT_EQ(a.Decide("10.0.0.7").verdict, Verdict::kAdmit);
  a.Acknowledged(2);
  a.Acknowledged(3);
  EXPECT_EQ(a.Decide("10.0.0.9").verdict, Verdict::kClientFull);
  a.Remove(3);
  EXPECT_EQ(a.CountFor("10.0.0.9"), 2u);
  EXPECT_EQ(a.Decide("10.0.0.9").verdict, Verdict::kAdmit);
}

TEST(TftpAdmission, AFullTableDisplacesTheOldestUnacknowledgedOfAnyClient) {
  Admission a({.max_sessions = 4, .max_per_client = 4});
  a.Add(1, "10.0.0.1");
  a.Add(2, "10.0.0.2");
  a.Add(3, "10.0.0.3");
  a.Add(4, "10.0.0.4");
  a.Acknowledged(1);
  auto d = a.Decide("10.0.0.5");
  EXPECT_EQ(d.verdict, Verdict::kDisplace);
  EXPECT_EQ(d.displace, 2u);
  a.Acknowledged(2);
  a.Acknowledged(3);
  a.Acknowledged(4);
  EXPECT_EQ(a.Decide("10.0.0.5").verdict, Verdict::kServerFull);
  EXPECT_EQ(a.unacknowledged(), 0u);
  EXPECT_FALSE(a.OldestUnacknowledged());
}

// Spoofed requests from ever-new addresses (a per-address share cannot stop
// them) against a real client: it is never refused, and its session, once
// acknowledged, is never displaced.
TEST(TftpAdmission, SpoofedFloodFromVaryingAddressesNeverRefusesARealClient) {
  Admission a({.max_sessions = 64, .max_per_client = 16});
  Admission::Id next = 1;
  auto admit = [&](const std::string& client) {
    auto d = a.Decide(client);
    if (d.displace) a.Remove(*d.displace);
    if (d.verdict == Verdict::kAdmit || d.verdict == Verdict::kDisplace) {
      a.Add(next, client);
      return next++;
    }
    return Admission::Id{0};
  };
  std::vector<Admission::Id> real;
  for (int i = 0; i < 10000; ++i) {
    ASSERT_NE(admit(FakeIp(i)), 0u);
    if (i % 1000 == 500) {
      Admission::Id id = admit("192.168.1.50");
      ASSERT_NE(id, 0u) << i;
      a.Acknowledged(id);  // the real client answers within a round trip
      real.push_back(id);
    }
    ASSERT_LE(a.size(), 64u);
  }
  EXPECT_EQ(a.CountFor("192.168.1.50"), real.size());
}

}  // namespace
}  // namespace isoboot::tftp
