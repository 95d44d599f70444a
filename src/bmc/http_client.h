#pragma once
// A small blocking HTTPS client on libcurl for Redfish: one request at a
// time, bounded time-outs, TLS verified unless told otherwise, header names
// kept in lower case (iLO answers in lower case). One HttpClient per thread;
// it is not thread-safe, but several may run in parallel.

#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "base/result.h"

namespace isoboot::bmc {

struct HttpOptions {
  std::string ca_file;      // trust only this CA bundle when set
  bool insecure = false;    // skip certificate and host name checks
  long timeout_ms = 30000;  // whole request
  long connect_timeout_ms = 10000;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  // Returns the header's value, or "" when absent. `name` in lower case.
  std::string Header(const std::string& name) const;
};

struct HttpRequest {
  std::string method;  // GET, POST, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  bool has_body = false;
  // Basic auth, passed to libcurl separately so it never appears in a URL.
  std::string basic_user;
  std::string basic_password;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Transport errors (refused, time-out, TLS) come back as an Error; any
  // HTTP status is a response. A stop request aborts the transfer within
  // about a second (libcurl's progress callback): Error kind kCancelled.
  Result<HttpResponse> Send(const HttpRequest& request, std::stop_token stop = {});

 private:
  HttpOptions options_;
  void* curl_;  // CURL*, kept opaque so callers need no curl headers
};

}  // namespace isoboot::bmc
