#include "iso/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include <fmt/format.h>

#include "base/file_io.h"
#include "iso/libisofs_init.h"

namespace isoboot::iso {

namespace {
int DataSourceNothing(IsoDataSource*) {
  return ISO_SUCCESS;
}
void DataSourceFreeNothing(IsoDataSource*) {}
}  // namespace

IsoDataSource* NewDataSource(int (*read)(IsoDataSource*, uint32_t lba, uint8_t* block),
                             void* data) {
  auto* src = static_cast<IsoDataSource*>(calloc(1, sizeof(IsoDataSource)));
  if (!src) throw std::bad_alloc();
  src->refcount = 1;
  src->open = DataSourceNothing;
  src->close = DataSourceNothing;
  src->read_block = read;
  src->free_data = DataSourceFreeNothing;
  src->data = data;
  return src;
}

void InitLibisofsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (iso_init() < 0) throw std::runtime_error("cannot initialise libisofs");
    // libisofs prints its own messages to stderr by default; we turn its
    // errors into our one-line errors instead.
    static char never[] = "NEVER";
    static char id[] = "isoboot";
    iso_set_msgs_severities(never, never, id);
    // Names are handed out as UTF-8 whatever the process locale is (CI runs
    // under the C locale, which would mangle Joliet and non-ASCII names).
    iso_set_local_charset(const_cast<char*>("UTF-8"), 0);
  });
}

namespace {

constexpr uint64_t kBlock = 2048;
// ISO 9660 allows at most 8 directory levels, Rock Ridge lifts that; nobody
// nests 1000 deep, and a deeper tree is treated as corrupt rather than walked.
constexpr size_t kMaxDepth = 1000;

// The libisofs data source that reads through our BlockReader and remembers
// the first block it could not read, for the error message.
// libisofs walks a hostile image's directory loop forever (a directory whose
// record points at itself or an ancestor). Legitimate images have libisofs
// read any block only a few times (the Rock Ridge probe, the ISO 9660 and
// Joliet trees), so a block read more often than this is a loop, and the
// import is stopped by failing the read.
constexpr uint32_t kMaxReadsPerBlock = 16;

struct SourceState {
  const BlockReader* read = nullptr;
  uint64_t size_bytes = 0;
  bool failed = false;
  uint32_t failed_lba = 0;
  bool looped = false;
  std::unordered_map<uint32_t, uint32_t> reads;
};

int SourceRead(IsoDataSource* src, uint32_t lba, uint8_t* buffer) {
  auto* state = static_cast<SourceState*>(src->data);
  if (state->looped) return static_cast<int>(ISO_DATA_SOURCE_FAILURE);
  if (++state->reads[lba] > kMaxReadsPerBlock) {
    state->looped = true;
    state->failed_lba = lba;
    return static_cast<int>(ISO_DATA_SOURCE_FAILURE);
  }
  if ((*state->read)(lba, buffer)) return ISO_SUCCESS;
  if (!state->failed) {
    state->failed = true;
    state->failed_lba = lba;
  }
  return static_cast<int>(ISO_DATA_SOURCE_FAILURE);
}

Error ImportError(int code, const SourceState& state) {
  if (state.looped) {
    return MakeError(fmt::format(
        "corrupt ISO 9660 image: directory loop (block {} is read over and over: a directory "
        "record points at itself or an ancestor)",
        state.failed_lba));
  }
  if (state.failed) {
    uint64_t at = uint64_t{state.failed_lba} * kBlock;
    return MakeError(fmt::format(
        "not a readable ISO 9660 image: it refers to block {} (byte {}) past its end ({} bytes)",
        state.failed_lba, at, state.size_bytes));
  }
  const char* msg = iso_error_to_msg(code);
  return MakeError(fmt::format("not a readable ISO 9660 image: {}", msg ? msg : "unknown error"));
}

bool ValidName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Result<std::vector<Extent>> FileExtents(IsoFile* file, const std::string& path,
                                        uint64_t size_bytes) {
  int count = 0;
  struct iso_file_section* sections = nullptr;
  int rc = iso_file_get_old_image_sections(file, &count, &sections, 0);
  std::unique_ptr<struct iso_file_section, decltype(&free)> owned(sections, &free);
  if (rc < 0) return MakeError(fmt::format("{}: cannot read its extents", path));
  std::vector<Extent> extents;
  uint64_t total = 0;
  for (int i = 0; i < count; ++i) {
    Extent e{uint64_t{sections[i].block} * kBlock, sections[i].size};
    if (e.length == 0) continue;
    if (e.offset > size_bytes || e.length > size_bytes - e.offset) {
      return MakeError(
          fmt::format("{}: extent of {} bytes at byte {} runs past the end of the image ({} bytes)",
                      path, e.length, e.offset, size_bytes));
    }
    total += e.length;
    extents.push_back(e);
  }
  auto declared = static_cast<uint64_t>(iso_file_get_size(file));
  if (total != declared) {
    return MakeError(
        fmt::format("{}: size {} does not match its extents ({} bytes)", path, declared, total));
  }
  return extents;
}

}  // namespace

std::string_view ToString(NameSpace ns) {
  switch (ns) {
    case NameSpace::kRockRidge:
      return "Rock Ridge";
    case NameSpace::kJoliet:
      return "Joliet";
    case NameSpace::kIso9660:
      return "ISO 9660";
  }
  return "?";
}

const Node* Tree::Find(std::string_view path) const {
  const Node* node = &nodes[0];
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty()) continue;
    if (node->type != NodeType::kDirectory) return nullptr;
    auto it =
        std::lower_bound(node->children.begin(), node->children.end(), part,
                         [this](uint32_t c, std::string_view n) { return nodes[c].name < n; });
    if (it == node->children.end() || nodes[*it].name != part) return nullptr;
    node = &nodes[*it];
  }
  return node;
}

std::string Tree::PathOf(const Node& node) const {
  std::vector<const Node*> chain;
  for (const Node* n = &node; n != &nodes[0]; n = &nodes[n->parent])
    chain.push_back(n);
  if (chain.empty()) return "/";
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    out += '/';
    out += (*it)->name;
  }
  return out;
}

Result<Tree> ReadTree(const BlockReader& read, uint64_t size_bytes) {
  InitLibisofsOnce();
  if (size_bytes == 0) return MakeError("not an ISO 9660 image: the file is empty");
  if (size_bytes < 17 * kBlock) {
    return MakeError(fmt::format(
        "not an ISO 9660 image: {} bytes is too small to hold a volume descriptor", size_bytes));
  }

  // A truncated image (an interrupted download or copy) is named as such
  // rather than by whatever structure libisofs first finds missing.
  uint8_t pvd[kBlock];
  if (read(16, pvd) && pvd[0] == 1 && std::memcmp(pvd + 1, "CD001", 5) == 0) {
    uint64_t blocks = pvd[80] | (pvd[81] << 8) | (pvd[82] << 16) | (uint64_t{pvd[83]} << 24);
    uint64_t block_size = pvd[128] | (pvd[129] << 8);
    if (blocks * block_size > size_bytes) {
      return MakeError(fmt::format(
          "truncated ISO 9660 image: its volume descriptor says {} bytes, the file has {}",
          blocks * block_size, size_bytes));
    }
  }

  SourceState state;
  state.read = &read;
  state.size_bytes = size_bytes;
  IsoDataSource* src = NewDataSource(SourceRead, &state);

  IsoImage* raw_image = nullptr;
  IsoReadOpts* raw_opts = nullptr;
  iso_image_new("isoboot", &raw_image);
  ImagePtr image(raw_image);
  iso_read_opts_new(&raw_opts, 0);
  ReadOptsPtr opts(raw_opts);
  if (!image || !opts) {
    iso_data_source_unref(src);
    throw std::bad_alloc();
  }
  iso_read_opts_set_input_charset(opts.get(), const_cast<char*>("UTF-8"));
  // Plain ISO 9660 names lose their ";1" version but keep their recorded
  // case (as xorriso shows them); MD5 data is not read.
  iso_read_opts_set_ecma119_map(opts.get(), 1);
  iso_read_opts_set_no_md5(opts.get(), 1);

  IsoReadImageFeatures* raw_features = nullptr;
  int rc = iso_image_import(image.get(), src, opts.get(), &raw_features);
  FeaturesPtr features(raw_features);
  iso_data_source_unref(src);
  // libisofs tolerates some unreadable blocks and returns a partial tree; an
  // image that refers past its own end is corrupt, so that is an error too.
  if (rc < 0 || state.failed || state.looped) return ImportError(rc, state);

  Tree tree;
  if (const char* vid = iso_image_get_volume_id(image.get())) tree.volume_id = vid;
  if (features) {
    tree.volume_bytes = uint64_t{iso_read_image_features_get_size(features.get())} * kBlock;
    if (iso_read_image_features_rr_loaded(features.get())) {
      tree.names = NameSpace::kRockRidge;
    } else if (iso_read_image_features_has_joliet(features.get())) {
      tree.names = NameSpace::kJoliet;
    }
  }

  IsoDir* root = iso_image_get_root(image.get());
  Node root_node;
  root_node.type = NodeType::kDirectory;
  root_node.mode = static_cast<uint32_t>(iso_node_get_mode((IsoNode*)root));
  root_node.mtime = iso_node_get_mtime((IsoNode*)root);
  tree.nodes.push_back(std::move(root_node));

  struct Pending {
    IsoDir* dir;
    uint32_t index;
    size_t depth;
  };
  std::vector<Pending> stack{{root, 0, 0}};
  while (!stack.empty()) {
    Pending p = stack.back();
    stack.pop_back();
    if (p.depth > kMaxDepth) {
      return MakeError(fmt::format("directory tree is deeper than {} levels at {}", kMaxDepth,
                                   tree.PathOf(tree.nodes[p.index])));
    }
    IsoDirIter* raw_iter = nullptr;
    if (iso_dir_get_children(p.dir, &raw_iter) < 0) throw std::bad_alloc();
    DirIterPtr iter(raw_iter);
    IsoNode* child = nullptr;
    std::vector<uint32_t> children;
    while (iso_dir_iter_next(iter.get(), &child) == 1) {
      enum IsoNodeType t = iso_node_get_type(child);
      if (t == LIBISO_BOOT) continue;  // the boot catalog is reported separately
      const char* cname = iso_node_get_name(child);
      std::string name = cname ? cname : "";
      std::string parent_path = tree.PathOf(tree.nodes[p.index]);
      if (!ValidName(name)) {
        return MakeError(fmt::format("directory {} holds an entry with the invalid name \"{}\"",
                                     parent_path, name));
      }
      Node node;
      node.name = std::move(name);
      node.mode = static_cast<uint32_t>(iso_node_get_mode(child));
      node.uid = static_cast<uint32_t>(iso_node_get_uid(child));
      node.gid = static_cast<uint32_t>(iso_node_get_gid(child));
      node.mtime = iso_node_get_mtime(child);
      node.parent = p.index;
      std::string path = (parent_path == "/" ? "" : parent_path) + "/" + node.name;
      switch (t) {
        case LIBISO_DIR:
          node.type = NodeType::kDirectory;
          break;
        case LIBISO_FILE: {
          node.type = NodeType::kRegular;
          node.size = static_cast<uint64_t>(iso_file_get_size((IsoFile*)child));
          auto extents = FileExtents((IsoFile*)child, path, size_bytes);
          if (!extents) return extents.error();
          node.extents = std::move(*extents);
          break;
        }
        case LIBISO_SYMLINK:
          node.type = NodeType::kSymlink;
          if (const char* dest = iso_symlink_get_dest((IsoSymlink*)child)) node.link_target = dest;
          node.size = node.link_target.size();
          break;
        default:
          node.type = NodeType::kSpecial;
          break;
      }
      uint32_t index = static_cast<uint32_t>(tree.nodes.size());
      tree.nodes.push_back(std::move(node));
      children.push_back(index);
      if (t == LIBISO_DIR) stack.push_back({(IsoDir*)child, index, p.depth + 1});
    }
    std::sort(children.begin(), children.end(),
              [&tree](uint32_t a, uint32_t b) { return tree.nodes[a].name < tree.nodes[b].name; });
    for (size_t i = 1; i < children.size(); ++i) {
      if (tree.nodes[children[i]].name == tree.nodes[children[i - 1]].name) {
        return MakeError(fmt::format("directory {} holds \"{}\" twice",
                                     tree.PathOf(tree.nodes[p.index]),
                                     tree.nodes[children[i]].name));
      }
    }
    tree.nodes[p.index].children = std::move(children);
  }

  IsoBoot* catnode = nullptr;
  uint32_t cat_lba = 0;
  char* content = nullptr;
  off_t content_size = 0;
  // iso_image_get_bootcat crashes (libisofs 1.5.4) on images without a
  // catalog, so ask only when the import saw an El Torito record.
  rc = features && iso_read_image_features_has_eltorito(features.get())
           ? iso_image_get_bootcat(image.get(), &catnode, &cat_lba, &content, &content_size)
           : 0;
  std::unique_ptr<char, decltype(&free)> owned_content(content, &free);
  if (rc == 1 && content && content_size > 0) {
    auto parsed = ParseBootCatalog(
        std::span(reinterpret_cast<const uint8_t*>(content), static_cast<size_t>(content_size)));
    if (!parsed) return parsed.error();
    tree.boot.present = true;
    tree.boot.lba = cat_lba;
    tree.boot.entries = std::move(*parsed);
    for (auto& entry : tree.boot.entries) {
      for (const Node& n : tree.nodes) {
        if (!n.extents.empty() && n.extents[0].offset == uint64_t{entry.lba} * kBlock) {
          entry.image_path = tree.PathOf(n);
          break;
        }
      }
    }
  }
  return tree;
}

Result<std::unique_ptr<Image>> Image::Open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return MakeError(fmt::format("{}: {}", path, std::strerror(errno)));
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return MakeError(fmt::format("{}: {}", path, std::strerror(errno)));
  uint64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) return MakeError(fmt::format("{}: {}", path, std::strerror(errno)));
    size = static_cast<uint64_t>(end);
  } else {
    return MakeError(fmt::format("{}: not a regular file or block device", path));
  }

  int image_fd = fd.get();
  bool io_error = false;
  BlockReader read = [image_fd, size, &io_error](uint32_t lba, uint8_t* block) {
    uint64_t offset = uint64_t{lba} * kBlock;
    if (offset >= size) return false;
    ssize_t n = ::pread(image_fd, block, kBlock, static_cast<off_t>(offset));
    if (n < 0) {
      io_error = true;
      return false;
    }
    // A last partial block (a truncated image) is zero-padded, as a drive would.
    if (static_cast<size_t>(n) < kBlock) std::memset(block + n, 0, kBlock - static_cast<size_t>(n));
    return true;
  };
  auto tree = ReadTree(read, size);
  if (io_error) return MakeError(fmt::format("{}: read error", path));
  if (!tree) return MakeError(fmt::format("{}: {}", path, tree.error().message));
  // Address space only: the page cache is shared with every other reader.
  const uint8_t* mapped = nullptr;
  if (size > 0 && size <= SIZE_MAX) {
    void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd.get(), 0);
    if (p != MAP_FAILED) mapped = static_cast<const uint8_t*>(p);
  }
  return std::unique_ptr<Image>(new Image(path, std::move(fd), size, st, std::move(*tree), mapped));
}

Image::~Image() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(mapped_), static_cast<size_t>(size_));
}

size_t Image::Read(const Node& node, uint64_t offset, std::span<uint8_t> out) const {
  size_t done = 0;
  uint64_t file_pos = 0;
  for (const Extent& e : node.extents) {
    if (done == out.size()) break;
    uint64_t want_at = offset + done;
    if (want_at >= file_pos + e.length) {
      file_pos += e.length;
      continue;
    }
    uint64_t within = want_at - file_pos;
    size_t n = static_cast<size_t>(std::min<uint64_t>(e.length - within, out.size() - done));
    size_t got = PreadFull(fd_.get(), out.subspan(done, n), e.offset + within);
    done += got;
    if (got < n) break;  // image shrank under us: report what we have
    file_pos += e.length;
  }
  return done;
}

void Image::CopyTo(const Node& node, int out_fd,
                   const std::function<void(uint64_t)>& progress) const {
  uint64_t before = 0;
  struct Ctx {
    const std::function<void(uint64_t)>* progress;
    uint64_t before;
  } ctx{&progress, 0};
  for (const Extent& e : node.extents) {
    ctx.before = before;
    CopyRange(fd_.get(), e.offset, e.length, out_fd,
              progress ? +[](uint64_t done, void* c) {
                auto* x = static_cast<Ctx*>(c);
                (*x->progress)(x->before + done);
              }
                       : nullptr,
              &ctx);
    before += e.length;
  }
}

}  // namespace isoboot::iso
