// dhcp-storm: many DHCP clients (distinct chaddr) doing DISCOVER -> OFFER -> REQUEST -> ACK over one UDP socket.
//
// Why C: Node has no raw sockets and no SO_BINDTODEVICE, and spawning one udhcpc per MAC measures fork/exec more
// than the server. This client runs inside a network namespace with no IPv4 address: a UDP socket bound to
// 0.0.0.0:68 and to the interface sends to 255.255.255.255:67 with the BROADCAST flag set, so the server
// broadcasts its replies and they come back to this socket whatever the chaddr.
//
//   dhcp-storm IFACE COUNT CONCURRENCY MAC_PREFIX(aa:bb:cc) FIRST_INDEX OUT_FILE [TIMEOUT_MS [TRIES]]
//
// Client i uses MAC MAC_PREFIX:(FIRST_INDEX+i as 3 bytes). Each message is resent with exponential backoff like a
// real client (RFC 2131 4.1: TIMEOUT_MS, then twice that … capped at 16 s, ±25% jitter so retries do not arrive in
// lock-step), up to TRIES sends per message (default 8); a client that never gets its ACK gives up: LOST. OUT_FILE gets one line per
// client: index mac discover_us offer_us request_us ack_us ip sends status (times: CLOCK_REALTIME, microseconds).
// stdout gets a one-line JSON summary.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { IDLE, WAIT_OFFER, WAIT_ACK, DONE_ACK, DONE_NAK, DONE_LOST };

struct client {
  uint8_t mac[6];
  uint32_t xid;
  enum state st;
  int64_t discover_us, offer_us, request_us, ack_us, deadline_us;
  uint32_t offered_ip, server_id, acked_ip;
  int sends;     // sends of the current message
  int total;     // all packets sent
  int dup_acks;  // ACKs for an already finished transaction
};

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/** The wait before resend number `sends` (1-based count of sends so far): base * 2^(sends-1), ≤ 16 s, ±25%. */
static int64_t backoff_us(int64_t base_us, int sends) {
  int64_t t = base_us << (sends - 1 < 5 ? sends - 1 : 5);
  if (t > 16000000) t = 16000000;
  return t * 3 / 4 + (int64_t)(rand() % 1000) * (t / 2) / 1000;
}

static int sock;
static struct sockaddr_in server_addr;

static void send_msg(struct client *c, int type) {
  uint8_t p[300];
  memset(p, 0, sizeof p);
  p[0] = 1; // BOOTREQUEST
  p[1] = 1; // ethernet
  p[2] = 6;
  uint32_t xid = htonl(c->xid);
  memcpy(p + 4, &xid, 4);
  p[10] = 0x80; // BROADCAST flag: the server broadcasts its reply
  memcpy(p + 28, c->mac, 6);
  p[236] = 99, p[237] = 130, p[238] = 83, p[239] = 99; // magic cookie
  int o = 240;
  p[o++] = 53, p[o++] = 1, p[o++] = (uint8_t)type;
  if (type == 3) {
    p[o++] = 50, p[o++] = 4;
    memcpy(p + o, &c->offered_ip, 4), o += 4;
    p[o++] = 54, p[o++] = 4;
    memcpy(p + o, &c->server_id, 4), o += 4;
  }
  p[o++] = 55, p[o++] = 4, p[o++] = 1, p[o++] = 3, p[o++] = 66, p[o++] = 67;
  p[o++] = 255;
  if (sendto(sock, p, 300, 0, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EAGAIN &&
      errno != ENOBUFS) {
    perror("sendto");
    exit(1);
  }
  c->total++;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s IFACE COUNT CONCURRENCY MAC_PREFIX FIRST_INDEX OUT_FILE [TIMEOUT_MS [TRIES]]\n", argv[0]);
    return 2;
  }
  const char *iface = argv[1];
  int count = atoi(argv[2]), conc = atoi(argv[3]);
  unsigned pre[3];
  if (sscanf(argv[4], "%x:%x:%x", &pre[0], &pre[1], &pre[2]) != 3) {
    fprintf(stderr, "MAC_PREFIX: expected aa:bb:cc\n");
    return 2;
  }
  int first = atoi(argv[5]);
  const char *out = argv[6];
  int64_t timeout_us = (argc > 7 ? atoi(argv[7]) : 1000) * 1000LL;
  int tries = argc > 8 ? atoi(argv[8]) : 8;
  if (count <= 0 || conc <= 0 || tries <= 0) return 2;

  sock = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int one = 1, buf = 8 << 20;
  setsockopt(sock, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
  setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
  if (setsockopt(sock, SOL_SOCKET, SO_BINDTODEVICE, iface, strlen(iface)) < 0) {
    perror("SO_BINDTODEVICE");
    return 1;
  }
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(68), .sin_addr.s_addr = INADDR_ANY};
  if (bind(sock, (struct sockaddr *)&me, sizeof me) < 0) {
    perror("bind 0.0.0.0:68");
    return 1;
  }
  server_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = INADDR_BROADCAST};

  struct client *cs = calloc((size_t)count, sizeof *cs);
  srand((unsigned)(now_us() ^ getpid()));
  uint32_t xid_base = ((uint32_t)rand() << 8) & 0xfff00000u; // xid = base + index: finds the client in O(1)
  for (int i = 0; i < count; i++) {
    int n = first + i;
    uint8_t m[6] = {(uint8_t)pre[0], (uint8_t)pre[1], (uint8_t)pre[2], (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(cs[i].mac, m, 6);
    cs[i].xid = xid_base + (uint32_t)i;
  }

  int next = 0, active = 0, finished = 0, stray = 0;
  int64_t t0 = now_us();
  while (finished < count) {
    while (active < conc && next < count) {
      struct client *c = &cs[next++];
      c->st = WAIT_OFFER;
      c->discover_us = now_us();
      c->sends = 1;
      c->deadline_us = c->discover_us + backoff_us(timeout_us, 1);
      send_msg(c, 1);
      active++;
    }
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    poll(&pfd, 1, 5);
    uint8_t p[1500];
    for (;;) {
      ssize_t n = recv(sock, p, sizeof p, 0);
      if (n < 0) break;
      int64_t t = now_us();
      if (n < 244 || p[0] != 2) continue;
      uint32_t xid;
      memcpy(&xid, p + 4, 4);
      xid = ntohl(xid) - xid_base;
      if (xid >= (uint32_t)count) {
        stray++;
        continue;
      }
      struct client *c = &cs[xid];
      if (memcmp(p + 28, c->mac, 6) != 0) {
        stray++;
        continue;
      }
      int type = 0;
      uint32_t sid = 0;
      for (int o = 240; o + 1 < n && p[o] != 255;) {
        if (p[o] == 0) {
          o++;
          continue;
        }
        int len = p[o + 1];
        if (o + 2 + len > n) break;
        if (p[o] == 53 && len == 1) type = p[o + 2];
        if (p[o] == 54 && len == 4) memcpy(&sid, p + o + 2, 4);
        o += 2 + len;
      }
      if (type == 2 && c->st == WAIT_OFFER) {
        c->offer_us = t;
        memcpy(&c->offered_ip, p + 16, 4);
        c->server_id = sid;
        c->st = WAIT_ACK;
        c->request_us = now_us();
        c->sends = 1;
        c->deadline_us = c->request_us + backoff_us(timeout_us, 1);
        send_msg(c, 3);
      } else if ((type == 5 || type == 6) && c->st == WAIT_ACK) {
        c->ack_us = t;
        memcpy(&c->acked_ip, p + 16, 4);
        c->st = type == 5 ? DONE_ACK : DONE_NAK;
        active--, finished++;
      } else if (type == 5 && c->st == DONE_ACK) {
        c->dup_acks++;
      }
    }
    int64_t t = now_us();
    for (int i = 0; i < next; i++) {
      struct client *c = &cs[i];
      if ((c->st != WAIT_OFFER && c->st != WAIT_ACK) || t < c->deadline_us) continue;
      if (c->sends >= tries) {
        c->st = DONE_LOST;
        active--, finished++;
        continue;
      }
      c->sends++;
      c->deadline_us = t + backoff_us(timeout_us, c->sends);
      send_msg(c, c->st == WAIT_OFFER ? 1 : 3);
    }
  }
  int64_t t1 = now_us();

  FILE *f = fopen(out, "w");
  if (!f) {
    perror(out);
    return 1;
  }
  int acks = 0, naks = 0, lost = 0, packets = 0, dups = 0;
  for (int i = 0; i < count; i++) {
    struct client *c = &cs[i];
    char ip[INET_ADDRSTRLEN] = "-";
    if (c->st == DONE_ACK) inet_ntop(AF_INET, &c->acked_ip, ip, sizeof ip);
    const char *s = c->st == DONE_ACK ? "ACK" : c->st == DONE_NAK ? "NAK" : "LOST";
    acks += c->st == DONE_ACK, naks += c->st == DONE_NAK, lost += c->st == DONE_LOST;
    packets += c->total, dups += c->dup_acks;
    fprintf(f, "%d %02x:%02x:%02x:%02x:%02x:%02x %lld %lld %lld %lld %s %d %s\n", first + i, c->mac[0], c->mac[1],
            c->mac[2], c->mac[3], c->mac[4], c->mac[5], (long long)c->discover_us, (long long)c->offer_us,
            (long long)c->request_us, (long long)c->ack_us, ip, c->total, s);
  }
  fclose(f);
  printf("{\"count\":%d,\"concurrency\":%d,\"acks\":%d,\"naks\":%d,\"lost\":%d,\"packetsSent\":%d,\"duplicateAcks\":%d,"
         "\"stray\":%d,\"startUs\":%lld,\"endUs\":%lld}\n",
         count, conc, acks, naks, lost, packets, dups, stray, (long long)t0, (long long)t1);
  return 0;
}
