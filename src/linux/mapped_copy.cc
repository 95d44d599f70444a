#include "linux/mapped_copy.h"

#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace isoboot::sys {
namespace {

// Where this thread's copy lands after a SIGBUS; null outside a copy.
thread_local sigjmp_buf* t_landing = nullptr;
struct sigaction g_previous {};
std::once_flag g_installed;

void OnSigbus(int sig, siginfo_t* info, void* context) {
  if (sigjmp_buf* landing = t_landing) {
    t_landing = nullptr;
    siglongjmp(*landing, 1);
  }
  // Not a guarded copy's fault: what would have happened without us.
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (!(g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_handler != SIG_DFL &&
      g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Returning runs the faulting access again, which now takes the default
  // action (a synchronous SIGBUS cannot be ignored).
  signal(SIGBUS, SIG_DFL);
}

void Install() {
  struct sigaction sa {};
  sa.sa_sigaction = OnSigbus;
  // SA_NODEFER: leaving the handler by siglongjmp (which restores no mask
  // here: sigsetjmp's savemask is 0, a system call saved per copy) must not
  // leave SIGBUS blocked, or the next fault would kill the process.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

bool CopyFromMapping(std::span<uint8_t> out, const uint8_t* mapped) {
  std::call_once(g_installed, Install);
  sigjmp_buf landing;
  if (sigsetjmp(landing, 0) != 0) return false;
  t_landing = &landing;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::memcpy(out.data(), mapped, out.size());
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_landing = nullptr;
  return true;
}

}  // namespace isoboot::sys
