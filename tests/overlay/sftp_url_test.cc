// ssh:// URL parsing for the SFTP destination (overlay/sftp.h). The transfer
// itself is tested against OpenSSH in sftp_test.sh.

#include <gtest/gtest.h>

#include "overlay/sftp.h"

namespace isoboot::overlay {
namespace {

TEST(SshUrl, Full) {
  auto u = ParseSshUrl("ssh://backup@store.lan:2222/srv/backups/node1.tar.zst");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->user, "backup");
  EXPECT_EQ(u->host, "store.lan");
  EXPECT_EQ(u->port, 2222);
  EXPECT_EQ(u->path, "/srv/backups/node1.tar.zst");
}

TEST(SshUrl, Defaults) {
  auto u = ParseSshUrl("ssh://store/b");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->port, 0);
  EXPECT_EQ(u->path, "/b");
}

TEST(SshUrl, HomeRelativeAndSftpScheme) {
  auto u = ParseSshUrl("sftp://me@host/~/backups/b.tar.zst");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->path, "backups/b.tar.zst");
}

TEST(SshUrl, Ipv6) {
  auto u = ParseSshUrl("ssh://root@[fd00::1]:22/b");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->host, "fd00::1");
  EXPECT_EQ(u->port, 22);
  u = ParseSshUrl("ssh://[::1]/b");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 0);
}

TEST(SshUrl, Rejected) {
  for (const char* bad :
       {"ssh://host", "ssh:///path", "ssh://@host/p", "ssh://host:/p", "ssh://host:0/p",
        "ssh://host:65536/p", "ssh://host:22x/p", "ssh://[::1/p", "ssh://[::1]x/p", "ssh://host/",
        "ssh://host/dir/", "ssh://host/~/", "http://host/p"}) {
    auto u = ParseSshUrl(bad);
    EXPECT_FALSE(u) << bad;
    if (!u) {
      EXPECT_NE(u.error().message.find(bad), std::string::npos) << u.error().message;
    }
  }
}

TEST(SshUrl, IsSshUrl) {
  EXPECT_TRUE(IsSshUrl("ssh://h/p"));
  EXPECT_TRUE(IsSshUrl("sftp://h/p"));
  EXPECT_FALSE(IsSshUrl("/tmp/ssh://x"));
  EXPECT_FALSE(IsSshUrl("https://h/p"));
}

}  // namespace
}  // namespace isoboot::overlay
