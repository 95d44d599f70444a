/*
 * storm: a boot-storm generator. N simulated PXE nodes, each with its own
 * MAC address, run the client sequence of a network boot concurrently
 * against any boot server, from one interface:
 *
 *   dhcp1   PXE ROM DHCP (RFC 2131, PXE 2.1 options 60/93/94/97), BIOS or UEFI
 *   tftp    the boot file the ACK names (RFC 1350, 2347-2349: blksize 1432,
 *           tsize), lock-step as PXE ROMs and iPXE do
 *   dhcp2   iPXE's DHCP (user class "iPXE", option 175)
 *   http    the script URL of that ACK, then what the script loads (kernel,
 *           initrd; "chain" followed), HTTP/1.1 keep-alive as iPXE does
 *   dhcp3   the initrd's DHCP (a plain dhclient-like client, no PXE options)
 *   aoe     AoE (Coraid spec r11): Query Config broadcast, ATA IDENTIFY, then
 *           the READs of a recorded real boot (kiwi-blocks.txt)
 *
 * Written from the RFCs and the AoE spec; shares no code with isoboot.
 * DHCP and AoE go over AF_PACKET (many source MACs, promiscuous); TFTP and
 * HTTP over kernel sockets bound to each node's leased address (the client
 * namespace routes the whole lease range to itself: ip route add local R dev lo).
 * One thread, epoll, every wait bounded. See bench/storm/README.md.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define MS 1000000ull
#define SEC 1000000000ull
#define MAXW 64

enum phase {
  P_DHCP1,
  P_TFTP,
  P_DHCP2,
  P_HTTP,
  P_DHCP3,
  P_AOE_DISC,
  P_AOE_READ,
  P_DONE,
  P_FAILED
};
static const char* phase_name[] = {"dhcp1",        "tftp",     "dhcp2", "http",  "dhcp3",
                                   "aoe-discover", "aoe-read", "done",  "failed"};
/* Timestamps recorded per node (ns after the node's power-on). */
enum mark {
  M_DHCP1,
  M_TFTP,
  M_DHCP2,
  M_SCRIPT,
  M_KERNEL,
  M_INITRD,
  M_DHCP3,
  M_AOE_DISC,
  M_ROOT,
  NMARK
};
static const char* mark_name[] = {"dhcp1",  "tftp",  "dhcp2",     "script", "kernel",
                                  "initrd", "dhcp3", "aoe_found", "root"};
enum {
  R_DHCP,
  R_TFTP,
  R_HTTP,
  R_AOE,
  NRETR
};
static const char* retr_name[] = {"dhcp", "tftp", "http", "aoe"};

struct aoereq {
  uint64_t sent;
  uint32_t read; /* index into the block list; UINT32_MAX: IDENTIFY */
  uint16_t gen;
  uint8_t used, tries;
};

struct node {
  int idx;
  uint8_t mac[6];
  int uefi;
  enum phase phase;
  uint64_t t0, mark[NMARK], deadline;
  unsigned retr[NRETR];
  char reason[160];
  /* DHCP */
  int dkind, dstate, dtry, naks; /* dstate 0 discover, 1 request */
  uint32_t xid, offer_ip, server_id, ip, next_server;
  char bootfile[256];
  /* TFTP */
  int ufd, tftp_locked, tcount;
  uint64_t tto, tsent; /* iPXE's retry timer: timeout, when (re)started */
  struct sockaddr_in tpeer;
  uint16_t block;
  uint32_t blksize;
  uint64_t tsize, tgot;
  uint8_t tlast[600];
  int tlast_len;
  /* HTTP */
  int tfd, connected, reused, hstate; /* hstate 0 idle, 1 connecting, 2 headers, 3 body */
  uint32_t hip;
  uint16_t hport;
  char hbuf[8192];
  int hlen;
  uint64_t body_left, hbytes;
  int hstatus, hclose, hkind; /* hkind 0 script, 1 kernel, 2 initrd */
  int keep_body;
  char* script;
  size_t script_len;
  char urls[8][512];
  int url_kind[8], url_optional[8], nurl, curl, depth;
  char cur_url[512];
  /* AoE */
  uint16_t shelf;
  uint8_t slot, tmac[6];
  unsigned bufcnt, maxout, ssthresh, good;
  uint32_t next_read, done_reads;
  int identified, qtry;
  struct aoereq q[MAXW];
  uint16_t gen;
  int64_t rttavg, rttdev; /* ns, Jacobson/Karels as the Linux aoe driver */
  uint64_t t_aoe;         /* when the initrd started looking for its root */
};

static struct {
  const char *ifname, *blocks, *image, *out;
  int n, uefi_pct, dhcp3, window, quiet;
  unsigned spread_ms, seed;
  double limit;
  uint16_t shelf;
  int slot;
} O = {NULL, NULL, NULL, NULL, 10, 50, 1, 16, 0, 2000, 1, 600.0, 0, -1};

static struct node* nodes;
static int ifindex, pfd, afd, ep;
static uint8_t ifmac[6];
static uint32_t* blk_lba;
static uint8_t* blk_cnt;
static uint32_t nblk;
static const uint8_t* image;
static uint64_t image_size, tstart;
static uint32_t xid_base;
static volatile sig_atomic_t stop_flag;
static uint64_t stale_aoe, bad_data;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void die(const char* m) {
  perror(m);
  exit(2);
}

static void on_sig(int s) {
  (void)s;
  stop_flag = 1;
}

static void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t* p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}
static uint16_t be16(const uint8_t* p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t* p) {
  return (uint32_t)be16(p) << 16 | be16(p + 2);
}

static void fail(struct node* n, const char* fmt, ...) {
  if (n->phase >= P_DONE) return;
  va_list ap;
  va_start(ap, fmt);
  int k = snprintf(n->reason, sizeof n->reason, "%s: ", phase_name[n->phase]);
  vsnprintf(n->reason + k, sizeof n->reason - (size_t)k, fmt, ap);
  va_end(ap);
  for (char* c = n->reason; *c; c++)
    if (*c == '\t' || *c == '\n' || *c == '\r') *c = ' ';
  n->phase = P_FAILED;
  n->deadline = 0;
  if (n->ufd >= 0) {
    close(n->ufd);
    n->ufd = -1;
  }
  if (n->tfd >= 0) {
    close(n->tfd);
    n->tfd = -1;
  }
  if (!O.quiet) fprintf(stderr, "node %d: failed: %s\n", n->idx, n->reason);
}

static void mark(struct node* n, enum mark m) {
  n->mark[m] = now_ns() - n->t0;
}

/* ---------------- DHCP (RFC 2131, 2132; PXE 2.1; RFC 4578) ---------------- */

static uint16_t csum(const uint8_t* p, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2)
    sum += be16(p + i);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Retransmit schedule, seconds after the first send; 0 ends it. */
static const unsigned pxe_sched[] = {4, 8, 16, 32, 0};      /* PXE 2.1 §2.2.1 */
static const unsigned ipxe_sched[] = {1, 2, 4, 8, 0};       /* iPXE: 1 s doubling, < 10 s */
static const unsigned dhcl_sched[] = {3, 6, 12, 15, 15, 0}; /* dhclient-like, ~60 s */
static const unsigned* dhcp_sched(int kind) {
  return kind == 1 ? pxe_sched : kind == 2 ? ipxe_sched : dhcl_sched;
}

static void dhcp_send(struct node* n) {
  uint8_t f[600];
  memset(f, 0, sizeof f);
  uint8_t *ip = f + 14, *udp = ip + 20, *b = udp + 8;
  memset(f, 0xff, 6);
  memcpy(f + 6, n->mac, 6);
  put16(f + 12, 0x0800);
  b[0] = 1; /* BOOTREQUEST */
  b[1] = 1;
  b[2] = 6;
  put32(b + 4, n->xid);
  put16(b + 8, (uint16_t)((now_ns() - n->t0) / SEC)); /* secs */
  /* broadcast flag: PXE ROMs and iPXE set it; the initrd's client is sent
   * broadcasts too here, so the servers need no ARP entry per node. */
  put16(b + 10, 0x8000);
  memcpy(b + 28, n->mac, 6);
  put32(b + 236, 0x63825363);
  uint8_t* o = b + 240;
  *o++ = 53;
  *o++ = 1;
  *o++ = n->dstate == 0 ? 1 : 3;
  if (n->dstate == 1) {
    *o++ = 50;
    *o++ = 4;
    put32(o, n->offer_ip);
    o += 4;
    *o++ = 54;
    *o++ = 4;
    put32(o, n->server_id);
    o += 4;
  }
  *o++ = 57;
  *o++ = 2;
  put16(o, 1472);
  o += 2;
  if (n->dkind != 3) {
    static const uint8_t prl[] = {1,  2,  3,  4,   5,   6,   12,  13,  15,  17,  18,  22,
                                  23, 28, 40, 41,  42,  43,  50,  51,  54,  58,  59,  60,
                                  66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135, 175};
    *o++ = 55;
    *o++ = sizeof prl;
    memcpy(o, prl, sizeof prl);
    o += sizeof prl;
    *o++ = 93; /* client system architecture: 0 BIOS, 7 EFI x86-64 */
    *o++ = 2;
    put16(o, n->uefi ? 7 : 0);
    o += 2;
    *o++ = 94; /* client network interface identifier: UNDI 2.1 or 3.16 */
    *o++ = 3;
    *o++ = 1;
    *o++ = n->uefi ? 3 : 2;
    *o++ = n->uefi ? 16 : 1;
    *o++ = 97; /* client machine identifier: type 0 + GUID */
    *o++ = 17;
    *o++ = 0;
    for (int i = 0; i < 16; i++)
      *o++ = (uint8_t)(i < 6 ? n->mac[i] : (n->idx >> (8 * (i % 4))) ^ 0x5a);
    const char* vc =
        n->uefi ? "PXEClient:Arch:00007:UNDI:003016" : "PXEClient:Arch:00000:UNDI:002001";
    *o++ = 60;
    *o++ = (uint8_t)strlen(vc);
    memcpy(o, vc, strlen(vc));
    o += strlen(vc);
    if (n->dkind == 2) {
      *o++ = 77; /* user class, as iPXE sends it (plain) */
      *o++ = 4;
      memcpy(o, "iPXE", 4);
      o += 4;
      /* 175: iPXE encapsulated options: features it was built with
       * (PXE ext 0x10, HTTP 0x13, DNS 0x17, TFTP 0x15, bzImage/EFI 0x18/0x24)
       * and bus id 0xb1 (PCI 1af4:1000). */
      static const uint8_t enc[] = {0x10, 1,    1, 0x13, 1,    1, 0x17, 1,    1,    0x15, 1,
                                    1,    0x18, 1, 1,    0xb1, 5, 1,    0x1a, 0xf4, 0x10, 0x00};
      *o++ = 175;
      *o++ = sizeof enc;
      memcpy(o, enc, sizeof enc);
      o += sizeof enc;
    }
  } else {
    static const uint8_t prl[] = {1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42};
    *o++ = 55;
    *o++ = sizeof prl;
    memcpy(o, prl, sizeof prl);
    o += sizeof prl;
  }
  *o++ = 255;
  size_t blen = (size_t)(o - b);
  if (blen < 300) blen = 300;
  size_t ulen = 8 + blen, ilen = 20 + ulen;
  ip[0] = 0x45;
  ip[1] = 0x10;
  put16(ip + 2, (uint16_t)ilen);
  ip[8] = 64;
  ip[9] = 17;
  memset(ip + 16, 0xff, 4);
  put16(ip + 10, csum(ip, 20, 0));
  put16(udp, 68);
  put16(udp + 2, 67);
  put16(udp + 4, (uint16_t)ulen);
  uint32_t ps = 0xffff + 0xffff + 17 + (uint32_t)ulen; /* pseudo header: 0.0.0.0 -> bcast */
  uint16_t c = csum(udp, ulen, ps);
  put16(udp + 6, c ? c : 0xffff);
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = 6;
  memset(sll.sll_addr, 0xff, 6);
  if (sendto(pfd, f, 14 + ilen, 0, (struct sockaddr*)&sll, sizeof sll) < 0 && !O.quiet)
    perror("sendto dhcp");
  const unsigned* s = dhcp_sched(n->dkind);
  n->deadline = s[n->dtry] ? now_ns() + s[n->dtry] * SEC : now_ns() + 4 * SEC;
}

/* xid: seed byte, node (16 bits), attempt (6 bits: a NAK starts a new
 * transaction, so late OFFERs of the old one are not taken), kind (2). */
static uint32_t xid_of(struct node* n, unsigned attempt) {
  return xid_base | (uint32_t)n->idx << 8 | (attempt & 0x3f) << 2 | (uint32_t)n->dkind;
}

static void dhcp_start(struct node* n, int kind) {
  n->dkind = kind;
  n->naks = 0;
  n->dstate = 0;
  n->dtry = 0;
  n->xid = xid_of(n, 0);
  n->phase = kind == 1 ? P_DHCP1 : kind == 2 ? P_DHCP2 : P_DHCP3;
  dhcp_send(n);
}

static void dhcp_timeout(struct node* n) {
  const unsigned* s = dhcp_sched(n->dkind);
  if (!s[n->dtry]) {
    fail(n, "no DHCP%s after %d tries", n->dstate ? "ACK" : "OFFER", n->dtry + 1);
    return;
  }
  n->dtry++;
  n->retr[R_DHCP]++;
  if (!s[n->dtry]) {
    fail(n, "no DHCP%s after %d tries", n->dstate ? "ACK" : "OFFER", n->dtry);
    return;
  }
  dhcp_send(n);
}

static void tftp_start(struct node* n);
static void http_start(struct node* n);
static void aoe_start(struct node* n);

static void dhcp_input(const uint8_t* b, size_t len) {
  if (len < 240 || b[0] != 2 || be32(b + 236) != 0x63825363) return;
  uint32_t xid = be32(b + 4);
  if ((xid & 0xff000000u) != xid_base) return;
  int idx = (int)(xid >> 8 & 0xffff), kind = (int)(xid & 3);
  if (idx >= O.n) return;
  struct node* n = &nodes[idx];
  if (n->xid != xid || kind != n->dkind || memcmp(b + 28, n->mac, 6) != 0) return;
  if (n->phase != P_DHCP1 && n->phase != P_DHCP2 && n->phase != P_DHCP3) return;
  int type = 0;
  uint32_t sid = 0, ns = be32(b + 20);
  char file[256] = "", tftpname[64] = "";
  memcpy(file, b + 108, 128);
  file[128] = 0;
  for (size_t i = 240; i < len;) {
    uint8_t c = b[i];
    if (c == 255) break;
    if (c == 0) {
      i++;
      continue;
    }
    if (i + 1 >= len || i + 2 + b[i + 1] > len) break;
    uint8_t l = b[i + 1];
    const uint8_t* v = b + i + 2;
    if (c == 53 && l >= 1)
      type = v[0];
    else if (c == 54 && l == 4)
      sid = be32(v);
    else if (c == 67 && l > 0) {
      memcpy(file, v, l);
      file[l] = 0;
    } else if (c == 66 && l > 0 && l < sizeof tftpname) {
      memcpy(tftpname, v, l);
      tftpname[l] = 0;
    }
    i += 2 + l;
  }
  if (tftpname[0]) {
    struct in_addr a;
    if (inet_pton(AF_INET, tftpname, &a) == 1) ns = ntohl(a.s_addr);
  }
  uint32_t yi = be32(b + 16);
  if (n->dstate == 0 && type == 2 && yi) { /* OFFER */
    n->offer_ip = yi;
    n->server_id = sid ? sid : ns;
    n->dstate = 1;
    n->dtry = 0;
    dhcp_send(n);
  } else if (n->dstate == 1 && type == 5 && yi == n->offer_ip) { /* ACK */
    n->ip = yi;
    n->next_server = ns ? ns : n->server_id;
    snprintf(n->bootfile, sizeof n->bootfile, "%s", file);
    n->deadline = 0;
    if (n->dkind == 1) {
      mark(n, M_DHCP1);
      tftp_start(n);
    } else if (n->dkind == 2) {
      mark(n, M_DHCP2);
      http_start(n);
    } else {
      mark(n, M_DHCP3);
      aoe_start(n);
    }
  } else if (n->dstate == 1 && type == 6) { /* NAK: start over */
    if (++n->naks > 8) {
      fail(n, "DHCPNAK %d times", n->naks);
      return;
    }
    n->retr[R_DHCP]++;
    n->dstate = 0;
    n->dtry = 0;
    n->xid = xid_of(n, (unsigned)n->naks);
    dhcp_send(n);
  }
}

/* ---------------- TFTP (RFC 1350, 2347, 2348, 2349) ---------------- */

/* iPXE's retry timer (src/net/retry.c): the timeout starts at
 * DEFAULT_MIN_TIMEOUT (1/4 s), follows the round trip of packets answered
 * on their first try (timeout = 7/8 timeout + rtt/2, Karn's rule), doubles
 * on each expiry, and the transfer fails when it would pass
 * DEFAULT_MAX_TIMEOUT (10 s). */
#define TFTP_MIN_TMO (250 * MS)
#define TFTP_MAX_TMO (10 * SEC)

static int bound_socket(struct node* n, int type) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail(n, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(n->ip);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) {
    fail(n, "bind %s: %s", inet_ntoa(a.sin_addr), strerror(errno));
    close(fd);
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)n->idx};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  return fd;
}

static void tftp_send_last(struct node* n) {
  struct sockaddr_in to = n->tpeer;
  if (!n->tftp_locked) to.sin_port = htons(69);
  sendto(n->ufd, n->tlast, (size_t)n->tlast_len, 0, (struct sockaddr*)&to, sizeof to);
  n->tsent = now_ns();
  n->deadline = n->tsent + n->tto;
}

static void tftp_start(struct node* n) {
  n->phase = P_TFTP;
  if (!n->bootfile[0]) {
    fail(n, "the DHCPACK names no boot file");
    return;
  }
  n->ufd = bound_socket(n, SOCK_DGRAM);
  if (n->ufd < 0) return;
  memset(&n->tpeer, 0, sizeof n->tpeer);
  n->tpeer.sin_family = AF_INET;
  n->tpeer.sin_addr.s_addr = htonl(n->next_server);
  n->tftp_locked = 0;
  n->block = 0;
  n->blksize = 512;
  n->tsize = 0;
  n->tgot = 0;
  n->tcount = 0;
  n->tto = TFTP_MIN_TMO;
  uint8_t* p = n->tlast;
  put16(p, 1);
  int k = 2;
  k += snprintf((char*)p + k, sizeof n->tlast - (size_t)k, "%s", n->bootfile) + 1;
  static const char opts[] = "octet\0tsize\0000\0blksize\0001432";
  memcpy(p + k, opts, sizeof opts);
  k += (int)sizeof opts;
  n->tlast_len = k;
  tftp_send_last(n);
}

static void tftp_ack(struct node* n, uint16_t block) {
  put16(n->tlast, 4);
  put16(n->tlast + 2, block);
  n->tlast_len = 4;
  if (n->tcount == 0) { /* stop_timer(): adapt to the round trip */
    n->tto = n->tto - n->tto / 8 + (now_ns() - n->tsent) / 2;
    if (n->tto < TFTP_MIN_TMO) n->tto = TFTP_MIN_TMO;
    if (n->tto > TFTP_MAX_TMO) n->tto = TFTP_MAX_TMO;
  }
  n->tcount = 0;
  tftp_send_last(n);
}

static void tftp_input(struct node* n) {
  uint8_t buf[2048];
  for (int budget = 0; budget < 64 && n->phase == P_TFTP; budget++) {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t r = recvfrom(n->ufd, buf, sizeof buf, 0, (struct sockaddr*)&from, &fl);
    if (r < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
        fail(n, "recv: %s", strerror(errno));
      return;
    }
    if (r < 4 || from.sin_addr.s_addr != n->tpeer.sin_addr.s_addr) continue;
    if (n->tftp_locked && from.sin_port != n->tpeer.sin_port) {
      /* RFC 1350 §4: a packet from another TID gets ERROR 5 */
      uint8_t e[] = {0, 5, 0, 5, 'u', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 'T', 'I', 'D', 0};
      sendto(n->ufd, e, sizeof e, 0, (struct sockaddr*)&from, fl);
      continue;
    }
    uint16_t op = be16(buf);
    if (!n->tftp_locked && (op == 3 || op == 6 || op == 5)) {
      n->tpeer.sin_port = from.sin_port;
      n->tftp_locked = 1;
    }
    if (op == 5) {
      buf[r - 1] = 0;
      fail(n, "TFTP error %u '%s' for %s", be16(buf + 2), (char*)buf + 4, n->bootfile);
      return;
    }
    if (op == 6 && n->block == 0) { /* OACK */
      const char *p = (const char*)buf + 2, *end = (const char*)buf + r;
      while (p < end) {
        const char* name = p;
        size_t nl = strnlen(p, (size_t)(end - p));
        if (p + nl + 1 >= end) break;
        const char* val = p + nl + 1;
        size_t vl = strnlen(val, (size_t)(end - val));
        if (!strcasecmp(name, "blksize"))
          n->blksize = (uint32_t)atoi(val);
        else if (!strcasecmp(name, "tsize"))
          n->tsize = strtoull(val, NULL, 10);
        p = val + vl + 1;
      }
      if (n->blksize < 8 || n->blksize > 1432) {
        fail(n, "OACK blksize %u out of what was asked", n->blksize);
        return;
      }
      tftp_ack(n, 0);
      continue;
    }
    if (op != 3) continue;
    uint16_t blk = be16(buf + 2);
    size_t dl = (size_t)r - 4;
    if (blk == (uint16_t)(n->block + 1)) {
      if (dl > n->blksize) {
        fail(n, "block %u has %zu bytes, blksize %u", blk, dl, n->blksize);
        return;
      }
      n->block = blk;
      n->tgot += dl;
      tftp_ack(n, blk);
      if (dl < n->blksize) {
        if (n->tsize && n->tgot != n->tsize) {
          fail(n, "%s: %" PRIu64 " bytes, tsize said %" PRIu64, n->bootfile, n->tgot, n->tsize);
          return;
        }
        close(n->ufd);
        n->ufd = -1;
        mark(n, M_TFTP);
        dhcp_start(n, 2);
        return;
      }
    } else if (blk == n->block) {
      /* the server retransmitted: ack again (no sorcerer's apprentice:
       * one ACK per duplicate, the timer is not restarted) */
      sendto(n->ufd, n->tlast, (size_t)n->tlast_len, 0, (struct sockaddr*)&n->tpeer,
             sizeof n->tpeer);
    }
  }
}

static void tftp_timeout(struct node* n) {
  n->tto *= 2;
  n->tcount++;
  if (n->tto > TFTP_MAX_TMO) {
    fail(n, "TFTP timeout waiting for block %u of %s", n->block + 1, n->bootfile);
    return;
  }
  n->retr[R_TFTP]++;
  tftp_send_last(n);
}

/* ---------------- HTTP (RFC 9112) and iPXE scripts ---------------- */

#define HTTP_IDLE (60 * SEC)
#define SCRIPT_MAX (64 * 1024)

static int parse_url(const char* url, uint32_t* ip, uint16_t* port, const char** path) {
  if (strncmp(url, "http://", 7) != 0) return -1;
  const char *h = url + 7, *slash = strchr(h, '/');
  char host[64];
  size_t hl = slash ? (size_t)(slash - h) : strlen(h);
  if (hl == 0 || hl >= sizeof host) return -1;
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = 80;
  char* colon = strchr(host, ':');
  if (colon) {
    *colon = 0;
    *port = (uint16_t)atoi(colon + 1);
  }
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) != 1) return -1;
  *ip = ntohl(a.s_addr);
  *path = slash ? slash : "/";
  return 0;
}

static void http_next(struct node* n);

static void http_close(struct node* n) {
  if (n->tfd >= 0) close(n->tfd);
  n->tfd = -1;
  n->connected = 0;
  n->hstate = 0;
}

static void http_connect(struct node* n) {
  n->tfd = bound_socket(n, SOCK_STREAM);
  if (n->tfd < 0) return;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(n->hip);
  a.sin_port = htons(n->hport);
  if (connect(n->tfd, (struct sockaddr*)&a, sizeof a) < 0 && errno != EINPROGRESS) {
    fail(n, "connect: %s", strerror(errno));
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)n->idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, n->tfd, &ev);
  n->hstate = 1;
  n->reused = 0;
  n->deadline = now_ns() + HTTP_IDLE;
}

static void http_send_request(struct node* n) {
  uint32_t ip;
  uint16_t port;
  const char* path;
  parse_url(n->cur_url, &ip, &port, &path);
  char req[1024];
  struct in_addr a = {htonl(ip)};
  int l = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nConnection: keep-alive\r\nUser-Agent: iPXE/1.21.1\r\n"
                   "Host: %s:%u\r\n\r\n",
                   path, inet_ntoa(a), port);
  if (send(n->tfd, req, (size_t)l, MSG_NOSIGNAL) != l) {
    fail(n, "send GET %s: %s", path, strerror(errno));
    return;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)n->idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, n->tfd, &ev);
  if (n->keep_body) {
    free(n->script);
    n->script = NULL;
    n->script_len = 0;
  }
  n->hstate = 2;
  n->hlen = 0;
  n->hbytes = 0;
  n->deadline = now_ns() + HTTP_IDLE;
}

/* Fetches cur_url on the pooled connection (or a new one). */
static void http_fetch(struct node* n) {
  uint32_t ip;
  uint16_t port;
  const char* path;
  if (parse_url(n->cur_url, &ip, &port, &path) < 0) {
    fail(n, "cannot fetch '%s' (only http://a.b.c.d URLs)", n->cur_url);
    return;
  }
  if (n->tfd >= 0 && n->connected && ip == n->hip && port == n->hport) {
    n->reused = 1;
    http_send_request(n);
    return;
  }
  http_close(n);
  n->hip = ip;
  n->hport = port;
  http_connect(n);
}

static void http_start(struct node* n) {
  n->phase = P_HTTP;
  n->nurl = n->curl = 0;
  n->depth = 0;
  n->tfd = -1;
  snprintf(n->cur_url, sizeof n->cur_url, "%s", n->bootfile);
  n->hkind = 0;
  n->keep_body = 1;
  if (strncmp(n->bootfile, "http://", 7) != 0) {
    fail(n, "iPXE's boot file '%s' is not an http:// URL", n->bootfile);
    return;
  }
  http_fetch(n);
}

/* Expands the iPXE settings a script may use; -1 for one we do not know. */
static int expand(struct node* n, const char* in, char* out, size_t cap) {
  size_t o = 0;
  while (*in && o + 1 < cap) {
    if (in[0] == '$' && in[1] == '{') {
      const char* e = strchr(in, '}');
      if (!e) return -1;
      char name[64], val[64];
      size_t nl = (size_t)(e - in - 2);
      if (nl >= sizeof name) return -1;
      memcpy(name, in + 2, nl);
      name[nl] = 0;
      const uint8_t* m = n->mac;
      struct in_addr a;
      if (!strcmp(name, "mac") || !strcmp(name, "net0/mac"))
        snprintf(val, sizeof val, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                 m[5]);
      else if (!strcmp(name, "mac:hexhyp") || !strcmp(name, "net0/mac:hexhyp"))
        snprintf(val, sizeof val, "%02x-%02x-%02x-%02x-%02x-%02x", m[0], m[1], m[2], m[3], m[4],
                 m[5]);
      else if (!strcmp(name, "next-server") || !strcmp(name, "net0/next-server")) {
        a.s_addr = htonl(n->next_server);
        snprintf(val, sizeof val, "%s", inet_ntoa(a));
      } else if (!strcmp(name, "ip") || !strcmp(name, "net0/ip")) {
        a.s_addr = htonl(n->ip);
        snprintf(val, sizeof val, "%s", inet_ntoa(a));
      } else if (!strcmp(name, "buildarch"))
        snprintf(val, sizeof val, "%s", n->uefi ? "x86_64" : "i386");
      else if (!strcmp(name, "platform"))
        snprintf(val, sizeof val, "%s", n->uefi ? "efi" : "pcbios");
      else
        return -1;
      for (const char* v = val; *v && o + 1 < cap; v++)
        out[o++] = *v;
      in = e + 1;
    } else {
      out[o++] = *in++;
    }
  }
  out[o] = 0;
  return 0;
}

/* Resolves a relative URL against the script's; "" when it does not fit. */
static void resolve(const char* base, const char* ref, char* out, size_t cap) {
  int r;
  if (strstr(ref, "://")) {
    r = snprintf(out, cap, "%s", ref);
    if (r < 0 || (size_t)r >= cap) out[0] = 0;
    return;
  }
  const char* h = strstr(base, "://");
  h = h ? h + 3 : base;
  if (ref[0] == '/') {
    const char* s = strchr(h, '/');
    int hl = s ? (int)(s - base) : (int)strlen(base);
    r = snprintf(out, cap, "%.*s%s", hl, base, ref);
  } else {
    const char* s = strrchr(h, '/');
    int hl = s ? (int)(s - base + 1) : (int)strlen(base);
    r = snprintf(out, cap, "%.*s%s%s", hl, base, s ? "" : "/", ref);
  }
  if (r < 0 || (size_t)r >= cap) out[0] = 0;
}

/* Reads the script just fetched: queues what it loads until "boot". */
static void run_script(struct node* n) {
  if (n->script_len < 6 || strncmp(n->script, "#!ipxe", 6) != 0) {
    fail(n, "%s is not an iPXE script", n->cur_url);
    return;
  }
  char base[512];
  snprintf(base, sizeof base, "%s", n->cur_url);
  n->nurl = n->curl = 0;
  char* save = NULL;
  for (char* line = strtok_r(n->script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == ' ' || *line == '\t')
      line++;
    char* cr = strchr(line, '\r');
    if (cr) *cr = 0;
    int optional = 0;
    char* bar = strstr(line, "||");
    if (bar) {
      optional = strstr(bar, "goto failed") == NULL;
      *bar = 0;
    }
    char* w[16];
    int nw = 0;
    char* s2 = NULL;
    for (char* t = strtok_r(line, " \t", &s2); t && nw < 16; t = strtok_r(NULL, " \t", &s2))
      w[nw++] = t;
    if (nw == 0 || w[0][0] == '#' || w[0][0] == ':') continue;
    const char* cmd = w[0];
    if (!strcmp(cmd, "boot") || !strcmp(cmd, "exit")) break;
    int kind = -1;
    if (!strcmp(cmd, "kernel") || !strcmp(cmd, "imgexec") || !strcmp(cmd, "chain") ||
        !strcmp(cmd, "imgfetch") || !strcmp(cmd, "initrd") || !strcmp(cmd, "module"))
      kind = !strcmp(cmd, "chain") || !strcmp(cmd, "imgexec") ? 0 : !strcmp(cmd, "kernel") ? 1 : 2;
    if (kind < 0) continue; /* echo, set, sleep, goto ... */
    int a = 1;
    while (a < nw && w[a][0] == '-') {
      if (!strcmp(w[a], "--name") || !strcmp(w[a], "-n")) a++;
      a++;
    }
    if (a >= nw) continue;
    if (n->nurl == 8) {
      fail(n, "script loads more than 8 images");
      return;
    }
    char ex[512];
    if (expand(n, w[a], ex, sizeof ex) < 0) {
      fail(n, "script uses an iPXE setting the storm does not know: %s", w[a]);
      return;
    }
    resolve(base, ex, n->urls[n->nurl], sizeof n->urls[0]);
    if (kind == 1) {
      for (int k = a + 1; k < nw; k++) {
        unsigned sh, sl;
        if (sscanf(w[k], "root=live:AOEINTERFACE=e%u.%u", &sh, &sl) == 2) {
          n->shelf = (uint16_t)sh;
          n->slot = (uint8_t)sl;
        }
      }
    }
    n->url_kind[n->nurl] = kind;
    n->url_optional[n->nurl] = optional;
    n->nurl++;
    if (kind == 0 && !optional) break; /* chain without fallback: the rest never runs */
  }
  free(n->script);
  n->script = NULL;
  n->script_len = 0;
  http_next(n);
}

static void http_next(struct node* n) {
  if (n->curl >= n->nurl) {
    mark(n, M_INITRD);
    http_close(n);
    if (!n->mark[M_KERNEL]) {
      fail(n, "the script loads no kernel");
      return;
    }
    if (O.dhcp3)
      dhcp_start(n, 3);
    else
      aoe_start(n);
    return;
  }
  snprintf(n->cur_url, sizeof n->cur_url, "%s", n->urls[n->curl]);
  n->hkind = n->url_kind[n->curl];
  n->keep_body = n->hkind == 0;
  n->curl++;
  http_fetch(n);
}

static void http_done_body(struct node* n) {
  int was_kind = n->hkind;
  if (n->hclose)
    http_close(n);
  else
    n->hstate = 0;
  if (n->hstatus != 200) {
    if (n->curl > 0 && n->url_optional[n->curl - 1] && n->hstatus == 404) {
      free(n->script);
      n->script = NULL;
      http_next(n);
      return;
    }
    fail(n, "HTTP %d for %s", n->hstatus, n->cur_url);
    return;
  }
  if (was_kind == 0) {
    if (!n->mark[M_SCRIPT]) mark(n, M_SCRIPT);
    if (++n->depth > 4) {
      fail(n, "more than 4 chained scripts");
      return;
    }
    run_script(n);
  } else {
    mark(n, was_kind == 1 ? M_KERNEL : M_INITRD);
    http_next(n);
  }
}

static int parse_headers(struct node* n, char* end) {
  *end = 0;
  if (sscanf(n->hbuf, "HTTP/1.%*d %d", &n->hstatus) != 1) return -1;
  n->hclose = strncmp(n->hbuf, "HTTP/1.0", 8) == 0;
  int have_len = 0;
  for (char* l = strstr(n->hbuf, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
    char* h = l + 2;
    if (!strncasecmp(h, "Content-Length:", 15)) {
      n->body_left = strtoull(h + 15, NULL, 10);
      have_len = 1;
    } else if (!strncasecmp(h, "Connection:", 11)) {
      const char* v = h + 11;
      while (*v == ' ')
        v++;
      if (!strncasecmp(v, "close", 5))
        n->hclose = 1;
      else if (!strncasecmp(v, "keep-alive", 10))
        n->hclose = 0;
    } else if (!strncasecmp(h, "Transfer-Encoding:", 18)) {
      const char* v = h + 18;
      while (*v == ' ')
        v++;
      if (strncasecmp(v, "identity", 8) != 0) return -2;
    }
  }
  if (!have_len) return -3;
  return 0;
}

static void http_body(struct node* n, const char* p, size_t len) {
  if (n->keep_body) {
    if (n->script_len + len > SCRIPT_MAX) {
      fail(n, "script %s larger than %d bytes", n->cur_url, SCRIPT_MAX);
      return;
    }
    n->script = realloc(n->script, n->script_len + len + 1);
    memcpy(n->script + n->script_len, p, len);
    n->script_len += len;
    n->script[n->script_len] = 0;
  }
}

static void http_input(struct node* n, uint32_t events) {
  if (n->hstate == 1) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(n->tfd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      fail(n, "connect %s: %s", n->cur_url, strerror(err));
      return;
    }
    if (!(events & EPOLLOUT)) return;
    n->connected = 1;
    http_send_request(n);
    return;
  }
  for (int budget = 0; budget < 32 && n->phase == P_HTTP && n->tfd >= 0; budget++) {
    if (n->hstate == 2) {
      ssize_t r = recv(n->tfd, n->hbuf + n->hlen, sizeof n->hbuf - 1 - (size_t)n->hlen, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (r <= 0) {
        if (n->reused && n->hlen == 0) {
          /* the server closed a pooled connection: iPXE opens a new one */
          n->retr[R_HTTP]++;
          http_close(n);
          http_connect(n);
          return;
        }
        fail(n, "connection %s before the response to %s", r == 0 ? "closed" : strerror(errno),
             n->cur_url);
        return;
      }
      n->hlen += (int)r;
      n->hbuf[n->hlen] = 0;
      n->deadline = now_ns() + HTTP_IDLE;
      char* e = strstr(n->hbuf, "\r\n\r\n");
      if (!e) {
        if (n->hlen >= (int)sizeof n->hbuf - 1) {
          fail(n, "response headers over 8 KiB");
          return;
        }
        continue;
      }
      size_t hl = (size_t)(e + 4 - n->hbuf);
      int pr = parse_headers(n, e);
      if (pr < 0) {
        fail(n, "%s: %s", n->cur_url,
             pr == -2   ? "chunked response (not modelled)"
             : pr == -3 ? "response without Content-Length"
                        : "bad status line");
        return;
      }
      size_t extra = (size_t)n->hlen - hl;
      if (extra > n->body_left) {
        fail(n, "%s: more bytes than Content-Length", n->cur_url);
        return;
      }
      n->hstate = 3;
      http_body(n, n->hbuf + hl, extra);
      n->body_left -= extra;
      n->hbytes += extra;
      if (n->body_left == 0) {
        http_done_body(n);
        return;
      }
    } else if (n->hstate == 3) {
      size_t want = n->body_left;
      ssize_t r;
      if (n->keep_body) {
        char tmp[4096];
        r = recv(n->tfd, tmp, want < sizeof tmp ? want : sizeof tmp, 0);
        if (r > 0) http_body(n, tmp, (size_t)r);
      } else {
        /* discard without copying (TCP MSG_TRUNC) */
        if (want > (1u << 20)) want = 1u << 20;
        r = recv(n->tfd, NULL, want, MSG_TRUNC | MSG_DONTWAIT);
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (r <= 0) {
        fail(n, "connection %s with %" PRIu64 " bytes of %s left",
             r == 0 ? "closed" : strerror(errno), n->body_left, n->cur_url);
        return;
      }
      n->body_left -= (uint64_t)r;
      n->hbytes += (uint64_t)r;
      n->deadline = now_ns() + HTTP_IDLE;
      if (n->body_left == 0) {
        http_done_body(n);
        return;
      }
    } else {
      /* idle pooled connection: the server may close it */
      char c;
      ssize_t r = recv(n->tfd, &c, 1, MSG_PEEK);
      if (r == 0) http_close(n);
      return;
    }
  }
}

/* ---------------- AoE (Coraid AoE spec r11) ---------------- */

#define AOE_TICK (100 * MS)             /* the aoe driver's TIMERTICK, HZ/10 */
#define AOE_DEAD (180 * SEC)            /* aoe_deadsecs */
#define AOE_DISCOVER_EVERY (60 * SEC)   /* the driver's periodic discover */
#define AOE_DISCOVER_GIVEUP (180 * SEC) /* no target after this: failed */

struct sendq {
  int n;
  struct mmsghdr m[256];
  struct iovec iov[256];
  uint8_t buf[256][64];
  struct sockaddr_ll sll;
} sq;

static void sq_flush(void) {
  int off = 0, spins = 0;
  while (off < sq.n) {
    int r = sendmmsg(afd, sq.m + off, (unsigned)(sq.n - off), 0);
    if (r < 0) {
      if (errno == EINTR || ((errno == EAGAIN || errno == ENOBUFS) && spins++ < 100)) {
        usleep(100);
        continue;
      }
      break; /* retransmit timers resend */
    }
    off += r;
  }
  sq.n = 0;
}

static uint8_t* sq_frame(void) {
  if (sq.n == 256) sq_flush();
  uint8_t* f = sq.buf[sq.n];
  memset(f, 0, 64);
  sq.iov[sq.n].iov_base = f;
  sq.iov[sq.n].iov_len = 60;
  memset(&sq.m[sq.n], 0, sizeof sq.m[0]);
  sq.m[sq.n].msg_hdr.msg_iov = &sq.iov[sq.n];
  sq.m[sq.n].msg_hdr.msg_iovlen = 1;
  sq.m[sq.n].msg_hdr.msg_name = &sq.sll;
  sq.m[sq.n].msg_hdr.msg_namelen = sizeof sq.sll;
  sq.n++;
  return f;
}

static void aoe_hdr(uint8_t* f, const uint8_t* dst, const uint8_t* src, uint16_t shelf,
                    uint8_t slot, uint8_t cmd, uint32_t tag) {
  memcpy(f, dst, 6);
  memcpy(f + 6, src, 6);
  put16(f + 12, 0x88a2);
  f[14] = 0x10;
  put16(f + 16, shelf);
  f[18] = slot;
  f[19] = cmd;
  put32(f + 20, tag);
}

static void aoe_query(struct node* n) {
  static const uint8_t bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  uint8_t* f = sq_frame();
  aoe_hdr(f, bc, n->mac, 0xffff, 0xff, 1, (uint32_t)n->idx << 16 | 0xffff);
  n->deadline = now_ns() + AOE_DISCOVER_EVERY;
  if (n->qtry > 0) n->retr[R_AOE]++;
  n->qtry++;
}

static void aoe_start(struct node* n) {
  n->phase = P_AOE_DISC;
  n->qtry = 0;
  n->t_aoe = now_ns();
  if (O.slot >= 0) {
    n->shelf = O.shelf;
    n->slot = (uint8_t)O.slot;
  }
  aoe_query(n);
}

static int64_t aoe_rto(struct node* n) {
  int64_t t = 2 * n->rttavg + 8 * n->rttdev;
  return t < (int64_t)MS ? (int64_t)MS : t;
}

static void aoe_send(struct node* n, int s) {
  struct aoereq* q = &n->q[s];
  uint8_t* f = sq_frame();
  q->gen++;
  uint32_t tag = (uint32_t)n->idx << 16 | (uint32_t)s << 10 | (q->gen & 0x3ff);
  aoe_hdr(f, n->tmac, n->mac, n->shelf, n->slot, 0, tag);
  uint8_t* a = f + 24;
  if (q->read == UINT32_MAX) {
    a[2] = 1;
    a[3] = 0xec; /* IDENTIFY DEVICE */
  } else {
    uint64_t lba = blk_lba[q->read];
    a[0] = 0x40; /* E: LBA48 */
    a[2] = blk_cnt[q->read];
    a[3] = 0x24; /* READ SECTORS EXT */
    for (int i = 0; i < 6; i++)
      a[4 + i] = (uint8_t)(lba >> (8 * i));
  }
  q->sent = now_ns();
  q->used = 1;
}

static void aoe_fill(struct node* n) {
  unsigned out = 0;
  for (unsigned s = 0; s < n->bufcnt; s++)
    out += n->q[s].used;
  for (unsigned s = 0; s < n->bufcnt && out < n->maxout && n->identified; s++) {
    if (n->q[s].used || n->next_read >= nblk) continue;
    n->q[s].read = n->next_read++;
    n->q[s].tries = 0;
    aoe_send(n, (int)s);
    out++;
  }
  if (n->identified && out == 0 && n->next_read >= nblk) {
    mark(n, M_ROOT);
    n->phase = P_DONE;
    n->deadline = 0;
  }
}

/* Every AOE_TICK: frames older than the RTO go again and the window closes
 * to one (ssthresh halved), as the Linux aoe driver's rexmit_timer does. */
static void aoe_tick(struct node* n, uint64_t now) {
  int timedout = 0;
  for (unsigned s = 0; s < n->bufcnt; s++) {
    struct aoereq* q = &n->q[s];
    if (!q->used || (int64_t)(now - q->sent) < aoe_rto(n)) continue;
    if (now - n->t_aoe > AOE_DEAD) {
      fail(n, "no answer to %s at LBA %u after %u tries",
           q->read == UINT32_MAX ? "IDENTIFY" : "READ",
           q->read == UINT32_MAX ? 0 : blk_lba[q->read], q->tries + 1);
      return;
    }
    q->tries++;
    n->retr[R_AOE]++;
    timedout = 1;
    aoe_send(n, (int)s);
  }
  if (timedout && n->maxout > 1) {
    n->ssthresh = n->maxout / 2 ? n->maxout / 2 : 1;
    n->maxout = 1;
  }
}

static void aoe_answer(struct node* n, const uint8_t* f, size_t len) {
  uint32_t tag = be32(f + 20);
  unsigned s = (tag >> 10) & 0x3f;
  if (s >= n->bufcnt || !n->q[s].used || (n->q[s].gen & 0x3ff) != (tag & 0x3ff)) {
    stale_aoe++;
    return;
  }
  struct aoereq* q = &n->q[s];
  if (f[14] & 0x04) {
    fail(n, "AoE error %u", f[15]);
    return;
  }
  const uint8_t* a = f + 24;
  if (len < 36 || (a[3] & 0x21)) {
    fail(n, "ATA status 0x%02x error 0x%02x", a[3], a[1]);
    return;
  }
  size_t want = q->read == UINT32_MAX ? 512 : (size_t)blk_cnt[q->read] * 512;
  if (len < 36 + want) {
    fail(n, "short AoE answer: %zu data bytes of %zu", len - 36, want);
    return;
  }
  if (q->read != UINT32_MAX && image) {
    uint64_t off = (uint64_t)blk_lba[q->read] * 512;
    if (off + want > image_size || memcmp(f + 36, image + off, want) != 0) {
      bad_data++;
      fail(n, "data at LBA %u differs from the image", blk_lba[q->read]);
      return;
    }
  }
  if (q->tries == 0) { /* Karn: time only frames sent once */
    int64_t rtt = (int64_t)(now_ns() - q->sent);
    int64_t d = rtt - n->rttavg; /* gains as RTTSCALE 8, RTTDSCALE 3 */
    n->rttavg += d / 256;
    n->rttdev += ((d < 0 ? -d : d) - n->rttdev) / 8;
  }
  q->used = 0;
  if (q->read == UINT32_MAX) {
    n->identified = 1;
    n->phase = P_AOE_READ;
  } else {
    n->done_reads++;
  }
  if (n->maxout < n->bufcnt) { /* slow start, then one more per window */
    if (n->maxout < n->ssthresh || ++n->good >= n->maxout) {
      n->maxout++;
      n->good = 0;
    }
  }
  aoe_fill(n);
}

static void aoe_found(struct node* n, const uint8_t* f) {
  uint16_t shelf = be16(f + 16);
  uint8_t slot = f[18];
  if (n->slot != 0xff && (shelf != n->shelf || slot != n->slot)) return;
  memcpy(n->tmac, f + 6, 6);
  n->shelf = shelf;
  n->slot = slot;
  unsigned bc = be16(f + 24);
  n->bufcnt = bc == 0 ? 1 : bc > (unsigned)O.window ? (unsigned)O.window : bc;
  n->maxout = n->bufcnt / 2 ? n->bufcnt / 2 : 1;
  n->ssthresh = n->bufcnt;
  n->rttavg = 250 * (int64_t)MS; /* RTTAVG_INIT: HZ/4 */
  n->rttdev = n->rttavg / 4;     /* RTTDEV_INIT */
  mark(n, M_AOE_DISC);
  n->phase = P_AOE_READ;
  n->deadline = 0;
  memset(n->q, 0, sizeof n->q);
  n->q[0].read = UINT32_MAX;
  aoe_send(n, 0);
}

static void aoe_input(void) {
  static uint8_t bufs[64][2048];
  static struct mmsghdr m[64];
  static struct iovec iov[64];
  for (int round = 0; round < 16; round++) {
    for (int i = 0; i < 64; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&m[i], 0, sizeof m[i]);
      m[i].msg_hdr.msg_iov = &iov[i];
      m[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(afd, m, 64, MSG_DONTWAIT, NULL);
    if (r <= 0) break;
    for (int i = 0; i < r; i++) {
      const uint8_t* f = bufs[i];
      size_t len = m[i].msg_len;
      if (len < 24 || be16(f + 12) != 0x88a2 || !(f[14] & 0x08)) continue;
      if (f[19] == 1 && len >= 32) { /* Query Config answer */
        int bcast = f[0] == 0xff && f[1] == 0xff;
        for (int k = 0; k < O.n; k++) {
          struct node* n = &nodes[k];
          if (n->phase == P_AOE_DISC && (bcast || !memcmp(f, n->mac, 6))) aoe_found(n, f);
        }
        continue;
      }
      if (f[19] != 0) continue;
      int idx = (int)(be32(f + 20) >> 16);
      if (idx >= O.n || memcmp(f, nodes[idx].mac, 6) != 0) {
        stale_aoe++;
        continue;
      }
      struct node* n = &nodes[idx];
      if (n->phase != P_AOE_READ) {
        stale_aoe++;
        continue;
      }
      aoe_answer(n, f, len);
    }
    if (r < 64) break;
  }
}

/* ---------------- setup, loop, report ---------------- */

static int raw_socket(int proto, int promisc) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons((uint16_t)proto));
  if (fd < 0) die("socket(AF_PACKET)");
  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons((uint16_t)proto);
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr*)&sll, sizeof sll) < 0) die("bind(AF_PACKET)");
  if (promisc) {
    struct packet_mreq mr = {0};
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
      die("PACKET_MR_PROMISC");
  }
  int one = 1, sz = 32 << 20;
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  return fd;
}

static void dhcp_filter(int fd) {
  /* IPv4, UDP, not a fragment, destination port 68 */
  struct sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x0800, 0, 8),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 6),
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 4, 0),
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 16),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 68, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {sizeof code / sizeof code[0], code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) die("SO_ATTACH_FILTER");
}

static void dhcp_recv(void) {
  uint8_t f[2048];
  for (int i = 0; i < 256; i++) {
    ssize_t r = recv(pfd, f, sizeof f, 0);
    if (r < 0) return;
    if (r < 14 + 20 + 8) continue;
    size_t ihl = (size_t)(f[14] & 0xf) * 4;
    size_t ilen = be16(f + 16);
    if ((size_t)r < 14 + ilen || ilen < ihl + 8) continue;
    const uint8_t* udp = f + 14 + ihl;
    size_t ulen = be16(udp + 4);
    if (ulen < 8 || ulen > ilen - ihl) continue;
    dhcp_input(udp + 8, ulen - 8);
  }
}

static void load_blocks(const char* path) {
  FILE* fp = fopen(path, "r");
  if (!fp) die(path);
  char line[256];
  uint32_t cap = 0;
  while (fgets(line, sizeof line, fp)) {
    unsigned long lba;
    unsigned cnt;
    if (line[0] == '#' || sscanf(line, "%lu %u", &lba, &cnt) != 2) continue;
    if (cnt < 1 || cnt > 255) {
      fprintf(stderr, "%s: bad sector count %u\n", path, cnt);
      exit(2);
    }
    if (nblk == cap) {
      cap = cap ? cap * 2 : 1024;
      blk_lba = realloc(blk_lba, cap * sizeof *blk_lba);
      blk_cnt = realloc(blk_cnt, cap);
    }
    blk_lba[nblk] = (uint32_t)lba;
    blk_cnt[nblk] = (uint8_t)cnt;
    nblk++;
  }
  fclose(fp);
  if (!nblk) {
    fprintf(stderr, "%s: no blocks\n", path);
    exit(2);
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: storm -i IFACE -b BLOCKS [options]\n"
          "  -n N        nodes (default 10)\n"
          "  -b FILE     AoE blocks to read, \"LBA SECTORS\" lines (kiwi-blocks.txt)\n"
          "  -f IMAGE    compare every AoE data byte with this file\n"
          "  -u PCT      percent of UEFI nodes (default 50; the rest BIOS)\n"
          "  -S MS       power-on spread: node i starts at i*MS/N ms (default 2000)\n"
          "  -w W        most AoE frames in flight per node (default 16, at most 64)\n"
          "  -d SH.SL    AoE target (default: root=live:AOEINTERFACE= from the script, else any)\n"
          "  -3          skip the initrd's DHCP (dhcp3)\n"
          "  -o FILE     per-node table (TSV)\n"
          "  -T SEC      time limit; nodes not done by then fail (default 600)\n"
          "  -s SEED     MAC/xid seed (default 1)\n"
          "  -q          quiet: no line per failed node\n");
  exit(2);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint64_t* v, int n, double p) {
  if (n == 0) return 0;
  int k = (int)(p / 100.0 * n + 0.999999) - 1;
  if (k < 0) k = 0;
  if (k >= n) k = n - 1;
  return (double)v[k] / 1e9;
}

int main(int argc, char** argv) {
  int c;
  while ((c = getopt(argc, argv, "i:n:b:f:u:S:w:d:3o:T:s:qh")) != -1) {
    switch (c) {
      case 'i':
        O.ifname = optarg;
        break;
      case 'n':
        O.n = atoi(optarg);
        break;
      case 'b':
        O.blocks = optarg;
        break;
      case 'f':
        O.image = optarg;
        break;
      case 'u':
        O.uefi_pct = atoi(optarg);
        break;
      case 'S':
        O.spread_ms = (unsigned)atoi(optarg);
        break;
      case 'w':
        O.window = atoi(optarg);
        break;
      case 'd': {
        unsigned sh, sl;
        if (sscanf(optarg, "%u.%u", &sh, &sl) != 2) usage();
        O.shelf = (uint16_t)sh;
        O.slot = (int)sl;
        break;
      }
      case '3':
        O.dhcp3 = 0;
        break;
      case 'o':
        O.out = optarg;
        break;
      case 'T':
        O.limit = atof(optarg);
        break;
      case 's':
        O.seed = (unsigned)atoi(optarg);
        break;
      case 'q':
        O.quiet = 1;
        break;
      default:
        usage();
    }
  }
  if (!O.ifname || !O.blocks || O.n < 1 || O.n > 65535 || O.window < 1 || O.window > MAXW ||
      O.limit <= 0)
    usage();
  load_blocks(O.blocks);
  if (O.image) {
    int fd = open(O.image, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) die(O.image);
    image_size = (uint64_t)st.st_size;
    image = mmap(NULL, image_size, PROT_READ, MAP_SHARED, fd, 0);
    if (image == MAP_FAILED) die("mmap");
    close(fd);
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if ((rlim_t)O.n * 2 + 64 > rl.rlim_cur) {
    fprintf(stderr, "RLIMIT_NOFILE %llu too small for %d nodes\n", (unsigned long long)rl.rlim_cur,
            O.n);
    exit(2);
  }
  ifindex = (int)if_nametoindex(O.ifname);
  if (!ifindex) die(O.ifname);
  {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", O.ifname);
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
    memcpy(ifmac, ifr.ifr_hwaddr.sa_data, 6);
    close(s);
  }
  signal(SIGINT, on_sig);
  signal(SIGTERM, on_sig);
  signal(SIGPIPE, SIG_IGN);
  pfd = raw_socket(0x0800, 1);
  dhcp_filter(pfd);
  afd = raw_socket(0x88a2, 1);
  sq.sll.sll_family = AF_PACKET;
  sq.sll.sll_ifindex = ifindex;
  sq.sll.sll_halen = 6;
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev);
  ev.data.u32 = UINT32_MAX - 1;
  epoll_ctl(ep, EPOLL_CTL_ADD, afd, &ev);

  srandom(O.seed);
  xid_base = (uint32_t)random() & 0xff000000u;
  nodes = calloc((size_t)(unsigned)O.n, sizeof *nodes);
  if (!nodes) die("calloc");
  tstart = now_ns();
  for (int i = 0; i < O.n; i++) {
    struct node* n = &nodes[i];
    n->idx = i;
    /* locally administered, unicast: 02:<seed>:00:<i> */
    n->mac[0] = 0x02;
    n->mac[1] = (uint8_t)O.seed;
    n->mac[2] = 0x5b;
    n->mac[3] = (uint8_t)(i >> 16);
    n->mac[4] = (uint8_t)(i >> 8);
    n->mac[5] = (uint8_t)i;
    /* spread the UEFI nodes evenly: PCT of every 100 */
    n->uefi = (i + 1) * O.uefi_pct / 100 != i * O.uefi_pct / 100;
    n->ufd = n->tfd = -1;
    n->slot = 0xff;
    n->t0 = tstart + (uint64_t)i * O.spread_ms * MS / (unsigned)O.n;
    n->deadline = n->t0;
    n->phase = P_DHCP1;
    n->dstate = -1; /* not powered on yet */
  }
  uint64_t limit = tstart + (uint64_t)(O.limit * 1e9), last_tick = 0, last_scan = 0;
  int remaining = O.n;
  struct epoll_event evs[256];
  while (remaining > 0 && !stop_flag) {
    uint64_t now = now_ns();
    if (now > limit) break;
    int k = epoll_wait(ep, evs, 256, 10);
    for (int e = 0; e < k; e++) {
      uint32_t id = evs[e].data.u32;
      if (id == UINT32_MAX) {
        dhcp_recv();
      } else if (id == UINT32_MAX - 1) {
        aoe_input();
      } else if (id < (uint32_t)O.n) {
        struct node* n = &nodes[id];
        if (n->phase == P_TFTP && n->ufd >= 0)
          tftp_input(n);
        else if (n->phase == P_HTTP && n->tfd >= 0)
          http_input(n, evs[e].events);
      }
    }
    now = now_ns();
    /* timers have millisecond resolution: scan the nodes at most once a ms */
    if (now - last_scan < MS) {
      sq_flush();
      continue;
    }
    last_scan = now;
    int tick = now - last_tick >= AOE_TICK;
    if (tick) last_tick = now;
    remaining = 0;
    for (int i = 0; i < O.n; i++) {
      struct node* n = &nodes[i];
      if (n->phase >= P_DONE) continue;
      remaining++;
      if (n->phase == P_AOE_READ) {
        if (tick) aoe_tick(n, now);
        continue;
      }
      if (!n->deadline || now < n->deadline) continue;
      if (n->dstate == -1 && n->phase == P_DHCP1) {
        dhcp_start(n, 1);
        continue;
      }
      switch (n->phase) {
        case P_DHCP1:
        case P_DHCP2:
        case P_DHCP3:
          dhcp_timeout(n);
          break;
        case P_TFTP:
          tftp_timeout(n);
          break;
        case P_HTTP:
          fail(n, "no HTTP progress for 60 s on %s", n->cur_url);
          break;
        case P_AOE_DISC:
          if (now - n->t_aoe > AOE_DISCOVER_GIVEUP)
            fail(n, "no AoE target e%u.%u answered in 180 s", n->shelf, n->slot);
          else
            aoe_query(n);
          break;
        default:
          break;
      }
    }
    sq_flush();
  }
  double wall = (double)(now_ns() - tstart) / 1e9;
  for (int i = 0; i < O.n; i++)
    if (nodes[i].phase < P_DONE) {
      nodes[i].deadline = 0;
      fail(&nodes[i], stop_flag ? "interrupted" : "not done after the %.0f s time limit", O.limit);
    }

  FILE* out = O.out ? fopen(O.out, "w") : NULL;
  if (out) {
    fprintf(out, "node\tmac\tfirmware\tip");
    for (int m = 0; m < NMARK; m++)
      fprintf(out, "\t%s_s", mark_name[m]);
    for (int r = 0; r < NRETR; r++)
      fprintf(out, "\tretr_%s", retr_name[r]);
    fprintf(out, "\tresult\n");
  }
  uint64_t* root = calloc((size_t)(unsigned)O.n, sizeof *root);
  int ok = 0, failed = 0;
  unsigned long retr[NRETR] = {0};
  char reasons[8][160];
  int rcount[8] = {0}, nreasons = 0;
  for (int i = 0; i < O.n; i++) {
    struct node* n = &nodes[i];
    for (int r = 0; r < NRETR; r++)
      retr[r] += n->retr[r];
    if (n->phase == P_DONE)
      root[ok++] = n->mark[M_ROOT];
    else {
      failed++;
      /* group by reason up to the first digit run, roughly */
      char key[160];
      snprintf(key, sizeof key, "%s", n->reason);
      int j;
      for (j = 0; j < nreasons && strcmp(reasons[j], key); j++)
        ;
      if (j == nreasons && nreasons < 8) snprintf(reasons[nreasons++], 160, "%s", key);
      if (j < 8) rcount[j]++;
    }
    if (out) {
      struct in_addr a = {htonl(n->ip)};
      fprintf(out, "%d\t%02x:%02x:%02x:%02x:%02x:%02x\t%s\t%s", i, n->mac[0], n->mac[1], n->mac[2],
              n->mac[3], n->mac[4], n->mac[5], n->uefi ? "uefi" : "bios",
              n->ip ? inet_ntoa(a) : "-");
      for (int m = 0; m < NMARK; m++) {
        if (n->mark[m])
          fprintf(out, "\t%.3f", (double)n->mark[m] / 1e9);
        else
          fprintf(out, "\t-");
      }
      for (int r = 0; r < NRETR; r++)
        fprintf(out, "\t%u", n->retr[r]);
      fprintf(out, "\t%s\n", n->phase == P_DONE ? "ok" : n->reason);
    }
  }
  if (out) fclose(out);
  qsort(root, (size_t)ok, sizeof *root, cmp_u64);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double client_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                      ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
  for (int j = 0; j < nreasons; j++)
    printf("failure x%d: %s\n", rcount[j], reasons[j]);
  printf(
      "RESULT nodes=%d ok=%d failed=%d p50=%.2f p95=%.2f p99=%.2f max=%.2f wall=%.2f "
      "retr_dhcp=%lu retr_tftp=%lu retr_http=%lu retr_aoe=%lu aoe_stale=%" PRIu64
      " aoe_baddata=%" PRIu64 " reads_per_node=%u client_cpu=%.2f\n",
      O.n, ok, failed, pct(root, ok, 50), pct(root, ok, 95), pct(root, ok, 99),
      ok ? (double)root[ok - 1] / 1e9 : 0, wall, retr[R_DHCP], retr[R_TFTP], retr[R_HTTP],
      retr[R_AOE], stale_aoe, bad_data, nblk, client_cpu);
  return failed ? 1 : 0;
}
