#pragma once
// `isoboot serve`: one process that boots clients from one live ISO. It
// opens the image, detects its layout, exports it over AoE, serves kernel,
// initrd, bootloaders and generated entries over TFTP and HTTP (plus the
// whole image over HTTP), and answers DHCP (ProxyDHCP or a full server).
//
// Daemon is the composition root: its members are the running parts, built
// in dependency order by short factories and destroyed in reverse. Run()
// starts each protocol server on a thread of its own and supervises them:
// it returns when asked to stop, or when a server fails (docs/design.md,
// "The daemon"). The Daemon touches no signals: cli/serve.cc turns SIGTERM
// into the stop request.
//
// Threading: construct, Run() and destroy on one thread. http_port() may be
// called from any thread once constructed.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "base/logging.h"
#include "base/mac.h"
#include "base/result.h"
#include "boot/profile.h"
#include "iso/node_image.h"
#include "nbd/protocol.h"
#include "serve/boot_tree.h"
#include "serve/image_device.h"
#include "serve/node_tracker.h"
#include "serve/supervisor.h"

namespace isoboot::aoe {
class Target;
class Server;
}  // namespace isoboot::aoe
namespace isoboot::nbd {
class Server;
}
namespace isoboot::tftp {
class Server;
}
namespace isoboot::dhcp {
class Server;
}
namespace isoboot::http {
class Server;
struct Page;
}  // namespace isoboot::http

namespace isoboot::serve {

class BackupStore;
class NodeImages;
class RouterAdvertiser;

enum class DhcpMode {
  kProxy,
  kFull,
  kOff
};
// BIOS clients get undionly.kpxe (then iPXE over HTTP) or pxelinux.0 (TFTP).
enum class BiosLoader {
  kIpxe,
  kPxelinux
};
// UEFI x86-64 clients get ipxe.efi or snponly.efi.
enum class UefiLoader {
  kIpxeEfi,
  kSnponly
};
// Empty IPv6 router advertisements so iPXE need not wait ~16 s for IPv6
// (serve/router_advert.h): kAuto = with DhcpMode::kFull only.
enum class RouterAdverts {
  kAuto,
  kOn,
  kOff
};

// The served file name of a UEFI loader ("ipxe.efi", "snponly.efi").
std::string_view FileName(UefiLoader loader);

// Kernel arguments for one node (--node MAC=ARGS).
struct NodeArgs {
  MacAddress mac{};
  std::string kernel_args;
};

// Files for one node's image (--node-files MAC=DIR).
struct NodeFiles {
  MacAddress mac{};
  std::string dir;
};

// Typed once, at the CLI boundary (cli/serve.cc).
struct Options {
  std::string image;
  std::string interface;  // the boot network; required unless http_only
  std::string server_ip;  // default: the interface's IPv4 address
  DhcpMode dhcp = DhcpMode::kProxy;
  std::vector<std::string> dhcp_range;  // full mode: "START,END[,NETMASK]", one per subnet
  std::string lease_file;               // full mode: where leases persist
  // nullopt: what the image's initrd can do (boot::DefaultRoot).
  std::optional<boot::RootTransport> root;
  uint16_t aoe_shelf = 0;  // the AoE target the image is exported as
  uint8_t aoe_slot = 1;
  std::string append;  // extra kernel arguments
  BiosLoader bios_loader = BiosLoader::kIpxe;
  UefiLoader uefi_loader = UefiLoader::kIpxeEfi;
  // Where TFTP and HTTP listen; empty: the server IP (so only the boot
  // network reaches them), or every address with http_only.
  std::string tftp_address;
  uint16_t tftp_port = 69;
  std::string http_address;
  uint16_t http_port = 8080;  // 0: the kernel picks one (see Daemon::http_port())
  // The NBD export of the image (root nbd only); the boot entries name the
  // port, so it cannot be 0.
  std::string nbd_address;
  uint16_t nbd_port = 10809;
  // NBD_OPT_STARTTLS for that export; off by default: dracut's nbd module
  // (nbd-client in the initrd) connects without TLS. On or require need
  // nbd_tls_certificates (nbd/tls.h), read at start, before root is dropped.
  nbd::TlsMode nbd_tls = nbd::TlsMode::kOff;
  std::string nbd_tls_certificates;
  bool nbd_tls_verify_peer = false;
  unsigned announce_seconds = 5;
  RouterAdverts ipv6_ra = RouterAdverts::kAuto;
  bool http_only = false;  // only the HTTP server (BMC virtual media, no interface needed)
  // That node gets its own boot entries with these arguments after the
  // profile's (several for one MAC are joined).
  std::vector<NodeArgs> nodes;
  // Each node with settings (nodes, a stored backup, node_files) also gets
  // its own image at /nodes/<mac>.iso (serve/node_images.h): the image's
  // boot menus with its arguments, loader.extra_initrds as a second
  // initramfs, node_files' directory at node_files_path.
  std::vector<NodeFiles> node_files;
  std::string node_files_path = "/pitdata";
  // Overlay backup store at /overlay/ (serve/backup_store.h); off when empty.
  // Nodes named by MAC boot with isoboot.overlay=<their newest backup>.
  std::string backup_dir;
  std::string backup_token_file;  // default: <backup_dir>/.token, created when missing
  uint64_t backup_max_bytes = 8ull << 30;
  unsigned backup_keep = 5;
  Bootloaders loaders;
  unsigned rebuild_check_seconds = 2;
  // The status page marks a node stalled after this long without progress
  // (neither up nor failed, and served nothing new).
  unsigned stall_seconds = 60;
  // Run as this user once every socket is bound (cli/serve.cc); empty: stay.
  std::string user;
};

// What Run tells its caller and asks it (cli/serve.cc: systemd's notify
// socket, SIGHUP). Every hook is called on Run's thread; any may be empty.
struct RunHooks {
  // Every server is running; `status` says in one line what is served.
  std::function<void(const std::string& status)> on_ready;
  // Polled once a second: the options to reload with (SIGHUP re-read the
  // config file), or nullopt. A reload that cannot be applied is logged and
  // the running configuration kept.
  std::function<std::optional<Options>()> take_reload;
  // A reload was asked for (`status` says what came of it), or Run is
  // about to stop the servers.
  std::function<void(const std::string& status)> on_reloaded;
  std::function<void()> on_stopping;
};

// Exit status of `isoboot serve` when a server stopped with an error while
// serving (setup errors exit 1 through main; a requested stop exits 0).
inline constexpr int kExitServerFailed = 3;

class Daemon {
 public:
  // Opens the image, binds every socket and builds every server; throws a
  // one-line setup error (std::exception) naming what is wrong.
  Daemon(Options options, Logger logger);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Serves until `stop` is requested (returns 0) or a server fails (logs
  // which and why, stops the others, returns kExitServerFailed). Call once.
  int Run(std::stop_token stop, const RunHooks& hooks = {});

  // Applies `next` to the running daemon, as SIGHUP does: the image (opened
  // anew even when its file did not change), append, node and the loaders.
  // Every other option needs new sockets or a new store; when one differs
  // it is named in the result and keeps its running value. All or nothing:
  // when the new image cannot be served (unreadable, or a new size while
  // exported over AoE) nothing changes. Returns one line saying what was
  // done, or an error saying why nothing was. Run's thread only.
  Result<std::string> Reload(const Options& next);

  uint16_t http_port() const;

 private:
  struct Tallies;
  class Generations;
  struct Generation;

  // The factories, called by the constructor in this order.
  std::string ServerIp() const;
  std::string ListenAddress(const std::string& option) const;
  std::shared_ptr<BackupStore> MakeStore();
  std::unique_ptr<http::Server> MakeHttp();
  // With `pick_root` the root is chosen from the image's initrd; else
  // p.root is used, and refused when the initrd cannot mount it.
  std::shared_ptr<const Generation> Load(const Options& o, const boot::ProfileOptions& p,
                                         bool pick_root = false) const;
  void MakeAoe();
  std::unique_ptr<nbd::Server> MakeNbd();
  std::unique_ptr<tftp::Server> MakeTftp();
  std::unique_ptr<dhcp::Server> MakeDhcp();
  std::unique_ptr<RouterAdvertiser> MakeRouterAdvertiser();

  std::vector<NodeEntry> NodeEntries(const Generation& g) const;
  // What each node's image (/nodes/<mac>.iso) is made from, and whether it
  // carries the node's overlay read key (then it is served with that key
  // only, ?key=).
  struct NodeImageEntry {
    iso::NodeImageSpec spec;
    bool keyed = false;
  };
  std::map<MacAddress, NodeImageEntry> NodeImageSpecs(const Generation& g) const;
  // What `client` (an IP address) is served: the common tree, plus its own
  // node entries when it is on the boot network at that node's MAC.
  std::shared_ptr<const vfs::Tree> TreeFor(std::string_view client) const;
  struct FileId {  // which file, and which contents, is served
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  std::optional<FileId> StatImage() const;               // nullopt: cannot stat it now
  void Publish(std::shared_ptr<const Generation> next);  // a new image or a new backup
  void Tick();  // once a second: first AoE reads, a rebuilt image
  // Why `next` cannot replace what AoE or NBD export now (their size is
  // fixed), or nullopt.
  std::optional<std::string> ExportsCannotFollow(const Generation& next) const;
  void Switch(std::shared_ptr<const Generation> next);
  std::string ReadyStatus() const;
  // /status, /status.json, /metrics and /up (serve/status_page.h); nullopt
  // for every other path.
  std::optional<http::Page> PageFor(const std::string& path, std::string_view query,
                                    std::string_view client) const;
  std::string Metrics() const;
  // The node behind `ip`: DHCP's answer, else the boot network's neighbour
  // table.
  std::optional<MacAddress> NodeOf(std::string_view ip) const;

  // In the order they are built; each uses only those above it.
  // options_ and profile_ change only in Reload, on Run's thread, and only
  // in what Reload applies (image, append, nodes, loaders); other threads
  // read those through the published Generation, never here.
  Options options_;
  const Logger log_;
  const std::string server_ip_;
  boot::ProfileOptions profile_;  // http_base known once HTTP is bound
  // Where each node is (status page, metrics), and who an IP address is.
  std::unique_ptr<NodeTracker> nodes_;
  std::unique_ptr<Tallies> tallies_;          // counted in the servers' hooks
  std::unique_ptr<Generations> generations_;  // the served image and tree
  std::unique_ptr<NodeImages> node_images_;   // made on request, from the current generation
  std::shared_ptr<BackupStore> store_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<aoe::Target> aoe_target_;
  std::shared_ptr<ImageDevice::Slot> aoe_slot_;
  std::unique_ptr<aoe::Server> aoe_;
  uint64_t nbd_size_ = 0;  // the size NBD clients were told
  std::unique_ptr<nbd::Server> nbd_;
  std::unique_ptr<tftp::Server> tftp_;
  std::unique_ptr<dhcp::Server> dhcp_;
  std::unique_ptr<RouterAdvertiser> router_advertiser_;
  // Last: destroyed first, so every server thread is joined before the
  // servers go.
  Supervisor supervisor_;
  // Tick()'s state, owner's thread only.
  FileId served_file_;
  bool rewritten_in_place_ = false;  // said so once for this rewrite
  // Bounded: the AoE stats have at most workers x 1024 + 1 entries.
  std::set<MacAddress> seen_aoe_clients_;
  // Body bytes HTTP had sent each client IP at the last Tick (as many
  // entries as the HTTP server's own per-client table).
  std::map<std::string, uint64_t> http_bytes_seen_;
  std::chrono::steady_clock::time_point next_rebuild_check_;
};

}  // namespace isoboot::serve
