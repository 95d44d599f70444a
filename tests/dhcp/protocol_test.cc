#include "dhcp/protocol.h"

#include <gtest/gtest.h>

namespace isoboot::dhcp {
namespace {

constexpr Ip4 kServer = 0x0a4d0001;  // 10.77.0.1
constexpr int64_t kNow = 1'700'000'000;

ProtocolConfig Config(Mode mode) {
  ProtocolConfig c;
  c.mode = mode;
  c.server_ip = kServer;
  c.ipxe_script_url = "http://10.77.0.1:8080/boot.ipxe";
  EXPECT_TRUE(ParseRange("10.77.0.100,10.77.0.102", c));
  return c;
}

Message Request(MessageType type, uint8_t mac_last, int arch = -1) {
  Message m;
  m.xid = 42;
  m.chaddr = {0x52, 0x54, 0, 0, 0, mac_last};
  m.SetU8(opt::kMessageType, static_cast<uint8_t>(type));
  if (arch >= 0) {
    m.SetString(opt::kVendorClass, "PXEClient:Arch:00000:UNDI:002001");
    std::vector<uint8_t> a = {static_cast<uint8_t>(arch >> 8), static_cast<uint8_t>(arch)};
    m.Set(opt::kClientArch, a);
  }
  return m;
}

Outcome Handle(Protocol& p, const Message& m, int64_t now = kNow) {
  // Every reply must survive its own codec.
  Outcome out = p.Handle(m, false, 0, 68, now);
  if (out.reply) {
    std::vector<uint8_t> wire;
    Append(*out.reply, wire);
    auto back = Parse(wire);
    EXPECT_TRUE(back) << back.error().message;
  }
  return out;
}

TEST(DhcpProxy, BiosDiscoverGetsOfferWithoutAddress) {
  Protocol p(Config(Mode::kProxy));
  Message d = Request(MessageType::kDiscover, 1, arch::kBios);
  std::vector<uint8_t> uuid(17, 7);
  uuid[0] = 0;
  d.Set(opt::kClientUuid, uuid);
  Outcome out = Handle(p, d);
  ASSERT_TRUE(out.reply) << out.note;
  const Message& r = *out.reply;
  EXPECT_EQ(r.op, kBootReply);
  EXPECT_EQ(r.Type(), MessageType::kOffer);
  EXPECT_EQ(r.xid, 42u);
  EXPECT_EQ(r.yiaddr, 0u);
  EXPECT_EQ(r.siaddr, kServer);
  EXPECT_EQ(r.file, "pxelinux.0");
  EXPECT_EQ(r.GetString(opt::kVendorClass), "PXEClient");
  EXPECT_EQ(r.GetIp(opt::kServerId), kServer);
  EXPECT_EQ(r.Find(opt::kClientUuid)->data, uuid);
  EXPECT_EQ(r.Find(opt::kVendorSpecific)->data, (std::vector<uint8_t>{6, 1, 8, 255}));
  EXPECT_FALSE(r.Find(opt::kLeaseTime));
  EXPECT_EQ(out.dest_ip, 0xffffffffu);
  EXPECT_EQ(out.dest_port, 68);
  ASSERT_TRUE(out.client);
  EXPECT_TRUE(out.client->is_pxe);
  EXPECT_EQ(out.client->mac, d.Mac());
}

TEST(DhcpProxy, BootFileByArchitecture) {
  ProtocolConfig c = Config(Mode::kProxy);
  c.bios_file = "undionly.kpxe";
  c.uefi_x64_file = "snponly.efi";
  Protocol p(c);
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 1, 0)).reply->file, "undionly.kpxe");
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 1, 7)).reply->file, "snponly.efi");
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 1, 9)).reply->file, "snponly.efi");
  Outcome arm = Handle(p, Request(MessageType::kDiscover, 1, 0x0b));
  EXPECT_FALSE(arm.reply);
  EXPECT_NE(arm.note.find("architecture 11"), std::string::npos) << arm.note;

  c.uefi_arm64_file = "arm64/ipxe.efi";
  Protocol p2(c);
  EXPECT_EQ(Handle(p2, Request(MessageType::kDiscover, 1, 0x0b)).reply->file, "arm64/ipxe.efi");
}

TEST(DhcpProxy, ArchFromVendorClassWhenOption93IsMissing) {
  Protocol p(Config(Mode::kProxy));
  Message d = Request(MessageType::kDiscover, 1);
  d.SetString(opt::kVendorClass, "PXEClient:Arch:00007:UNDI:003016");
  EXPECT_EQ(Handle(p, d).reply->file, "ipxe.efi");
}

// The status page tells firmware apart by what the client event carries.
TEST(DhcpProxy, ClientEventSaysArchitectureIpxeAndRelay) {
  Protocol p(Config(Mode::kProxy));
  Outcome rom = Handle(p, Request(MessageType::kDiscover, 1, 7));
  ASSERT_TRUE(rom.client);
  EXPECT_EQ(rom.client->arch, arch::kEfiX64);
  EXPECT_FALSE(rom.client->ipxe);
  EXPECT_EQ(rom.client->relayed_by, 0u);
  // The same MAC, now iPXE, with nothing else new: reported again, because
  // the iPXE flag is news.
  Message ipxe = Request(MessageType::kDiscover, 1, 7);
  ipxe.SetString(opt::kUserClass, "iPXE");
  Outcome chained = Handle(p, ipxe, kNow + 1);
  ASSERT_TRUE(chained.client);
  EXPECT_TRUE(chained.client->ipxe);
  EXPECT_FALSE(Handle(p, ipxe, kNow + 2).client);  // nothing new now
  Message relayed = Request(MessageType::kDiscover, 2, 0);
  relayed.giaddr = 0x0a4e0001;
  Outcome r = Handle(p, relayed);
  ASSERT_TRUE(r.client);
  EXPECT_EQ(r.client->arch, arch::kBios);
  EXPECT_EQ(r.client->relayed_by, 0x0a4e0001u);
}

TEST(DhcpProxy, IpxeGetsTheScriptNotTheRomAgain) {
  Protocol p(Config(Mode::kProxy));
  Message plain = Request(MessageType::kDiscover, 1, 0);
  plain.SetString(opt::kUserClass, "iPXE");
  Message framed = Request(MessageType::kDiscover, 1, 7);
  framed.Set(opt::kUserClass, std::vector<uint8_t>{4, 'i', 'P', 'X', 'E'});
  Message o175 = Request(MessageType::kDiscover, 1, 7);
  o175.Set(opt::kIpxe, std::vector<uint8_t>{0x13, 1, 1});
  for (const Message& m : {plain, framed, o175}) {
    Outcome out = Handle(p, m);
    ASSERT_TRUE(out.reply);
    EXPECT_EQ(out.reply->file, "http://10.77.0.1:8080/boot.ipxe");
    EXPECT_EQ(out.reply->GetString(opt::kBootfile), "http://10.77.0.1:8080/boot.ipxe");
  }
}

TEST(DhcpProxy, NonPxeClientsAreLeftToTheSiteServer) {
  Protocol p(Config(Mode::kProxy));
  Outcome out = Handle(p, Request(MessageType::kDiscover, 1));
  EXPECT_FALSE(out.reply);
  ASSERT_TRUE(out.client);  // still reported, so AoE can announce itself
  EXPECT_FALSE(out.client->is_pxe);
}

TEST(DhcpProxy, RequestForAnotherServerIsIgnoredOursIsAcked) {
  Protocol p(Config(Mode::kProxy));
  Message r = Request(MessageType::kRequest, 1, 0);
  r.SetIp(opt::kServerId, 0x0a4d0002);
  r.SetIp(opt::kRequestedIp, 0x0a4d0032);
  Outcome other = Handle(p, r);
  EXPECT_FALSE(other.reply);
  ASSERT_TRUE(other.client);
  EXPECT_EQ(other.client->ip, 0x0a4d0032u);
  // Our server id with an address: the DHCP server on this same host's.
  r.SetIp(opt::kServerId, kServer);
  EXPECT_FALSE(Handle(p, r).reply);
  // Our server id, no address asked for (boot server discovery on port 67).
  Message discovery = Request(MessageType::kRequest, 1, 0);
  discovery.SetIp(opt::kServerId, kServer);
  discovery.ciaddr = 0x0a4d0032;
  Outcome ours = Handle(p, discovery);
  ASSERT_TRUE(ours.reply);
  EXPECT_EQ(ours.reply->Type(), MessageType::kAck);
  EXPECT_EQ(ours.reply->yiaddr, 0u);
  // Our server id and the offer's yiaddr 0.0.0.0 as the address (udhcpc
  // selecting a proxy offer): ours too.
  discovery.SetIp(opt::kRequestedIp, 0);
  Outcome selected = Handle(p, discovery);
  ASSERT_TRUE(selected.reply);
  EXPECT_EQ(selected.reply->Type(), MessageType::kAck);
}

TEST(DhcpProxy, PxePortRequestIsAnsweredToItsSource) {
  Protocol p(Config(Mode::kProxy));
  Message r = Request(MessageType::kRequest, 1, 7);
  r.ciaddr = 0x0a4d0032;
  Outcome out = p.Handle(r, true, 0x0a4d0032, 68, kNow);
  ASSERT_TRUE(out.reply) << out.note;
  EXPECT_EQ(out.reply->Type(), MessageType::kAck);
  EXPECT_EQ(out.reply->file, "ipxe.efi");
  EXPECT_EQ(out.reply->ciaddr, 0x0a4d0032u);
  EXPECT_EQ(out.dest_ip, 0x0a4d0032u);
  EXPECT_EQ(out.dest_port, 68);
  EXPECT_FALSE(p.Handle(Request(MessageType::kDiscover, 1, 7), true, 1, 68, kNow).reply);
}

TEST(DhcpProxy, BootpAndRepliesAreIgnored) {
  Protocol p(Config(Mode::kProxy));
  Message bootp = Request(MessageType::kDiscover, 1, 0);
  bootp.options.clear();
  EXPECT_FALSE(Handle(p, bootp).reply);
  Message reply = Request(MessageType::kOffer, 1, 0);
  reply.op = kBootReply;
  EXPECT_FALSE(Handle(p, reply).reply);
}

TEST(DhcpFull, LeaseCycleAndSameAddressWithoutPxe) {
  Protocol p(Config(Mode::kFull));
  Outcome offer = Handle(p, Request(MessageType::kDiscover, 1, 0));
  ASSERT_TRUE(offer.reply) << offer.note;
  EXPECT_EQ(offer.reply->yiaddr, 0x0a4d0064u);
  EXPECT_EQ(offer.reply->file, "pxelinux.0");
  EXPECT_EQ(offer.reply->GetU32(opt::kLeaseTime), 3600u);
  EXPECT_EQ(offer.reply->GetIp(opt::kSubnetMask), 0xffffff00u);
  EXPECT_EQ(offer.reply->GetIp(opt::kBroadcast), 0x0a4d00ffu);

  Message req = Request(MessageType::kRequest, 1, 0);
  req.SetIp(opt::kServerId, kServer);
  req.SetIp(opt::kRequestedIp, 0x0a4d0064);
  Outcome ack = Handle(p, req);
  ASSERT_TRUE(ack.reply);
  EXPECT_EQ(ack.reply->Type(), MessageType::kAck);
  EXPECT_EQ(ack.reply->yiaddr, 0x0a4d0064u);
  EXPECT_TRUE(ack.leases_changed);
  EXPECT_EQ(offer.client->ip, 0x0a4d0064u);
  EXPECT_FALSE(ack.client);  // the DISCOVER reported this MAC with this address

  // The initrd's dhclient: same MAC, no PXE vendor class.
  Outcome again = Handle(p, Request(MessageType::kDiscover, 1), kNow + 100);
  ASSERT_TRUE(again.reply);
  EXPECT_EQ(again.reply->yiaddr, 0x0a4d0064u);
  EXPECT_TRUE(again.reply->file.empty());
  EXPECT_FALSE(again.reply->Find(opt::kVendorClass));
  EXPECT_FALSE(again.client->is_pxe);

  // Another client gets another address, and cannot take the first one.
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 2)).reply->yiaddr, 0x0a4d0065u);
  Message steal = Request(MessageType::kRequest, 3);
  steal.SetIp(opt::kRequestedIp, 0x0a4d0064);
  Outcome nak = Handle(p, steal);
  ASSERT_TRUE(nak.reply);
  EXPECT_EQ(nak.reply->Type(), MessageType::kNak);
  EXPECT_EQ(nak.dest_ip, 0xffffffffu);
}

TEST(DhcpFull, RenewIsUnicastAndOutOfRangeIsNaked) {
  Protocol p(Config(Mode::kFull));
  Message renew = Request(MessageType::kRequest, 1);
  renew.ciaddr = 0x0a4d0065;
  Outcome ack = Handle(p, renew);
  ASSERT_TRUE(ack.reply);
  EXPECT_EQ(ack.reply->Type(), MessageType::kAck);
  EXPECT_EQ(ack.dest_ip, 0x0a4d0065u);
  Message wrong = Request(MessageType::kRequest, 2);
  wrong.SetIp(opt::kRequestedIp, 0xc0a80105);
  EXPECT_EQ(Handle(p, wrong).reply->Type(), MessageType::kNak);
}

TEST(DhcpFull, RangeExhaustionReleaseDeclineInform) {
  Protocol p(Config(Mode::kFull));
  for (uint8_t i = 1; i <= 3; ++i) {
    Message r = Request(MessageType::kRequest, i);
    r.SetIp(opt::kRequestedIp, 0x0a4d0063 + i);
    ASSERT_EQ(Handle(p, r).reply->Type(), MessageType::kAck);
  }
  Outcome none = Handle(p, Request(MessageType::kDiscover, 4));
  EXPECT_FALSE(none.reply);
  EXPECT_NE(none.note.find("no free address"), std::string::npos);

  Message rel = Request(MessageType::kRelease, 2);
  rel.ciaddr = 0x0a4d0065;
  EXPECT_TRUE(Handle(p, rel).leases_changed);
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 4)).reply->yiaddr, 0x0a4d0065u);

  Message dec = Request(MessageType::kDecline, 3);
  dec.SetIp(opt::kRequestedIp, 0x0a4d0066);
  EXPECT_TRUE(Handle(p, dec).leases_changed);
  EXPECT_FALSE(Handle(p, Request(MessageType::kDiscover, 3)).reply);  // .102 declined, .101 offered

  Message inform = Request(MessageType::kInform, 9, 0);
  inform.ciaddr = 0x0a4d0032;
  Outcome ack = Handle(p, inform);
  ASSERT_TRUE(ack.reply);
  EXPECT_EQ(ack.reply->yiaddr, 0u);
  EXPECT_FALSE(ack.reply->Find(opt::kLeaseTime));
  EXPECT_EQ(ack.reply->file, "pxelinux.0");
  EXPECT_EQ(ack.dest_ip, 0x0a4d0032u);
}

TEST(DhcpFull, ChoosingAnotherServerFreesTheOffer) {
  Protocol p(Config(Mode::kFull));
  ASSERT_TRUE(Handle(p, Request(MessageType::kDiscover, 1)).reply);
  Message r = Request(MessageType::kRequest, 1);
  r.SetIp(opt::kServerId, 0x0a4d0002);
  EXPECT_FALSE(Handle(p, r).reply);
  EXPECT_TRUE(p.leases().empty());
}

TEST(DhcpFull, LeasesSurviveSaveAndLoad) {
  Protocol p(Config(Mode::kFull));
  Message r = Request(MessageType::kRequest, 7);
  r.SetIp(opt::kRequestedIp, 0x0a4d0066);
  ASSERT_TRUE(Handle(p, r).reply);
  std::string text = p.SaveLeases();
  EXPECT_NE(text.find("52:54:00:00:00:07 10.77.0.102 1700003600"), std::string::npos) << text;

  Protocol q(Config(Mode::kFull));
  ASSERT_TRUE(q.LoadLeases(text));
  EXPECT_EQ(Handle(q, Request(MessageType::kDiscover, 7)).reply->yiaddr, 0x0a4d0066u);
  EXPECT_FALSE(q.LoadLeases("52:54:00:00:00:07 10.77.0.300 5\n"));
  EXPECT_FALSE(q.LoadLeases("garbage\n"));
}

TEST(DhcpFull, DeclineOnlyTheAddressTheMacHolds) {
  Protocol p(Config(Mode::kFull));
  // Nobody was given .100, .101 or 1.2.3.4: nothing is recorded or blocked.
  for (Ip4 ip : {Ip4{0x0a4d0064}, Ip4{0x0a4d0065}, Ip4{0x01020304}}) {
    Message dec = Request(MessageType::kDecline, 9);
    dec.SetIp(opt::kRequestedIp, ip);
    EXPECT_FALSE(Handle(p, dec).leases_changed);
  }
  EXPECT_EQ(p.declined_count(), 0u);
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 1)).reply->yiaddr, 0x0a4d0064u);
  // The MAC that was offered .100 may decline it.
  Message dec = Request(MessageType::kDecline, 1);
  dec.SetIp(opt::kRequestedIp, 0x0a4d0064);
  Handle(p, dec);
  EXPECT_EQ(p.declined_count(), 1u);
  EXPECT_EQ(Handle(p, Request(MessageType::kDiscover, 2)).reply->yiaddr, 0x0a4d0065u);
}

TEST(DhcpFull, StateStaysWithinTheRangeUnderAFloodOfMacs) {
  Protocol p(Config(Mode::kFull));  // 3 addresses
  for (int i = 0; i < 5000; ++i) {
    Message m = Request(i % 2 ? MessageType::kDiscover : MessageType::kRequest, 0);
    m.chaddr = {0x02,
                0,
                0,
                static_cast<uint8_t>(i >> 16),
                static_cast<uint8_t>(i >> 8),
                static_cast<uint8_t>(i)};
    m.SetIp(opt::kRequestedIp, 0x0a4d0064 + i % 5);
    Handle(p, m, kNow + i);
    Message dec = m;
    dec.SetU8(opt::kMessageType, static_cast<uint8_t>(MessageType::kDecline));
    if (i % 7 == 0) Handle(p, dec, kNow + i);
  }
  EXPECT_LE(p.leases().size(), 3u);
  EXPECT_LE(p.declined_count(), 3u);
}

TEST(DhcpClientEvents, InformIsNotReported) {
  for (Mode mode : {Mode::kProxy, Mode::kFull}) {
    Protocol p(Config(mode));
    for (uint32_t i = 0; i < 100; ++i) {
      Message inform = Request(MessageType::kInform, 1, 0);
      inform.ciaddr = 0x0a000000 + i;
      EXPECT_FALSE(Handle(p, inform).client);
      EXPECT_FALSE(p.Handle(inform, true, inform.ciaddr, 68, kNow).client);  // PXE port
    }
  }
}

TEST(DhcpClientEvents, BoundedPerMac) {
  Protocol p(Config(Mode::kProxy));
  // Retransmissions of one DISCOVER: reported once.
  int reports = 0;
  for (int i = 0; i < 100; ++i)
    reports += Handle(p, Request(MessageType::kDiscover, 1, 0)).client ? 1 : 0;
  EXPECT_EQ(reports, 1);
  // A new address or PXE flag is news, up to kMaxReportsPerWindow per window,
  // however many addresses a sender makes up.
  reports = 0;
  for (uint32_t i = 0; i < 100; ++i) {
    Message r = Request(MessageType::kRequest, 1, 0);
    r.SetIp(opt::kRequestedIp, 0x0a000001 + i);
    reports += Handle(p, r, kNow + 1).client ? 1 : 0;
  }
  EXPECT_EQ(reports, kMaxReportsPerWindow - 1);
  // The next window reports again; another MAC has its own count.
  EXPECT_TRUE(Handle(p, Request(MessageType::kDiscover, 1, 0), kNow + kReportWindowSeconds).client);
  EXPECT_TRUE(Handle(p, Request(MessageType::kDiscover, 2, 0), kNow + 1).client);
}

TEST(DhcpClientEvents, ABootIsReportedInFull) {
  // PXE ROM DISCOVER and REQUEST, then the initrd's plain client: each step
  // is news to the daemon (AoE binding on the PXE one, the name on the ip).
  Protocol p(Config(Mode::kFull));
  Outcome offer = Handle(p, Request(MessageType::kDiscover, 1, 0));
  ASSERT_TRUE(offer.client);
  Message req = Request(MessageType::kRequest, 1, 0);
  req.SetIp(opt::kRequestedIp, offer.reply->yiaddr);
  EXPECT_EQ(offer.client->ip, offer.reply->yiaddr);
  EXPECT_FALSE(Handle(p, req).client);  // nothing new: the DISCOVER had it
  Message plain = Request(MessageType::kRequest, 1);
  plain.SetIp(opt::kRequestedIp, offer.reply->yiaddr);
  Outcome again = Handle(p, plain);
  ASSERT_TRUE(again.client);
  EXPECT_FALSE(again.client->is_pxe);
}

TEST(DhcpConfig, ParseRange) {
  ProtocolConfig c;
  EXPECT_TRUE(ParseRange("10.0.0.10, 10.0.0.20", c));
  ASSERT_EQ(c.ranges.size(), 1u);
  EXPECT_EQ(c.ranges[0].start, 0x0a00000au);
  EXPECT_EQ(c.ranges[0].netmask, 0xffffff00u);
  EXPECT_TRUE(ParseRange("10.1.0.10,10.1.1.20,255.255.0.0", c));
  ASSERT_EQ(c.ranges.size(), 2u);
  EXPECT_EQ(c.ranges[1].netmask, 0xffff0000u);
  // One range per subnet, or a giaddr could not choose.
  EXPECT_FALSE(ParseRange("10.0.0.30,10.0.0.40", c));
  EXPECT_FALSE(ParseRange("10.1.5.1,10.1.5.9", c));
  EXPECT_FALSE(ParseRange("10.0.0.1,10.0.0.9,255.0.0.0", c));
  EXPECT_EQ(c.ranges.size(), 2u);
  ProtocolConfig d;
  EXPECT_FALSE(ParseRange("10.0.0.10", d));
  EXPECT_FALSE(ParseRange("10.0.0.20,10.0.0.10", d));
  EXPECT_FALSE(ParseRange("10.0.0.10,10.0.1.20", d));  // /24 default
  EXPECT_FALSE(ParseRange("10.0.0.10,10.2.0.0,255.0.0.0", d));
  EXPECT_FALSE(ParseRange("10.0.0.10,10.0.0.20,255.0.255.0", d));  // not a netmask
  EXPECT_FALSE(ParseRange("a,b", d));
  EXPECT_TRUE(d.ranges.empty());
}

// Relayed requests (RFC 2131 4.1, 4.3.1; RFC 3046), built and checked as
// bytes on the wire.
constexpr Ip4 kRelay = 0x0a4d0201;  // 10.77.2.1, the relay on the client subnet

ProtocolConfig RelayConfig(Mode mode) {
  ProtocolConfig c = Config(mode);
  EXPECT_TRUE(ParseRange("10.77.2.100,10.77.2.102", c));
  return c;
}

// A DHCPDISCOVER from a BIOS PXE ROM as a relay forwards it: hops 1, giaddr
// 10.77.2.1, and a Relay Agent Information option (circuit id "eth0", remote
// id 6 bytes) after the client's own options.
const std::vector<uint8_t> kRai = {1, 4, 'e', 't', 'h', '0', 2, 6, 0x52, 0x54, 0, 0, 9, 9};
std::vector<uint8_t> RelayedDiscover(Ip4 giaddr, MessageType type = MessageType::kDiscover) {
  std::vector<uint8_t> b(236, 0);
  b[0] = kBootRequest;
  b[1] = 1;
  b[2] = 6;
  b[3] = 1;  // hops: one relay
  b[4] = 0xde, b[5] = 0xad, b[6] = 0xbe, b[7] = 0xef;
  b[24] = giaddr >> 24, b[25] = giaddr >> 16, b[26] = giaddr >> 8, b[27] = giaddr & 0xff;
  const uint8_t mac[] = {0x52, 0x54, 0, 0, 2, 7};
  std::copy(std::begin(mac), std::end(mac), b.begin() + 28);
  const std::vector<uint8_t> tail = {
      0x63, 0x82, 0x53, 0x63, opt::kMessageType, 1, static_cast<uint8_t>(type), opt::kVendorClass,
      32};
  b.insert(b.end(), tail.begin(), tail.end());
  std::string_view vc = "PXEClient:Arch:00000:UNDI:002001";
  b.insert(b.end(), vc.begin(), vc.end());
  b.push_back(opt::kRelayAgentInfo);
  b.push_back(static_cast<uint8_t>(kRai.size()));
  b.insert(b.end(), kRai.begin(), kRai.end());
  b.push_back(opt::kEnd);
  return b;
}

Ip4 IpAt(const std::vector<uint8_t>& b, size_t at) {
  return Ip4{b[at]} << 24 | Ip4{b[at + 1]} << 16 | Ip4{b[at + 2]} << 8 | b[at + 3];
}

TEST(DhcpRelay, RangeByGiaddrCiaddrOrTheServersSubnet) {
  ProtocolConfig c = RelayConfig(Mode::kFull);
  Message m;
  EXPECT_EQ(RangeFor(c, m), &c.ranges[0]);  // attached: the server's subnet
  m.giaddr = kRelay;
  EXPECT_EQ(RangeFor(c, m), &c.ranges[1]);
  m.giaddr = 0x0a4d0001;  // a relay on the server's own subnet
  EXPECT_EQ(RangeFor(c, m), &c.ranges[0]);
  m.giaddr = 0x0a090001;
  EXPECT_EQ(RangeFor(c, m), nullptr);
  m.giaddr = 0;
  m.ciaddr = 0x0a4d0264;  // renewing from behind the router: unicast, no relay
  EXPECT_EQ(RangeFor(c, m), &c.ranges[1]);
  m.ciaddr = 0x0a090009;
  EXPECT_EQ(RangeFor(c, m), nullptr);
  // One range and the server on another subnet: attached clients use it.
  ProtocolConfig one;
  one.server_ip = 0xc0a80001;
  ASSERT_TRUE(ParseRange("10.77.0.100,10.77.0.102", one));
  EXPECT_EQ(RangeFor(one, Message{}), &one.ranges[0]);
  // Two ranges, none on the server's subnet: attached clients get nothing.
  ASSERT_TRUE(ParseRange("10.77.2.100,10.77.2.102", one));
  EXPECT_EQ(RangeFor(one, Message{}), nullptr);
}

TEST(DhcpRelay, OfferGoesToTheRelayFromItsSubnetsRangeWithOption82Last) {
  Protocol p(RelayConfig(Mode::kFull));
  auto request = Parse(RelayedDiscover(kRelay));
  ASSERT_TRUE(request) << request.error().message;
  Outcome out = p.Handle(*request, false, kRelay, 67, kNow);
  ASSERT_TRUE(out.reply) << out.note;
  EXPECT_EQ(out.dest_ip, kRelay);
  EXPECT_EQ(out.dest_port, 67);
  EXPECT_EQ(out.relayed_by, kRelay);
  EXPECT_FALSE(out.no_range);
  std::vector<uint8_t> b;
  Append(*out.reply, b);
  EXPECT_EQ(b[0], kBootReply);
  EXPECT_EQ(b[3], 0);                   // hops: 0 from a server (RFC 2131 table 3)
  EXPECT_EQ(IpAt(b, 16), 0x0a4d0264u);  // yiaddr 10.77.2.100
  EXPECT_EQ(IpAt(b, 20), kServer);      // siaddr: the boot interface's address
  EXPECT_EQ(IpAt(b, 24), kRelay);       // giaddr kept
  EXPECT_EQ(out.reply->GetIp(opt::kServerId), kServer);
  EXPECT_EQ(out.reply->GetIp(opt::kRouter), kRelay);
  EXPECT_EQ(out.reply->GetIp(opt::kSubnetMask), 0xffffff00u);
  EXPECT_EQ(out.reply->GetIp(opt::kBroadcast), 0x0a4d02ffu);
  EXPECT_EQ(out.reply->file, "pxelinux.0");
  // Walk the options: 82 comes last, unchanged, right before END.
  size_t at = 240, last = 0;
  while (at < b.size() && b[at] != opt::kEnd) {
    if (b[at] == opt::kPad) {
      ++at;
      continue;
    }
    last = at;
    at += 2 + b[at + 1];
  }
  ASSERT_LT(at, b.size());
  ASSERT_EQ(b[last], opt::kRelayAgentInfo);
  EXPECT_EQ(last + 2 + kRai.size(), at);
  EXPECT_EQ(std::vector<uint8_t>(b.begin() + last + 2, b.begin() + at), kRai);

  // The REQUEST through the relay is ACKed to the relay too, same address.
  auto req = Parse(RelayedDiscover(kRelay, MessageType::kRequest));
  ASSERT_TRUE(req);
  req->SetIp(opt::kRequestedIp, 0x0a4d0264);
  req->SetIp(opt::kServerId, kServer);
  Outcome ack = p.Handle(*req, false, kRelay, 67, kNow);
  ASSERT_TRUE(ack.reply) << ack.note;
  EXPECT_EQ(ack.reply->Type(), MessageType::kAck);
  EXPECT_EQ(ack.reply->yiaddr, 0x0a4d0264u);
  EXPECT_EQ(ack.dest_ip, kRelay);
  EXPECT_EQ(ack.reply->options.back().code, opt::kRelayAgentInfo);
  EXPECT_EQ(p.leases().at(request->Mac()).ip, 0x0a4d0264u);

  // Renewing later, unicast straight to the server (no relay, ciaddr set):
  // ACKed from the same range, to the client itself.
  Message renew = Request(MessageType::kRequest, 0);
  renew.chaddr = req->chaddr;
  renew.ciaddr = 0x0a4d0264;
  Outcome again = Handle(p, renew, kNow + 100);
  ASSERT_TRUE(again.reply) << again.note;
  EXPECT_EQ(again.reply->Type(), MessageType::kAck);
  EXPECT_EQ(again.dest_ip, 0x0a4d0264u);
  EXPECT_EQ(again.dest_port, 68);
  EXPECT_FALSE(again.reply->Find(opt::kRouter));  // none configured for attached clients
}

TEST(DhcpRelay, TheSameMacMovedBetweenSubnetsGetsAnAddressOfEach) {
  Protocol p(RelayConfig(Mode::kFull));
  Message direct = Request(MessageType::kDiscover, 7);
  Outcome a = Handle(p, direct);
  ASSERT_TRUE(a.reply);
  EXPECT_EQ(a.reply->yiaddr, 0x0a4d0064u);
  EXPECT_EQ(a.dest_ip, 0xffffffffu);
  Message relayed = direct;
  relayed.giaddr = kRelay;
  Outcome b = Handle(p, relayed);
  ASSERT_TRUE(b.reply);
  EXPECT_EQ(b.reply->yiaddr, 0x0a4d0264u);
  EXPECT_FALSE(b.reply->Find(opt::kRelayAgentInfo));  // none came, none goes back
}

TEST(DhcpRelay, AnAddressOfAnotherSubnetIsNakedThroughTheRelayAsBroadcast) {
  // INIT-REBOOT behind the relay with the address it had on the server's
  // subnet: NAK to the relay, with the broadcast bit (RFC 2131 4.3.2).
  Protocol p(RelayConfig(Mode::kFull));
  Message m = Request(MessageType::kRequest, 9);
  m.giaddr = kRelay;
  m.SetIp(opt::kRequestedIp, 0x0a4d0064);
  Outcome out = Handle(p, m);
  ASSERT_TRUE(out.reply) << out.note;
  EXPECT_EQ(out.reply->Type(), MessageType::kNak);
  EXPECT_EQ(out.reply->flags & kFlagBroadcast, kFlagBroadcast);
  EXPECT_EQ(out.dest_ip, kRelay);
  EXPECT_EQ(out.dest_port, 67);
}

TEST(DhcpRelay, UnknownRelayIsDroppedAndFlagged) {
  Protocol p(RelayConfig(Mode::kFull));
  auto request = Parse(RelayedDiscover(0x0a090001));
  ASSERT_TRUE(request);
  Outcome out = p.Handle(*request, false, 0x0a090001, 67, kNow);
  EXPECT_FALSE(out.reply);
  EXPECT_TRUE(out.no_range);
  EXPECT_EQ(out.note, "no range for relay 10.9.0.1");
  EXPECT_TRUE(p.leases().empty());
}

TEST(DhcpRelay, ProxyAnswersARelayedPxeDiscoverToTheRelay) {
  // The site's relay forwards to its DHCP server and to us: the PXE offer
  // (no address) goes back through the relay, with option 82.
  Protocol p(Config(Mode::kProxy));
  auto request = Parse(RelayedDiscover(kRelay));
  ASSERT_TRUE(request);
  Outcome out = p.Handle(*request, false, kRelay, 67, kNow);
  ASSERT_TRUE(out.reply) << out.note;
  EXPECT_EQ(out.reply->yiaddr, 0u);
  EXPECT_EQ(out.reply->giaddr, kRelay);
  EXPECT_EQ(out.reply->siaddr, kServer);
  EXPECT_EQ(out.dest_ip, kRelay);
  EXPECT_EQ(out.dest_port, 67);
  EXPECT_EQ(out.reply->options.back().code, opt::kRelayAgentInfo);
}

}  // namespace
}  // namespace isoboot::dhcp
