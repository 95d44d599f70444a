#include "initrd/reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include "iso/image.h"

namespace isoboot::initrd {
namespace {

constexpr size_t kChunk = 64u << 10;

// A compressed member as libarchive reads it: from `offset` to the end.
struct Source {
  const ReadAt* read = nullptr;
  uint64_t offset = 0;
  uint64_t end = 0;
  std::vector<uint8_t> buffer = std::vector<uint8_t>(kChunk);
  std::optional<Error> error;
};

la_ssize_t ReadCallback(struct archive* a, void* data, const void** out) {
  auto* s = static_cast<Source*>(data);
  size_t n = static_cast<size_t>(std::min<uint64_t>(s->buffer.size(), s->end - s->offset));
  if (n == 0) return 0;
  auto got = (*s->read)(s->offset, std::span<uint8_t>(s->buffer.data(), n));
  if (!got) {
    s->error = got.error();
    archive_set_error(a, EIO, "%s", got.error().message.c_str());
    return ARCHIVE_FATAL;
  }
  s->offset += *got;
  *out = s->buffer.data();
  return static_cast<la_ssize_t>(*got);
}

// Only libarchive's built-in decoders: filter_all would also run external
// programs (lzop, lrzip...) for some formats, which serve's system call
// filter forbids and which an image should never make us start.
int SupportFilter(struct archive* a, Compression c) {
  switch (c) {
    case Compression::kGzip:
      return archive_read_support_filter_gzip(a);
    case Compression::kBzip2:
      return archive_read_support_filter_bzip2(a);
    case Compression::kLzma:
      return archive_read_support_filter_lzma(a);
    case Compression::kXz:
      return archive_read_support_filter_xz(a);
    case Compression::kLz4:
      return archive_read_support_filter_lz4(a);
    case Compression::kZstd:
      return archive_read_support_filter_zstd(a);
    case Compression::kLzo:
    case Compression::kNone:
    case Compression::kUnknown:
      break;
  }
  return ARCHIVE_FATAL;
}

// Decompresses the member at `offset` into `stream`.
Result<void> Unpack(const ReadAt& read, uint64_t offset, uint64_t size, Compression c,
                    CpioStream& stream, uint64_t& unpacked, const ReadLimits& limits) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(),
                                                              archive_read_free);
  if (!a) throw std::bad_alloc();
  auto context = [&](std::string_view what) {
    return fmt::format("{} member at byte {}: {}", ToString(c), offset, what);
  };
  // libarchive may fail without a message (a null string).
  auto failure = [](struct archive* ar) {
    const char* text = archive_error_string(ar);
    return std::string(text ? text : "not a valid compressed stream");
  };
  if (SupportFilter(a.get(), c) != ARCHIVE_OK) {
    return MakeError(ErrorKind::kUnsupported,
                     context("this build of libarchive has no built-in decoder for it"));
  }
  archive_read_support_format_raw(a.get());
  Source source;
  source.read = &read;
  source.offset = offset;
  source.end = size;
  if (archive_read_open(a.get(), &source, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    if (source.error) return *source.error;
    return MakeError(context(failure(a.get())));
  }
  struct archive_entry* entry = nullptr;
  if (archive_read_next_header(a.get(), &entry) != ARCHIVE_OK) {
    if (source.error) return *source.error;
    return MakeError(context(failure(a.get())));
  }
  std::vector<uint8_t> out(kChunk);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), out.data(), out.size());
    if (n == 0) break;
    if (n < 0) {
      if (source.error) return *source.error;
      return MakeError(context(failure(a.get())));
    }
    unpacked += static_cast<uint64_t>(n);
    if (unpacked > limits.max_unpacked) {
      return MakeError(ErrorKind::kExhausted,
                       fmt::format("unpacks to more than {} bytes", limits.max_unpacked));
    }
    auto fed = stream.Feed(std::span<const uint8_t>(out.data(), static_cast<size_t>(n)));
    if (!fed) return MakeError(fed.error().kind, context(fed.error().message));
    if (stream.stopped()) {
      return MakeError(context(fmt::format(
          "byte {} of the unpacked data is neither padding nor the start of a cpio archive",
          stream.offset())));
    }
  }
  if (!stream.at_boundary()) return MakeError(context("ends " + stream.Where()));
  return {};
}

}  // namespace

Result<InitrdFiles> ReadInitrd(const ReadAt& read, uint64_t size, const WantPath& want,
                               const ReadLimits& limits) {
  InitrdFiles files;
  auto want_entry = [&](const CpioEntry& e) { return want && want(e.name); };
  auto on_entry = [&](const CpioEntry& e, const std::vector<uint8_t>* content) {
    files.paths.push_back(e.name);
    if (content) files.contents[e.name] = std::string(content->begin(), content->end());
  };
  CpioStream plain(limits.cpio, want_entry, on_entry);
  std::vector<uint8_t> buffer(kChunk);
  uint64_t offset = 0;
  bool plain_member = false;
  while (offset < size) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - offset));
    auto got = read(offset, std::span<uint8_t>(buffer.data(), n));
    if (!got) return got.error();
    if (*got == 0) return MakeError(ErrorKind::kIo, fmt::format("short read at byte {}", offset));
    auto fed = plain.Feed(std::span<const uint8_t>(buffer.data(), *got));
    if (!fed) return fed.error();
    if (*fed > 0 && !plain_member && plain.entries() > 0) plain_member = true;
    offset += *fed;
    if (!plain.stopped()) continue;
    if (plain_member) files.members.push_back(Compression::kNone);
    uint8_t magic[6] = {};
    auto head = read(offset, std::span<uint8_t>(magic, std::min<uint64_t>(6, size - offset)));
    if (!head) return head.error();
    Compression c = DetectCompression(std::span<const uint8_t>(magic, *head));
    if (c == Compression::kUnknown || c == Compression::kNone) {
      return MakeError(
          fmt::format("byte {}: neither a cpio archive nor a compressed member (starts {:02x})",
                      offset, fmt::join(std::span<const uint8_t>(magic, *head), " ")));
    }
    files.members.push_back(c);
    // The unpacked member is a stream of its own: its archives are aligned
    // to its own start.
    CpioStream inner(limits.cpio, want_entry, on_entry);
    uint64_t unpacked = plain.offset();
    auto r = Unpack(read, offset, size, c, inner, unpacked, limits);
    if (!r) return r.error();
    files.unpacked_bytes = unpacked;
    return files;
  }
  if (!plain.at_boundary()) return MakeError("initrd ends " + plain.Where());
  if (plain_member) files.members.push_back(Compression::kNone);
  files.unpacked_bytes = plain.offset();
  return files;
}

Result<InitrdFiles> ReadInitrd(std::span<const uint8_t> bytes, const WantPath& want,
                               const ReadLimits& limits) {
  ReadAt read = [bytes](uint64_t offset, std::span<uint8_t> out) -> Result<size_t> {
    if (offset >= bytes.size()) return size_t{0};
    size_t n = std::min<size_t>(out.size(), bytes.size() - offset);
    std::memcpy(out.data(), bytes.data() + offset, n);
    return n;
  };
  return ReadInitrd(read, bytes.size(), want, limits);
}

Result<InitrdFiles> ReadInitrd(const iso::Image& image, const iso::Node& node, const WantPath& want,
                               const ReadLimits& limits) {
  ReadAt read = [&](uint64_t offset, std::span<uint8_t> out) -> Result<size_t> {
    try {
      return image.Read(node, offset, out);
    } catch (const std::system_error& e) {
      return OsError(e.code().value(), "reading the initrd");
    }
  };
  return ReadInitrd(read, node.size, want, limits);
}

}  // namespace isoboot::initrd
