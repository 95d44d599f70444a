#include "tftp/protocol.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/strings.h"

namespace isoboot::tftp {
namespace {

// RFC 1350 netascii: CR LF for a line end, CR NUL for a bare CR.
std::string ToNetascii(std::span<const uint8_t> in) {
  std::string out;
  out.reserve(in.size() + in.size() / 16);
  for (uint8_t c : in) {
    if (c == '\n') {
      out += "\r\n";
    } else if (c == '\r') {
      out += '\r';
      out += '\0';
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kRunning:
      return "running";
    case Outcome::kComplete:
      return "complete";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kAborted:
      return "aborted by client";
    case Outcome::kTimedOut:
      return "timed out";
    case Outcome::kReadError:
      return "read error";
    case Outcome::kDisplaced:
      return "displaced";
  }
  return "?";
}

Transfer::Transfer(const Request& request, vfs::SourcePtr source, const TransferConfig& config,
                   TimePoint now)
    : config_(config),
      filename_(request.filename),
      source_(std::move(source)),
      base_timeout_(config.initial_timeout),
      timeout_(config.initial_timeout) {
  Start(request, now);
}

void Transfer::Start(const Request& request, TimePoint now) {
  started_ = now;
  // Such a name is in no tree; refusing it here also keeps it out of logs.
  if (!IsPrintableAscii(request.filename))
    return Reject(ErrorCode::kFileNotFound, "illegal file name");
  if (request.write)
    return Reject(ErrorCode::kAccessViolation, "read-only server: writes are not accepted");
  if (!source_) return Reject(ErrorCode::kFileNotFound, "file not found");
  if (request.mode == "mail")
    return Reject(ErrorCode::kIllegalOperation, "mail mode is not supported");
  if (request.mode == "netascii") {
    if (source_->size() > config_.max_netascii_size)
      return Reject(ErrorCode::kNotDefined,
                    fmt::format("netascii is limited to {} bytes; use octet mode",
                                config_.max_netascii_size));
    std::vector<uint8_t> raw(static_cast<size_t>(source_->size()));
    auto n = source_->Read(0, raw);
    if (!n) return FailRead(n.error().message);
    raw.resize(*n);
    source_ = vfs::TextSource(ToNetascii(raw));
  }
  size_ = source_->size();
  negotiated_ = Negotiate(request.options, config_.limits, size_);
  last_block_ = size_ / negotiated_.blksize + 1;
  if (negotiated_.timeout_s) {
    base_timeout_ = std::chrono::seconds(*negotiated_.timeout_s);
    timeout_ = base_timeout_;
  }
  if (!negotiated_.oack.empty()) {
    oack_pending_ = true;
    SendOack();
  } else {
    SendWindow(1);
  }
  Arm(now);
}

std::vector<uint8_t>& Transfer::NextOut() {
  if (out_count_ == out_.size()) out_.emplace_back();
  auto& buf = out_[out_count_++];
  buf.clear();
  return buf;
}

void Transfer::Reject(ErrorCode code, std::string message) {
  Append(ErrorPacket{code, message}, NextOut());
  outcome_ = Outcome::kRejected;
  detail_ = std::move(message);
}

void Transfer::FailRead(std::string detail) {
  out_count_ = 0;  // no DATA of a window that could not be read completely
  Append(ErrorPacket{ErrorCode::kNotDefined, "read error"}, NextOut());
  outcome_ = Outcome::kReadError;
  detail_ = std::move(detail);
}

void Transfer::SendOack() {
  Append(Oack{negotiated_.oack}, NextOut());
}

void Transfer::SendWindow(uint64_t first) {
  uint64_t last = std::min<uint64_t>(first + negotiated_.windowsize - 1, last_block_);
  for (uint64_t b = first; b <= last; ++b) {
    auto& buf = NextOut();
    AppendDataHeader(static_cast<uint16_t>(b), buf);  // wraps past 65535 to 0
    uint64_t offset = (b - 1) * negotiated_.blksize;
    size_t want = static_cast<size_t>(
        std::min<uint64_t>(negotiated_.blksize, size_ - std::min(size_, offset)));
    buf.resize(4 + want);
    if (want > 0) {
      std::string error;
      if (!ReadBlock(offset, std::span<uint8_t>(buf).subspan(4), error))
        return FailRead(std::move(error));
    }
  }
  sent_ = std::max(sent_, last);
}

bool Transfer::ReadBlock(uint64_t offset, std::span<uint8_t> out, std::string& error) {
  auto cached = [&] {
    return offset >= ahead_offset_ && offset - ahead_offset_ + out.size() <= ahead_len_;
  };
  // Only a client that answered gets a buffer: a spoofed request costs none.
  if (acknowledged_ && out.size() <= kReadAhead) {
    if (!cached()) {
      ahead_.resize(kReadAhead);
      auto n = source_->Read(
          offset,
          std::span<uint8_t>(ahead_.data(), std::min<uint64_t>(kReadAhead, size_ - offset)));
      ahead_offset_ = offset;
      ahead_len_ = n ? *n : 0;  // a failed range falls back to this block alone
    }
    if (cached()) {
      std::copy_n(ahead_.begin() + static_cast<ptrdiff_t>(offset - ahead_offset_), out.size(),
                  out.begin());
      return true;
    }
  }
  auto n = source_->Read(offset, out);
  if (n && *n == out.size()) return true;
  error = n ? "source shorter than its size" : n.error().message;
  return false;
}

void Transfer::Arm(TimePoint now) {
  deadline_ = std::min(now + timeout_, HardDeadline());
}

TimePoint Transfer::HardDeadline() const {
  TimePoint end = started_ + config_.max_lifetime;
  if (!acknowledged_) end = std::min(end, started_ + config_.first_ack_timeout);
  return end;
}

std::optional<TimePoint> Transfer::deadline() const {
  if (finished()) return std::nullopt;
  return deadline_;
}

uint64_t Transfer::bytes_acked() const {
  if (outcome_ == Outcome::kComplete) return size_;
  return std::min(size_, acked_ * negotiated_.blksize);
}

void Transfer::OnPacket(const Packet& packet, TimePoint now) {
  out_count_ = 0;
  if (finished()) return;
  if (const auto* err = std::get_if<ErrorPacket>(&packet)) {
    outcome_ = Outcome::kAborted;
    detail_ = fmt::format("client sent ERROR {} '{}'", static_cast<int>(err->code), err->message);
    return;
  }
  const auto* ack = std::get_if<Ack>(&packet);
  if (!ack) return;  // anything else on a transfer port is ignored (RFC 1350 says so for DATA)
  if (oack_pending_) {
    if (ack->block != 0) {
      ++ignored_acks_;
      return;
    }
    oack_pending_ = false;
    acknowledged_ = true;
  } else {
    // Map the 16-bit number onto the blocks in flight, (acked_, sent_].
    uint64_t diff = static_cast<uint16_t>(ack->block - static_cast<uint16_t>(acked_));
    if (diff == 0 || diff > sent_ - acked_) {
      // A duplicate (our DATA crossed its retransmitted ACK) or stale ACK:
      // answering it would double every later packet (Sorcerer's Apprentice).
      ++ignored_acks_;
      return;
    }
    acked_ += diff;
    acknowledged_ = true;
    if (acked_ == last_block_) {
      outcome_ = Outcome::kComplete;
      return;
    }
  }
  // An ACK of the window's last block opens the next window; an earlier one
  // (RFC 7440 section 4: the client lost a block) restarts from there.
  retries_ = 0;
  timeout_ = base_timeout_;
  SendWindow(acked_ + 1);
  Arm(now);
}

void Transfer::Abandon(std::string why) {
  out_count_ = 0;
  if (finished()) return;
  outcome_ = Outcome::kAborted;
  detail_ = std::move(why);
}

void Transfer::Displace(std::string why) {
  out_count_ = 0;
  if (finished()) return;
  outcome_ = Outcome::kDisplaced;
  detail_ = std::move(why);
}

void Transfer::OnTimer(TimePoint now) {
  out_count_ = 0;
  if (finished() || now < deadline_) return;
  if (now >= HardDeadline()) {
    outcome_ = Outcome::kTimedOut;
    detail_ =
        acknowledged_
            ? fmt::format(
                  "still running after the {} s session lifetime",
                  std::chrono::duration_cast<std::chrono::seconds>(config_.max_lifetime).count())
            : fmt::format("no ACK within {} ms of the request", config_.first_ack_timeout.count());
    return;
  }
  if (++retries_ > config_.max_retries) {
    outcome_ = Outcome::kTimedOut;
    detail_ = fmt::format("no answer after {} retransmissions", config_.max_retries);
    return;
  }
  ++retransmits_;
  if (oack_pending_) {
    SendOack();
  } else {
    SendWindow(acked_ + 1);
  }
  timeout_ = std::min(timeout_ * 2, std::max(config_.max_timeout, base_timeout_));
  Arm(now);
}

}  // namespace isoboot::tftp
