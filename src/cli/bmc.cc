// `isoboot bmc status|insert|eject|boot|console`: drive BMCs over Redfish
// (virtual CD from a URL or network boot, one-time boot, reset) and attach
// the SOL console. With --data DIR, an image of DIR labelled PITDATA (or
// --data-label) is built, served and inserted into a second slot.
// The password comes from an environment variable, a file or a no-echo
// prompt, never from argv; it is never logged or put in a URL.

#include <netdb.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "base/strings.h"
#include "bmc/client.h"
#include "bmc/console.h"
#include "bmc/fleet.h"
#include "cli/command.h"
#include "cli/signals.h"
#include "http/server.h"
#include "iso/data_image.h"
#include "iso/grow.h"
#include "iso/image.h"
#include "iso/node_image.h"
#include "vfs/vfs.h"

namespace isoboot::cli {
namespace {

using bmc::BmcError;
using bmc::Failure;
using nlohmann::json;

struct BmcArgs {
  std::string action;
  std::vector<std::string> hosts;
  std::string host_file;
  std::string user;
  std::string password_env;
  std::string password_file;
  std::string iso;
  std::string ca;
  bool insecure = false;
  bool json_out = false;
  bool console = false;
  std::string via = "cd";  // boot: "cd" (virtual media) or "pxe"
  std::string boot_mode;
  double poll_interval = 3;
  double mount_timeout = 60;
  double power_timeout = 120;
  double request_timeout = 30;
  int parallel = 16;
  std::string serve_image;  // --serve: serve this file over HTTP in-process
  std::string http_address = "0.0.0.0";
  uint16_t http_port = 8080;
  std::string url_host;
  std::string data_dir;  // --data: serve an image of this directory in a second slot
  std::string data_label = std::string(iso::kDefaultDataLabel);
};

// The BMC's address as the HTTP server sees its peers (numeric).
std::string ResolveHost(const std::string& bmc) {
  std::string host = bmc::HostOnly(bmc);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return host;
  char buf[NI_MAXHOST] = {};
  getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(res);
  return buf;
}

std::string ReadPassword(const BmcArgs& a) {
  if (!a.password_env.empty()) {
    const char* v = std::getenv(a.password_env.c_str());
    if (!v)
      throw BmcError(Failure::kUsage, "environment variable " + a.password_env + " is not set");
    return v;
  }
  if (!a.password_file.empty()) {
    std::ifstream f(a.password_file);
    if (!f) throw BmcError(Failure::kUsage, "cannot read the password file " + a.password_file);
    std::string line;
    std::getline(f, line);
    // Only the line end: a password may start or end with a space.
    return std::string(Trim(line, "\r\n"));
  }
  FILE* tty = std::fopen("/dev/tty", "r+");
  if (!tty) {
    throw BmcError(Failure::kUsage,
                   "no password: pass --password-env VAR or --password-file FILE (no terminal to "
                   "prompt on)");
  }
  std::fprintf(tty, "BMC password for %s: ", a.user.c_str());
  std::fflush(tty);
  termios old{};
  tcgetattr(fileno(tty), &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
  char buf[512] = {};
  bool ok = std::fgets(buf, sizeof buf, tty) != nullptr;
  tcsetattr(fileno(tty), TCSAFLUSH, &old);
  std::fprintf(tty, "\n");
  std::fclose(tty);
  if (!ok) throw BmcError(Failure::kUsage, "no password entered");
  return std::string(Trim(buf, "\r\n"));
}

// --bmc hosts, then --bmc-file's (whose lines may carry a MAC and kernel
// arguments: bmc::ParseHostFile).
std::vector<bmc::FleetHost> ReadFleet(const BmcArgs& a) {
  std::vector<bmc::FleetHost> hosts;
  for (const std::string& h : a.hosts)
    hosts.push_back({h, std::nullopt, ""});
  if (!a.host_file.empty()) {
    std::ifstream f(a.host_file);
    if (!f) throw BmcError(Failure::kUsage, "cannot read " + a.host_file);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto lines = bmc::ParseHostFile(text);
    if (!lines) throw BmcError(Failure::kUsage, a.host_file + ": " + lines.error().message);
    for (bmc::FleetHost& h : *lines)
      hosts.push_back(std::move(h));
  }
  if (hosts.empty()) throw BmcError(Failure::kUsage, "no BMC: pass --bmc HOST or --bmc-file FILE");
  return hosts;
}

json StatusJson(const bmc::SystemStatus& s) {
  json j = {{"vendor", s.vendor},
            {"system", s.system},
            {"power_state", s.power_state},
            {"boot_override_target", s.boot_target},
            {"boot_override_enabled", s.boot_enabled},
            {"virtual_media", s.has_media}};
  if (s.has_media) {
    j["media"] = {{"slot", s.media.slot},
                  {"image", s.media.image},
                  {"inserted", s.media.inserted},
                  {"connected_via", s.media.connected_via}};
    if (!s.media.redirection.empty()) j["media"]["redirection_status"] = s.media.redirection;
    if (s.has_data_slot) {
      j["data_media"] = {{"slot", s.data_media.slot},
                         {"image", s.data_media.image},
                         {"inserted", s.data_media.inserted},
                         {"connected_via", s.data_media.connected_via}};
    }
  } else {
    j["media_problem"] = s.media_problem;
  }
  return j;
}

void PrintStatus(const std::string& host, const json& s) {
  fmt::print("{}: {} {}, power {}, boot override {} ({})\n", host, s["vendor"].get<std::string>(),
             s["system"].get<std::string>(), s["power_state"].get<std::string>(),
             s["boot_override_target"].get<std::string>(),
             s["boot_override_enabled"].get<std::string>());
  if (!s["virtual_media"].get<bool>()) {
    fmt::print("  virtual media: none ({})\n", s["media_problem"].get<std::string>());
    return;
  }
  const json& m = s["media"];
  std::string via = m["connected_via"].get<std::string>();
  std::string redirection = m.value("redirection_status", "");
  fmt::print("  virtual CD {}: {}{}{}\n", m["slot"].get<std::string>(),
             m["inserted"].get<bool>() ? "inserted " + m["image"].get<std::string>()
                                       : std::string("empty"),
             via.empty() ? "" : ", " + via, redirection.empty() ? "" : ", " + redirection);
  if (s.contains("data_media")) {
    const json& d = s["data_media"];
    fmt::print("  data slot {}: {}\n", d["slot"].get<std::string>(),
               d["inserted"].get<bool>() ? "inserted " + d["image"].get<std::string>()
                                         : std::string("empty"));
  }
}

bmc::ClientOptions ClientOptionsFrom(const BmcArgs& a, std::stop_token stop) {
  bmc::ClientOptions o;
  o.http.ca_file = a.ca;
  o.http.insecure = a.insecure;
  o.http.timeout_ms = static_cast<long>(a.request_timeout * 1000);
  o.http.connect_timeout_ms = std::min<long>(o.http.timeout_ms, 10000);
  o.poll_interval_s = a.poll_interval;
  int per = a.poll_interval > 0 ? 1 : 0;
  o.verify_polls =
      std::max(2, static_cast<int>(a.mount_timeout / std::max(a.poll_interval, 0.001)) + per);
  o.power_polls =
      std::max(2, static_cast<int>(a.power_timeout / std::max(a.poll_interval, 0.001)) + per);
  o.boot_mode = a.boot_mode;
  o.stop = std::move(stop);
  return o;
}

// The action for one BMC (`iso_for`: the URL it mounts, its node image's
// or the common one; `data`: the data image's URL or ""); everything
// captured by value, as it runs on the fleet's threads.
using UrlFor = std::function<std::string(const std::string& host)>;
bmc::HostAction MakeAction(const BmcArgs& a, UrlFor iso_for, std::string data,
                           bmc::Credentials credentials, bmc::ClientOptions options, Logger log,
                           bmc::PullCountersFn pulled) {
  return [action = a.action, via = a.via, iso_for = std::move(iso_for), data = std::move(data),
          credentials = std::move(credentials), options = std::move(options), log = std::move(log),
          pulled = std::move(pulled)](const std::string& host, const bmc::ProgressFn& progress) {
    const std::string iso = iso_for(host);
    bmc::BmcClient client(host, credentials, options, log, progress);
    json fields = json::object();
    if (action == "status") {
      fields["status"] = StatusJson(client.Status());
    } else if (action == "insert") {
      client.Insert(iso, data);
    } else if (action == "eject") {
      client.Eject();
    } else if (action == "boot" && via == "pxe") {
      client.NetBoot();
    } else if (action == "boot") {
      client.Boot(iso, data);
    }
    if (action == "boot") fields["via"] = via;
    if (!iso.empty() && (action == "boot" || action == "insert") && via != "pxe")
      fields["iso"] = iso;
    if (!data.empty()) {
      fields["data_image"] = data;
      fields["data_slot"] = client.data_slot();
    }
    fields["vendor"] = client.profile().name;
    if (pulled) {
      if (auto counters = pulled(host)) {
        fields["bytes_pulled"] = counters->bytes;
        fields["requests"] = counters->requests;
      }
    }
    return fields;
  };
}

// --serve IMAGE and the --data image: each at a short plain URL (BMCs
// limit URL length), served by this process on a thread of its own until
// destroyed. `data_image` is the built data image's file, or "".
class ImageServer {
 public:
  ImageServer(const BmcArgs& a, const std::vector<bmc::FleetHost>& fleet,
              const std::string& data_image, const Logger& log) {
    std::string url_host = a.url_host.empty() ? a.http_address : a.url_host;
    if (url_host == "0.0.0.0" || url_host == "::") {
      throw BmcError(Failure::kUsage,
                     fmt::format("{}: pass --url-host (the address BMCs reach us at)",
                                 a.serve_image.empty() ? "--data" : "--serve"));
    }
    auto tree = std::make_shared<vfs::Tree>();
    if (!a.serve_image.empty()) {
      auto source = vfs::HostFileSource(a.serve_image);
      if (!source) throw BmcError(Failure::kUsage, source.error().message);
      tree->Add("live.iso", *source);
    }
    // The label is A-Z, 0-9 and _ only, so the name never clashes with live.iso.
    std::string data_name = a.data_label + ".iso";
    if (!data_image.empty()) {
      auto source = vfs::HostFileSource(data_image);
      if (!source) throw BmcError(Failure::kUsage, source.error().message);
      tree->Add(data_name, *source);
    }
    // Each host with a MAC gets its own image: the served one grown by the
    // host's kernel arguments (iso/node_image.h), made now.
    std::map<std::string, std::string> node_paths;  // host -> served name
    std::shared_ptr<const iso::Image> base;
    for (const bmc::FleetHost& h : fleet) {
      if (!h.mac || a.serve_image.empty()) continue;
      if (!base) {
        auto opened = iso::Image::Open(a.serve_image);
        if (!opened) throw BmcError(Failure::kUsage, opened.error().message);
        base = std::move(*opened);
      }
      iso::NodeImageSpec spec;
      spec.kernel_args = h.kernel_args;
      auto node = iso::MakeNodeImage(*base, spec);
      if (!node) {
        throw BmcError(Failure::kUsage,
                       fmt::format("{} ({}): {}", h.host, FormatMac(*h.mac), node.error().message));
      }
      for (const std::string& w : node->warnings)
        log->warn("{}: {}", h.host, w);
      std::string name = FormatMac(*h.mac);
      std::replace(name.begin(), name.end(), ':', '-');
      name = "nodes/" + name + ".iso";
      log->info("{}: its own image at /{} ({} bytes of its own, menus changed: {})", h.host, name,
                node->grown.own_bytes(), node->menus.size());
      tree->Add(name, vfs::GrownImageSource(
                          base, std::make_shared<const iso::GrownImage>(std::move(node->grown))));
      node_paths[h.host] = name;
    }
    std::shared_ptr<const vfs::Tree> const_tree = tree;
    http::ServerOptions so;
    so.address = a.http_address;
    so.port = a.http_port;
    server_ = std::make_unique<http::Server>([const_tree](std::string_view) { return const_tree; },
                                             so, GetLogger("http"));
    std::string url_base = fmt::format("http://{}:{}/", url_host, server_->port());
    if (!a.serve_image.empty()) url_ = url_base + "live.iso";
    if (!data_image.empty()) data_url_ = url_base + data_name;
    for (const auto& [host, name] : node_paths)
      node_urls_[host] = url_base + name;
    for (const auto& h : fleet)
      ips_[h.host] = ResolveHost(h.host);
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~ImageServer() {
    server_->Stop();
    thread_.join();
  }
  ImageServer(const ImageServer&) = delete;
  ImageServer& operator=(const ImageServer&) = delete;

  const std::string& url() const { return url_; }            // "" without --serve
  const std::string& data_url() const { return data_url_; }  // "" without --data
  // The URL `host` mounts: its node image's, else the common one.
  std::string UrlFor(const std::string& host) const {
    auto it = node_urls_.find(host);
    return it == node_urls_.end() ? url_ : it->second;
  }
  // What each BMC has pulled, by BMC host: the server counts per client
  // address, and the BMC is assumed to download from the address it is
  // managed at. Valid while this server lives.
  bmc::PullCountersFn Pulled() const {
    return [this](const std::string& host) -> std::optional<bmc::PullCounters> {
      auto it = ips_.find(host);
      if (it == ips_.end()) return std::nullopt;
      http::ClientCounters c = server_->CountersFor(it->second);
      return bmc::PullCounters{c.body_bytes, c.requests};
    };
  }

 private:
  std::unique_ptr<http::Server> server_;
  std::string url_;
  std::map<std::string, std::string> node_urls_;  // by host
  std::string data_url_;
  std::map<std::string, std::string> ips_;
  std::thread thread_;
};

// Calls `tick` about every second until stop is requested.
void EverySecond(std::stop_token stop, const std::function<void()>& tick) {
  std::mutex mu;
  std::condition_variable_any never;  // only the stop ends a wait early
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    tick();
    never.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
  }
}

// Returns when stop is requested; shows each host's pull meanwhile.
void ServeUntilStopped(std::stop_token stop, bmc::ProgressBoard& board, size_t hosts) {
  for (size_t i = 0; i < hosts; ++i)
    board.Set(i, "serving");
  EverySecond(stop, [&board] { board.Refresh(); });
}

// --data DIR: the data image, built once per run in a directory of its own
// that is removed with it.
class DataImage {
 public:
  DataImage(const std::string& dir, const std::string& label) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/isoboot-data.XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      throw BmcError(Failure::kInternal, "cannot make a directory for the data image in " + tmpl);
    }
    dir_ = tmpl;
    auto r = iso::WriteDataImage(dir, label, dir_ + "/" + label + ".iso");
    if (!r) {
      Remove();
      throw BmcError(Failure::kUsage, "--data " + dir + ": " + r.error().message);
    }
    path_ = *r;
  }
  ~DataImage() { Remove(); }
  DataImage(const DataImage&) = delete;
  DataImage& operator=(const DataImage&) = delete;

  const std::string& path() const { return path_; }

 private:
  void Remove() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
  std::string path_;
};

int RunConsole(const bmc::SolOptions& sol) {
  return bmc::RunSolConsole(sol) == 0 ? 0 : static_cast<int>(Failure::kConsole);
}

int RunBmc(const BmcArgs& a) {
  Logger log = GetLogger("bmc");
  try {
    if (a.via == "pxe" && a.action != "boot") {
      throw BmcError(Failure::kUsage, "--via pxe goes with boot");
    }
    if (a.via == "pxe" && (!a.iso.empty() || !a.serve_image.empty())) {
      throw BmcError(Failure::kUsage,
                     "--via pxe boots from the network and mounts nothing: drop --iso and --serve "
                     "(or boot --via cd)");
    }
    if ((a.action == "insert" || a.action == "boot") && a.via == "cd" && a.iso.empty() &&
        a.serve_image.empty()) {
      throw BmcError(Failure::kUsage, "--iso URL or --serve IMAGE is required for " + a.action);
    }
    if (!a.data_dir.empty() && a.action != "boot" && a.action != "insert") {
      throw BmcError(Failure::kUsage, "--data goes with boot or insert");
    }
    if (!a.data_dir.empty() && a.via == "pxe") {
      throw BmcError(Failure::kUsage, "--via pxe mounts nothing: drop --data (or boot --via cd)");
    }
    if (auto l = iso::CheckDataLabel(a.data_label); !l) {
      throw BmcError(Failure::kUsage, "--data-label: " + l.error().message);
    }
    if (a.console && a.action != "boot") {
      throw BmcError(Failure::kUsage, "--console goes with boot (or use the console action)");
    }
    const std::vector<bmc::FleetHost> fleet_hosts = ReadFleet(a);
    std::vector<std::string> hosts;
    bool any_mac = false;
    for (const bmc::FleetHost& h : fleet_hosts) {
      hosts.push_back(h.host);
      any_mac = any_mac || h.mac.has_value();
    }
    if (any_mac && a.serve_image.empty()) {
      log->warn(
          "{}: the MACs and kernel arguments are for node images, made with --serve IMAGE "
          "only; every host mounts {}",
          a.host_file, a.iso.empty() ? "nothing" : a.iso);
    }
    if ((a.action == "console" || a.console) && hosts.size() != 1) {
      throw BmcError(Failure::kUsage, "the console needs exactly one BMC");
    }
    if (a.insecure) {
      log->warn(
          "--insecure: the BMC's TLS certificate is not checked; anyone on the path can "
          "read the BMC password");
    }
    // Ctrl-C at the password prompt still ends the process at once.
    std::string password = ReadPassword(a);
    // Before any thread starts (the HTTP server's, the fleet's, libcurl's
    // resolvers): they inherit the blocked SIGINT and SIGTERM. ipmitool gets
    // the mask from before, so Ctrl-C reaches it as it would without us.
    StopOnSignal on_signal;
    bmc::SolOptions sol;
    sol.host = bmc::HostOnly(hosts[0]);
    sol.user = a.user;
    sol.password = password;
    sol.signal_mask = on_signal.original_mask();
    sol.stop = on_signal.token();
    if (a.action == "console") return RunConsole(sol);

    std::unique_ptr<DataImage> data;
    if (!a.data_dir.empty()) {
      data = std::make_unique<DataImage>(a.data_dir, a.data_label);
      log->info("data image of {} labelled {}: {}", a.data_dir, a.data_label, data->path());
    }
    std::unique_ptr<ImageServer> server;
    if (!a.serve_image.empty() || data) {
      server = std::make_unique<ImageServer>(a, fleet_hosts, data ? data->path() : "", log);
    }
    std::string iso = a.iso.empty() && server ? server->url() : a.iso;
    std::string data_url = server ? server->data_url() : "";
    UrlFor iso_for = [iso, server = server.get(),
                      use_server = a.iso.empty()](const std::string& host) {
      return use_server && server ? server->UrlFor(host) : iso;
    };
    bmc::PullCountersFn pulled = server ? server->Pulled() : nullptr;
    bmc::ProgressBoard board(hosts, {.out = stderr,
                                     .redraw = isatty(STDERR_FILENO) && hosts.size() > 1,
                                     .quiet = a.json_out && hosts.size() == 1,
                                     .pulled = pulled,
                                     .now = {}});
    bmc::FleetOptions fleet;
    fleet.parallel = static_cast<size_t>(std::max(1, a.parallel));
    fleet.stop = on_signal.token();
    fleet.progress = [&board](size_t host, const std::string& state) { board.Set(host, state); };
    std::vector<bmc::HostResult> results;
    {
      // While the hosts are driven, their pull keeps showing even when
      // their states stand still (a long mount or power wait).
      std::jthread refresher;
      if (pulled) {
        refresher = std::jthread(
            [&board](std::stop_token stop) { EverySecond(stop, [&board] { board.Refresh(); }); });
      }
      results = bmc::RunFleet(hosts,
                              MakeAction(a, iso_for, data_url, {a.user, password},
                                         ClientOptionsFrom(a, on_signal.token()), log, pulled),
                              fleet);
    }  // stops and joins the refresher

    int code = bmc::ExitCode(results);
    if (a.json_out) {
      json out = json::array();
      for (const auto& r : results)
        out.push_back(bmc::ResultJson(r, a.action));
      if (hosts.size() == 1 && a.host_file.empty()) out = out[0];
      fmt::print("{}\n", out.dump(2));
    } else {
      for (const auto& r : results) {
        if (!r.ok) {
          fmt::print(stderr, "isoboot: error: {}\n", r.error);
        } else if (r.fields.contains("status")) {
          PrintStatus(r.host, r.fields["status"]);
        } else if (r.fields.contains("via")) {
          fmt::print("{}: booting via {} ({})\n", r.host, r.fields["via"].get<std::string>(),
                     r.fields["vendor"].get<std::string>());
        }
        if (r.ok && r.fields.contains("data_slot")) {
          fmt::print("{}: data image {} in {}\n", r.host, r.fields["data_image"].get<std::string>(),
                     r.fields["data_slot"].get<std::string>());
        }
      }
    }
    if (server && code == 0 && !a.console && (a.action == "boot" || a.action == "insert")) {
      // The BMCs keep reading the image while their hosts boot: keep serving.
      if (data) {
        log->info("serving the data image of {} at {}{}", a.data_dir, data_url,
                  a.serve_image.empty() ? " until interrupted (Ctrl-C)" : "");
      }
      if (!a.serve_image.empty()) {
        log->info("serving {} at {} until interrupted (Ctrl-C)", a.serve_image, iso);
      }
      ServeUntilStopped(on_signal.token(), board, hosts.size());
      log->info("stopped serving");
    }
    if (code == 0 && a.console) {
      std::fflush(stdout);  // what was printed comes before the console's output
      code = RunConsole(sol);
    }
    return code;
  } catch (const BmcError& e) {
    std::fflush(stdout);
    fmt::print(stderr, "isoboot: error: {}\n", e.what());
    return static_cast<int>(e.failure());
  }
}

}  // namespace

void AddBmcCommand(CLI::App& app, Run& run) {
  auto args = std::make_shared<BmcArgs>();
  CLI::App* cmd = app.add_subcommand("bmc", "Boot machines from a URL through their BMC (Redfish)");
  cmd->add_option("action", args->action, "status, insert, eject, boot or console")
      ->required()
      ->check(CLI::IsMember({"status", "insert", "eject", "boot", "console"}));
  cmd->add_option("--bmc", args->hosts, "BMC host[:port] (repeatable)");
  cmd->add_option("--bmc-file", args->host_file,
                  "file with one BMC per line, run in parallel: HOST [MAC [KERNEL-ARGS]] (with "
                  "--serve, a host with a MAC mounts its own node image)");
  cmd->add_option("--user", args->user, "BMC user name")->required();
  cmd->add_option("--password-env", args->password_env, "read the password from this variable");
  cmd->add_option("--password-file", args->password_file, "read the password from this file");
  cmd->add_option("--iso", args->iso, "URL of the ISO image the BMC should mount");
  cmd->add_option("--via", args->via,
                  "boot: cd (the --iso image as a virtual CD) or pxe (one-time network boot, "
                  "no media)")
      ->check(CLI::IsMember({"cd", "pxe"}))
      ->capture_default_str();
  cmd->add_option("--ca", args->ca, "CA certificate file to verify the BMC with");
  cmd->add_flag("--insecure", args->insecure, "do not verify the BMC's TLS certificate");
  cmd->add_flag("--json", args->json_out, "print the result as JSON");
  cmd->add_flag("--console", args->console, "after boot, attach the IPMI SOL console");
  cmd->add_option("--boot-mode", args->boot_mode, "UEFI or Legacy (default: keep)")
      ->check(CLI::IsMember({"UEFI", "Legacy"}));
  cmd->add_option("--poll-interval", args->poll_interval, "seconds between status checks")
      ->capture_default_str();
  cmd->add_option("--mount-timeout", args->mount_timeout, "seconds to wait for the mount")
      ->capture_default_str();
  cmd->add_option("--power-timeout", args->power_timeout, "seconds to wait for power on")
      ->capture_default_str();
  cmd->add_option("--request-timeout", args->request_timeout, "seconds per HTTP request")
      ->capture_default_str();
  cmd->add_option("--parallel", args->parallel, "BMCs driven at once with --bmc-file")
      ->capture_default_str();
  cmd->add_option("--serve", args->serve_image,
                  "serve this ISO over HTTP while the command runs (default --iso: its URL)");
  cmd->add_option("--http-address", args->http_address,
                  "with --serve or --data: address to listen on")
      ->capture_default_str();
  cmd->add_option("--http-port", args->http_port, "with --serve or --data: port (0 picks one)")
      ->capture_default_str();
  cmd->add_option(
      "--url-host", args->url_host,
      "with --serve or --data: address the BMCs reach this host at (default: --http-address)");
  cmd->add_option("--data", args->data_dir,
                  "boot/insert: serve an image of this directory and insert it into a second "
                  "slot (USB stick / removable disk, else a second CD)");
  cmd->add_option("--data-label", args->data_label,
                  "the data image's volume label (1-32 of A-Z 0-9 _)")
      ->capture_default_str();
  cmd->callback([&run, args] { run = [args] { return RunBmc(*args); }; });
}

}  // namespace isoboot::cli
