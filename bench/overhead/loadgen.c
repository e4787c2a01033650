/* loadgen: the HTTP/1.1 load generator of bench/overhead (raw epoll, one thread).
 *
 *   loadgen closed --port P [--conns 64] [--duration 5] [--warmup 1] [--model NAME]
 *   loadgen open   --port P --rate R [--duration 6] [--warmup 1] [--conns 64] [--max-conns 512]
 *   loadgen stream --port P [--count 100] [--conns 4] [--expect 20] [--msg TEXT]
 *   loadgen hold   --port P [--conns 1000] [--duration 12] [--msg TEXT]
 *
 * Every request is POST /v1/chat/completions to 127.0.0.1:P (loopback only) with keep-alive.
 *  closed: each connection sends its next request when the previous reply is complete;
 *          prints the completions per second and latency percentiles.
 *  open:   requests are due at fixed times (rate R); a due request takes an idle connection,
 *          or waits in a queue; latency counts from the time it was due (no coordinated
 *          omission). Prints the achieved rate and latency percentiles.
 *  stream: streams whose content chunks carry the sender's CLOCK_MONOTONIC microseconds
 *          (sluice sim's @sim:stamp); prints time to first byte and, per chunk, the time it
 *          was read here minus the time the simulator wrote it.
 *  hold:   opens N streams, prints "ready" once every one has its response headers, reads
 *          and discards until --duration, then prints a summary and closes them.
 * Output: one line of key=value pairs (times in microseconds). Every loop is bounded by a
 * deadline; nothing retries forever. LOADGEN_DUMP=1 (stream mode) prints every chunk's delay
 * and arrival gap on stderr. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_CLOSED, M_OPEN, M_STREAM, M_HOLD };

enum pstate { P_HDR, P_BODY, P_EOFBODY, P_CHSIZE, P_CHDATA, P_CHCRLF, P_TRAILER };

#define HBUF 16384
#define STAMP_PAT "\"content\":\" "

struct conn {
    int fd;
    int connected, busy, dead, want_out;
    const char *w;
    size_t wlen, woff;
    /* response parser */
    enum pstate ps;
    char hbuf[HBUF];
    size_t hlen;
    long long remain;
    int status, close_after;
    char line[64];
    size_t linelen;
    /* stamp scanner */
    int pat, ndig;
    long long num;
    int stamps;
    int64_t last_chunk;
    /* timing */
    int64_t t_sched, t_sent, t_first;
    int got_first, counted_hdr;
    int next_free;
};

static struct {
    enum mode mode;
    int port, conns, max_conns, count, expect;
    double rate, duration, warmup;
    const char *msg;
    const char *model; /* --model (default sim-small): a model or group of the proxy */
} o = {.model = "sim-small", .conns = -1, .max_conns = 512, .count = 100, .expect = 20, .duration = -1, .warmup = 1};

static int ep;
static struct conn *cs;
static int ncs;      /* connections created */
static int free_top = -1;
static char *req;
static size_t req_len;

/* samples */
struct samples {
    int64_t *v;
    size_t n, cap;
};
static struct samples lat, ttfb, cdelay, cgap;
static long long n_ok, n_err, n_non200, n_done, n_reconn, n_conn_fail, n_bad_stamps;
static long long n_hdr200, n_streams_ok, n_chunks;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void push(struct samples *s, int64_t v)
{
    if (s->n == s->cap) {
        if (s->cap >= 50000000)
            return; /* bounded */
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v) {
            perror("realloc");
            exit(2);
        }
    }
    s->v[s->n++] = v;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
    if (s->n == 0)
        return -1;
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    if (i >= s->n)
        i = s->n - 1;
    return (double)s->v[i] / 1000.0;
}

static void print_dist(const char *name, struct samples *s)
{
    qsort(s->v, s->n, sizeof(*s->v), cmp64);
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += (double)s->v[i];
    printf(" %s_n=%zu %s_mean=%.1f %s_p50=%.1f %s_p90=%.1f %s_p99=%.1f %s_p999=%.1f %s_max=%.1f",
           name, s->n, name, s->n ? sum / (double)s->n / 1000.0 : -1.0, name, pct(s, 50), name,
           pct(s, 90), name, pct(s, 99), name, pct(s, 99.9), name,
           s->n ? (double)s->v[s->n - 1] / 1000.0 : -1.0);
}

static void build_request(void)
{
    char body[2048];
    const char *pad = "You are a concise assistant. Answer in one short paragraph and do not "
                      "add any preamble.";
    int n;
    if (o.mode == M_CLOSED || o.mode == M_OPEN)
        n = snprintf(body, sizeof(body),
                     "{\"model\":\"%s\",\"temperature\":0.2,\"max_tokens\":64,"
                     "\"user\":\"bench-overhead\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"%s %s\"}]}",
                     o.model, pad, o.msg ? o.msg : "Summarise what an HTTP reverse proxy does, and why "
                                          "keep-alive connections to the upstream matter.");
    else
        n = snprintf(body, sizeof(body),
                     "{\"model\":\"sim-small\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                     "\"content\":\"%s\"}]}",
                     o.msg ? o.msg : "Count for me @sim:words=20 @sim:stamp");
    if (n <= 0 || (size_t)n >= sizeof(body)) {
        fprintf(stderr, "body too long\n");
        exit(2);
    }
    req = malloc((size_t)n + 512);
    req_len = (size_t)sprintf(req,
                              "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                              "User-Agent: sluice-bench-loadgen\r\nAccept: */*\r\n"
                              "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                              o.port, n, body);
}

static void ep_set(struct conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    c->want_out = out;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->dead = 1;
    c->connected = 0;
}

static int conn_open(struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->next_free = -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->dead = 1;
        n_conn_fail++;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    int rc = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        c->dead = 1;
        n_conn_fail++;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void reset_parser(struct conn *c)
{
    c->ps = P_HDR;
    c->hlen = 0;
    c->remain = 0;
    c->status = 0;
    c->close_after = 0;
    c->linelen = 0;
    c->pat = c->ndig = 0;
    c->num = 0;
    c->stamps = 0;
    c->got_first = 0;
    c->counted_hdr = 0;
    c->last_chunk = 0;
}

/* Starts a request on an idle, connected connection. */
static void send_req(struct conn *c, int64_t sched, int64_t now)
{
    reset_parser(c);
    c->busy = 1;
    c->t_sched = sched;
    c->t_sent = now;
    c->w = req;
    c->wlen = req_len;
    c->woff = 0;
    ssize_t k = write(c->fd, req, req_len);
    if (k < 0 && errno != EAGAIN) {
        n_err++;
        conn_close(c);
        return;
    }
    if (k > 0)
        c->woff = (size_t)k;
    if (c->woff < c->wlen)
        ep_set(c, 1);
}

/* ---- run state per mode ---- */
static int64_t t_start, t_warm, t_end;
static long long started; /* requests or streams started */
static long long planned; /* open: total requests; stream: count */
/* open-loop queue of due times waiting for a connection */
static int64_t *queue;
static size_t q_head, q_tail, q_cap;
static long long measured_done; /* completions inside [t_warm, t_end] */

static void on_connected(struct conn *c, int64_t now);
static void on_idle(struct conn *c, int64_t now);

static void scan_stamps(struct conn *c, const char *p, size_t n, int64_t now)
{
    static const char pat[] = STAMP_PAT;
    const int plen = (int)sizeof(pat) - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (c->pat < plen) {
            if (ch == pat[c->pat])
                c->pat++;
            else
                c->pat = ch == pat[0] ? 1 : 0;
            continue;
        }
        if (ch >= '0' && ch <= '9' && c->ndig < 18) {
            c->num = c->num * 10 + (ch - '0');
            c->ndig++;
            continue;
        }
        if (ch == '"' && c->ndig > 0) {
            int64_t stamp_ns = c->num * 1000LL;
            push(&cdelay, now - stamp_ns);
            if (getenv("LOADGEN_DUMP"))
                fprintf(stderr, "chunk %d delay_us=%.1f gap_us=%.1f\n", c->stamps,
                        (double)(now - stamp_ns) / 1e3,
                        c->last_chunk ? (double)(now - c->last_chunk) / 1e3 : 0.0);
            if (c->last_chunk)
                push(&cgap, now - c->last_chunk);
            c->last_chunk = now;
            c->stamps++;
            n_chunks++;
        } else {
            n_bad_stamps++;
        }
        c->pat = ch == pat[0] ? 1 : 0;
        c->ndig = 0;
        c->num = 0;
    }
}

static void on_body(struct conn *c, const char *p, size_t n, int64_t now)
{
    if (o.mode == M_STREAM)
        scan_stamps(c, p, n, now);
}

static void parse_headers(struct conn *c)
{
    c->status = atoi(c->hbuf + 9);
    int chunked = 0;
    long long cl = -1;
    char *line = strstr(c->hbuf, "\r\n");
    while (line && line[2] != '\r') {
        line += 2;
        char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        if (!strncasecmp(line, "content-length:", 15))
            cl = atoll(line + 15);
        else if (!strncasecmp(line, "transfer-encoding:", 18) &&
                 memmem(line, (size_t)(eol - line), "chunked", 7))
            chunked = 1;
        else if (!strncasecmp(line, "connection:", 11) &&
                 memmem(line, (size_t)(eol - line), "close", 5))
            c->close_after = 1;
        line = eol;
    }
    if (chunked)
        c->ps = P_CHSIZE;
    else if (cl >= 0) {
        c->ps = P_BODY;
        c->remain = cl;
    } else
        c->ps = P_EOFBODY;
}

static void on_complete(struct conn *c, int64_t now)
{
    c->busy = 0;
    n_done++;
    if (c->status == 200)
        n_ok++;
    else
        n_non200++;
    if (o.mode == M_CLOSED) {
        if (c->t_sent >= t_warm && now <= t_end) {
            push(&lat, now - c->t_sent);
            measured_done++;
        }
    } else if (o.mode == M_OPEN) {
        if (c->t_sched >= t_warm) {
            push(&lat, now - c->t_sched);
            measured_done++;
        }
    } else if (o.mode == M_STREAM) {
        if (c->status == 200 && c->stamps == o.expect)
            n_streams_ok++;
    }
    if (c->close_after) {
        conn_close(c);
        n_reconn++;
        struct conn *nc = c; /* reuse the slot */
        if (conn_open(nc) == 0)
            return; /* on_connected will make it idle */
        return;
    }
    on_idle(c, now);
}

/* Feeds read bytes to the response parser. Returns -1 on a protocol error. */
static int feed(struct conn *c, const char *p, size_t n, int64_t now)
{
    while (n > 0) {
        switch (c->ps) {
        case P_HDR: {
            size_t before = c->hlen;
            size_t take = n < HBUF - 1 - c->hlen ? n : HBUF - 1 - c->hlen;
            if (take == 0)
                return -1;
            memcpy(c->hbuf + c->hlen, p, take);
            c->hlen += take;
            c->hbuf[c->hlen] = 0;
            size_t from = before > 3 ? before - 3 : 0;
            char *e = memmem(c->hbuf + from, c->hlen - from, "\r\n\r\n", 4);
            if (!e) {
                p += take;
                n -= take;
                break;
            }
            size_t hend = (size_t)(e - c->hbuf) + 4;
            size_t used = hend - before;
            p += used;
            n -= used;
            c->hbuf[hend - 2] = 0; /* keep the last CRLF, cut the blank line */
            if (strncmp(c->hbuf, "HTTP/1.", 7) != 0)
                return -1;
            parse_headers(c);
            if (o.mode == M_HOLD && !c->counted_hdr) {
                c->counted_hdr = 1;
                if (c->status == 200)
                    n_hdr200++;
            }
            if (c->ps == P_BODY && c->remain == 0) {
                on_complete(c, now);
                return 0;
            }
            break;
        }
        case P_BODY: {
            size_t take = (long long)n < c->remain ? n : (size_t)c->remain;
            on_body(c, p, take, now);
            p += take;
            n -= take;
            c->remain -= (long long)take;
            if (c->remain == 0) {
                on_complete(c, now);
                return 0;
            }
            break;
        }
        case P_EOFBODY:
            on_body(c, p, n, now);
            n = 0;
            break;
        case P_CHSIZE:
        case P_TRAILER: {
            char ch = *p++;
            n--;
            if (ch != '\n') {
                if (c->linelen < sizeof(c->line) - 1)
                    c->line[c->linelen++] = ch;
                break;
            }
            c->line[c->linelen] = 0;
            if (c->linelen && c->line[c->linelen - 1] == '\r')
                c->line[--c->linelen] = 0;
            if (c->ps == P_TRAILER) {
                c->linelen = 0;
                if (c->line[0] == 0) {
                    on_complete(c, now);
                    return 0;
                }
                break;
            }
            char *end;
            long long sz = strtoll(c->line, &end, 16);
            if (end == c->line || sz < 0)
                return -1;
            c->linelen = 0;
            if (sz == 0)
                c->ps = P_TRAILER;
            else {
                c->ps = P_CHDATA;
                c->remain = sz;
            }
            break;
        }
        case P_CHDATA: {
            size_t take = (long long)n < c->remain ? n : (size_t)c->remain;
            on_body(c, p, take, now);
            p += take;
            n -= take;
            c->remain -= (long long)take;
            if (c->remain == 0) {
                c->ps = P_CHCRLF;
                c->remain = 2;
            }
            break;
        }
        case P_CHCRLF: {
            size_t take = (long long)n < c->remain ? n : (size_t)c->remain;
            p += take;
            n -= take;
            c->remain -= (long long)take;
            if (c->remain == 0)
                c->ps = P_CHSIZE;
            break;
        }
        }
    }
    return 0;
}

static char rbuf[1 << 16];

static void on_readable(struct conn *c, int64_t now)
{
    for (int iter = 0; iter < 64; iter++) {
        ssize_t k = read(c->fd, rbuf, sizeof(rbuf));
        if (k > 0) {
            if (c->busy && !c->got_first) {
                c->got_first = 1;
                c->t_first = now;
                if (o.mode == M_STREAM)
                    push(&ttfb, now - c->t_sent);
            }
            if (!c->busy) { /* bytes with no request: protocol error */
                n_err++;
                conn_close(c);
                return;
            }
            if (feed(c, rbuf, (size_t)k, now) < 0) {
                n_err++;
                conn_close(c);
                return;
            }
            if (c->dead || c->fd < 0)
                return;
            if ((size_t)k < sizeof(rbuf))
                return;
            continue;
        }
        if (k == 0) { /* peer closed */
            if (c->busy) {
                if (c->ps == P_EOFBODY)
                    on_complete(c, now);
                else
                    n_err++;
            }
            if (!c->dead && c->fd >= 0 && (c->busy || !c->close_after))
                conn_close(c);
            return;
        }
        if (errno == EAGAIN || errno == EINTR)
            return;
        if (c->busy)
            n_err++;
        conn_close(c);
        return;
    }
}

static void on_writable(struct conn *c, int64_t now)
{
    if (!c->connected) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            n_conn_fail++;
            conn_close(c);
            return;
        }
        c->connected = 1;
        ep_set(c, 0);
        on_connected(c, now);
        return;
    }
    if (c->woff < c->wlen) {
        ssize_t k = write(c->fd, c->w + c->woff, c->wlen - c->woff);
        if (k < 0 && errno != EAGAIN) {
            n_err++;
            conn_close(c);
            return;
        }
        if (k > 0)
            c->woff += (size_t)k;
    }
    if (c->woff >= c->wlen)
        ep_set(c, 0);
}

static int sending_allowed(int64_t now)
{
    switch (o.mode) {
    case M_CLOSED:
        return now < t_end;
    case M_STREAM:
        return started < planned && now < t_end;
    case M_HOLD:
        return 0; /* hold sends once, on connect */
    default:
        return 0;
    }
}

static void on_idle(struct conn *c, int64_t now)
{
    if (o.mode == M_OPEN) {
        if (q_head != q_tail) {
            int64_t sched = queue[q_head % q_cap];
            q_head++;
            started++;
            send_req(c, sched, now);
            return;
        }
        c->next_free = free_top;
        free_top = (int)(c - cs);
        return;
    }
    if (t_start && sending_allowed(now)) {
        started++;
        send_req(c, now, now);
    }
}

static void on_connected(struct conn *c, int64_t now)
{
    if (o.mode == M_HOLD) {
        started++;
        send_req(c, now, now);
        return;
    }
    on_idle(c, now);
}

static void poll_once(int64_t timeout_ns)
{
    struct epoll_event evs[256];
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {timeout_ns / 1000000000LL, timeout_ns % 1000000000LL};
    int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
    int64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->dead || c->fd < 0)
            continue;
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            if (!c->connected || c->want_out)
                on_writable(c, now);
        }
        if (c->dead || c->fd < 0)
            continue;
        if (c->connected && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            on_readable(c, now);
    }
}

static int count_connected(void)
{
    int k = 0;
    for (int i = 0; i < ncs; i++)
        k += cs[i].connected && !cs[i].dead;
    return k;
}

static int count_busy(void)
{
    int k = 0;
    for (int i = 0; i < ncs; i++)
        k += cs[i].busy && !cs[i].dead;
    return k;
}

/* Opens n connections (at most 100 connecting at a time) and waits until connected,
 * bounded by deadline. */
static void open_conns(int n, int64_t deadline)
{
    int opened = 0;
    while (now_ns() < deadline) {
        int pending = ncs - count_connected();
        for (int i = 0; i < ncs; i++)
            if (cs[i].dead)
                pending--;
        while (opened < n && pending < 100) {
            conn_open(&cs[ncs++]);
            opened++;
            pending++;
        }
        if (opened >= n && pending <= 0)
            break;
        poll_once(2000000);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen closed|open|stream|hold --port P [--conns N] [--rate R] "
                    "[--duration S] [--warmup S] [--count N] [--expect N] [--max-conns N] "
                    "[--msg TEXT] [--model NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (!strcmp(argv[1], "closed"))
        o.mode = M_CLOSED;
    else if (!strcmp(argv[1], "open"))
        o.mode = M_OPEN;
    else if (!strcmp(argv[1], "stream"))
        o.mode = M_STREAM;
    else if (!strcmp(argv[1], "hold"))
        o.mode = M_HOLD;
    else
        usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--port"))
            o.port = atoi(v);
        else if (!strcmp(a, "--conns"))
            o.conns = atoi(v);
        else if (!strcmp(a, "--max-conns"))
            o.max_conns = atoi(v);
        else if (!strcmp(a, "--rate"))
            o.rate = atof(v);
        else if (!strcmp(a, "--duration"))
            o.duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atof(v);
        else if (!strcmp(a, "--count"))
            o.count = atoi(v);
        else if (!strcmp(a, "--expect"))
            o.expect = atoi(v);
        else if (!strcmp(a, "--msg"))
            o.msg = v;
        else if (!strcmp(a, "--model"))
            o.model = v;
        else
            usage();
        i++;
    }
    if (o.port <= 0 || o.port > 65535)
        usage();
    if (o.conns < 0)
        o.conns = o.mode == M_STREAM ? 4 : o.mode == M_HOLD ? 1000 : 64;
    if (o.duration < 0)
        o.duration = o.mode == M_CLOSED ? 5 : o.mode == M_OPEN ? 6 : o.mode == M_HOLD ? 12 : 60;
    if (o.conns < 1 || o.conns > 20000 || o.duration > 600 || o.duration <= 0 ||
        (o.mode == M_OPEN && (o.rate <= 0 || o.rate > 1e6)))
        usage();
    if (o.mode != M_OPEN || o.max_conns < o.conns)
        o.max_conns = o.conns;
    if (o.mode == M_STREAM || o.mode == M_HOLD)
        o.warmup = 0;
    build_request();
    ep = epoll_create1(EPOLL_CLOEXEC);
    cs = calloc((size_t)o.max_conns, sizeof(*cs));
    if (!cs || ep < 0)
        return 2;

    int64_t t0 = now_ns();
    open_conns(o.conns, t0 + 5000000000LL);
    int nconn = count_connected();
    if (nconn < o.conns && o.mode != M_HOLD) {
        printf("mode=%s error=connect connected=%d wanted=%d\n", argv[1], nconn, o.conns);
        return 1;
    }

    int64_t now = now_ns();
    t_start = now;
    t_warm = now + (int64_t)(o.warmup * 1e9);
    t_end = now + (int64_t)((o.warmup + o.duration) * 1e9);
    int64_t hard_end = t_end + 5000000000LL; /* drain at most 5 s more */
    int ready_printed = 0;
    int64_t t_ready = 0;

    if (o.mode == M_OPEN) {
        planned = (long long)(o.rate * (o.warmup + o.duration));
        q_cap = (size_t)planned + 1;
        queue = malloc(q_cap * sizeof(*queue));
        if (!queue)
            return 2;
        double step = 1e9 / o.rate;
        long long next = 0;
        while (now_ns() < hard_end) {
            now = now_ns();
            while (next < planned && t_start + (int64_t)(next * step) <= now) {
                int64_t sched = t_start + (int64_t)(next * step);
                next++;
                if (free_top >= 0) {
                    struct conn *c = &cs[free_top];
                    free_top = c->next_free;
                    if (c->dead || c->fd < 0) { /* a closed idle connection: reopen */
                        queue[q_tail++ % q_cap] = sched;
                        conn_open(c);
                        continue;
                    }
                    started++;
                    send_req(c, sched, now);
                } else {
                    queue[q_tail++ % q_cap] = sched;
                    if (ncs < o.max_conns)
                        conn_open(&cs[ncs++]);
                }
            }
            if (next >= planned && q_head == q_tail && count_busy() == 0)
                break;
            int64_t wait = next < planned ? t_start + (int64_t)(next * step) - now_ns()
                                          : 10000000;
            poll_once(wait);
        }
    } else {
        if (o.mode == M_STREAM) {
            planned = o.count;
            t_end = now + (int64_t)(o.duration * 1e9);
            hard_end = t_end + 5000000000LL;
        }
        if (o.mode == M_HOLD) {
            planned = o.conns;
            hard_end = t_end;
            /* the connections opened before t_start sent already, in on_connected */
        }
        for (int i = 0; i < ncs; i++)
            if (!cs[i].dead && cs[i].connected && !cs[i].busy)
                on_idle(&cs[i], now);
        while ((now = now_ns()) < hard_end) {
            if (o.mode == M_HOLD) {
                if (!ready_printed && n_hdr200 + n_non200 >= o.conns) {
                    ready_printed = 1;
                    t_ready = now;
                    printf("ready streams=%lld after_ms=%.0f\n", n_hdr200,
                           (double)(now - t0) / 1e6);
                    fflush(stdout);
                }
            } else if (!sending_allowed(now) && count_busy() == 0) {
                break;
            }
            poll_once(o.mode == M_HOLD ? 50000000 : 20000000);
        }
    }
    int64_t t_stop = now_ns();
    int busy_left = count_busy();

    printf("mode=%s port=%d conns=%d", argv[1], o.port, o.conns);
    if (o.mode == M_CLOSED) {
        double secs = (double)(t_end - t_warm) / 1e9;
        printf(" duration=%.2f done=%lld rps=%.1f", secs, measured_done,
               (double)measured_done / secs);
        print_dist("lat", &lat);
    } else if (o.mode == M_OPEN) {
        double secs = o.duration;
        printf(" rate=%.0f planned=%lld started=%lld measured=%lld achieved_rps=%.1f conns_used=%d",
               o.rate, planned, started, measured_done, (double)measured_done / secs, ncs);
        print_dist("lat", &lat);
    } else if (o.mode == M_STREAM) {
        printf(" streams=%lld streams_ok=%lld chunks=%lld bad_stamps=%lld secs=%.2f", started,
               n_streams_ok, n_chunks, n_bad_stamps, (double)(t_stop - t_start) / 1e9);
        print_dist("ttfb", &ttfb);
        print_dist("delay", &cdelay);
        print_dist("gap", &cgap);
    } else {
        int open_now = 0;
        for (int i = 0; i < ncs; i++)
            open_now += !cs[i].dead && cs[i].busy;
        printf(" streams=%lld hdr200=%lld open_at_end=%d finished_early=%lld ready_ms=%.0f",
               started, n_hdr200, open_now, n_done,
               t_ready ? (double)(t_ready - t0) / 1e6 : -1.0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long self_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL +
                        ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    printf(" ok=%lld non200=%lld errors=%lld conn_fail=%lld reconnects=%lld unfinished=%d"
           " self_cpu_us=%lld\n",
           n_ok, n_non200, n_err, n_conn_fail, n_reconn, o.mode == M_HOLD ? 0 : busy_left, self_us);
    fflush(stdout);
    for (int i = 0; i < ncs; i++)
        if (!cs[i].dead && cs[i].fd >= 0)
            close(cs[i].fd);
    return 0;
}
