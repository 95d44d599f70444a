// A file over 4 GiB inside a real ISO (xorriso -iso-level 3 stores it as
// several extents, each under 4 GiB): ranges across the extent boundary and
// past 4 GiB, served from the file inside the image and from the whole image.
// Costs one 4 GiB image write (about 35 s here), so it is the only such test.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "http/server.h"
#include "iso/image.h"
#include "tests/http/fixture.h"

namespace isoboot::http::testing {
namespace {

std::string Pread(const std::string& path, uint64_t offset, uint64_t length) {
  std::string out(length, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ssize_t n = ::pread(fd, out.data(), length, static_cast<off_t>(offset));
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

TEST(ServerLargeTest, MultiExtentFileInARealIso) {
  TempDir dir;
  std::filesystem::create_directories(dir / "root");
  const std::string big = dir / "root/big.bin";
  const uint64_t size = (uint64_t{4} << 30) + (3 << 20);
  // Sparse, with random bytes where the extents meet and at the end.
  WriteFile(big, RandomBytes(1 << 20, 7));
  ASSERT_EQ(::truncate(big.c_str(), static_cast<off_t>(size)), 0);
  int fd = ::open(big.c_str(), O_WRONLY | O_CLOEXEC);
  for (uint64_t at : {(uint64_t{4} << 30) - (1 << 20), size - (1 << 20)}) {
    std::string chunk = RandomBytes(1 << 20, static_cast<uint32_t>(at >> 20));
    ASSERT_EQ(::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(at)), 1 << 20);
  }
  ::close(fd);
  std::string log;
  ASSERT_EQ(Sh(fmt::format("xorriso -as mkisofs -R -iso-level 3 -o {} {} 2>&1",
                           (dir / "big.iso").string(), (dir / "root").string()),
               &log),
            0)
      << log;
  auto opened = iso::Image::Open(dir / "big.iso");
  ASSERT_TRUE(opened) << opened.error().message;
  std::shared_ptr<const iso::Image> image(std::move(*opened));
  const iso::Node* node = image->tree().Find("/big.bin");
  ASSERT_NE(node, nullptr);
  ASSERT_GE(node->extents.size(), 2u) << "xorriso was expected to split the file";
  const uint64_t boundary = node->extents[0].length;  // where the second extent starts

  auto tree = std::make_shared<vfs::Tree>();
  vfs::AddImageFiles(*tree, image);
  tree->Add("live.iso", vfs::WholeImageSource(image));
  RunningServer server(tree, ServerOptions{});

  auto fetch = [&](const std::string& name, const std::string& range, std::string& body) {
    const std::string h = dir / "h", b = dir / "b";
    EXPECT_EQ(Sh(fmt::format("curl -s -S --max-time 120 -r {} -D {} -o {} '{}'", range, h, b,
                             server.Url(name))),
              0);
    body = ReadFile(b);
    return ParseHead(ReadFile(h));
  };
  for (auto [first, last] : {std::pair{boundary - 100, boundary + 100},
                             {boundary - 700000, boundary + 300000},
                             {(uint64_t{4} << 30) - 10, (uint64_t{4} << 30) + 10},
                             {size - 4096, size - 1}}) {
    SCOPED_TRACE(fmt::format("{}-{}", first, last));
    std::string body;
    Head h = fetch("big.bin", fmt::format("{}-{}", first, last), body);
    EXPECT_EQ(h.status, 206u);
    EXPECT_EQ(h.Get("content-range"), fmt::format("bytes {}-{}/{}", first, last, size));
    EXPECT_TRUE(body == Pread(big, first, last - first + 1));
  }
  // Multipart across the boundary, and the whole image past 4 GiB.
  std::string body;
  Head h = fetch("big.bin", fmt::format("0-99,{}-{}", boundary - 5, boundary + 5), body);
  ASSERT_EQ(h.status, 206u);
  std::string type = h.Get("content-type");
  auto parts = ParseMultipart(body, type.substr(type.find('=') + 1));
  ASSERT_TRUE(parts && parts->size() == 2);
  EXPECT_TRUE((*parts)[1].data == Pread(big, boundary - 5, 11));
  const uint64_t image_size = image->size();
  h = fetch("live.iso", fmt::format("{}-", image_size - 3000000), body);
  EXPECT_EQ(h.status, 206u);
  EXPECT_TRUE(body == Pread(dir / "big.iso", image_size - 3000000, 3000000));
}

}  // namespace
}  // namespace isoboot::http::testing
