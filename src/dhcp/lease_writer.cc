#include "dhcp/lease_writer.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "base/file_io.h"

namespace isoboot::dhcp {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

LeaseWriter::LeaseWriter(std::string path, Logger logger)
    : path_(std::move(path)), logger_(std::move(logger)) {
  ready_fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!ready_fd_.valid()) ThrowErrno("eventfd");
  thread_ = std::thread([this] { Loop(); });
}

LeaseWriter::~LeaseWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseWriter::Submit(uint64_t generation, std::string text) {
  {
    std::lock_guard lock(mu_);
    pending_gen_ = generation;
    pending_text_ = std::move(text);
  }
  cv_.notify_all();
}

LeaseWriter::Progress LeaseWriter::Collect() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t r = ::read(ready_fd_.get(), &count, sizeof count);
  std::lock_guard lock(mu_);
  return progress_;
}

void LeaseWriter::WaitIdle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return pending_gen_ == 0 && !busy_; });
}

uint64_t LeaseWriter::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

void LeaseWriter::Loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || pending_gen_ != 0; });
    if (pending_gen_ == 0) return;  // stopping with nothing left to write
    uint64_t gen = pending_gen_;
    std::string text = std::move(pending_text_);
    pending_gen_ = 0;
    busy_ = true;
    lock.unlock();
    bool ok = Write(text);
    lock.lock();
    busy_ = false;
    ++writes_;
    if (ok) {
      progress_.durable = gen;
    } else {
      progress_.failed = gen;
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t r = ::write(ready_fd_.get(), &one, sizeof one);
    cv_.notify_all();  // WaitIdle
  }
}

bool LeaseWriter::Write(const std::string& text) {
  std::string tmp = path_ + ".tmp";
  try {
    UniqueFd fd = OpenOrThrow(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    WriteAll(fd.get(),
             std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    if (::fsync(fd.get()) != 0) ThrowErrno("fsync " + tmp);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) ThrowErrno("rename " + tmp);
    // The rename is durable only once the directory is: without this a power
    // cut could bring back the previous file, without leases already ACKed.
    std::string dir = DirName(path_);
    UniqueFd dir_fd = OpenOrThrow(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (::fsync(dir_fd.get()) != 0) ThrowErrno("fsync " + dir);
    return true;
  } catch (const std::exception& e) {
    logger_->warn("could not save DHCP leases: {}", e.what());
    return false;
  }
}

}  // namespace isoboot::dhcp
