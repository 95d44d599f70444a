#include "iso/grow.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "iso/image.h"
#include "iso/libisofs_init.h"

namespace isoboot::iso {
namespace {

constexpr uint64_t kBlock = 2048;
// What libisofs rewrites at the start of an overwriteable medium: the
// system area (16 blocks) and the volume descriptors.
constexpr size_t kHeadBytes = 32 * kBlock;
// Sessions start on a 32 KiB boundary, as xorriso puts them on a disk file.
constexpr uint64_t kSessionAlign = 16 * kBlock;

// The base image's blocks, read with pread from the opened file (already
// checked by Image::Open).
int SourceRead(IsoDataSource* src, uint32_t lba, uint8_t* buffer) {
  const auto* image = static_cast<const Image*>(src->data);
  uint64_t at = uint64_t{lba} * kBlock;
  if (at + kBlock > image->size()) return static_cast<int>(ISO_DATA_SOURCE_FAILURE);
  size_t done = 0;
  while (done < kBlock) {
    ssize_t n = ::pread(image->fd(), buffer + done, kBlock - done, static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return static_cast<int>(ISO_DATA_SOURCE_FAILURE);
    done += static_cast<size_t>(n);
  }
  return ISO_SUCCESS;
}

std::string LibisofsError(std::string_view what, int code) {
  const char* msg = iso_error_to_msg(code);
  return fmt::format("{}: {}", what, msg ? msg : fmt::format("libisofs error {:#x}", code));
}

// The directory at `path` ("/a/b"), made where missing with the times of
// `mtime`, so the same inputs grow the same bytes.
Result<IsoDir*> MakeDirs(IsoImage* image, std::string_view path, int64_t mtime) {
  IsoDir* dir = iso_image_get_root(image);
  while (!path.empty()) {
    while (path.starts_with('/'))
      path.remove_prefix(1);
    size_t slash = path.find('/');
    std::string name(path.substr(0, slash));
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash);
    if (name.empty()) continue;
    IsoNode* node = nullptr;
    if (iso_dir_get_node(dir, name.c_str(), &node) == 1) {
      if (iso_node_get_type(node) != LIBISO_DIR) {
        return MakeError(fmt::format("{} is in the image and not a directory", name));
      }
      dir = reinterpret_cast<IsoDir*>(node);
      continue;
    }
    IsoDir* made = nullptr;
    int rc = iso_tree_add_new_dir(dir, name.c_str(), &made);
    if (rc < 0) return MakeError(LibisofsError("cannot add directory " + name, rc));
    auto* node_made = reinterpret_cast<IsoNode*>(made);
    iso_node_set_permissions(node_made, 0755);
    iso_node_set_mtime(node_made, mtime);
    iso_node_set_atime(node_made, mtime);
    iso_node_set_ctime(node_made, mtime);
    dir = made;
  }
  return dir;
}

Result<void> Add(IsoImage* image, const AddedEntry& e, int64_t dir_mtime) {
  std::string_view path = e.path;
  size_t slash = path.rfind('/');
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (!path.starts_with('/') || name.empty() || name == "." || name == ".." ||
      path.find("//") != std::string_view::npos || path.find('\0') != std::string_view::npos) {
    return MakeError(fmt::format("{:?}: not an absolute path of a file in an image", e.path));
  }
  auto dir = MakeDirs(image, path.substr(0, slash), dir_mtime);
  if (!dir) return MakeError(fmt::format("{}: {}", e.path, dir.error().message));
  IsoNode* old = nullptr;
  if (iso_dir_get_node(*dir, name.c_str(), &old) == 1) {
    if (e.type == AddedEntry::Type::kDirectory && iso_node_get_type(old) == LIBISO_DIR) {
      iso_node_set_permissions(old, e.mode & 07777);
      if (e.mtime) iso_node_set_mtime(old, e.mtime);
      return {};
    }
    if (iso_node_get_type(old) == LIBISO_DIR) {
      return MakeError(fmt::format("{}: a directory in the image", e.path));
    }
    // The boot catalog and boot images stay as they are.
    if (iso_node_get_type(old) == LIBISO_BOOT) {
      return MakeError(fmt::format("{}: the image's El Torito boot catalog", e.path));
    }
    iso_node_remove(old);
  }
  IsoNode* made = nullptr;
  int rc = 0;
  switch (e.type) {
    case AddedEntry::Type::kDirectory: {
      IsoDir* d = nullptr;
      rc = iso_tree_add_new_dir(*dir, name.c_str(), &d);
      made = reinterpret_cast<IsoNode*>(d);
      break;
    }
    case AddedEntry::Type::kSymlink: {
      IsoSymlink* l = nullptr;
      rc = iso_tree_add_new_symlink(*dir, name.c_str(), e.target.c_str(), &l);
      made = reinterpret_cast<IsoNode*>(l);
      break;
    }
    case AddedEntry::Type::kFile: {
      // The stream owns a copy: libisofs frees it with free().
      size_t size = e.data ? e.data->size() : 0;
      auto* buf = static_cast<unsigned char*>(malloc(std::max<size_t>(size, 1)));
      if (!buf) throw std::bad_alloc();
      if (size) std::memcpy(buf, e.data->data(), size);
      IsoStream* stream = nullptr;
      rc = iso_memory_stream_new(buf, size, &stream);
      if (rc < 0) {
        free(buf);
        break;
      }
      IsoFile* f = nullptr;
      // The file takes the stream's reference; on failure it is ours.
      rc = iso_tree_add_new_file(*dir, name.c_str(), stream, &f);
      if (rc < 0) iso_stream_unref(stream);
      made = reinterpret_cast<IsoNode*>(f);
      break;
    }
  }
  if (rc < 0 || !made) return MakeError(LibisofsError("cannot add " + e.path, rc));
  if (e.type != AddedEntry::Type::kSymlink) iso_node_set_permissions(made, e.mode & 07777);
  iso_node_set_uid(made, 0);
  iso_node_set_gid(made, 0);
  const int64_t t = e.mtime ? e.mtime : dir_mtime;
  iso_node_set_mtime(made, t);
  iso_node_set_atime(made, t);
  iso_node_set_ctime(made, t);
  return {};
}

}  // namespace

Result<GrownImage> Grow(const Image& base, const std::vector<AddedEntry>& entries) {
  InitLibisofsOnce();
  if (base.size() < kHeadBytes + kBlock) {
    return MakeError(fmt::format("{}: too small to grow ({} bytes)", base.path(), base.size()));
  }
  std::unique_ptr<IsoDataSource, decltype(&iso_data_source_unref)> source(
      NewDataSource(SourceRead, const_cast<Image*>(&base)), &iso_data_source_unref);

  IsoImage* raw_image = nullptr;
  if (iso_image_new(base.tree().volume_id.c_str(), &raw_image) < 0) throw std::bad_alloc();
  ImagePtr image(raw_image);
  IsoReadOpts* raw_ropts = nullptr;
  if (iso_read_opts_new(&raw_ropts, 0) < 0) throw std::bad_alloc();
  ReadOptsPtr ropts(raw_ropts);
  iso_read_opts_set_input_charset(ropts.get(), const_cast<char*>("UTF-8"));
  iso_read_opts_set_no_md5(ropts.get(), 1);
  // The system area (isohybrid MBR, GPT) is written back as it was.
  iso_read_opts_load_system_area(ropts.get(), 1);
  IsoReadImageFeatures* raw_features = nullptr;
  int rc = iso_image_import(image.get(), source.get(), ropts.get(), &raw_features);
  FeaturesPtr features(raw_features);
  if (rc < 0) return MakeError(LibisofsError(base.path() + ": cannot read its tree", rc));

  for (const AddedEntry& e : entries) {
    if (auto ok = Add(image.get(), e, base.tree().root().mtime); !ok) return ok.error();
  }

  IsoWriteOpts* raw_wopts = nullptr;
  // Profile 1 keeps the files' own attributes (2 would reset them).
  if (iso_write_opts_new(&raw_wopts, 1) < 0) throw std::bad_alloc();
  WriteOptsPtr wopts(raw_wopts);
  iso_write_opts_set_iso_level(wopts.get(), 3);  // files of 4 GiB and more
  iso_write_opts_set_rockridge(wopts.get(), 1);
  iso_write_opts_set_joliet(wopts.get(),
                            features && iso_read_image_features_has_joliet(features.get()) ? 1 : 0);
  // New files get inode numbers in tree order; hardlink detection would
  // order them by stream identity, which differs from run to run.
  iso_write_opts_set_hardlinks(wopts.get(), 0);
  iso_write_opts_set_appendable(wopts.get(), 1);
  const uint64_t session_offset = (base.size() + kSessionAlign - 1) / kSessionAlign * kSessionAlign;
  if (session_offset / kBlock > UINT32_MAX - (kMaxSessionBytes / kBlock)) {
    return MakeError(fmt::format("{}: too large to grow ({} bytes)", base.path(), base.size()));
  }
  iso_write_opts_set_ms_block(wopts.get(), static_cast<uint32_t>(session_offset / kBlock));
  GrownImage out;
  out.base_size = base.size();
  out.session_offset = session_offset;
  out.head.resize(kHeadBytes);
  {
    size_t done = 0;
    while (done < kHeadBytes) {
      ssize_t n =
          ::pread(base.fd(), out.head.data() + done, kHeadBytes - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return MakeError(fmt::format("{}: cannot read its first blocks", base.path()));
      done += static_cast<size_t>(n);
    }
  }
  const std::vector<uint8_t> original_head = out.head;
  // The new descriptors keep the base's volume times, which GRUB makes its
  // filesystem UUID of (`search --fs-uuid` in a KIWI ESP's config); the
  // modification time, else the creation time ("YYYYMMDDhhmmsscc").
  {
    auto digits = [&](size_t at) {
      std::string t(reinterpret_cast<const char*>(out.head.data()) + 16 * kBlock + at, 16);
      bool ok = std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                t != std::string(16, '0');
      return ok ? t : std::string();
    };
    std::string uuid = digits(830);
    if (uuid.empty()) uuid = digits(813);
    if (!uuid.empty()) {
      char buf[17] = {};
      std::memcpy(buf, uuid.data(), 16);
      iso_write_opts_set_pvd_times(wopts.get(), 0, 0, 0, 0, buf);
    }
  }
  iso_write_opts_set_overwrite_buf(wopts.get(), out.head.data());

  struct burn_source* raw_burn = nullptr;
  rc = iso_image_create_burn_source(image.get(), wopts.get(), &raw_burn);
  if (rc < 0) return MakeError(LibisofsError(base.path() + ": cannot grow", rc));
  BurnSourcePtr burn(raw_burn);
  const off_t expected = burn->get_size(burn.get());
  if (expected <= 0 || static_cast<uint64_t>(expected) > kMaxSessionBytes) {
    // Reading it to the end lets libisofs's writer thread finish.
    std::vector<unsigned char> sink(64 * kBlock);
    for (int i = 0; i < (1 << 20) && burn->read_xt(burn.get(), sink.data(), 64 * kBlock) > 0; ++i) {
    }
    return MakeError(fmt::format("{}: the new session would be {} bytes (at most {})", base.path(),
                                 static_cast<int64_t>(expected), kMaxSessionBytes));
  }
  out.session.resize(static_cast<size_t>(expected));
  size_t got = 0;
  while (got < out.session.size()) {
    size_t want = std::min<size_t>(out.session.size() - got, 64 * kBlock);
    int n = burn->read_xt(burn.get(), out.session.data() + got, static_cast<int>(want));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != out.session.size()) {
    return MakeError(
        fmt::format("{}: libisofs stopped writing the new session after {} of {} bytes",
                    base.path(), got, out.session.size()));
  }
  burn.reset();  // joins the writer thread; the head is complete now

  // The new descriptors replace the base's blocks; none of the files the
  // new tree keeps may have bytes there.
  size_t first_changed = kHeadBytes, last_changed = 0;
  for (size_t i = 0; i < kHeadBytes; ++i) {
    if (out.head[i] != original_head[i]) {
      first_changed = std::min(first_changed, i);
      last_changed = i + 1;
    }
  }
  if (last_changed == 0) {
    return MakeError(fmt::format("{}: libisofs wrote no volume descriptors", base.path()));
  }
  for (const Node& n : base.tree().nodes) {
    for (const Extent& x : n.extents) {
      if (x.length && x.offset < last_changed && x.offset + x.length > first_changed) {
        return MakeError(
            fmt::format("{}: {} has bytes in the image's first 64 KiB, which growing rewrites",
                        base.path(), base.tree().PathOf(n)));
      }
    }
  }
  out.head.resize(last_changed);
  out.made_at = ::time(nullptr);
  return out;
}

}  // namespace isoboot::iso
