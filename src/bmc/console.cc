#include "bmc/console.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stop_token>
#include <vector>

#include <fmt/format.h>

#include "bmc/errors.h"

extern char** environ;

namespace isoboot::bmc {
namespace {

int Spawn(const SolOptions& o, const std::string& cipher, const char* verb) {
  std::vector<std::string> args = {o.ipmitool, "-I", "lanplus", "-H",   o.host, "-U",
                                   o.user,     "-E", "-C",      cipher, "sol",  verb};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment of this process, minus any IPMI_PASSWORD, plus ours.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "IPMI_PASSWORD=", 14) != 0) env_store.emplace_back(*e);
  }
  env_store.push_back("IPMI_PASSWORD=" + o.password);
  std::vector<char*> envp;
  for (auto& e : env_store)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  short flags = POSIX_SPAWN_SETSIGDEF;
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  if (o.signal_mask) {
    flags |= POSIX_SPAWN_SETSIGMASK;
    posix_spawnattr_setsigmask(&attr, &*o.signal_mask);
  }
  posix_spawnattr_setflags(&attr, flags);
  pid_t pid;
  int rc = posix_spawnp(&pid, o.ipmitool.c_str(), nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  // Wipe our copy of the password before anything else can see it.
  for (auto& e : env_store)
    std::fill(e.begin(), e.end(), '\0');
  if (rc != 0) {
    throw BmcError(Failure::kConsole, fmt::format("cannot run {}: {} (install ipmitool)",
                                                  o.ipmitool, std::strerror(rc)));
  }
  {
    // Waits without reaping (WNOWAIT), so the pid cannot be reused while the
    // callback may still signal it.
    std::stop_callback forward(o.stop, [pid] { kill(pid, SIGTERM); });
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::string HostOnly(const std::string& bmc) {
  std::string h = bmc;
  if (auto s = h.find("://"); s != std::string::npos) h = h.substr(s + 3);
  if (auto slash = h.find('/'); slash != std::string::npos) h = h.substr(0, slash);
  if (!h.empty() && h[0] == '[') {
    auto end = h.find(']');
    return end == std::string::npos ? h : h.substr(1, end - 1);
  }
  if (h.find(':') == h.rfind(':')) h = h.substr(0, h.find(':'));
  return h;
}

int RunSolConsole(const SolOptions& o) {
  int rc = 128 + SIGTERM;
  // Old BMCs (e.g. Dell R710) have no cipher suite 17: then 3.
  for (const char* cipher : {"17", "3"}) {
    if (o.stop.stop_requested()) break;
    // Only one SOL session per BMC: clear a stale one first (errors ignored).
    Spawn(o, cipher, "deactivate");
    if (o.stop.stop_requested()) break;
    rc = Spawn(o, cipher, "activate");
    if (rc == 0) break;
  }
  return rc;
}

}  // namespace isoboot::bmc
