// `isoboot bmc status|insert|eject|boot|console`: drive BMCs over Redfish
// (virtual CD from a URL, one-time boot, reset) and attach the SOL console.
// The password comes from an environment variable, a file or a no-echo
// prompt, never from argv; it is never logged or put in a URL.

#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/logging.h"
#include "base/strings.h"
#include "bmc/client.h"
#include "bmc/console.h"
#include "cli/command.h"
#include "http/server.h"
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
};

// Bytes each BMC has pulled from isoboot's HTTP server, by BMC host. Set
// when `--serve IMAGE` runs the server in this process (the counters are
// per client address: the BMC is assumed to download from the address it
// is managed at). Empty otherwise: progress then shows states only.
using ServedBytesFn = std::function<std::optional<uint64_t>(const std::string& host)>;
ServedBytesFn g_served_bytes;

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

std::string Bytes(uint64_t n) {
  return n < (16u << 20) ? fmt::format("{} bytes", n) : fmt::format("{} MiB", n >> 20);
}

void OnSignal(int) {
  bmc::g_cancel = true;
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

std::vector<std::string> ReadHosts(const BmcArgs& a) {
  std::vector<std::string> hosts = a.hosts;
  if (!a.host_file.empty()) {
    std::ifstream f(a.host_file);
    if (!f) throw BmcError(Failure::kUsage, "cannot read " + a.host_file);
    std::string line;
    while (std::getline(f, line)) {
      std::string_view host = Trim(std::string_view(line).substr(0, line.find('#')));
      if (!host.empty()) hosts.emplace_back(host);
    }
  }
  if (hosts.empty()) throw BmcError(Failure::kUsage, "no BMC: pass --bmc HOST or --bmc-file FILE");
  return hosts;
}

// One line per host: redrawn in place on a terminal, appended otherwise.
class Board {
 public:
  Board(std::vector<std::string> hosts, bool quiet) : hosts_(std::move(hosts)), quiet_(quiet) {
    tty_ = isatty(STDERR_FILENO) && hosts_.size() > 1;
    for (const auto& h : hosts_)
      lines_[h] = "waiting";
    if (tty_ && !quiet_) {
      for (const auto& h : hosts_)
        fmt::print(stderr, "{}: waiting\n", h);
    }
  }
  void Set(const std::string& host, const std::string& state) {
    std::lock_guard lock(mu_);
    std::string text = state;
    if (g_served_bytes) {
      if (auto bytes = g_served_bytes(host)) text += fmt::format(" ({} pulled)", Bytes(*bytes));
    }
    if (lines_[host] == text) return;
    lines_[host] = text;
    if (quiet_) return;
    if (!tty_) {
      fmt::print(stderr, "{}: {}\n", host, text);
      return;
    }
    fmt::print(stderr, "\x1b[{}A", hosts_.size());
    for (const auto& h : hosts_)
      fmt::print(stderr, "\x1b[2K{}: {}\n", h, lines_[h]);
  }

 private:
  std::vector<std::string> hosts_;
  bool quiet_;
  bool tty_ = false;
  std::mutex mu_;
  std::map<std::string, std::string> lines_;
};

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
  } else {
    j["media_problem"] = s.media_problem;
  }
  return j;
}

void PrintStatus(const std::string& host, const bmc::SystemStatus& s) {
  fmt::print("{}: {} {}, power {}, boot override {} ({})\n", host, s.vendor, s.system,
             s.power_state, s.boot_target, s.boot_enabled);
  if (!s.has_media) {
    fmt::print("  virtual media: none ({})\n", s.media_problem);
  } else {
    fmt::print("  virtual CD {}: {}{}{}\n", s.media.slot,
               s.media.inserted ? "inserted " + s.media.image : std::string("empty"),
               s.media.connected_via.empty() ? "" : ", " + s.media.connected_via,
               s.media.redirection.empty() ? "" : ", " + s.media.redirection);
  }
}

// Runs the action against one BMC; returns the result object for --json.
json RunOne(const BmcArgs& a, const std::string& host, const std::string& password, Board& board,
            const Logger& log) {
  json result = {{"host", host}, {"action", a.action}};
  try {
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
    bmc::BmcClient client(host, bmc::Credentials{a.user, password}, o, log,
                          [&](const std::string& s) { board.Set(host, s); });
    if (a.action == "status") {
      auto s = client.Status();
      result["status"] = StatusJson(s);
      if (!a.json_out) PrintStatus(host, s);
    } else if (a.action == "insert") {
      client.Insert(a.iso);
    } else if (a.action == "eject") {
      client.Eject();
    } else if (a.action == "boot") {
      client.Boot(a.iso);
    }
    result["vendor"] = client.profile().name;
    if (g_served_bytes) {
      if (auto bytes = g_served_bytes(host)) result["bytes_pulled"] = *bytes;
    }
    result["ok"] = true;
    result["exit_code"] = 0;
    board.Set(host, "done");
  } catch (const BmcError& e) {
    result["ok"] = false;
    result["error"] = e.what();
    result["failure"] = std::string(bmc::FailureName(e.failure()));
    result["exit_code"] = static_cast<int>(e.failure());
    board.Set(host, std::string("failed: ") + e.what());
  } catch (const std::exception& e) {
    result["ok"] = false;
    result["error"] = e.what();
    result["failure"] = "internal";
    result["exit_code"] = 1;
    board.Set(host, std::string("failed: ") + e.what());
  }
  return result;
}

int RunBmc(const BmcArgs& a) {
  Logger log = GetLogger("bmc");
  try {
    if ((a.action == "insert" || a.action == "boot") && a.iso.empty() && a.serve_image.empty()) {
      throw BmcError(Failure::kUsage, "--iso URL or --serve IMAGE is required for " + a.action);
    }
    if (a.console && a.action != "boot") {
      throw BmcError(Failure::kUsage, "--console goes with boot (or use the console action)");
    }
    auto hosts = ReadHosts(a);
    if ((a.action == "console" || a.console) && hosts.size() != 1) {
      throw BmcError(Failure::kUsage, "the console needs exactly one BMC");
    }
    if (a.insecure) {
      log->warn(
          "--insecure: the BMC's TLS certificate is not checked; anyone on the path can "
          "read the BMC password");
    }
    std::string password = ReadPassword(a);
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    if (a.action == "console") {
      int rc = bmc::RunSolConsole({bmc::HostOnly(hosts[0]), a.user, password});
      return rc == 0 ? 0 : static_cast<int>(Failure::kConsole);
    }
    // --serve: the ISO at a short plain URL (BMCs limit URL length).
    std::unique_ptr<http::Server> server;
    std::thread server_thread;
    BmcArgs args = a;
    if (!a.serve_image.empty()) {
      auto source = vfs::HostFileSource(a.serve_image);
      if (!source) throw BmcError(Failure::kUsage, source.error().message);
      auto tree = std::make_shared<vfs::Tree>();
      tree->Add("live.iso", *source);
      std::shared_ptr<const vfs::Tree> const_tree = tree;
      http::ServerOptions so;
      so.address = a.http_address;
      so.port = a.http_port;
      server = std::make_unique<http::Server>([const_tree] { return const_tree; }, so,
                                              GetLogger("http"));
      std::string url_host = a.url_host.empty() ? a.http_address : a.url_host;
      if (url_host == "0.0.0.0" || url_host == "::") {
        throw BmcError(Failure::kUsage, "--serve: pass --url-host (the address BMCs reach us at)");
      }
      if (args.iso.empty())
        args.iso = fmt::format("http://{}:{}/live.iso", url_host, server->port());
      server_thread = std::thread([&server] { server->Run(); });
      std::map<std::string, std::string> ips;
      for (const auto& h : hosts)
        ips[h] = ResolveHost(h);
      http::Server* srv = server.get();
      g_served_bytes = [srv, ips](const std::string& host) -> std::optional<uint64_t> {
        auto it = ips.find(host);
        if (it == ips.end()) return std::nullopt;
        return srv->CountersFor(it->second).body_bytes;
      };
    }
    struct StopServer {
      std::unique_ptr<http::Server>& s;
      std::thread& t;
      ~StopServer() {
        g_served_bytes = nullptr;
        if (s) s->Stop();
        if (t.joinable()) t.join();
      }
    } stop_server{server, server_thread};
    Board board(hosts, a.json_out && hosts.size() == 1);
    std::vector<json> results(hosts.size());
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    size_t n = std::min<size_t>(hosts.size(), static_cast<size_t>(std::max(1, a.parallel)));
    for (size_t w = 0; w < n; ++w) {
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < hosts.size();) {
          results[i] = RunOne(args, hosts[i], password, board, log);
        }
      });
    }
    for (auto& t : workers)
      t.join();

    int code = 0;
    for (const auto& r : results) {
      if (!r["ok"].get<bool>()) {
        code = hosts.size() == 1 ? r["exit_code"].get<int>()
                                 : static_cast<int>(Failure::kSomeHostsFailed);
        if (!a.json_out) fmt::print(stderr, "isoboot: error: {}\n", r["error"].get<std::string>());
      }
    }
    if (a.json_out) {
      json out = hosts.size() == 1 && a.host_file.empty() ? results[0] : json(results);
      fmt::print("{}\n", out.dump(2));
    }
    if (server && code == 0 && !a.console && (a.action == "boot" || a.action == "insert")) {
      // The BMCs keep reading the image while their hosts boot: keep serving.
      log->info("serving {} at {} until interrupted (Ctrl-C)", a.serve_image, args.iso);
      while (!bmc::g_cancel) {
        for (const auto& h : hosts)
          board.Set(h, "serving");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      log->info("stopped serving");
    }
    if (code == 0 && a.console) {
      int rc = bmc::RunSolConsole({bmc::HostOnly(hosts[0]), a.user, password});
      if (rc != 0) code = static_cast<int>(Failure::kConsole);
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
                  "file with one BMC host per line, run in parallel");
  cmd->add_option("--user", args->user, "BMC user name")->required();
  cmd->add_option("--password-env", args->password_env, "read the password from this variable");
  cmd->add_option("--password-file", args->password_file, "read the password from this file");
  cmd->add_option("--iso", args->iso, "URL of the ISO image the BMC should mount");
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
  cmd->add_option("--http-address", args->http_address, "with --serve: address to listen on")
      ->capture_default_str();
  cmd->add_option("--http-port", args->http_port, "with --serve: port (0 picks one)")
      ->capture_default_str();
  cmd->add_option("--url-host", args->url_host,
                  "with --serve: address the BMCs reach this host at (default: --http-address)");
  cmd->callback([&run, args] { run = [args] { return RunBmc(*args); }; });
}

}  // namespace isoboot::cli
