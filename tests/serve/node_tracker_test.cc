#include "serve/node_tracker.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serve/status_page.h"

namespace isoboot::serve {
namespace {

constexpr MacAddress kMac = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
constexpr MacAddress kOther = {0x52, 0x54, 0, 0x12, 0x34, 0x57};

struct FakeClock {
  int64_t ms = 1'700'000'000'000;
  NodeTracker::Clock clock() {
    return [this] { return ms; };
  }
};

NodeStatus Only(const NodeTracker& t) {
  std::vector<NodeStatus> nodes = t.Snapshot();
  EXPECT_EQ(nodes.size(), 1u);
  return nodes.empty() ? NodeStatus{} : nodes[0];
}

TEST(NodeTracker, ABootGoesThroughEveryPhase) {
  FakeClock c;
  NodeTracker t({}, c.clock());
  t.Dhcp(kMac, "", true, false, 0, false);
  EXPECT_EQ(Only(t).phase, Phase::kDhcp);
  EXPECT_EQ(Only(t).firmware, "bios-pxe");
  t.Dhcp(kMac, "10.0.0.7", true, false, 0, false);
  EXPECT_EQ(Only(t).ip, "10.0.0.7");
  EXPECT_EQ(t.MacFor("10.0.0.7"), kMac);
  EXPECT_EQ(t.Name("10.0.0.7"), "52:54:00:12:34:56 (10.0.0.7)");
  EXPECT_EQ(t.Name("10.0.0.8"), "10.0.0.8");
  c.ms += 1000;
  t.Reached(kMac, Phase::kLoader);
  t.AddBytes(kMac, 70'000);
  t.IpxeScript(kMac);  // the loader was undionly.kpxe: now iPXE
  EXPECT_EQ(Only(t).firmware, "bios-ipxe");
  t.Dhcp(kMac, "10.0.0.7", true, true, 0, false);  // iPXE's DHCP: the same boot
  EXPECT_EQ(Only(t).phase, Phase::kLoader);
  EXPECT_EQ(Only(t).boots, 1u);
  c.ms += 1000;
  t.Reached(kMac, Phase::kKernel);
  t.Reached(kMac, Phase::kInitrd);
  t.Reached(kMac, Phase::kKernel);  // a phase never goes back within a boot
  EXPECT_EQ(Only(t).phase, Phase::kInitrd);
  t.Dhcp(kMac, "10.0.0.7", false, false, 0, false);  // the initrd's own DHCP
  EXPECT_EQ(Only(t).phase, Phase::kInitrd);
  c.ms += 1000;
  t.AoeTotal(kMac, 0);
  EXPECT_EQ(Only(t).phase, Phase::kInitrd);
  t.AoeTotal(kMac, 4096);
  t.AoeTotal(kMac, 4096);  // nothing new
  NodeStatus root = Only(t);
  EXPECT_EQ(root.phase, Phase::kRoot);
  EXPECT_EQ(root.phase_since_ms, c.ms);
  EXPECT_EQ(root.bytes, 74'096u);
  t.Up(kMac);
  EXPECT_EQ(Only(t).phase, Phase::kUp);
}

TEST(NodeTracker, APxeRequestAfterTheLoaderIsTheNextBoot) {
  FakeClock c;
  NodeTracker t({}, c.clock());
  t.Dhcp(kMac, "10.0.0.7", true, true, 7, false);
  EXPECT_EQ(Only(t).firmware, "uefi-ipxe");
  t.Reached(kMac, Phase::kKernel);
  t.AddBytes(kMac, 100);
  t.AoeTotal(kMac, 1000);
  t.Up(kMac);
  t.Dhcp(kMac, "10.0.0.7", true, false, 7, false);  // rebooted: the ROM again
  NodeStatus again = Only(t);
  EXPECT_EQ(again.phase, Phase::kDhcp);
  EXPECT_EQ(again.firmware, "uefi-pxe");
  EXPECT_EQ(again.bytes, 0u);
  EXPECT_EQ(again.boots, 2u);
  t.AoeTotal(kMac, 1500);  // only the new bytes count for this boot
  EXPECT_EQ(Only(t).bytes, 500u);
}

TEST(NodeTracker, FailedSaysWhyAndARetryMovesOn) {
  FakeClock c;
  NodeTracker t({}, c.clock());
  t.Dhcp(kMac, "10.0.0.7", true, false, 0, true);
  EXPECT_TRUE(Only(t).relayed);
  t.Failed(kMac, "initrd cut short");
  EXPECT_EQ(Only(t).phase, Phase::kFailed);
  EXPECT_EQ(Only(t).failure, "initrd cut short");
  t.Reached(kMac, Phase::kInitrd);  // the retry worked
  EXPECT_EQ(Only(t).phase, Phase::kInitrd);
  EXPECT_EQ(Only(t).failure, "");
}

TEST(NodeTracker, OnlyPxeClientsBecomeNodes) {
  NodeTracker t;
  t.Dhcp(kMac, "10.0.0.7", false, false, 0, false);  // a laptop on the network
  EXPECT_TRUE(t.Snapshot().empty());
  EXPECT_EQ(t.MacFor("10.0.0.7"), kMac);  // still named in logs
  t.AddBytes(kMac, 10);                   // unknown: not made a node
  EXPECT_TRUE(t.Snapshot().empty());
}

TEST(NodeTracker, StalledAfterNoProgressAndForgottenLater) {
  FakeClock c;
  NodeTrackerOptions o;
  o.stall_after = std::chrono::seconds(60);
  o.forget_after = std::chrono::seconds(600);
  NodeTracker t(o, c.clock());
  t.Dhcp(kMac, "10.0.0.7", true, false, 0, false);
  t.Dhcp(kOther, "10.0.0.8", true, false, 0, false);
  t.Up(kOther);
  c.ms += 59'000;
  EXPECT_FALSE(t.Snapshot()[0].stalled);
  c.ms += 2'000;
  for (const NodeStatus& n : t.Snapshot())
    EXPECT_EQ(n.stalled, n.mac == kMac) << FormatMac(n.mac);  // up is never stalled
  t.AddBytes(kMac, 1);                                        // progress clears it
  for (const NodeStatus& n : t.Snapshot())
    EXPECT_FALSE(n.stalled);
  c.ms += 600'001;
  EXPECT_TRUE(t.Snapshot().empty());
}

TEST(NodeTracker, BoundedByCapacity) {
  NodeTrackerOptions o;
  o.capacity = 8;
  NodeTracker t(o);
  for (int i = 0; i < 100; ++i) {
    MacAddress mac = {2, 0, 0, 0, 0, static_cast<uint8_t>(i)};
    t.Dhcp(mac, "10.0.0." + std::to_string(i), true, false, 0, false);
  }
  EXPECT_EQ(t.Snapshot().size(), 8u);
  EXPECT_FALSE(t.MacFor("10.0.0.0"));
  EXPECT_TRUE(t.MacFor("10.0.0.99"));
}

TEST(StatusPage, JsonAndHtmlCarryEveryNodeEscaped) {
  FakeClock c;
  NodeTracker t({}, c.clock());
  t.Dhcp(kMac, "10.0.0.7", true, false, 0, false);
  t.Failed(kMac, "<script>\"x\"</script>");
  c.ms += 5000;
  auto j = nlohmann::json::parse(NodesJson(t.Snapshot(), c.ms));
  ASSERT_EQ(j["nodes"].size(), 1u);
  EXPECT_EQ(j["nodes"][0]["mac"], "52:54:00:12:34:56");
  EXPECT_EQ(j["nodes"][0]["phase"], "failed");
  EXPECT_EQ(j["nodes"][0]["failure"], "<script>\"x\"</script>");
  EXPECT_EQ(j["nodes"][0]["seconds_in_phase"], 5);
  std::string html = StatusHtml(t.Snapshot(), c.ms, "a&b.iso");
  EXPECT_NE(html.find("data-mac=\"52:54:00:12:34:56\" data-phase=\"failed\""), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;&quot;x&quot;&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<script>\"x\""), std::string::npos);
  EXPECT_NE(html.find("a&amp;b.iso"), std::string::npos);
  EXPECT_EQ(html.find("REFRESH_MS"), std::string::npos);
}

TEST(Metrics, TextFormatEscapesLabelsAndNamesTypes) {
  MetricsText m;
  m.Family("x_total", "counter", "Things.");
  m.Sample({}, uint64_t{3});
  m.Sample({{"reason", "a\"b\\c\nd"}}, uint64_t{1});
  m.Family("y", "gauge", "Ratio.");
  m.Sample({}, 0.5);
  EXPECT_EQ(m.text(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total 3\n"
            "x_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
            "# HELP y Ratio.\n# TYPE y gauge\ny 0.5\n");
}

TEST(Metrics, NodeSeriesPerPhase) {
  NodeTracker t;
  t.Dhcp(kMac, "10.0.0.7", true, false, 0, false);
  t.Dhcp(kOther, "10.0.0.8", true, false, 0, false);
  t.Up(kOther);
  MetricsText m;
  NodeMetrics(m, t.Snapshot());
  EXPECT_NE(m.text().find("isoboot_nodes{phase=\"dhcp\"} 1\n"), std::string::npos) << m.text();
  EXPECT_NE(m.text().find("isoboot_nodes{phase=\"up\"} 1\n"), std::string::npos);
  EXPECT_NE(m.text().find("isoboot_nodes{phase=\"root\"} 0\n"), std::string::npos);
  EXPECT_NE(m.text().find("isoboot_node_phase{mac=\"52:54:00:12:34:57\",phase=\"up\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace isoboot::serve
