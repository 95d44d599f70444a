// Names, sizes and read keys of the backup store (the store's HTTP behaviour
// is tested end to end in store_test.sh).
#include "serve/backup_store.h"

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace isoboot::serve {
namespace {

TEST(BackupStoreNames, MacsInAnyFormAreOneName) {
  EXPECT_EQ(BackupStore::CanonicalName("52:54:00:AB:cd:01"), "52-54-00-ab-cd-01");
  EXPECT_EQ(BackupStore::CanonicalName("52-54-00-ab-cd-01"), "52-54-00-ab-cd-01");
  EXPECT_EQ(BackupStore::CanonicalName("525400abcd01"), "52-54-00-ab-cd-01");
}

TEST(BackupStoreNames, RefusesWhatCouldLeaveTheDirectory) {
  for (const char* bad : {"", ".", "..", ".token", "a/b", "../x", "a b", "x\n", "%2e", "a\\b"}) {
    EXPECT_EQ(BackupStore::CanonicalName(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(BackupStore::CanonicalName(std::string(129, 'a')), std::nullopt);
  EXPECT_EQ(BackupStore::CanonicalName(std::string(128, 'a')), std::string(128, 'a'));
  EXPECT_EQ(BackupStore::CanonicalName("pit-node_1.v2:x"), "pit-node_1.v2:x");
}

TEST(BackupStoreSizes, Units) {
  EXPECT_EQ(FormatSize(900), "900 bytes");
  EXPECT_EQ(FormatSize(1 << 20), "1 MiB");
  EXPECT_EQ(FormatSize(1153434), "1.1 MiB");
  EXPECT_EQ(FormatSize(8ull << 30), "8 GiB");
  EXPECT_EQ(ParseSize("123"), 123u);
  EXPECT_EQ(ParseSize("1K"), 1024u);
  EXPECT_EQ(ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(ParseSize("8G"), 8ull << 30);
  EXPECT_EQ(ParseSize("2T"), 2ull << 40);
  for (const char* bad : {"", "G", "1.5G", "-1", "1GB", "99999999999999999999", "20000000T"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << bad;
  }
}

TEST(BackupStoreKeys, DependOnTokenAndName) {
  test::TempDir dir("serve-store");
  BackupStoreOptions a;
  a.dir = (dir / "a").string();
  a.token = "secret-a";
  BackupStoreOptions b = a;
  b.dir = (dir / "b").string();
  b.token = "secret-b";
  BackupStore sa(a, GetLogger("test")), sb(b, GetLogger("test"));
  EXPECT_EQ(sa.ReadKey("n1").size(), 32u);
  EXPECT_EQ(sa.ReadKey("n1"), sa.ReadKey("n1"));
  EXPECT_NE(sa.ReadKey("n1"), sa.ReadKey("n2"));
  EXPECT_NE(sa.ReadKey("n1"), sb.ReadKey("n1"));
  EXPECT_TRUE(sa.Nodes().empty());
}

}  // namespace
}  // namespace isoboot::serve
