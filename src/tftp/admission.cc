#include "tftp/admission.h"

#include <algorithm>

namespace isoboot::tftp {

Admission::Admission(Limits limits) : limits_(limits) {
  limits_.max_sessions = std::max<size_t>(1, limits_.max_sessions);
  limits_.max_per_client = std::max<size_t>(1, limits_.max_per_client);
}

Admission::Decision Admission::Decide(const std::string& client) const {
  if (CountFor(client) >= limits_.max_per_client) {
    // Only one of this client's own sessions may make room: a flood from
    // one address must not displace other clients' requests.
    for (Id id : unacked_)
      if (sessions_.at(id).client == client) return {Verdict::kDisplace, id};
    return {Verdict::kClientFull, std::nullopt};
  }
  if (sessions_.size() >= limits_.max_sessions) {
    if (!unacked_.empty()) return {Verdict::kDisplace, unacked_.front()};
    return {Verdict::kServerFull, std::nullopt};
  }
  return {Verdict::kAdmit, std::nullopt};
}

void Admission::Add(Id id, const std::string& client) {
  auto [it, added] = sessions_.try_emplace(id);
  if (!added) return;
  it->second.client = client;
  it->second.in_unacked = unacked_.insert(unacked_.end(), id);
  ++per_client_[client];
}

void Admission::Acknowledged(Id id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.acked) return;
  it->second.acked = true;
  unacked_.erase(it->second.in_unacked);
}

void Admission::Remove(Id id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  if (!it->second.acked) unacked_.erase(it->second.in_unacked);
  auto pc = per_client_.find(it->second.client);
  if (pc != per_client_.end() && --pc->second == 0) per_client_.erase(pc);
  sessions_.erase(it);
}

std::optional<Admission::Id> Admission::OldestUnacknowledged() const {
  if (unacked_.empty()) return std::nullopt;
  return unacked_.front();
}

size_t Admission::CountFor(const std::string& client) const {
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace isoboot::tftp
