#include "serve/daemon.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "aoe/codec.h"
#include "aoe/device.h"
#include "aoe/server.h"
#include "aoe/target.h"
#include "base/logging.h"
#include "dhcp/server.h"
#include "http/server.h"
#include "iso/image.h"
#include "linux/packet_socket.h"
#include "serve/backup_store.h"
#include "serve/image_device.h"
#include "serve/netif.h"
#include "serve/router_advert.h"
#include "tftp/codec.h"
#include "tftp/server.h"

namespace isoboot::serve {
namespace {

std::shared_ptr<const iso::Image> OpenImage(const std::string& path) {
  auto image = iso::Image::Open(path);
  if (!image) throw std::runtime_error(image.error().message);
  return std::shared_ptr<const iso::Image>(std::move(*image));
}

// The image being served and the tree built from it; replaced as a whole
// when the image file is rebuilt.
struct Generation {
  std::shared_ptr<const iso::Image> image;
  BootTree boot;
};

// Client IP -> MAC, learnt from DHCP, so TFTP/HTTP milestones name the MAC.
class ClientNames {
 public:
  void Learn(const MacAddress& mac, dhcp::Ip4 ip) {
    if (ip == 0) return;
    std::lock_guard lock(mu_);
    by_ip_[dhcp::FormatIp(ip)] = FormatMac(mac);
  }
  std::string Name(const std::string& ip) const {
    std::lock_guard lock(mu_);
    auto it = by_ip_.find(ip);
    return it == by_ip_.end() ? ip : fmt::format("{} ({})", it->second, ip);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> by_ip_;
};

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

int Serve(const Options& o) {
  Logger log = GetLogger("serve");
  boot::ProfileOptions profile_options;
  auto target = aoe::ParseTargetName(o.aoe);
  if (!target) throw std::runtime_error("--aoe: " + target.error().message);
  std::tie(profile_options.shelf, profile_options.slot) = *target;
  // Without the boot network there is no AoE export: entries fetch over HTTP.
  profile_options.root =
      o.root == "http" || o.http_only ? boot::RootTransport::kHttp : boot::RootTransport::kAoe;
  profile_options.append = o.append;

  std::string server_ip = o.server_ip;
  if (server_ip.empty() && !o.interface.empty()) {
    auto addr = InterfaceIpv4(o.interface);
    if (!addr) throw std::runtime_error(addr.error().message);
    server_ip = addr->ip;
  }
  if (server_ip.empty()) server_ip = "127.0.0.1";
  if (!o.http_only && o.interface.empty()) {
    throw std::runtime_error("--interface is required (the boot network), or use --http-only");
  }
  // Bind HTTP first so the boot entries carry the real port (port 0 in tests).
  // `served_tree` is the generation's tree plus per-node entries; both change
  // together under generation_mu.
  std::mutex generation_mu;
  std::shared_ptr<const Generation> generation;
  std::shared_ptr<const vfs::Tree> served_tree;
  auto current_tree = [&]() -> std::shared_ptr<const vfs::Tree> {
    std::lock_guard lock(generation_mu);
    return served_tree;
  };
  ClientNames names;

  std::shared_ptr<BackupStore> store;
  if (!o.backup_dir.empty()) {
    BackupStoreOptions so;
    so.dir = o.backup_dir;
    so.token_file = o.backup_token_file;
    auto max = ParseSize(o.backup_max_size);
    if (!max) throw std::runtime_error("--backup-max-size: not a size like 8G, 512M or 1000000");
    so.max_bytes = *max;
    so.keep = o.backup_keep;
    store = std::make_shared<BackupStore>(so, GetLogger("backup"));
  }

  http::ServerOptions http_options;
  http_options.address = o.http_address;
  http_options.port = o.http_port;
  http_options.threads = 2;
  http_options.store = store;
  Logger http_log = GetLogger("http");
  auto http_server = std::make_unique<http::Server>(
      current_tree, http_options, http_log, [&names, http_log](const http::RequestRecord& r) {
        if (r.received > 0) {
          http_log->info("{} {} {} {}: received {} bytes in {:.2f} s", names.Name(r.client),
                         r.method, r.path, r.status, r.received, r.seconds);
          return;
        }
        http_log->info("{} {} {} {}: {} of {} bytes in {:.2f} s", names.Name(r.client), r.method,
                       r.path, r.status, r.bytes, r.content_length, r.seconds);
      });
  profile_options.http_base = fmt::format("http://{}:{}", server_ip, http_server->port());

  // Each node with a stored backup boots with the URL of its newest one and
  // a key that reads that backup only.
  std::map<MacAddress, std::string> node_args;
  for (const auto& spec : o.node_args) {
    size_t eq = spec.find('=');
    auto mac = ParseMac(std::string_view(spec).substr(0, eq));
    if (eq == std::string::npos || !mac) {
      throw std::runtime_error(fmt::format("--node {}: expected MAC=KERNEL-ARGS", spec));
    }
    std::string& args = node_args[*mac];
    args += (args.empty() ? "" : " ") + spec.substr(eq + 1);
  }
  auto node_entries = [&]() {
    std::map<MacAddress, std::string> args = node_args;
    if (store) {
      for (const MacAddress& mac : store->Nodes()) {
        std::string name = *BackupStore::CanonicalName(FormatMac(mac));
        std::string& a = args[mac];
        a += fmt::format("{}isoboot.overlay={}{}{}?key={}", a.empty() ? "" : " ",
                         profile_options.http_base, http_options.store_prefix, name,
                         store->ReadKey(name));
      }
    }
    std::vector<NodeEntry> nodes;
    for (auto& [mac, a] : args)
      nodes.push_back({mac, std::move(a)});
    return nodes;
  };
  profile_options.node_scripts = store || !node_args.empty();
  // Call with generation_mu held.
  auto publish = [&](std::shared_ptr<const Generation> next) {
    generation = std::move(next);
    served_tree = WithNodeEntries(generation->boot, profile_options.http_base, node_entries());
  };
  if (store) {
    store->set_on_commit([&](const std::string& name) {
      std::lock_guard lock(generation_mu);
      publish(generation);
      if (ParseMac(name)) log->info("node {}: its next boots restore this backup", name);
    });
  }

  auto load = [&](const std::string& path) {
    auto image = OpenImage(path);
    auto boot = BuildBootTree(image, profile_options, o.loaders, o.http_only);
    if (!boot) throw std::runtime_error(fmt::format("{}: {}", path, boot.error().message));
    for (const auto& w : boot->warnings)
      log->warn("{}", w);
    return std::make_shared<const Generation>(Generation{image, std::move(*boot)});
  };
  {
    std::lock_guard lock(generation_mu);
    publish(load(o.image));
  }
  if (store) {
    log->info(
        "overlay backups: PUT/GET {}{}NAME, stored in {} (token in {}); {} node(s) boot "
        "with theirs",
        profile_options.http_base, http_options.store_prefix, store->options().dir,
        store->options().token_file, store->Nodes().size());
  }
  if (!generation->boot.profile.kernel.empty()) {
    log->info("serving {} ({} layout, {}): kernel {}, initrd {}", o.image,
              iso::ToString(generation->boot.layout.kind), generation->boot.layout.arch,
              generation->boot.profile.kernel, generation->boot.profile.initrd);
    log->info("kernel command line: {}", generation->boot.profile.cmdline);
  }
  log->info("HTTP on {}; the image is at {}/{}", http_server->port(), profile_options.http_base,
            kImageName);

  // Signals are taken by this thread only (sigtimedwait below).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<aoe::Target> aoe_target;
  std::unique_ptr<aoe::Server> aoe_server;
  std::unique_ptr<tftp::Server> tftp_server;
  std::unique_ptr<dhcp::Server> dhcp_server;
  std::unique_ptr<RouterAdvertiser> router_advertiser;
  std::shared_ptr<ImageDevice::Slot> aoe_slot;
  if (!o.http_only) {
    sys::InterfaceInfo iface = sys::LookupInterface(o.interface);
    if (profile_options.root == boot::RootTransport::kAoe) {
      aoe_target =
          std::make_unique<aoe::Target>(iface.mac, aoe::Target::SectorsForMtu(iface.mtu), 16);
      aoe::ExportOptions eo;
      eo.shelf = profile_options.shelf;
      eo.slot = profile_options.slot;
      eo.config_string = "isoboot";
      auto device = std::make_unique<ImageDevice>(generation->image);
      aoe_slot = device->slot();
      aoe_target->AddExport(eo, std::move(device));
      aoe::ServerOptions so;
      so.iface = iface;
      so.announce_seconds = o.announce_seconds;
      aoe_server = std::make_unique<aoe::Server>(*aoe_target, so, GetLogger("aoe"));
    }
    tftp::ServerConfig tc;
    tc.address = o.tftp_address;
    tc.port = o.tftp_port;
    tc.transfer.limits.max_blksize = tftp::BlksizeForMtu(iface.mtu);
    Logger tftp_log = GetLogger("tftp");
    tc.on_transfer = [&names, tftp_log](const tftp::TransferRecord& r) {
      if (r.outcome == tftp::Outcome::kComplete) {
        tftp_log->info("{}: sent {} ({} bytes) in {:.2f} s, blksize {}, window {}, {} retransmits",
                       names.Name(r.client_address), r.filename, r.bytes, r.seconds, r.blksize,
                       r.windowsize, r.retransmits);
      } else if (r.outcome != tftp::Outcome::kRejected && r.bytes > 0) {
        tftp_log->warn("{}: {} failed after {} of {} bytes: {}", names.Name(r.client_address),
                       r.filename, r.bytes, r.size, r.detail);
      }
    };
    tftp_server = std::make_unique<tftp::Server>(tc, current_tree, tftp_log);

    if (o.dhcp != "off") {
      dhcp::ServerConfig dc;
      dc.interface = o.interface;
      dc.protocol.mode = o.dhcp == "full" ? dhcp::Mode::kFull : dhcp::Mode::kProxy;
      auto ip = dhcp::ParseIp(server_ip);
      if (!ip)
        throw std::runtime_error(fmt::format("--server-ip {}: not an IPv4 address", server_ip));
      dc.protocol.server_ip = *ip;
      bool pxelinux = o.bios_loader == "pxelinux";
      dc.protocol.bios_file = pxelinux ? "pxelinux.0" : "undionly.kpxe";
      dc.protocol.uefi_x64_file = o.uefi_loader;
      // With pxelinux, iPXE (e.g. a NIC's ROM) is handed pxelinux.0 too.
      dc.protocol.ipxe_script_url = pxelinux ? "" : profile_options.http_base + "/" + kIpxeScript;
      if (dc.protocol.mode == dhcp::Mode::kFull) {
        if (o.dhcp_range.empty())
          throw std::runtime_error("--dhcp full needs --dhcp-range START,END");
        if (auto r = dhcp::ParseRange(o.dhcp_range, dc.protocol); !r) {
          throw std::runtime_error(fmt::format("--dhcp-range: {}", r.error().message));
        }
        dc.lease_file = o.lease_file;
      }
      aoe::Server* announce = aoe_server.get();
      ImageDevice::Slot* slot = aoe_slot.get();
      dc.on_client = [&names, announce, slot](const MacAddress& mac, dhcp::Ip4 ip, bool is_pxe) {
        names.Learn(mac, ip);
        // A PXE request starts a boot: from now on this client reads the
        // newest image over AoE (its initrd's own DHCP later is not PXE).
        if (slot && is_pxe) slot->Bind(mac);
        // A booting client will look for its root soon: tell it where the
        // AoE target is now rather than at the driver's next 60 s discovery.
        if (announce) announce->AnnounceTo(mac);
      };
      dhcp_server = std::make_unique<dhcp::Server>(dc, GetLogger("dhcp"));
    }
    if (o.ipv6_ra == "on" || (o.ipv6_ra == "auto" && o.dhcp == "full")) {
      try {
        router_advertiser = std::make_unique<RouterAdvertiser>(o.interface, log);
      } catch (const std::system_error& e) {
        if (o.ipv6_ra == "on") throw;
        log->warn("no IPv6 router advertisements ({}); iPXE may wait ~16 s for IPv6", e.what());
      }
    }
  }

  std::atomic<int> running{0};
  std::vector<std::thread> threads;
  auto start = [&](auto* server) {
    if (!server) return;
    ++running;
    threads.emplace_back([server, &running] {
      server->Run();
      --running;
    });
  };
  const int expected = 1 + (aoe_server ? 1 : 0) + (tftp_server ? 1 : 0) + (dhcp_server ? 1 : 0) +
                       (router_advertiser ? 1 : 0);
  start(http_server.get());
  start(aoe_server.get());
  start(tftp_server.get());
  start(dhcp_server.get());
  start(router_advertiser.get());
  log->info("ready: {}{}{}{}", "HTTP", aoe_server ? ", AoE " + o.aoe : "",
            tftp_server ? ", TFTP" : "", dhcp_server ? ", DHCP (" + o.dhcp + ")" : "");

  struct stat served {};
  ::stat(o.image.c_str(), &served);
  std::set<aoe::Mac> seen_aoe_clients;
  auto next_check = std::chrono::steady_clock::now();
  int status = 0;
  for (;;) {
    timespec timeout{1, 0};
    int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) {
      log->info("signal {}: shutting down", sig);
      break;
    }
    if (running.load() < expected) {
      log->error("a server stopped unexpectedly; shutting down");
      status = 1;
      break;
    }
    if (aoe_server) {
      for (const auto& [mac, counts] : aoe_server->Stats()) {
        if (counts.frames > 0 && seen_aoe_clients.insert(mac).second) {
          log->info("{}: first AoE reads of e{}.{} ({} bytes so far)", FormatMac(mac),
                    profile_options.shelf, profile_options.slot, counts.bytes);
        }
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (o.rebuild_check_seconds && now >= next_check) {
      next_check = now + std::chrono::seconds(o.rebuild_check_seconds);
      struct stat st {};
      if (::stat(o.image.c_str(), &st) == 0 && !SameFile(st, served)) {
        // A rebuilt image: new boots get it; running clients keep their
        // open image (TFTP/HTTP transfers hold their sources, AoE clients
        // keep the generation they started with).
        try {
          auto next = load(o.image);
          served = st;
          if (aoe_slot && next->image->size() != aoe_slot->current()->size()) {
            // The AoE export's size is fixed (clients learn it once); a
            // mismatched kernel, initrd and root would be worse than the old
            // image, so everything stays on the old one.
            log->warn(
                "image rebuilt but its size changed ({} -> {} bytes): restart isoboot serve to "
                "export it over AoE; still serving the previous image",
                aoe_slot->current()->size(), next->image->size());
            continue;
          }
          {
            std::lock_guard lock(generation_mu);
            publish(next);
          }
          if (aoe_slot) aoe_slot->Replace(next->image);
          log->info("image rebuilt (inode {}): new boots get it", st.st_ino);
        } catch (const std::exception& e) {
          // Half-written or broken: keep serving the old one, try again later.
          log->warn("image changed but cannot be served yet: {}", e.what());
        }
      }
    }
  }
  if (router_advertiser) router_advertiser->Stop();
  if (dhcp_server) dhcp_server->Stop();
  if (tftp_server) tftp_server->Stop();
  if (aoe_server) aoe_server->Stop();
  http_server->Stop();
  for (auto& t : threads)
    t.join();
  return status;
}

}  // namespace isoboot::serve
