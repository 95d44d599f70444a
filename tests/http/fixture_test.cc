// The helpers of fixture.h, and tests of the helpers that parse responses.
#include "tests/http/fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "base/logging.h"
#include "iso/image.h"

namespace isoboot::http::testing {

int Sh(const std::string& command, std::string* out) {
  test::CommandResult r = test::RunCommand(command);
  if (out) *out += r.out;
  return r.exit_code;
}

Head ParseHead(std::string_view text) {
  // curl -D appends one head per response; keep the last.
  size_t start = text.rfind("HTTP/");
  Head head;
  if (start == std::string_view::npos) return head;
  text.remove_prefix(start);
  size_t sp = text.find(' ');
  if (sp != std::string_view::npos) {
    std::from_chars(text.data() + sp + 1, text.data() + text.size(), head.status);
  }
  size_t pos = text.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < text.size()) {
    size_t end = text.find("\r\n", pos + 2);
    std::string_view line = text.substr(pos + 2, end - pos - 2);
    pos = end;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    head.fields[name] = std::string(value);
  }
  return head;
}

bool ParseContentRange(std::string_view v, Part& part) {
  if (!v.starts_with("bytes ")) return false;
  v.remove_prefix(6);
  auto dash = v.find('-'), slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return false;
  }
  auto num = [](std::string_view s, uint64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
  };
  return num(v.substr(0, dash), part.first) &&
         num(v.substr(dash + 1, slash - dash - 1), part.last) &&
         num(v.substr(slash + 1), part.total);
}

std::optional<std::vector<Part>> ParseMultipart(std::string_view body, std::string_view boundary) {
  const std::string delim = "--" + std::string(boundary);
  std::vector<Part> parts;
  size_t pos = 0;
  // The body starts with the first delimiter (no preamble is sent).
  if (body.substr(0, delim.size()) != delim) {
    ADD_FAILURE() << "multipart body does not start with the boundary";
    return std::nullopt;
  }
  pos = delim.size();
  while (true) {
    if (body.substr(pos, 4) == "--\r\n" && pos + 4 == body.size()) return parts;
    if (body.substr(pos, 2) != "\r\n") break;
    size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) break;
    Head head = ParseHead("HTTP/1.1 206 x" + std::string(body.substr(pos, head_end - pos + 2)));
    Part part;
    if (!ParseContentRange(head.Get("content-range"), part) || part.last < part.first) break;
    size_t data = head_end + 4;
    part.data = std::string(body.substr(data, part.last - part.first + 1));
    pos = data + part.data.size();
    if (body.substr(pos, 2 + delim.size()) != "\r\n" + delim) break;
    pos += 2 + delim.size();
    parts.push_back(std::move(part));
  }
  ADD_FAILURE() << "malformed multipart body near byte " << pos;
  return std::nullopt;
}

namespace {

class Fragmented final : public vfs::Source {
 public:
  struct Extent {
    uint64_t logical, file_offset, length;
  };
  Fragmented(int fd, std::vector<Extent> extents, uint64_t size)
      : fd_(fd), extents_(std::move(extents)), size_(size) {}
  ~Fragmented() override { ::close(fd_); }
  uint64_t size() const override { return size_; }
  int64_t mtime() const override { return 1700000000; }
  Result<size_t> Read(uint64_t offset, std::span<uint8_t> out) const override {
    size_t done = 0;
    while (done < out.size() && offset + done < size_) {
      auto span = Contiguous(offset + done);
      size_t n = static_cast<size_t>(std::min<uint64_t>(span->length, out.size() - done));
      ssize_t r = ::pread(fd_, out.data() + done, n, static_cast<off_t>(span->file_offset));
      if (r <= 0) return MakeError("pread failed");
      done += static_cast<size_t>(r);
    }
    return done;
  }
  std::optional<vfs::FileSpan> Contiguous(uint64_t offset) const override {
    for (const Extent& e : extents_) {
      if (offset >= e.logical && offset < e.logical + e.length) {
        return vfs::FileSpan{fd_, e.file_offset + (offset - e.logical),
                             e.length - (offset - e.logical)};
      }
    }
    return std::nullopt;
  }
  std::string Etag() const override { return "fragmented-1"; }

 private:
  int fd_;
  std::vector<Extent> extents_;
  uint64_t size_;
};

}  // namespace

vfs::SourcePtr FragmentedSource(const std::string& file, const std::string& content,
                                uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Fragmented::Extent> extents;
  for (uint64_t pos = 0; pos < content.size();) {
    uint64_t len = std::min<uint64_t>(1 + rng() % 20000, content.size() - pos);
    extents.push_back({pos, 0, len});
    pos += len;
  }
  std::vector<size_t> order(extents.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::string bytes;
  for (size_t i : order) {
    bytes.append(rng() % 300, 'x');  // a gap that must never be sent
    extents[i].file_offset = bytes.size();
    bytes.append(content, extents[i].logical, extents[i].length);
  }
  WriteFile(file, bytes);
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + file);
  return std::make_shared<Fragmented>(fd, std::move(extents), content.size());
}

ServedTree::ServedTree(const TempDir& dir) {
  std::filesystem::create_directories(dir / "root/boot/x86_64/loader");
  expected["boot/x86_64/loader/initrd"] = RandomBytes(3 * 1024 * 1024 + 123, 1);
  expected["boot/x86_64/loader/linux"] = RandomBytes(700 * 1024 + 5, 2);
  expected["small.txt"] = "hello\n";
  expected["empty"] = "";
  for (const auto& [name, data] : expected)
    WriteFile(dir / ("root/" + name), data);
  std::string log;
  if (Sh(fmt::format("xorriso -as mkisofs -R -J -V HTTPTEST -o {} {} 2>&1",
                     (dir / "test.iso").string(), (dir / "root").string()),
         &log) != 0) {
    throw std::runtime_error("xorriso failed: " + log);
  }
  std::shared_ptr<const iso::Image> shared = OrThrow(iso::Image::Open(dir / "test.iso"));
  auto t = std::make_shared<vfs::Tree>();
  vfs::AddImageFiles(*t, shared);
  t->Add("live.iso", vfs::WholeImageSource(shared));
  expected["live.iso"] = ReadFile(dir / "test.iso");
  expected["menu.ipxe"] = "#!ipxe\nkernel http://x/linux\ninitrd http://x/initrd\nboot\n";
  t->Add("menu.ipxe", vfs::TextSource(expected["menu.ipxe"], 1700000000));
  expected["frag.bin"] = RandomBytes(600 * 1024 + 7, 3);
  t->Add("frag.bin", FragmentedSource(dir / "frag.data", expected["frag.bin"], 4));
  big_path = dir / "big.bin";
  big_size = (5ull << 30) + 12345;
  WriteFile(big_path, RandomBytes(1 << 20, 5));
  if (::truncate(big_path.c_str(), static_cast<off_t>(big_size)) != 0) {
    throw std::runtime_error("cannot extend " + big_path);
  }
  int fd = ::open(big_path.c_str(), O_WRONLY | O_CLOEXEC);
  for (uint64_t at : {(uint64_t{4} << 30) - (512 << 10), big_size - (1 << 20)}) {
    std::string chunk = RandomBytes(1 << 20, static_cast<uint32_t>(at));
    if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(at)) != (1 << 20)) {
      throw std::runtime_error("cannot write " + big_path);
    }
  }
  ::close(fd);
  t->Add("big.bin", OrThrow(vfs::HostFileSource(big_path)));
  tree = std::move(t);
}

std::string ServedTree::BigBytes(uint64_t offset, uint64_t length) const {
  std::string out(length, '\0');
  int fd = ::open(big_path.c_str(), O_RDONLY | O_CLOEXEC);
  ssize_t n = ::pread(fd, out.data(), length, static_cast<off_t>(offset));
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

RunningServer::RunningServer(std::shared_ptr<const vfs::Tree> tree, ServerOptions options) {
  options.address = "127.0.0.1";
  options.port = 0;
  options.on_request = [this](const RequestRecord& r) {
    std::lock_guard lock(mu_);
    records_.push_back(r);
  };
  server_ =
      std::make_unique<Server>([tree](std::string_view) { return tree; }, options, NullLogger());
  thread_ = std::thread([this] { server_->Run(); });
}

RunningServer::~RunningServer() {
  server_->Stop();
  thread_.join();
  server_.reset();
}

std::string RunningServer::Url(std::string_view name) const {
  return fmt::format("http://127.0.0.1:{}/{}", server_->port(), name);
}

std::vector<RequestRecord> RunningServer::Records() {
  std::lock_guard lock(mu_);
  return records_;
}

std::vector<RequestRecord> RunningServer::RecordsAtLeast(size_t n) {
  for (int i = 0; i < 1000; ++i) {
    auto records = Records();
    if (records.size() >= n) return records;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Records();
}

RawClient::RawClient(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect failed");
  }
  timeval tv{30, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

RawClient::~RawClient() {
  ::close(fd_);
}

bool RawClient::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string RawClient::ReadToEnd(size_t limit) {
  std::string out;
  char buf[65536];
  while (out.size() < limit) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool RawClient::WaitClosed() {
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

TEST(FixtureTest, ParsesMultipartAndHeads) {
  std::string body =
      "--B\r\nContent-Type: x\r\nContent-Range: bytes 2-4/10\r\n\r\nabc\r\n--B\r\n"
      "Content-Range: bytes 0-0/10\r\n\r\nz\r\n--B--\r\n";
  auto parts = ParseMultipart(body, "B");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].data, "abc");
  EXPECT_EQ((*parts)[1].first, 0u);
  Head h = ParseHead(
      "HTTP/1.1 200 OK\r\nX: 1\r\n\r\nHTTP/1.1 206 Partial\r\nContent-Range: bytes 1-2/3\r\n\r\n");
  EXPECT_EQ(h.status, 206u);
  EXPECT_EQ(h.Get("content-range"), "bytes 1-2/3");
  EXPECT_EQ(h.Get("x"), "");
}

}  // namespace isoboot::http::testing
