#include "linux/privilege.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/linux/in_child.h"
#include "tests/support/temp_dir.h"

namespace isoboot::sys {
namespace {

using testing::ChildChecks;
using testing::Passed;
using testing::RunInChild;

struct Nobody {
  uid_t uid = 0;
  gid_t gid = 0;
};

Nobody LookUpNobody() {
  passwd* pw = getpwnam("nobody");
  return pw ? Nobody{pw->pw_uid, pw->pw_gid} : Nobody{};
}

// The calling thread's capability sets, from the kernel.
struct Sets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};
Sets ThreadCaps() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  syscall(SYS_capget, &header, data);
  auto join = [](uint32_t lo, uint32_t hi) { return lo | uint64_t{hi} << 32; };
  return {join(data[0].effective, data[1].effective), join(data[0].permitted, data[1].permitted),
          join(data[0].inheritable, data[1].inheritable)};
}

int PacketSocket() {
  return socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
}

// Sends one minimum-size broadcast frame (local experimental ethertype) on lo.
ssize_t SendFrameOnLo(int fd) {
  std::array<uint8_t, 60> frame{};
  frame.fill(0);
  for (int i = 0; i < 6; ++i)
    frame[i] = 0xff;
  frame[12] = 0x88;
  frame[13] = 0xb5;
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(0x88b5);
  to.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
  to.sll_halen = 6;
  for (int i = 0; i < 6; ++i)
    to.sll_addr[i] = 0xff;
  return sendto(fd, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
}

// bind() of a UDP socket to 127.0.0.1:port: 0 or -1 with errno.
int BindUdp(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

// A port below 1024 that nothing holds on 127.0.0.1 (checked while root).
uint16_t FreeLowPort() {
  for (uint16_t port = 900; port < 920; ++port) {
    if (BindUdp(port) == 0) return port;
  }
  return 0;
}

void ExpectIds(ChildChecks& c, const Nobody& nobody) {
  uid_t r, e, s;
  gid_t rg, eg, sg;
  getresuid(&r, &e, &s);
  getresgid(&rg, &eg, &sg);
  c.Expect(getuid() == nobody.uid && geteuid() == nobody.uid, "getuid/geteuid are nobody's");
  c.Expect(r == nobody.uid && e == nobody.uid && s == nobody.uid, "real, effective, saved uid");
  c.Expect(rg == nobody.gid && eg == nobody.gid && sg == nobody.gid, "real, effective, saved gid");
}

TEST(Capability, NamesAndMessages) {
  EXPECT_EQ(CapabilityName(Capability::kNetRaw), "CAP_NET_RAW");
  EXPECT_EQ(CapabilityName(Capability::kNetBindService), "CAP_NET_BIND_SERVICE");
  std::string m = NeedsCapabilityMessage(Capability::kNetBindService);
  EXPECT_NE(m.find("needs CAP_NET_BIND_SERVICE"), std::string::npos) << m;
  EXPECT_NE(m.find("setcap cap_net_bind_service+ep /"), std::string::npos) << m;
  EXPECT_NE(m.find("AmbientCapabilities=CAP_NET_BIND_SERVICE"), std::string::npos) << m;
  EXPECT_NE(NeedsCapNetRawMessage().find("cap_net_raw+ep"), std::string::npos);
}

TEST(Capability, ToBindFollowsTheUnprivilegedPortStart) {
  unsigned start = 1024;
  std::ifstream("/proc/sys/net/ipv4/ip_unprivileged_port_start") >> start;
  EXPECT_EQ(CapabilityToBind(0), std::nullopt);
  EXPECT_EQ(CapabilityToBind(8080),
            start <= 8080 ? std::nullopt : std::optional(Capability::kNetBindService));
  EXPECT_EQ(CapabilityToBind(69),
            69 < start ? std::optional(Capability::kNetBindService) : std::nullopt);
}

TEST(DropPrivileges, ToNobodyKeepingNetRaw) {
  ISOBOOT_REQUIRE_ROOT();
  const Nobody nobody = LookUpNobody();
  ASSERT_NE(nobody.uid, 0u) << "no user nobody";
  ASSERT_EQ(nobody.uid, 65534u);
  test::TempDir dir("privilege");
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  const std::string secret = dir / "root-only", open_file = dir / "world-readable";
  std::ofstream(secret) << "x";
  std::ofstream(open_file) << "x";
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  ASSERT_EQ(chmod(open_file.c_str(), 0644), 0);
  ASSERT_NE(if_nametoindex("lo"), 0u);

  auto child = RunInChild([&](ChildChecks& c) {
    int before = PacketSocket();
    c.Expect(before >= 0, "AF_PACKET socket as root");
    auto report = DropPrivileges({"nobody", {Capability::kNetRaw}});
    if (!report) return c.Fail("DropPrivileges: " + report.error().message);
    c.Expect(report->switched_user, "switched_user");
    c.Expect(report->summary.find("running as nobody (uid 65534") == 0 &&
                 report->summary.find("keeping CAP_NET_RAW") != std::string::npos,
             "summary: " + report->summary);
    ExpectIds(c, nobody);
    c.Expect(getgroups(0, nullptr) == 0, "no supplementary groups");

    // Exactly CAP_NET_RAW, in permitted and effective only.
    Sets sets = ThreadCaps();
    const uint64_t raw = uint64_t{1} << CAP_NET_RAW;
    c.Expect(sets.effective == raw && sets.permitted == raw && sets.inheritable == 0,
             "capability sets are exactly CAP_NET_RAW");
    c.Expect(HasCapNetRaw() && !HasCapability(Capability::kNetBindService), "HasCapability");
    c.Expect(prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0) == 1, "CAP_NET_RAW stays bounded");
    c.Expect(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 0, "CAP_SYS_ADMIN out of bounds");
    c.Expect(prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0) == 0, "CAP_SETUID out of bounds");
    c.Expect(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0) == 0, "no ambient");
    c.Expect(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs");
    c.Expect(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0, "keepcaps cleared again");

    // CAP_NET_RAW works: a new packet socket, and the old one sends.
    int after = PacketSocket();
    c.Expect(after >= 0, "a new AF_PACKET socket opens with CAP_NET_RAW");
    if (after >= 0) close(after);
    c.Expect(SendFrameOnLo(before) == 60, "the socket opened as root still sends");
    // CAP_DAC_OVERRIDE is gone: only the file's mode decides.
    c.ExpectErrno(open(secret.c_str(), O_RDONLY | O_CLOEXEC), EACCES, "open a root-only 0600 file");
    int fd = open(open_file.c_str(), O_RDONLY | O_CLOEXEC);
    c.Expect(fd >= 0, "open a 0644 file in the same directory");
    // And there is no way back.
    c.ExpectErrno(setuid(0), EPERM, "setuid(0)");
    c.ExpectErrno(setresuid(0, 0, 0), EPERM, "setresuid(0, 0, 0)");
    c.ExpectErrno(setgid(0), EPERM, "setgid(0)");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, KeepingNothingLosesRawSocketsAndLowPorts) {
  ISOBOOT_REQUIRE_ROOT();
  uint16_t port = FreeLowPort();
  ASSERT_NE(port, 0) << "no free UDP port in 900..919";
  ASSERT_TRUE(CapabilityToBind(port)) << "net.ipv4.ip_unprivileged_port_start is below " << port;
  auto child = RunInChild([&](ChildChecks& c) {
    auto report = DropPrivileges({"nobody", {}});
    if (!report) return c.Fail("DropPrivileges: " + report.error().message);
    c.Expect(report->summary.find("no capabilities") != std::string::npos, report->summary);
    Sets sets = ThreadCaps();
    c.Expect(sets.effective == 0 && sets.permitted == 0 && sets.inheritable == 0, "no caps");
    c.ExpectErrno(PacketSocket(), EPERM, "AF_PACKET socket without CAP_NET_RAW");
    c.ExpectErrno(BindUdp(port), EACCES, "bind a port below 1024");
    c.Expect(BindUdp(0) == 0, "bind an ephemeral port (TFTP transfers)");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, KeepingNetBindServiceBindsLowPorts) {
  ISOBOOT_REQUIRE_ROOT();
  uint16_t port = FreeLowPort();
  ASSERT_NE(port, 0) << "no free UDP port in 900..919";
  auto child = RunInChild([&](ChildChecks& c) {
    auto report = DropPrivileges({"nobody", {Capability::kNetBindService}});
    if (!report) return c.Fail("DropPrivileges: " + report.error().message);
    c.Expect(BindUdp(port) == 0, "bind port " + std::to_string(port));
    c.ExpectErrno(PacketSocket(), EPERM, "AF_PACKET socket without CAP_NET_RAW");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, UserGroupsWhenAsked) {
  ISOBOOT_REQUIRE_ROOT();
  const Nobody nobody = LookUpNobody();
  auto child = RunInChild([&](ChildChecks& c) {
    DropOptions o{"nobody", {}, /*supplementary_groups=*/true};
    auto report = DropPrivileges(o);
    if (!report) return c.Fail("DropPrivileges: " + report.error().message);
    ExpectIds(c, nobody);
    gid_t groups[64];
    int n = getgroups(64, groups);
    c.Expect(n >= 1, "initgroups gives at least the primary group");
    for (int i = 0; i < n; ++i)
      c.Expect(groups[i] != 0, "not in group root");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, ClearErrorsAndStillRoot) {
  ISOBOOT_REQUIRE_ROOT();
  auto child = RunInChild([](ChildChecks& c) {
    auto unknown = DropPrivileges({"no-such-user-isoboot", {}});
    c.Expect(!unknown && unknown.error().Is(ErrorKind::kNotFound), "unknown user: kNotFound");
    if (!unknown) {
      c.Expect(unknown.error().message == "no-such-user-isoboot: no such user",
               "message: " + unknown.error().message);
    }
    auto none = DropPrivileges({"", {}});
    c.Expect(!none && none.error().Is(ErrorKind::kInvalidInput) &&
                 none.error().message == "dropping root needs a user to run as",
             "no user as root");
    auto root = DropPrivileges({"root", {}});
    c.Expect(!root && root.error().Is(ErrorKind::kInvalidInput), "user root refused");
    c.Expect(geteuid() == 0 && getuid() == 0 && ThreadCaps().effective != 0,
             "a refused drop changes nothing");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, NotRootChangesNoIdsAndSaysSo) {
  ISOBOOT_REQUIRE_ROOT();
  const Nobody nobody = LookUpNobody();
  auto child = RunInChild([&](ChildChecks& c) {
    // As systemd's User=nobody AmbientCapabilities=CAP_NET_RAW would start it.
    if (!DropPrivileges({"nobody", {Capability::kNetRaw}})) return c.Fail("first drop");
    auto lacking = DropPrivileges({"nobody", {Capability::kNetBindService}});
    c.Expect(!lacking && lacking.error().Is(ErrorKind::kPermission) &&
                 lacking.error().message ==
                     "cannot keep CAP_NET_BIND_SERVICE: the process does not have it",
             "keeping a capability it lacks");
    auto other = DropPrivileges({"root", {}});
    c.Expect(!other && other.error().Is(ErrorKind::kPermission) &&
                 other.error().message == "root: switching user needs root (running as uid 65534)",
             "switching to another user");
    c.Expect(HasCapNetRaw(), "a refused call changes nothing");
    auto same = DropPrivileges({"nobody", {}});
    if (!same) return c.Fail("same user: " + same.error().message);
    c.Expect(!same->switched_user, "switched_user is false");
    c.Expect(same->summary == "not root (uid 65534): user unchanged, no capabilities",
             "summary: " + same->summary);
    ExpectIds(c, nobody);
    c.Expect(!HasCapNetRaw() && ThreadCaps().permitted == 0, "capabilities reduced");
    auto unnamed = DropPrivileges({"", {}});
    c.Expect(unnamed.has_value(), "no user when not root");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(DropPrivileges, EarlierThreadsSwitchUserAndHaveNoCapabilities) {
  ISOBOOT_REQUIRE_ROOT();
  const Nobody nobody = LookUpNobody();
  auto child = RunInChild([&](ChildChecks& c) {
    int go[2];
    if (pipe(go) != 0) return c.Fail("pipe");
    uid_t early_uid = 0;
    Sets early_caps{~0ull, ~0ull, ~0ull};
    std::thread early([&] {
      char b;
      if (read(go[0], &b, 1) != 1) return;
      uid_t r, e, s;
      getresuid(&r, &e, &s);
      early_uid = r == e && e == s ? r : 0;
      early_caps = ThreadCaps();
    });
    auto report = DropPrivileges({"nobody", {Capability::kNetRaw}});
    [[maybe_unused]] ssize_t n = write(go[1], "g", 1);
    early.join();
    if (!report) return c.Fail("DropPrivileges: " + report.error().message);
    c.Expect(report->summary.find("1 earlier thread(s) have no capabilities") != std::string::npos,
             "summary: " + report->summary);
    c.Expect(early_uid == nobody.uid, "an earlier thread runs as nobody");
    c.Expect(early_caps.effective == 0 && early_caps.permitted == 0, "and has no capabilities");
    bool later_raw = false;
    std::thread later([&] { later_raw = HasCapNetRaw(); });
    later.join();
    c.Expect(later_raw, "a later thread inherits CAP_NET_RAW");
  });
  EXPECT_TRUE(Passed(child));
}

}  // namespace
}  // namespace isoboot::sys
