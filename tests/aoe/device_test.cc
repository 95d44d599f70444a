#include "aoe/device.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::aoe {
namespace {

class DeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_ / "device").string();
    bytes_.resize(3 * 512 + 100);
    for (size_t i = 0; i < bytes_.size(); ++i)
      bytes_[i] = static_cast<uint8_t>(i * 13);
    test::WriteFile(path_,
                    std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size()));
  }

  void Check(BlockDevice& d) {
    EXPECT_EQ(d.size_bytes(), bytes_.size());
    std::vector<uint8_t> buf(1024);
    ASSERT_TRUE(d.Read(512, buf));
    EXPECT_TRUE(std::equal(buf.begin(), buf.end(), bytes_.begin() + 512));
    EXPECT_FALSE(d.Read(bytes_.size() - 10, std::span(buf).first(11)));
  }

  test::TempDir dir_{"aoe-device"};
  std::string path_;
  std::vector<uint8_t> bytes_;
};

TEST_F(DeviceTest, MappedReadsTheFile) {
  auto d = MappedDevice::Open(path_);
  Check(*d);
  std::vector<uint8_t> one(1);
  EXPECT_FALSE(d->Write(0, one));
}

TEST_F(DeviceTest, FileReadsAndWrites) {
  auto d = FileDevice::Open(path_, true, false);
  Check(*d);
  std::vector<uint8_t> data(512, 0x77);
  ASSERT_TRUE(d->Write(1024, data));
  ASSERT_TRUE(d->Flush());
  std::vector<uint8_t> back(512);
  ASSERT_TRUE(d->Read(1024, back));
  EXPECT_EQ(back, data);
}

TEST_F(DeviceTest, MissingFileThrows) {
  EXPECT_THROW(MappedDevice::Open(path_ + ".missing"), std::system_error);
  EXPECT_THROW(FileDevice::Open(path_ + ".missing", false, false), std::system_error);
}

}  // namespace
}  // namespace isoboot::aoe
