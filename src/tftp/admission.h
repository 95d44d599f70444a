#pragma once
// Which new TFTP request gets a session: a global limit and a per-client-IP
// share, where a session that was never acknowledged gives way to a new
// request rather than refusing it. Spoofed requests (their source never
// ACKs, and their addresses may vary, so a per-IP share alone cannot stop
// them) then only displace one another: a real client's request is refused
// only when the table (or its address's share) is full of sessions that a
// client did acknowledge. Pure bookkeeping: the server owns the sessions.
//
// Thread safety: none; used by the server's loop thread.

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>

namespace isoboot::tftp {

class Admission {
 public:
  using Id = uint64_t;

  struct Limits {
    size_t max_sessions = 2048;
    size_t max_per_client = 128;
  };

  enum class Verdict {
    kAdmit,       // room for it
    kDisplace,    // room once `displace` is ended
    kClientFull,  // the client's share is full of acknowledged sessions
    kServerFull,  // the table is full of acknowledged sessions
  };
  struct Decision {
    Verdict verdict = Verdict::kAdmit;
    std::optional<Id> displace;  // set for kDisplace
  };

  explicit Admission(Limits limits);

  // What to do with a new request from `client` (an IP address, as text).
  Decision Decide(const std::string& client) const;
  // A session that starts unacknowledged.
  void Add(Id id, const std::string& client);
  // The client acknowledged something: the session no longer gives way.
  void Acknowledged(Id id);
  void Remove(Id id);
  // The oldest session never acknowledged (to free a descriptor when the
  // process has none left), or nullopt.
  std::optional<Id> OldestUnacknowledged() const;

  size_t size() const { return sessions_.size(); }
  size_t CountFor(const std::string& client) const;
  size_t unacknowledged() const { return unacked_.size(); }

 private:
  struct Entry {
    std::string client;
    bool acked = false;
    std::list<Id>::iterator in_unacked;
  };
  Limits limits_;
  std::map<Id, Entry> sessions_;
  std::list<Id> unacked_;  // oldest first
  std::map<std::string, size_t, std::less<>> per_client_;
};

}  // namespace isoboot::tftp
