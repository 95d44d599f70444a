#include "serve/daemon.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "aoe/codec.h"
#include "aoe/device.h"
#include "aoe/server.h"
#include "aoe/target.h"
#include "base/lru_map.h"
#include "base/strings.h"
#include "dhcp/server.h"
#include "http/server.h"
#include "iso/image.h"
#include "linux/file_limit.h"
#include "linux/packet_socket.h"
#include "nbd/server.h"
#include "nbd/tls.h"
#include "serve/backup_store.h"
#include "serve/netif.h"
#include "serve/node_images.h"
#include "serve/router_advert.h"
#include "serve/status_page.h"
#include "tftp/codec.h"
#include "tftp/server.h"

namespace isoboot::serve {

std::string_view FileName(UefiLoader loader) {
  return loader == UefiLoader::kSnponly ? "snponly.efi" : "ipxe.efi";
}

// The image being served and the tree built from it; replaced as a whole
// when the image file is rebuilt.
struct Daemon::Generation {
  std::shared_ptr<const iso::Image> image;
  BootTree boot;
  std::vector<NodeArgs> nodes;  // --node, as of this generation
  std::vector<NodeFiles> node_files;
  std::string node_files_path;
  std::vector<std::string> extra_initrds;  // --initrd-add, for node images
};

using NodeTreeMap = std::map<MacAddress, std::shared_ptr<const vfs::Tree>>;

// The current generation and what is served from it (the generation's tree,
// and each node's own entries), which change together.
class Daemon::Generations {
 public:
  using NodeImageMap = std::map<MacAddress, NodeImageEntry>;
  struct Trees {
    std::shared_ptr<const vfs::Tree> common;
    std::shared_ptr<const NodeTreeMap> nodes;
    std::shared_ptr<const iso::Image> image;  // node images grow this one
    std::shared_ptr<const std::map<MacAddress, NodeImageEntry>> images;
  };
  Trees CurrentTrees() const;
  std::shared_ptr<const Generation> Current() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  // `next` null: the same generation with new node entries.
  template <typename MakeNodeTrees, typename MakeNodeImages>
  void Publish(std::shared_ptr<const Generation> next, MakeNodeTrees make_node_trees,
               MakeNodeImages make_node_images) {
    std::lock_guard lock(mu_);
    if (next) current_ = std::move(next);
    trees_ = {
        current_->boot.tree, std::make_shared<const NodeTreeMap>(make_node_trees(*current_)),
        current_->image,
        std::make_shared<const std::map<MacAddress, NodeImageEntry>>(make_node_images(*current_))};
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Generation> current_;  // guarded by mu_
  Trees trees_;                                // guarded by mu_
};

// What the servers' hooks count for /metrics, on their threads.
struct Daemon::Tallies {
  std::atomic<uint64_t> http_by_class[6] = {};  // responses by status class: [2] = 2xx
  std::atomic<uint64_t> http_incomplete{0};     // bodies cut short
  std::atomic<uint64_t> tftp_bytes{0};          // acknowledged by clients
};

Daemon::Generations::Trees Daemon::Generations::CurrentTrees() const {
  std::lock_guard lock(mu_);
  return trees_;
}

namespace {

// The pages made per request (Daemon::PageFor), which are not the image's.
constexpr std::string_view kStatusPages[] = {"/", "/status", "/status.json", "/metrics"};
bool IsStatusPage(std::string_view path) {
  return std::find(std::begin(kStatusPages), std::end(kStatusPages), path) !=
         std::end(kStatusPages);
}

// Which boot phase fetching `path` (a TFTP file name, or an HTTP path with
// its leading slash) shows a node to be in; nullopt: none (a probe, a
// config file, the store). The loaders and iPXE's scripts are kLoader.
std::optional<Phase> PhaseOfFile(std::string_view path, const boot::Profile& profile) {
  while (path.starts_with('/'))
    path.remove_prefix(1);
  if (path.empty()) return std::nullopt;
  if (path == "undionly.kpxe" || path == "ipxe.efi" || path == "snponly.efi" ||
      path == "pxelinux.0" || path == "ldlinux.c32" || path == kIpxeScript ||
      (path.starts_with("nodes/") && path.ends_with(".ipxe"))) {
    return Phase::kLoader;
  }
  if (path == profile.kernel) return Phase::kKernel;
  if (path == profile.initrd || path.starts_with("initrd-add/")) return Phase::kInitrd;
  if (path == kImageName || path.ends_with(".squashfs") || path.ends_with("squashfs.img")) {
    return Phase::kRoot;
  }
  return std::nullopt;
}

// Per-node iPXE scripts are chained when some node may have entries: a
// --node, or a store whose backups name nodes.
bool WantsNodeScripts(const Options& o) {
  return !o.backup_dir.empty() || !o.nodes.empty();
}

// Runs one server's factory: its setup error (e.g. a capability it lacks)
// names the server.
template <typename Make>
auto ForServer(std::string_view server, Make make) -> decltype(make()) {
  try {
    return make();
  } catch (const std::exception& e) {
    if (std::string_view(e.what()).starts_with(fmt::format("{}:", server))) throw;
    throw std::runtime_error(fmt::format("{}: {}", server, e.what()));
  }
}

}  // namespace

std::optional<Daemon::FileId> Daemon::StatImage() const {
  struct stat st {};
  if (::stat(options_.image.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size),
                st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
}

Daemon::Daemon(Options options, Logger logger)
    : options_(std::move(options)), log_(std::move(logger)), server_ip_(ServerIp()) {
  if (!options_.http_only && options_.interface.empty()) {
    throw std::runtime_error("--interface is required (the boot network), or use --http-only");
  }
  profile_.shelf = options_.aoe_shelf;
  profile_.slot = options_.aoe_slot;
  // Without the boot network there is no AoE export: entries fetch over HTTP.
  profile_.root = options_.http_only ? boot::RootTransport::kHttp
                                     : options_.root.value_or(boot::RootTransport::kAoe);
  profile_.append = options_.append;
  profile_.node_scripts = WantsNodeScripts(options_);
  // Every connection and transfer is a descriptor: as many as allowed.
  const sys::FileLimit file_limit = sys::RaiseFileLimit();
  NodeTrackerOptions tracker;
  tracker.stall_after = std::chrono::seconds(std::max(1u, options_.stall_seconds));
  nodes_ = std::make_unique<NodeTracker>(tracker);
  tallies_ = std::make_unique<Tallies>();
  generations_ = std::make_unique<Generations>();
  node_images_ = std::make_unique<NodeImages>(GetLogger("nodes"));
  store_ = MakeStore();
  // HTTP is bound before the image is loaded: the entries carry its port.
  http_ = ForServer("http", [this] { return MakeHttp(); });
  profile_.http_base = fmt::format("http://{}:{}", server_ip_, http_->port());
  if (options_.root == boot::RootTransport::kNbd && !options_.http_only) {
    profile_.nbd_address = fmt::format("{}:{}", server_ip_, options_.nbd_port);
  }
  Publish(Load(options_, profile_, !options_.http_only && !options_.root));
  // From here on the root is fixed: reloads and rebuilt images must keep
  // it (the AoE export exists or not), and are refused when they cannot.
  profile_.root = generations_->Current()->boot.root;
  if (auto id = StatImage()) served_file_ = *id;
  if (store_) {
    store_->set_on_commit([this](const std::string& name) {
      Publish(nullptr);
      if (ParseMac(name)) log_->info("node {}: its next boots restore this backup", name);
    });
  }
  if (!options_.http_only) {
    ForServer("aoe", [this] { MakeAoe(); });
    nbd_ = ForServer("nbd", [this] { return MakeNbd(); });
    tftp_ = ForServer("tftp", [this] { return MakeTftp(); });
    dhcp_ = ForServer("dhcp", [this] { return MakeDhcp(); });
    router_advertiser_ = ForServer("ipv6-ra", [this] { return MakeRouterAdvertiser(); });
  }
  sys::FileNeeds needs;
  needs.http_connections = http::ServerOptions{}.max_connections;
  needs.tftp_sessions = tftp_ ? tftp::ServerConfig{}.max_transfers : 0;
  if (auto short_of = sys::CheckFileLimit(file_limit, needs)) log_->warn("{}", *short_of);

  auto generation = generations_->Current();
  if (store_) {
    log_->info(
        "overlay backups: PUT/GET {}{}NAME, stored in {} (token in {}); {} node(s) boot "
        "with theirs",
        profile_.http_base, http::ServerOptions{}.store_prefix, store_->options().dir,
        store_->options().token_file, store_->Nodes().size());
  }
  if (!generation->boot.profile.kernel.empty()) {
    log_->info("serving {} ({} layout, {}): kernel {}, initrd {}", options_.image,
               iso::ToString(generation->boot.layout.kind), generation->boot.layout.arch,
               generation->boot.profile.kernel, generation->boot.profile.initrd);
    log_->info("kernel command line: {}", generation->boot.profile.cmdline);
  }
  // Said once the servers are up: a setup error stays the only line.
  if (const BootTree& boot = generation->boot; boot.initrd) {
    log_->info("{}: initrd {}; root transports: {}; booting with root {}{}", options_.image,
               boot.initrd->name, boot.initrd->Summary(), boot::ToString(profile_.root),
               options_.root || options_.http_only ? "" : " (the default for this initrd)");
  } else if (!boot.initrd_error.empty()) {
    log_->warn("{}: cannot tell which roots its initrd can mount ({}); going by the layout",
               options_.image, boot.initrd_error);
  }
  log_->info("HTTP on {}; the image is at {}/{}", http_->port(), profile_.http_base, kImageName);
  if (size_t n = generations_->CurrentTrees().images->size()) {
    log_->info("node images at {}/nodes/<mac>.iso for {} node(s), made when first asked for",
               profile_.http_base, n);
  }
}

Daemon::~Daemon() {
  supervisor_.StopAll();
}

uint16_t Daemon::http_port() const {
  return http_->port();
}

std::string Daemon::ServerIp() const {
  if (!options_.server_ip.empty()) return options_.server_ip;
  if (!options_.interface.empty()) return OrThrow(InterfaceIpv4(options_.interface)).ip;
  return "127.0.0.1";
}

std::string Daemon::ListenAddress(const std::string& option) const {
  if (!option.empty()) return option;
  // The boot network only: on 0.0.0.0 every network of this host could
  // fetch boot entries and the image.
  return options_.interface.empty() ? "0.0.0.0" : server_ip_;
}

std::shared_ptr<BackupStore> Daemon::MakeStore() {
  if (options_.backup_dir.empty()) return nullptr;
  BackupStoreOptions so;
  so.dir = options_.backup_dir;
  so.token_file = options_.backup_token_file;
  so.max_bytes = options_.backup_max_bytes;
  // Overlays compress a few times at most; sparse files count in full.
  const uint64_t max = options_.backup_max_bytes;
  so.max_content_bytes =
      max > UINT64_MAX / 8 ? UINT64_MAX : std::max<uint64_t>(1ull << 30, max * 8);
  so.keep = options_.backup_keep;
  return std::make_shared<BackupStore>(so, GetLogger("backup"));
}

std::unique_ptr<http::Server> Daemon::MakeHttp() {
  http::ServerOptions ho;
  ho.address = ListenAddress(options_.http_address);
  ho.port = options_.http_port;
  ho.threads = 2;
  ho.store = store_;
  Logger http_log = GetLogger("http");
  ho.on_request = [this, http_log](const http::RequestRecord& r) {
    tallies_->http_by_class[std::min(r.status / 100, 5u)]++;
    if (!r.complete && r.status < 300) tallies_->http_incomplete++;
    const std::string name = nodes_->Name(r.client);
    if (r.received > 0) {
      http_log->info("{} {} {} {}: received {} bytes in {:.2f} s", name, EscapeForLog(r.method),
                     EscapeForLog(r.path), r.status, r.received, r.seconds);
      return;
    }
    // Status pages are polled every few seconds: not worth a line each.
    http_log->log(IsStatusPage(r.path) ? spdlog::level::debug : spdlog::level::info,
                  "{} {} {} {}: {} of {} bytes in {:.2f} s", name, EscapeForLog(r.method),
                  EscapeForLog(r.path), r.status, r.bytes, r.content_length, r.seconds);
    if (r.status >= 300) return;
    std::optional<Phase> phase = PhaseOfFile(r.path, generations_->Current()->boot.profile);
    if (!phase) return;
    std::optional<MacAddress> mac = NodeOf(r.client);
    if (!mac) return;
    if (*phase == Phase::kLoader) {
      nodes_->IpxeScript(*mac, r.client);
    } else if (r.complete) {
      nodes_->Reached(*mac, *phase, r.client);
    } else if (*phase != Phase::kRoot) {  // roots are read in ranges, and again
      nodes_->Failed(*mac, fmt::format("{} cut short after {} of {} bytes over HTTP",
                                       EscapeForLog(r.path), r.bytes, r.content_length));
    }
  };
  ho.pages = [this](const std::string& path, std::string_view query, std::string_view client) {
    return PageFor(path, query, client);
  };
  return std::make_unique<http::Server>([this](std::string_view client) { return TreeFor(client); },
                                        ho, http_log);
}

std::shared_ptr<const Daemon::Generation> Daemon::Load(const Options& o,
                                                       const boot::ProfileOptions& p,
                                                       bool pick_root) const {
  auto image = std::shared_ptr<const iso::Image>(OrThrow(iso::Image::Open(o.image)));
  auto boot = OrThrow(BuildBootTree(image, p, o.loaders, o.http_only, pick_root), o.image);
  for (const auto& w : boot.warnings)
    log_->warn("{}", w);
  for (const NodeFiles& f : o.node_files) {
    // Refused now rather than when the node asks: a tree with a symlink
    // out of it, say, is the user's to fix.
    OrThrow(iso::ReadHostTree(f.dir, o.node_files_path),
            fmt::format("--node-files {}", FormatMac(f.mac)));
  }
  return std::make_shared<const Generation>(Generation{
      image, std::move(boot), o.nodes, o.node_files, o.node_files_path, o.loaders.extra_initrds});
}

// Each node with a stored backup boots with the URL of its newest one and a
// key that reads that backup only.
std::vector<NodeEntry> Daemon::NodeEntries(const Generation& g) const {
  std::map<MacAddress, std::string> args;
  for (const NodeArgs& n : g.nodes) {
    std::string& a = args[n.mac];
    a += (a.empty() ? "" : " ") + n.kernel_args;
  }
  if (store_) {
    const std::string prefix = http::ServerOptions{}.store_prefix;
    for (const MacAddress& mac : store_->Nodes()) {
      std::string name = *BackupStore::CanonicalName(FormatMac(mac));
      std::string& a = args[mac];
      a += fmt::format("{}isoboot.overlay={}{}{}?key={}", a.empty() ? "" : " ", profile_.http_base,
                       prefix, name, store_->Key(name, KeyRight::kRead));
    }
  }
  std::vector<NodeEntry> nodes;
  for (auto& [mac, a] : args)
    nodes.push_back({mac, std::move(a)});
  return nodes;
}

// A node with a backup to restore boots from its image with the network up
// in the initrd (the restore hook fetches it), unless its arguments
// configure the network themselves.
std::map<MacAddress, Daemon::NodeImageEntry> Daemon::NodeImageSpecs(const Generation& g) const {
  std::map<MacAddress, NodeImageEntry> specs;
  for (NodeEntry& n : NodeEntries(g)) {
    NodeImageEntry& e = specs[n.mac];
    e.spec.kernel_args = std::move(n.kernel_args);
    e.keyed = e.spec.kernel_args.find("isoboot.overlay=") != std::string::npos;
    if (e.keyed && e.spec.kernel_args.find("ip=") == std::string::npos) {
      e.spec.kernel_args += " rd.neednet=1 ip=dhcp";
    }
  }
  for (const NodeFiles& f : g.node_files)
    specs[f.mac].spec.files_dir = f.dir;
  for (auto& [mac, e] : specs) {
    e.spec.extra_initrds = g.extra_initrds;
    e.spec.files_path = g.node_files_path;
  }
  return specs;
}

void Daemon::Publish(std::shared_ptr<const Generation> next) {
  generations_->Publish(
      std::move(next),
      [this](const Generation& g) {
        // profile_.http_base never changes once HTTP is bound (Reload leaves it).
        return NodeTrees(g.boot, profile_.http_base, NodeEntries(g));
      },
      [this](const Generation& g) { return NodeImageSpecs(g); });
}

namespace {

// A node image's name: "52-54-00-12-34-56" (lower-case hex, hyphens, as
// pxelinux names its per-MAC files; a colon needs escaping in URLs).
// The backup store names nodes the same way.
std::string NodeImageName(const MacAddress& mac) {
  return *BackupStore::CanonicalName(FormatMac(mac));
}

// "nodes/52-54-00-12-34-56.iso" -> that MAC; other spellings are not it.
std::optional<MacAddress> NodeImageMac(std::string_view name) {
  if (!name.starts_with("nodes/") || !name.ends_with(".iso")) return std::nullopt;
  name.remove_prefix(6);
  name.remove_suffix(4);
  std::optional<MacAddress> mac = ParseMac(name);
  if (!mac || NodeImageName(*mac) != name) return std::nullopt;
  return mac;
}

}  // namespace

std::shared_ptr<const vfs::Tree> Daemon::TreeFor(std::string_view client) const {
  Generations::Trees trees = generations_->CurrentTrees();
  // Without a boot network (--http-only) nobody can be told apart: node
  // entries are served to no one. Node images are anyone's who names the
  // node: a BMC fetches its host's.
  const bool entries = !trees.nodes->empty() && !options_.interface.empty();
  if (!entries && trees.images->empty()) return trees.common;
  // Who the client is matters only for a name the common tree lacks (a
  // node entry, or a miss), so the kernel's table is read only then, and
  // at the moment of the request: no cache an address change could outlive.
  auto tree = std::make_shared<vfs::Tree>(trees.common);
  tree->set_fallback([nodes = std::move(trees.nodes), entries, client = std::string(client),
                      interface = options_.interface, image = std::move(trees.image),
                      images = std::move(trees.images),
                      made = node_images_.get()](const std::string& name) -> vfs::SourcePtr {
    if (std::optional<MacAddress> node = NodeImageMac(name)) {
      auto it = images->find(*node);
      // PageFor refused it already when it carries a key not given.
      return it == images->end() ? nullptr
                                 : made->Get(image, NodeImageName(*node), it->second.spec);
    }
    if (!entries) return nullptr;
    std::optional<MacAddress> mac = NeighbourMac(client, interface);
    if (!mac) return nullptr;
    auto it = nodes->find(*mac);
    return it == nodes->end() ? nullptr : it->second->Lookup(name);
  });
  return tree;
}

void Daemon::MakeAoe() {
  if (profile_.root != boot::RootTransport::kAoe) return;
  sys::InterfaceInfo iface = sys::LookupInterface(options_.interface);
  aoe_target_ = std::make_unique<aoe::Target>(iface.mac, aoe::Target::SectorsForMtu(iface.mtu), 16);
  aoe::ExportOptions eo;
  eo.shelf = profile_.shelf;
  eo.slot = profile_.slot;
  eo.config_string = "isoboot";
  // Every booted node shares this export: no initiator may reserve it, mask
  // the others out or change its config string.
  eo.network_may_configure = false;
  auto device = std::make_unique<ImageDevice>(generations_->Current()->image);
  aoe_slot_ = device->slot();
  aoe_target_->AddExport(eo, std::move(device));
  aoe::ServerOptions so;
  so.iface = iface;
  so.announce_seconds = options_.announce_seconds;
  aoe_ = std::make_unique<aoe::Server>(*aoe_target_, so, GetLogger("aoe"));
}

std::unique_ptr<nbd::Server> Daemon::MakeNbd() {
  if (profile_.root != boot::RootTransport::kNbd) return nullptr;
  if (options_.nbd_port == 0)
    throw std::runtime_error("--nbd-port 0: the boot entries name the port");
  nbd::Export e;
  // The default export (the empty name) too: the boot entries use that.
  e.name = kImageName;
  e.description = options_.image;
  e.source = vfs::WholeImageSource(generations_->Current()->image);
  nbd_size_ = e.source->size();
  // A connection reads the image that is current when it connects: a
  // rebuilt image reaches new boots, booted clients keep theirs.
  e.current = [generations = generations_.get()] {
    return vfs::WholeImageSource(generations->Current()->image);
  };
  nbd::ServerOptions no;
  no.on_connect = [this](std::string_view ip) {
    if (std::optional<MacAddress> mac = NodeOf(ip)) nodes_->Reached(*mac, Phase::kRoot, ip);
  };
  no.address = ListenAddress(options_.nbd_address);
  no.port = options_.nbd_port;
  no.tls = options_.nbd_tls;
  if (no.tls != nbd::TlsMode::kOff) {
    if (options_.nbd_tls_certificates.empty()) {
      throw std::runtime_error("--nbd-tls on|require needs --nbd-tls-certificates DIR");
    }
    no.tls_context = nbd::TlsContext::Load(options_.nbd_tls_certificates,
                                           options_.nbd_tls_verify_peer, "--nbd-tls-certificates");
  }
  std::vector<nbd::Export> exports;
  exports.push_back(std::move(e));
  return std::make_unique<nbd::Server>(std::move(exports), no, GetLogger("nbd"));
}

std::unique_ptr<tftp::Server> Daemon::MakeTftp() {
  tftp::ServerConfig tc;
  tc.address = ListenAddress(options_.tftp_address);
  tc.port = options_.tftp_port;
  tc.transfer.limits.max_blksize =
      tftp::BlksizeForMtu(sys::LookupInterface(options_.interface).mtu);
  Logger tftp_log = GetLogger("tftp");
  tc.on_transfer = [this, tftp_log](const tftp::TransferRecord& r) {
    tallies_->tftp_bytes += r.bytes;
    const std::string name = nodes_->Name(r.client_address);
    if (r.outcome == tftp::Outcome::kComplete) {
      tftp_log->info("{}: sent {} ({} bytes) in {:.2f} s, blksize {}, window {}, {} retransmits",
                     name, EscapeForLog(r.filename), r.bytes, r.seconds, r.blksize, r.windowsize,
                     r.retransmits);
    } else if (r.outcome != tftp::Outcome::kRejected && r.bytes > 0) {
      tftp_log->warn("{}: {} failed after {} of {} bytes: {}", name, EscapeForLog(r.filename),
                     r.bytes, r.size, EscapeForLog(r.detail));
    }
    std::optional<Phase> phase = PhaseOfFile(r.filename, generations_->Current()->boot.profile);
    std::optional<MacAddress> mac = phase ? NodeOf(r.client_address) : std::nullopt;
    if (!mac) return;
    nodes_->AddBytes(*mac, r.bytes);
    if (r.outcome == tftp::Outcome::kComplete) {
      nodes_->Reached(*mac, *phase, r.client_address);
    } else if (r.outcome != tftp::Outcome::kRejected && r.bytes > 0) {
      nodes_->Failed(
          *mac, fmt::format("{} failed over TFTP after {} of {} bytes: {}",
                            EscapeForLog(r.filename), r.bytes, r.size, EscapeForLog(r.detail)));
    }
  };
  return std::make_unique<tftp::Server>(
      tc, [this](std::string_view client) { return TreeFor(client); }, tftp_log);
}

std::unique_ptr<dhcp::Server> Daemon::MakeDhcp() {
  if (options_.dhcp == DhcpMode::kOff) return nullptr;
  dhcp::ServerConfig dc;
  dc.interface = options_.interface;
  dc.protocol.mode = options_.dhcp == DhcpMode::kFull ? dhcp::Mode::kFull : dhcp::Mode::kProxy;
  auto ip = dhcp::ParseIp(server_ip_);
  if (!ip) throw std::runtime_error(fmt::format("--server-ip {}: not an IPv4 address", server_ip_));
  dc.protocol.server_ip = *ip;
  const bool pxelinux = options_.bios_loader == BiosLoader::kPxelinux;
  dc.protocol.bios_file = pxelinux ? "pxelinux.0" : "undionly.kpxe";
  dc.protocol.uefi_x64_file = FileName(options_.uefi_loader);
  // With pxelinux, iPXE (e.g. a NIC's ROM) is handed pxelinux.0 too.
  dc.protocol.ipxe_script_url = pxelinux ? "" : profile_.http_base + "/" + kIpxeScript;
  if (dc.protocol.mode == dhcp::Mode::kFull) {
    if (options_.dhcp_range.empty())
      throw std::runtime_error("--dhcp full needs --dhcp-range START,END");
    for (const auto& range : options_.dhcp_range)
      OrThrow(dhcp::ParseRange(range, dc.protocol), "--dhcp-range");
    dc.lease_file = options_.lease_file;
  }
  // AoE frames are Ethernet only: a router does not forward them.
  if (profile_.root == boot::RootTransport::kAoe) {
    dc.relayed_problem =
        "AoE (--root aoe) does not cross a router; this client cannot reach its root: serve with "
        "--root http or --root nbd";
  }
  const bool aoe_root = profile_.root == boot::RootTransport::kAoe;
  dc.on_client = [nodes = nodes_.get(), announce = aoe_.get(), slot = aoe_slot_.get(),
                  aoe_root](const dhcp::ClientEvent& c) {
    nodes->Dhcp(c.mac, c.ip ? dhcp::FormatIp(c.ip) : "", c.is_pxe, c.ipxe, c.arch,
                c.relayed_by != 0);
    if (c.relayed_by && aoe_root && c.is_pxe) {
      nodes->Failed(c.mac, fmt::format("booting through relay {}, but its root is AoE, which "
                                       "does not cross a router",
                                       dhcp::FormatIp(c.relayed_by)));
    }
    // A PXE request starts a boot: from now on this client reads the newest
    // image over AoE (its initrd's own DHCP later is not PXE).
    if (slot && c.is_pxe) slot->Bind(c.mac);
    // A booting client will look for its root soon: tell it where the AoE
    // target is now rather than at the driver's next 60 s discovery.
    if (announce) announce->AnnounceTo(c.mac);
  };
  return std::make_unique<dhcp::Server>(dc, GetLogger("dhcp"));
}

std::unique_ptr<RouterAdvertiser> Daemon::MakeRouterAdvertiser() {
  const RouterAdverts ra = options_.ipv6_ra;
  if (ra == RouterAdverts::kOff || (ra == RouterAdverts::kAuto && options_.dhcp != DhcpMode::kFull))
    return nullptr;
  try {
    return std::make_unique<RouterAdvertiser>(options_.interface, log_);
  } catch (const std::system_error& e) {
    if (ra == RouterAdverts::kOn) throw;
    log_->warn("no IPv6 router advertisements ({}); iPXE may wait ~16 s for IPv6", e.what());
    return nullptr;
  }
}

std::optional<std::string> Daemon::ExportsCannotFollow(const Generation& next) const {
  // An export's size is fixed: clients learn it once.
  const uint64_t size = aoe_slot_ ? aoe_slot_->current()->size() : nbd_ ? nbd_size_ : 0;
  if ((!aoe_slot_ && !nbd_) || next.image->size() == size) return std::nullopt;
  return fmt::format("size changed ({} -> {} bytes)", size, next.image->size());
}

void Daemon::Switch(std::shared_ptr<const Generation> next) {
  auto image = next->image;
  Publish(std::move(next));
  if (aoe_slot_) aoe_slot_->Replace(image);
}

namespace {

// The options Reload cannot apply to running servers, by flag name, where
// `a` and `b` differ.
std::vector<std::string_view> NeedRestart(const Options& a, const Options& b) {
  std::vector<std::string_view> names;
  auto check = [&](bool same, std::string_view name) {
    if (!same) names.push_back(name);
  };
  check(a.interface == b.interface, "interface");
  check(a.server_ip == b.server_ip, "server-ip");
  check(a.dhcp == b.dhcp, "dhcp");
  check(a.dhcp_range == b.dhcp_range, "dhcp-range");
  check(a.lease_file == b.lease_file, "lease-file");
  check(a.root == b.root, "root");
  check(a.aoe_shelf == b.aoe_shelf && a.aoe_slot == b.aoe_slot, "aoe");
  check(a.bios_loader == b.bios_loader, "bios-loader");
  check(a.uefi_loader == b.uefi_loader, "uefi-loader");
  check(a.tftp_address == b.tftp_address, "tftp-address");
  check(a.tftp_port == b.tftp_port, "tftp-port");
  check(a.http_address == b.http_address, "http-address");
  check(a.http_port == b.http_port, "http-port");
  check(a.announce_seconds == b.announce_seconds, "announce");
  check(a.stall_seconds == b.stall_seconds, "stall-after");
  check(a.ipv6_ra == b.ipv6_ra, "ipv6-ra");
  check(a.http_only == b.http_only, "http-only");
  check(a.backup_dir == b.backup_dir, "backup-dir");
  check(a.backup_token_file == b.backup_token_file, "backup-token-file");
  check(a.backup_max_bytes == b.backup_max_bytes, "backup-max-size");
  check(a.backup_keep == b.backup_keep, "backup-keep");
  check(a.user == b.user, "user");
  return names;
}

}  // namespace

Result<std::string> Daemon::Reload(const Options& next) {
  Options applied = options_;
  applied.image = next.image;
  applied.append = next.append;
  applied.nodes = next.nodes;
  applied.node_files = next.node_files;
  applied.node_files_path = next.node_files_path;
  applied.loaders = next.loaders;
  boot::ProfileOptions profile = profile_;
  profile.append = next.append;
  profile.node_scripts = WantsNodeScripts(applied);
  std::shared_ptr<const Generation> generation;
  try {
    generation = Load(applied, profile);
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInvalidInput, e.what());
  }
  if (auto why = ExportsCannotFollow(*generation)) {
    return MakeError(
        ErrorKind::kInvalidInput,
        fmt::format("{}: {} while exported over AoE; restart isoboot serve to serve it",
                    applied.image, *why));
  }
  std::vector<std::string_view> ignored = NeedRestart(options_, next);
  // Field by field: other threads read the rest of options_ (e.g. TreeFor
  // the interface) while this runs.
  options_.image = std::move(applied.image);
  options_.append = std::move(applied.append);
  options_.nodes = std::move(applied.nodes);
  options_.node_files = std::move(applied.node_files);
  options_.node_files_path = std::move(applied.node_files_path);
  options_.loaders = std::move(applied.loaders);
  profile_.append = profile.append;
  profile_.node_scripts = profile.node_scripts;
  // What Tick compares with from now on: the file just loaded.
  if (auto id = StatImage()) served_file_ = *id;
  rewritten_in_place_ = false;
  Switch(std::move(generation));
  std::string done = fmt::format(
      "reloaded: {} (kernel command line: {}), {} node(s) with their "
      "own arguments",
      options_.image, generations_->Current()->boot.profile.cmdline, options_.nodes.size());
  if (!ignored.empty()) {
    std::string names;
    for (std::string_view n : ignored)
      names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
    done += fmt::format("; changed but not applied until a restart: {}", names);
  }
  return done;
}

std::string Daemon::ReadyStatus() const {
  const char* dhcp_mode = options_.dhcp == DhcpMode::kFull ? "full" : "proxy";
  return fmt::format("HTTP{}{}{}",
                     aoe_   ? fmt::format(", AoE e{}.{}", profile_.shelf, profile_.slot)
                     : nbd_ ? fmt::format(", NBD {}", profile_.nbd_address)
                            : "",
                     tftp_ ? ", TFTP" : "", dhcp_ ? fmt::format(", DHCP ({})", dhcp_mode) : "");
}

std::optional<MacAddress> Daemon::NodeOf(std::string_view ip) const {
  if (auto mac = nodes_->MacFor(ip)) return mac;
  // Not leased by us (ProxyDHCP, or a static address): who the boot
  // network says it is.
  if (options_.interface.empty()) return std::nullopt;
  return NeighbourMac(ip, options_.interface);
}

std::optional<http::Page> Daemon::PageFor(const std::string& path, std::string_view query,
                                          std::string_view client) const {
  // The name the tree will look up ("//nodes\\x.iso" is nodes/x.iso too).
  if (std::optional<MacAddress> node = NodeImageMac(vfs::NormalizeClientPath(path))) {
    auto images = generations_->CurrentTrees().images;
    auto it = images->find(*node);
    if (it == images->end() || !it->second.keyed || !store_) return std::nullopt;
    std::string name = NodeImageName(*node);
    if (store_->KeyInQuery(name, KeyRight::kRead, query)) return std::nullopt;
    http::Page page;
    page.status = 403;
    page.body = fmt::format(
        "{} carries node {}'s overlay key: ask for it with ?key=<its read key> (`isoboot "
        "overlay key {} --read`)\n",
        path, name, name);
    return page;
  }
  if (path == "/up") {
    // The booted system says it is up (e.g. `curl http://SERVER:PORT/up`
    // from the live root), from its own address.
    http::Page page;
    std::optional<MacAddress> mac = NodeOf(client);
    if (!mac) {
      page.status = 404;
      page.body = fmt::format(
          "no node has the address {}: it got no lease from this server and is not on the "
          "boot network\n",
          client);
      return page;
    }
    nodes_->Up(*mac);
    page.body = fmt::format("{} is up\n", FormatMac(*mac));
    return page;
  }
  if (!IsStatusPage(path)) return std::nullopt;
  http::Page page;
  if (path == "/metrics") {
    page.content_type = "text/plain; version=0.0.4; charset=utf-8";
    page.body = Metrics();
  } else if (path == "/status.json") {
    page.content_type = "application/json";
    page.body = NodesJson(nodes_->Snapshot(), nodes_->Now());
  } else {
    page.content_type = "text/html; charset=utf-8";
    page.body = StatusHtml(nodes_->Snapshot(), nodes_->Now(), options_.image);
  }
  return page;
}

std::string Daemon::Metrics() const {
  MetricsText m;
  using L = MetricsText::Labels;
  m.Family("isoboot_build_info", "gauge", "The running isoboot: version, and the served image.");
  m.Sample({{"version", ISOBOOT_VERSION}, {"root", boot::ToString(profile_.root)}}, uint64_t{1});

  std::map<std::string, http::ClientCounters> http_clients = http_->Counters();
  http::ClientCounters http_sum;
  for (const auto& [ip, c] : http_clients) {
    http_sum.body_bytes += c.body_bytes;
    http_sum.requests += c.requests;
    http_sum.connections += c.connections;
  }
  const http::ServerStats hs = http_->Stats();
  m.Family("isoboot_http_requests_total", "counter", "HTTP responses finished or aborted.");
  m.Sample({}, http_sum.requests);
  m.Family("isoboot_http_responses_total", "counter", "HTTP responses by status class.");
  for (unsigned c = 1; c <= 5; ++c) {
    m.Sample({{"code", fmt::format("{}xx", c)}}, tallies_->http_by_class[c].load());
  }
  m.Family("isoboot_http_incomplete_responses_total", "counter",
           "HTTP responses whose body was cut short (the client went away or stalled).");
  m.Sample({}, tallies_->http_incomplete.load());
  m.Family("isoboot_http_sent_bytes_total", "counter", "HTTP response body bytes sent.");
  m.Sample({}, http_sum.body_bytes);
  m.Family("isoboot_http_connections", "gauge", "HTTP connections open now.");
  m.Sample({}, uint64_t{http_sum.connections});
  m.Family("isoboot_http_refused_connections_total", "counter",
           "HTTP connections closed at accept, by reason.");
  m.Sample(L{{"reason", "full"}}, hs.refused_full);
  m.Sample(L{{"reason", "per_client"}}, hs.refused_per_client);
  m.Family("isoboot_http_accept_errors_total", "counter", "accept() failures (EMFILE, ...).");
  m.Sample({}, hs.accept_errors);
  m.Family("isoboot_node_images", "gauge",
           "Node images (/nodes/<mac>.iso) made or being made since the start.");
  m.Sample({}, uint64_t{node_images_->count()});
  m.Family("isoboot_node_image_bytes", "gauge",
           "Bytes the node images hold in memory (their new sessions; the base is not copied).");
  m.Sample({}, node_images_->own_bytes());

  if (tftp_) {
    const tftp::ServerStats ts = tftp_->stats();
    m.Family("isoboot_tftp_requests_total", "counter", "TFTP read requests.");
    m.Sample({}, ts.requests);
    m.Family("isoboot_tftp_transfers_total", "counter", "TFTP transfers ended, by outcome.");
    m.Sample(L{{"outcome", "complete"}}, ts.completed);
    m.Sample(L{{"outcome", "failed"}}, ts.failed);
    m.Family("isoboot_tftp_sent_bytes_total", "counter", "TFTP bytes acknowledged by clients.");
    m.Sample({}, tallies_->tftp_bytes.load());
    m.Family("isoboot_tftp_active_transfers", "gauge", "TFTP transfers in flight.");
    m.Sample({}, ts.active);
    m.Family("isoboot_tftp_dropped_total", "counter",
             "TFTP packets or requests dropped or refused, by reason.");
    m.Sample(L{{"reason", "bad_packet"}}, ts.bad_packets);
    m.Sample(L{{"reason", "duplicate_request"}}, ts.duplicate_requests);
    m.Sample(L{{"reason", "busy"}}, ts.busy);
    m.Sample(L{{"reason", "client_busy"}}, ts.client_busy);
    m.Sample(L{{"reason", "displaced"}}, ts.displaced);
    m.Sample(L{{"reason", "unacknowledged"}}, ts.unacknowledged);
    m.Sample(L{{"reason", "no_socket"}}, ts.no_socket);
  }
  if (dhcp_) {
    const dhcp::ServerStats ds = dhcp_->stats();
    m.Family("isoboot_dhcp_received_total", "counter", "DHCP packets received.");
    m.Sample({}, ds.received);
    m.Family("isoboot_dhcp_answered_total", "counter", "DHCP replies sent.");
    m.Sample({}, ds.answered);
    m.Family("isoboot_dhcp_relayed_total", "counter", "Relayed DHCP requests answered.");
    m.Sample({}, ds.relayed);
    m.Family("isoboot_dhcp_dropped_total", "counter", "DHCP packets not answered, by reason.");
    m.Sample(L{{"reason", "malformed"}}, ds.dropped_bad);
    m.Sample(L{{"reason", "ignored"}}, ds.ignored - std::min(ds.ignored, ds.no_range));
    m.Sample(L{{"reason", "no_range"}}, ds.no_range);
    m.Sample(L{{"reason", "lease_write_failed"}}, ds.acks_dropped);
    m.Sample(L{{"reason", "receive_buffer"}}, ds.buffer_drops);
    m.Family("isoboot_dhcp_leases", "gauge", "DHCP leases held (offered or bound).");
    m.Sample({}, ds.leases);
    m.Family("isoboot_dhcp_lease_writes_total", "counter", "Lease file snapshots written.");
    m.Sample({}, ds.lease_writes);
  }
  if (aoe_) {
    aoe::ClientCounts sum;
    const std::map<aoe::Mac, aoe::ClientCounts> clients = aoe_->Stats();
    for (const auto& [mac, c] : clients)
      sum += c;
    const aoe::DropCounts drops = aoe_->Drops();
    m.Family("isoboot_aoe_frames_total", "counter", "AoE frames received from initiators.");
    m.Sample({}, sum.frames);
    m.Family("isoboot_aoe_bytes_total", "counter", "AoE bytes received and sent.");
    m.Sample({}, sum.bytes);
    m.Family("isoboot_aoe_errors_total", "counter", "ATA or AoE errors returned.");
    m.Sample({}, sum.ata_errors);
    m.Family("isoboot_aoe_dropped_total", "counter", "AoE frames dropped, by reason.");
    m.Sample(L{{"reason", "malformed"}}, sum.dropped);
    m.Sample(L{{"reason", "refused_config"}}, sum.refused);
    m.Sample(L{{"reason", "bad_source"}}, drops.bad_source);
    m.Sample(L{{"reason", "not_for_us"}}, drops.not_for_us);
    m.Family("isoboot_aoe_initiators", "gauge", "AoE initiator MACs seen (bounded table).");
    m.Sample({}, static_cast<uint64_t>(clients.size()));
    m.Family("isoboot_aoe_announcements_suppressed_total", "counter",
             "AoE announcements not sent: the per-MAC rate limit.");
    m.Sample({}, aoe_->AnnouncementsSuppressed());
  }
  if (nbd_) {
    const nbd::ServerStats ns = nbd_->Stats();
    m.Family("isoboot_nbd_connections_total", "counter", "NBD connections admitted.");
    m.Sample({}, ns.connections);
    m.Family("isoboot_nbd_connections", "gauge", "NBD connections open now.");
    m.Sample({}, ns.active);
    m.Family("isoboot_nbd_requests_total", "counter", "NBD transmission requests answered.");
    m.Sample({}, ns.requests);
    m.Family("isoboot_nbd_read_bytes_total", "counter", "NBD export bytes sent.");
    m.Sample({}, ns.bytes_read);
    m.Family("isoboot_nbd_errors_total", "counter", "NBD errors, by reason.");
    m.Sample(L{{"reason", "refused_full"}}, ns.refused_full);
    m.Sample(L{{"reason", "refused_per_client"}}, ns.refused_per_client);
    m.Sample(L{{"reason", "handshake_failure"}}, ns.handshake_failures);
    m.Sample(L{{"reason", "handshake_timeout"}}, ns.handshake_timeouts);
    m.Sample(L{{"reason", "bad_option"}}, ns.bad_options);
    m.Sample(L{{"reason", "bad_request"}}, ns.bad_requests);
    m.Sample(L{{"reason", "protocol_error"}}, ns.protocol_errors);
    m.Sample(L{{"reason", "read_error"}}, ns.read_errors);
    m.Sample(L{{"reason", "tls_handshake_failure"}}, ns.tls_handshake_failures);
  }
  NodeMetrics(m, nodes_->Snapshot());
  return m.text();
}

int Daemon::Run(std::stop_token stop, const RunHooks& hooks) {
  auto start = [this](const char* name, auto* server) {
    if (server)
      supervisor_.Start(
          name, [server] { server->Run(); }, [server] { server->Stop(); });
  };
  start("http", http_.get());
  start("aoe", aoe_.get());
  start("nbd", nbd_.get());
  start("tftp", tftp_.get());
  start("dhcp", dhcp_.get());
  start("ipv6-ra", router_advertiser_.get());
  const std::string ready = ReadyStatus();
  log_->info("ready: {}", ready);
  if (hooks.on_ready) hooks.on_ready(fmt::format("serving {}: {}", options_.image, ready));

  next_rebuild_check_ = std::chrono::steady_clock::now();
  while (supervisor_.WaitFor(stop, std::chrono::seconds(1))) {
    if (std::optional<Options> next = hooks.take_reload ? hooks.take_reload() : std::nullopt) {
      Result<std::string> r = Reload(*next);
      std::string status = r ? *r : "reload failed, still serving as before: " + r.error().message;
      if (r)
        log_->info("{}", status);
      else
        log_->error("{}", status);
      if (hooks.on_reloaded) hooks.on_reloaded(status);
    }
    Tick();
  }
  if (hooks.on_stopping) hooks.on_stopping();
  if (auto failure = supervisor_.failure()) {
    log_->error("{}; shutting down", *failure);
    supervisor_.StopAll();
    return kExitServerFailed;
  }
  log_->info("shutting down");
  supervisor_.StopAll();
  return 0;
}

void Daemon::Tick() {
  // Bytes as they go, so a node in a long download is not taken for stalled.
  for (const auto& [ip, counts] : http_->Counters()) {
    uint64_t& seen = http_bytes_seen_[ip];
    if (counts.body_bytes == seen) continue;
    const uint64_t fresh = counts.body_bytes - seen;
    seen = counts.body_bytes;
    if (std::optional<MacAddress> mac = NodeOf(ip)) nodes_->AddBytes(*mac, fresh);
  }
  if (aoe_) {
    for (const auto& [mac, counts] : aoe_->Stats()) {
      nodes_->AoeTotal(mac, counts.bytes);
      if (counts.frames == 0 || !seen_aoe_clients_.insert(mac).second) continue;
      log_->info("{}: first AoE reads of e{}.{} ({} bytes so far)", FormatMac(mac), profile_.shelf,
                 profile_.slot, counts.bytes);
    }
  }
  auto now = std::chrono::steady_clock::now();
  if (!options_.rebuild_check_seconds || now < next_rebuild_check_) return;
  next_rebuild_check_ = now + std::chrono::seconds(options_.rebuild_check_seconds);
  std::optional<FileId> id = StatImage();
  if (!id || *id == served_file_) return;
  // Rewritten in place (same file, new contents): the open generation reads
  // the new bytes through its old directory, so its files are no longer
  // what they claim to be, and clients in the middle of a read got a mix.
  // Nothing can undo that; say so, and serve the new contents as soon as
  // they can be read.
  const bool in_place = id->dev == served_file_.dev && id->ino == served_file_.ino;
  if (in_place && !rewritten_in_place_) {
    log_->error(
        "{} was rewritten in place (same inode {}, {} -> {} bytes): clients reading it now get a "
        "mix of old and new bytes. Replace an image by writing a new file and renaming it over "
        "the old one (cp new.iso {}.tmp && mv {}.tmp {})",
        options_.image, id->ino, served_file_.size, id->size, options_.image, options_.image,
        options_.image);
    rewritten_in_place_ = true;
  }
  // A rebuilt image: new boots get it; running clients keep their open image
  // (TFTP/HTTP transfers hold their sources, AoE clients keep the generation
  // they started with).
  std::shared_ptr<const Generation> next;
  try {
    next = Load(options_, profile_);
  } catch (const std::exception& e) {
    // Half-written or broken: keep serving the old one, try again later.
    log_->warn("image changed but cannot be served yet: {}", e.what());
    return;
  }
  served_file_ = *id;
  rewritten_in_place_ = false;
  if (auto why = ExportsCannotFollow(*next)) {
    if (in_place) {
      // There is no old image left to stay on: TFTP and HTTP serve what the
      // file now holds, and the AoE export cannot follow.
      Publish(std::move(next));
      log_->error(
          "the rewritten image's {}: AoE clients read it through the old export size; "
          "restart isoboot serve",
          *why);
      return;
    }
    // A mismatched kernel, initrd and root would be worse than the old
    // image, so everything stays on the old one.
    log_->warn(
        "image rebuilt but {}: restart isoboot serve to export it over AoE; still serving "
        "the previous image",
        *why);
    return;
  }
  Switch(std::move(next));
  log_->info("image {} (inode {}): new boots get it", in_place ? "rewritten" : "rebuilt", id->ino);
}

}  // namespace isoboot::serve
