#include "serve/image_device.h"

#include <string>

#include <gtest/gtest.h>

#include "iso/image.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

namespace isoboot::serve {
namespace {

using test::Quote;

// A small ISO whose one file holds `seed`'s bytes, so two images differ.
std::shared_ptr<const iso::Image> MakeImage(const test::TempDir& dir, const std::string& name,
                                            uint32_t seed) {
  auto tree = dir / (name + ".tree");
  test::WriteFile(tree / "data", test::RandomBytes(8192, seed));
  auto iso = dir / (name + ".iso");
  auto r = test::RunCommand("xorriso -as mkisofs -quiet -R -o " + Quote(iso.string()) + " " +
                            Quote(tree.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto image = iso::Image::Open(iso.string());
  EXPECT_TRUE(image) << image.error().message;
  return std::shared_ptr<const iso::Image>(std::move(*image));
}

aoe::Mac MacOf(uint32_t i) {
  return {0x02,
          0,
          static_cast<uint8_t>(i >> 24),
          static_cast<uint8_t>(i >> 16),
          static_cast<uint8_t>(i >> 8),
          static_cast<uint8_t>(i)};
}

TEST(ImageDeviceTest, UnboundReadsCreateNoBindingAndFollowTheCurrentImage) {
  test::TempDir dir("image-device");
  auto a = MakeImage(dir, "a", 1);
  auto b = MakeImage(dir, "b", 2);
  ImageDevice::Slot slot(a);
  for (uint32_t i = 0; i < 10000; ++i)
    EXPECT_EQ(slot.For(MacOf(i)), a);
  EXPECT_EQ(slot.bound(), 0u);  // reads alone remember nobody
  slot.Replace(b);
  EXPECT_EQ(slot.For(MacOf(1)), b);
  EXPECT_EQ(slot.bound(), 0u);
}

TEST(ImageDeviceTest, BoundClientKeepsItsImageAcrossARebuild) {
  test::TempDir dir("image-device");
  auto a = MakeImage(dir, "a", 1);
  auto b = MakeImage(dir, "b", 2);
  ImageDevice::Slot slot(a);
  slot.Bind(MacOf(7));
  slot.Replace(b);
  EXPECT_EQ(slot.For(MacOf(7)), a);  // booted from a: stays on a
  EXPECT_EQ(slot.For(MacOf(8)), b);  // never booted: the current one
  slot.Bind(MacOf(7));               // boots again: the newest
  EXPECT_EQ(slot.For(MacOf(7)), b);
}

TEST(ImageDeviceTest, BindingsAreBoundedAndForgetTheLeastRecentlyUsed) {
  test::TempDir dir("image-device");
  auto a = MakeImage(dir, "a", 1);
  auto b = MakeImage(dir, "b", 2);
  ImageDevice::Slot slot(a, 4);
  for (uint32_t i = 0; i < 4; ++i)
    slot.Bind(MacOf(i));
  slot.Replace(b);
  EXPECT_EQ(slot.For(MacOf(0)), a);  // 0 is now the most recently used
  for (uint32_t i = 100; i < 103; ++i)
    slot.Bind(MacOf(i));  // pushes out 1, 2, 3
  EXPECT_EQ(slot.bound(), 4u);
  EXPECT_EQ(slot.forgotten(), 3u);
  EXPECT_EQ(slot.For(MacOf(0)), a);
  EXPECT_EQ(slot.For(MacOf(1)), b);  // forgotten: reads the current image
  // Only the bindings hold the old image open, so it closes with them.
  std::weak_ptr<const iso::Image> old = a;
  a.reset();
  for (uint32_t i = 200; i < 204; ++i)
    slot.Bind(MacOf(i));
  EXPECT_TRUE(old.expired());
}

TEST(ImageDeviceTest, DefaultCapacityHoldsAFleetAndNoMore) {
  test::TempDir dir("image-device");
  auto a = MakeImage(dir, "a", 1);
  ImageDevice::Slot slot(a);
  for (uint32_t i = 0; i < 100000; ++i)
    slot.Bind(MacOf(i));
  EXPECT_EQ(slot.bound(), ImageDevice::Slot::kMaxBoundNodes);
}

TEST(ImageDeviceTest, ReadForServesTheBoundImagesBytes) {
  test::TempDir dir("image-device");
  auto a = MakeImage(dir, "a", 1);
  auto b = MakeImage(dir, "b", 2);
  ASSERT_EQ(a->size(), b->size());
  ImageDevice device(a);
  device.slot()->Bind(MacOf(1));
  device.slot()->Replace(b);
  std::vector<uint8_t> ra(a->size()), rb(b->size());
  ASSERT_TRUE(device.ReadFor(MacOf(1), 0, ra));
  ASSERT_TRUE(device.ReadFor(MacOf(2), 0, rb));
  EXPECT_NE(ra, rb);
  std::vector<uint8_t> first(a->size());
  ASSERT_TRUE(device.Read(0, first));
  EXPECT_EQ(first, ra);
  EXPECT_EQ(device.slot()->bound(), 1u);
  EXPECT_FALSE(device.ReadFor(MacOf(2), a->size() - 100, std::span(rb).first(512)));
}

}  // namespace
}  // namespace isoboot::serve
