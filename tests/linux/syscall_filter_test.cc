#include "linux/syscall_filter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "linux/privilege.h"
#include "tests/linux/in_child.h"
#include "tests/support/temp_dir.h"

namespace isoboot::sys {
namespace {

using testing::ChildChecks;
using testing::Passed;
using testing::RunInChild;

constexpr char kNowhere[] = "/nonexistent-isoboot-seccomp-test";

// "Seccomp:" of /proc/thread-self/status: 2 once filtered.
int SeccompMode() {
  std::ifstream status("/proc/thread-self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Seccomp:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// What a compromised parser would try. Each probe fails for another reason,
// or succeeds harmlessly, without the filter (TheProbesPassWithoutTheFilter),
// so passing means the filter refused it. Calls that change this process's
// credentials come last, so that without the filter they cannot turn the
// probes after them into refusals by the kernel.
void ExpectRefused(ChildChecks& c) {
  char* const argv[] = {const_cast<char*>(kNowhere), nullptr};
  char* const envp[] = {nullptr};
  c.ExpectErrno(execve(kNowhere, argv, envp), EPERM, "execve");
  c.ExpectErrno(syscall(SYS_execveat, AT_FDCWD, kNowhere, argv, envp, 0), EPERM, "execveat");
  c.ExpectErrno(mount(nullptr, kNowhere, "tmpfs", 0, nullptr), EPERM, "mount");
  c.ExpectErrno(umount2(kNowhere, 0), EPERM, "umount2");
  c.ExpectErrno(chroot(kNowhere), EPERM, "chroot");
  if (SeccompDeniesPtrace()) {
    c.ExpectErrno(ptrace(PTRACE_PEEKUSER, getppid(), nullptr, nullptr), EPERM, "ptrace");
  }
  char buf[8] = {}, src[8] = "secret";
  iovec local{buf, sizeof buf}, remote{src, sizeof src};
  c.ExpectErrno(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), EPERM, "process_vm_readv");
  c.ExpectErrno(process_vm_writev(getpid(), &local, 1, &remote, 1, 0), EPERM, "process_vm_writev");
  c.ExpectErrno(setns(-1, 0), EPERM, "setns");
  c.ExpectErrno(syscall(SYS_bpf, -1, nullptr, 0), EPERM, "bpf");
  c.ExpectErrno(syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0), EPERM, "perf_event_open");
  c.ExpectErrno(syscall(SYS_userfaultfd, 0), EPERM, "userfaultfd");
  c.ExpectErrno(syscall(SYS_io_uring_setup, 0, nullptr), EPERM, "io_uring_setup");
  c.ExpectErrno(syscall(SYS_keyctl, -1, 0, 0, 0, 0), EPERM, "keyctl");
  c.ExpectErrno(syscall(SYS_add_key, nullptr, nullptr, nullptr, 0, 0), EPERM, "add_key");
  c.ExpectErrno(syscall(SYS_init_module, nullptr, 0, ""), EPERM, "init_module");
  c.ExpectErrno(syscall(SYS_finit_module, -1, "", 0), EPERM, "finit_module");
  // Flags no kernel knows: EINVAL, never an unload of a loaded kernel.
  c.ExpectErrno(syscall(SYS_kexec_load, 0, 0, nullptr, 0xdead0000ul), EPERM, "kexec_load");
  c.ExpectErrno(syscall(SYS_reboot, 0, 0, 0, nullptr), EPERM, "reboot (bad magic)");
  c.ExpectErrno(syscall(SYS_swapon, kNowhere, 0), EPERM, "swapon");
  c.ExpectErrno(syscall(SYS_acct, kNowhere), EPERM, "acct");
  c.ExpectErrno(syscall(SYS_open_by_handle_at, -1, nullptr, 0), EPERM, "open_by_handle_at");
  c.ExpectErrno(syscall(SYS_clock_settime, CLOCK_REALTIME, nullptr), EPERM, "clock_settime");
  c.ExpectErrno(syscall(SYS_iopl, 0), EPERM, "iopl(0)");
  int persona = personality(PER_LINUX32);
  c.ExpectErrno(persona, EPERM, "personality(PER_LINUX32)");
  if (persona != -1) personality(static_cast<unsigned long>(persona));
  int p[2];
  if (pipe(p) == 0) {
    char ch = 'x';
    c.ExpectErrno(ioctl(p[0], TIOCSTI, &ch), EPERM, "ioctl TIOCSTI");
    close(p[0]);
    close(p[1]);
  }
  c.ExpectErrno(syscall(SYS_clone3, nullptr, 0), ENOSYS, "clone3");
  // Credentials and namespaces, last.
  c.ExpectErrno(syscall(SYS_setresuid, -1, -1, -1), EPERM, "setresuid(-1, -1, -1)");
  c.ExpectErrno(syscall(SYS_setgroups, 0, nullptr), EPERM, "setgroups");
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) _exit(0);  // without the filter: a child in a new user namespace
  if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  c.ExpectErrno(pid > 0 ? 0 : pid, EPERM, "clone(CLONE_NEWUSER)");
  c.ExpectErrno(unshare(CLONE_NEWUSER), EPERM, "unshare(CLONE_NEWUSER)");
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  c.ExpectErrno(syscall(SYS_capset, &header, data), EPERM, "capset");
}

TEST(SyscallFilter, RefusesWhatServeNeverNeeds) {
  auto child = RunInChild([](ChildChecks& c) {
    if (auto r = InstallSeccompFilter(); !r) return c.Fail("install: " + r.error().message);
    c.Expect(SeccompMode() == 2, "the thread is filtered");
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    char* const envp[] = {nullptr};
    c.ExpectErrno(execve("/bin/true", argv, envp), EPERM, "execve /bin/true");
    ExpectRefused(c);
    // The partly denied calls still serve their ordinary uses.
    c.Expect(personality(0xffffffff) >= 0, "personality(0xffffffff) reads the persona");
    int p[2], queued = -1;
    c.Expect(pipe(p) == 0 && ioctl(p[0], FIONREAD, &queued) == 0 && queued == 0, "ioctl FIONREAD");
  });
  EXPECT_TRUE(Passed(child));
}

// The other half of that test: each probe above fails for another reason, or
// succeeds, without the filter, so the test sees the filter and not the kernel.
TEST(SyscallFilter, TheProbesPassWithoutTheFilter) {
  ISOBOOT_REQUIRE_ROOT();  // unprivileged, the kernel refuses several itself
  auto child = RunInChild([](ChildChecks& c) {
    ChildChecks quiet(-1);  // its failures are what we want
    ExpectRefused(quiet);
    std::string refused;
    for (const auto& name : quiet.passes())
      refused += " " + name;
    c.Expect(refused.empty(), "refused without the filter, so they test nothing:" + refused);
  });
  EXPECT_TRUE(Passed(child));
}

TEST(SyscallFilter, OtherAbisAreKilled) {
  // x32 getpid: its number has bit 30 set; the list is in x86-64 numbers.
  auto child = RunInChild([](ChildChecks& c) {
    if (auto r = InstallSeccompFilter(); !r) return c.Fail("install: " + r.error().message);
    syscall(0x40000000 | SYS_getpid);
    c.Fail("an x32 system call returned");
  });
  EXPECT_FALSE(child.done);
  EXPECT_EQ(child.signal, SIGSYS) << child.report;
}

TEST(SyscallFilter, CoversThreadsStartedBefore) {
  auto child = RunInChild([](ChildChecks& c) {
    std::mutex mu;
    std::condition_variable cv;
    bool installed = false, checked = false;
    int mode = -1, nnp = -1, exec_errno = 0, mount_errno = 0;
    std::thread early([&] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return installed; });
      mode = SeccompMode();
      nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
      char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
      if (execve("/bin/true", argv, argv + 1) != 0) exec_errno = errno;
      if (mount(nullptr, kNowhere, "tmpfs", 0, nullptr) != 0) mount_errno = errno;
      checked = true;
      cv.notify_all();
    });
    auto r = InstallSeccompFilter();
    {
      std::unique_lock lock(mu);
      installed = true;
      cv.notify_all();
      cv.wait(lock, [&] { return checked; });
    }
    early.join();
    if (!r) return c.Fail("install: " + r.error().message);
    c.Expect(mode == 2, "the earlier thread is filtered (TSYNC)");
    c.Expect(nnp == 1, "and has no_new_privs");
    c.Expect(exec_errno == EPERM, "execve from the earlier thread: EPERM");
    c.Expect(mount_errno == EPERM, "mount from the earlier thread: EPERM");
  });
  EXPECT_TRUE(Passed(child));
}

// What a serving daemon does all day.
TEST(SyscallFilter, ServingStillWorks) {
  test::TempDir dir("seccomp");
  auto child = RunInChild([&](ChildChecks& c) {
    if (auto r = InstallSeccompFilter(); !r) return c.Fail("install: " + r.error().message);
    // Files: write, rename into place, read back, mmap.
    std::string tmp = dir / "lease.tmp", file = dir / "lease";
    int fd = open(tmp.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    c.Expect(fd >= 0 && write(fd, "lease data", 10) == 10 && fsync(fd) == 0, "write a file");
    close(fd);
    c.Expect(rename(tmp.c_str(), file.c_str()) == 0, "rename");
    c.Expect(mkdir((dir / "sub").c_str(), 0755) == 0 && rmdir((dir / "sub").c_str()) == 0, "mkdir");
    fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    char buf[16] = {};
    c.Expect(fd >= 0 && pread(fd, buf, 10, 0) == 10 && std::string(buf) == "lease data", "pread");
    void* map = mmap(nullptr, 10, PROT_READ, MAP_PRIVATE, fd, 0);
    c.Expect(map != MAP_FAILED && std::memcmp(map, "lease", 5) == 0, "mmap a file");
    if (map != MAP_FAILED) munmap(map, 10);
    void* anon = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    c.Expect(anon != MAP_FAILED && mprotect(anon, 4096, PROT_READ) == 0, "anonymous mmap");
    if (anon != MAP_FAILED) munmap(anon, 1 << 20);
    std::vector<char> big(1 << 20, 'x');  // malloc's mmap path
    c.Expect(big.back() == 'x', "a large allocation");

    // UDP to itself, as TFTP's per-transfer sockets.
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    c.Expect(u >= 0 && bind(u, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                 getsockname(u, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
             "bind UDP");
    c.Expect(sendto(u, "hi", 2, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 2 &&
                 recv(u, buf, sizeof buf, 0) == 2,
             "UDP send and receive");
    close(u);

    // TCP with sendfile, as HTTP.
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_port = 0;
    len = sizeof addr;
    c.Expect(l >= 0 && bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                 listen(l, 4) == 0 && getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
             "TCP listen");
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c.Expect(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "connect");
    int server = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    off_t off = 0;
    c.Expect(server >= 0 && sendfile(server, fd, &off, 10) == 10, "sendfile");
    c.Expect(recv(client, buf, 10, MSG_WAITALL) == 10, "receive the file");
    close(server);
    close(client);
    close(l);
    close(fd);

    // The event loop's calls: epoll, eventfd, timerfd.
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    epoll_event e{};
    e.events = EPOLLIN;
    c.Expect(ep >= 0 && ev >= 0 && tf >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) == 0,
             "epoll, eventfd, timerfd");
    uint64_t one = 1;
    c.Expect(write(ev, &one, sizeof one) == 8 && epoll_wait(ep, &e, 1, 1000) == 1, "epoll_wait");
    close(ep);
    close(ev);
    close(tf);

    // Threads (clone after clone3's ENOSYS), futexes, names, affinity.
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<int> ran{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        pthread_setname_np(pthread_self(), "worker");
        std::lock_guard lock(mu);
        ++ran;
        cv.notify_all();
      });
    }
    {
      std::unique_lock lock(mu);
      c.Expect(cv.wait_for(lock, std::chrono::seconds(10), [&] { return ran == 4; }), "threads");
    }
    for (auto& t : threads)
      t.join();
    cpu_set_t cpus;
    c.Expect(sched_getaffinity(0, sizeof cpus, &cpus) == 0 &&
                 sched_setaffinity(0, sizeof cpus, &cpus) == 0,
             "CPU affinity (cpu_pin.h)");
    uint8_t random[16];
    c.Expect(getrandom(random, sizeof random, 0) == sizeof random, "getrandom");
    c.Expect(kill(getpid(), 0) == 0, "signals");
  });
  EXPECT_TRUE(Passed(child));
}

TEST(SyscallFilter, AfterDropPrivilegesAsServeDoes) {
  ISOBOOT_REQUIRE_ROOT();
  auto child = RunInChild([](ChildChecks& c) {
    std::thread early([] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); });
    auto drop = DropPrivileges({"nobody", {Capability::kNetRaw}});
    if (!drop) return c.Fail("drop: " + drop.error().message);
    if (auto r = InstallSeccompFilter(); !r) return c.Fail("install: " + r.error().message);
    early.join();
    c.ExpectErrno(setresuid(0, 0, 0), EPERM, "setresuid(0, 0, 0)");
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    c.Expect(fd >= 0, "a kept capability still works under the filter");
    if (fd >= 0) close(fd);
  });
  EXPECT_TRUE(Passed(child));
}

// Under ASan, LeakSanitizer's exit check ptraces the threads: with ptrace
// refused it reports a fatal error and exits 1 (docs in syscall_filter.h).
TEST(SyscallFilter, LeakCheckAtExitStillWorks) {
  auto child = RunInChild(
      [](ChildChecks& c) {
        std::thread t([] {});
        t.join();
        if (auto r = InstallSeccompFilter(); !r) return c.Fail("install: " + r.error().message);
      },
      /*exit_normally=*/true);
  EXPECT_TRUE(Passed(child));
}

TEST(SyscallFilter, ListsWhatItDenies) {
  auto names = SeccompDeniedSyscalls();
  for (std::string_view n : {"execve", "mount", "bpf", "setuid", "unshare", "clone3", "ioctl"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(std::find(names.begin(), names.end(), "ptrace") != names.end(), SeccompDeniesPtrace());
}

}  // namespace
}  // namespace isoboot::sys
