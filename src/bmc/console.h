#pragma once
// The serial console of a BMC's host via IPMI Serial-over-LAN: runs
// `ipmitool -I lanplus -H HOST -U USER -E -C 17 sol activate` (after a
// `sol deactivate` that clears a stale session), with the password passed
// in the IPMI_PASSWORD environment variable, never in argv; falls back to
// cipher suite 3 for old BMCs. Blocks until the console ends.
//
// ipmitool gets the caller's signal mask unless told otherwise (a process
// that blocks SIGINT for a signal thread must pass the mask it had before),
// and SIGPIPE back at its default (main ignores it; exec would keep that).

#include <signal.h>

#include <optional>
#include <stop_token>
#include <string>

namespace isoboot::bmc {

struct SolOptions {
  std::string host;  // IPMI address: the BMC host without scheme or port
  std::string user;
  std::string password;
  std::string ipmitool = "ipmitool";    // looked up in PATH
  std::optional<sigset_t> signal_mask;  // ipmitool's; default: the caller's
  // On a stop request the running ipmitool gets SIGTERM (Ctrl-C reaches it
  // from the terminal anyway; a SIGTERM sent to isoboot alone would not)
  // and no further ipmitool starts (128 + SIGTERM if none had started).
  std::stop_token stop;
};

// Returns ipmitool's exit status of the last `sol activate` (128 + signal
// when a signal ended it). Throws
// BmcError(kConsole) when ipmitool cannot be started.
int RunSolConsole(const SolOptions& options);

// "https://h:443/x" -> "h", "[::1]:8443" -> "::1", "h:623" -> "h".
std::string HostOnly(const std::string& bmc);

}  // namespace isoboot::bmc
