// Names, sizes and read keys of the backup store (the store's HTTP behaviour
// is tested end to end in store_test.sh).
#include "serve/backup_store.h"

#include <memory>
#include <variant>

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

TEST(BackupStoreSizes, Parse) {
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
  for (KeyRight right : {KeyRight::kRead, KeyRight::kWrite}) {
    EXPECT_EQ(sa.Key("n1", right).size(), 32u);
    EXPECT_EQ(sa.Key("n1", right), sa.Key("n1", right));
    EXPECT_NE(sa.Key("n1", right), sa.Key("n2", right));
    EXPECT_NE(sa.Key("n1", right), sb.Key("n1", right));
  }
  EXPECT_NE(sa.Key("n1", KeyRight::kRead), sa.Key("n1", KeyRight::kWrite));
  EXPECT_EQ(sa.Key("n1", KeyRight::kWrite), DeriveKey("secret-a", "n1", KeyRight::kWrite));
  EXPECT_TRUE(sa.Nodes().empty());
}

// Who may do what, decided before any file is touched: the status of a GET
// (404 when allowed: nothing is stored) and whether a PUT starts an upload.
class BackupStoreAccess : public ::testing::Test {
 protected:
  BackupStoreAccess() : dir_("serve-store-access") {
    BackupStoreOptions o;
    o.dir = (dir_ / "store").string();
    o.token = "admin-token";
    store_ = std::make_unique<BackupStore>(o, GetLogger("test"));
  }
  unsigned GetStatus(const std::string& name, const std::string& query,
                     const std::string& authorization = "") {
    http::StoreRequest r;
    r.method = "GET";
    r.name = name;
    r.query = query;
    r.authorization = authorization;
    auto answer = store_->Get(r);
    return std::holds_alternative<http::StoreReply>(answer)
               ? std::get<http::StoreReply>(answer).status
               : 200;
  }
  unsigned PutStatus(const std::string& name, const std::string& query,
                     const std::string& authorization) {
    http::StoreRequest r;
    r.method = "PUT";
    r.name = name;
    r.query = query;
    r.authorization = authorization;
    auto answer = store_->Put(r);
    return std::holds_alternative<http::StoreReply>(answer)
               ? std::get<http::StoreReply>(answer).status
               : 100;  // an upload started
  }
  std::string Bearer(const std::string& secret) { return "Bearer " + secret; }

  test::TempDir dir_;
  std::unique_ptr<BackupStore> store_;
  const std::string a_ = "52-54-00-00-00-0a", b_ = "52-54-00-00-00-0b";
};

TEST_F(BackupStoreAccess, AdminTokenDoesEverything) {
  EXPECT_EQ(GetStatus(a_, "", Bearer("admin-token")), 404u);
  EXPECT_EQ(GetStatus(a_ + "/", "", Bearer("admin-token")), 404u);
  EXPECT_EQ(PutStatus(a_, "", Bearer("admin-token")), 100u);
  EXPECT_EQ(PutStatus("any-name", "", Bearer("admin-token")), 100u);
}

TEST_F(BackupStoreAccess, AWriteKeyReachesItsOwnNameOnly) {
  const std::string wa = store_->Key(a_, KeyRight::kWrite);
  EXPECT_EQ(PutStatus(a_, "", Bearer(wa)), 100u);
  EXPECT_EQ(PutStatus(a_, "key=" + wa, ""), 100u);
  EXPECT_EQ(GetStatus(a_, "", Bearer(wa)), 404u);
  EXPECT_EQ(GetStatus(a_, "key=" + wa), 404u);
  // Node A's key on node B's name: refused, reading and writing.
  EXPECT_EQ(PutStatus(b_, "", Bearer(wa)), 403u);
  EXPECT_EQ(PutStatus(b_, "key=" + wa, ""), 403u);
  EXPECT_EQ(GetStatus(b_, "key=" + wa), 403u);
  EXPECT_EQ(GetStatus(b_, "", Bearer(wa)), 403u);
  // The same MAC written another way is the same name.
  EXPECT_EQ(PutStatus("52:54:00:00:00:0A", "", Bearer(wa)), 100u);
}

TEST_F(BackupStoreAccess, AReadKeyReadsItsOwnNameAndWritesNothing) {
  const std::string ra = store_->Key(a_, KeyRight::kRead);
  EXPECT_EQ(GetStatus(a_, "key=" + ra), 404u);
  EXPECT_EQ(GetStatus(a_ + "/", "key=" + ra), 404u);
  EXPECT_EQ(GetStatus(b_, "key=" + ra), 403u);
  EXPECT_EQ(PutStatus(a_, "key=" + ra, ""), 403u);
  EXPECT_EQ(PutStatus(a_, "", Bearer(ra)), 403u);
}

TEST_F(BackupStoreAccess, NoOrWrongCredentials) {
  EXPECT_EQ(GetStatus(a_, ""), 401u);
  EXPECT_EQ(PutStatus(a_, "", ""), 401u);
  EXPECT_EQ(GetStatus(a_, "key=00000000000000000000000000000000"), 403u);
  EXPECT_EQ(GetStatus(a_, "", Bearer("wrong")), 403u);
  EXPECT_EQ(PutStatus(a_, "", Bearer("wrong")), 403u);
  EXPECT_EQ(PutStatus(a_, "", "Basic YWRtaW4tdG9rZW4="), 403u);
  // A token for another store (another secret) is worth nothing here.
  EXPECT_EQ(PutStatus(a_, "", Bearer(DeriveKey("other", a_, KeyRight::kWrite))), 403u);
}

}  // namespace
}  // namespace isoboot::serve
