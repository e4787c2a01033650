/* libcurl multi on a libevent loop (the socket-action API): one pool per worker,
 * per-call first-byte and idle deadlines, and cancellation that is safe from inside
 * curl's own callbacks. */
#include "upstream/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "core/log.h"

#define SPARE_EASY 64

struct sl_upstream {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct sl_upstream_call *calls; /* doubly linked, for free() */
    int active;
    CURL *spare[SPARE_EASY];        /* reset easy handles, reused: setting one up is dear */
    int nspare;
    int no_proxy;                   /* no proxy variable is set: curl need not look */
    int in_curl; /* inside curl_multi_socket_action: handles may not be removed */
};

struct sl_upstream_call {
    struct sl_upstream *up;
    struct sl_upstream_call *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    struct sl_upstream_cbs cbs;
    void *ctx;
    struct sl_upstream_meta meta;
    struct event *deadline; /* first byte, then idle between reads */
    int idle_ms;
    int headers_sent;
    int cancelled;
    int zombie;             /* cancelled while inside curl: freed by check_done */
    enum sl_upstream_result forced; /* set by our own deadline */
    char errbuf[CURL_ERROR_SIZE];
};

struct sock {
    curl_socket_t fd;
    struct event *ev;
    struct sl_upstream *up;
};

static void check_done(struct sl_upstream *up);

static void release_easy(struct sl_upstream *up, CURL *easy)
{
    if (up->nspare < SPARE_EASY) {
        curl_easy_reset(easy);
        up->spare[up->nspare++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

static void call_free(struct sl_upstream_call *c)
{
    struct sl_upstream *up = c->up;
    curl_multi_remove_handle(up->multi, c->easy);
    release_easy(up, c->easy);
    curl_slist_free_all(c->headers);
    if (c->deadline)
        event_free(c->deadline);
    if (c->prev)
        c->prev->next = c->next;
    else
        up->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    up->active--;
    free(c);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    struct sl_upstream *up = s->up;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    up->in_curl = 1;
    curl_multi_socket_action(up->multi, fd, flags, &running);
    up->in_curl = 0;
    check_done(up);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct sl_upstream *up = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            event_free(s->ev);
            free(s);
            curl_multi_assign(up->multi, fd, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->up = up;
        s->ev = event_new(up->base, fd, kind, on_socket_event, s);
        if (!s->ev) {
            free(s);
            return -1;
        }
        curl_multi_assign(up->multi, fd, s);
    } else {
        /* Same struct, new interest: with the loop's changelist this is one epoll_ctl. */
        event_del(s->ev);
        event_assign(s->ev, up->base, fd, kind, on_socket_event, s);
    }
    event_add(s->ev, NULL);
    return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sl_upstream *up = arg;
    int running;
    up->in_curl = 1;
    curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    up->in_curl = 0;
    check_done(up);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct sl_upstream *up = userp;
    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(up->timer, &tv);
    return 0;
}

static void send_headers(struct sl_upstream_call *c)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    c->meta.status = (int)status;
    c->headers_sent = 1;
    c->cbs.on_headers(c->ctx, &c->meta);
}

static void arm_deadline(struct sl_upstream_call *c, int ms)
{
    if (ms <= 0) {
        evtimer_del(c->deadline);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
}

static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *userp)
{
    struct sl_upstream_call *c = userp;
    size_t n = size * nmemb;
    if (c->cancelled)
        return 0;
    if (!c->headers_sent)
        send_headers(c);
    if (!c->cancelled) {
        arm_deadline(c, c->idle_ms);
        c->cbs.on_data(c->ctx, p, n);
    }
    return c->cancelled ? 0 : n;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_curl_header(char *p, size_t size, size_t nmemb, void *userp)
{
    struct sl_upstream_call *c = userp;
    size_t n = size * nmemb;
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        {"content-type", offsetof(struct sl_upstream_meta, content_type), 128},
        {"retry-after", offsetof(struct sl_upstream_meta, retry_after), 64},
        {"retry-after-ms", offsetof(struct sl_upstream_meta, retry_after_ms), 32},
        {"x-ratelimit-reset-requests", offsetof(struct sl_upstream_meta, reset_requests), 32},
        {"x-ratelimit-reset-tokens", offsetof(struct sl_upstream_meta, reset_tokens), 32},
        {"x-request-id", offsetof(struct sl_upstream_meta, request_id), 128},
        {"request-id", offsetof(struct sl_upstream_meta, request_id), 128},
    };
    if (n > 5 && memcmp(p, "HTTP/", 5) == 0) {
        memset(&c->meta, 0, sizeof(c->meta)); /* a new response (after 1xx) */
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - p);
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        if (strlen(wanted[i].name) == name_len && strncasecmp(p, wanted[i].name, name_len) == 0)
            copy_value((char *)&c->meta + wanted[i].off, wanted[i].cap, colon + 1,
                       n - name_len - 1);
    }
    return n;
}

static enum sl_upstream_result map_result(struct sl_upstream_call *c, CURLcode code)
{
    if (c->forced)
        return c->forced;
    switch (code) {
    case CURLE_OK:
        return SL_UP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return SL_UP_UNREACHABLE;
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connect = 0;
        curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &connect);
        return connect == 0 ? SL_UP_TIMEOUT_CONNECT : SL_UP_TIMEOUT_TOTAL;
    }
    default:
        return c->headers_sent ? SL_UP_BROKEN : SL_UP_UNREACHABLE;
    }
}

/* Ends a call that is no longer inside curl: reports it (unless cancelled) and frees it. */
static void finish(struct sl_upstream_call *c, enum sl_upstream_result r, const char *detail)
{
    if (!c->cancelled) {
        if (!c->headers_sent && r == SL_UP_OK)
            send_headers(c);
        c->cancelled = 1; /* from here on, cancel() is a no-op */
        c->cbs.on_done(c->ctx, r, detail);
    }
    call_free(c);
}

static void check_done(struct sl_upstream *up)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(up->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct sl_upstream_call *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode code = msg->data.result;
        enum sl_upstream_result r = map_result(c, code);
        finish(c, r, c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
    }
    for (struct sl_upstream_call *c = up->calls, *next; c; c = next) {
        next = c->next;
        if (c->zombie)
            call_free(c);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sl_upstream_call *c = arg;
    c->forced = c->headers_sent ? SL_UP_TIMEOUT_IDLE : SL_UP_TIMEOUT_FIRST_BYTE;
    finish(c, c->forced, c->headers_sent ? "no data within the idle timeout"
                                         : "no response within the first-byte timeout");
}

struct sl_upstream *sl_upstream_new(struct event_base *base)
{
    struct sl_upstream *up = calloc(1, sizeof(*up));
    if (!up)
        return NULL;
    up->base = base;
    up->multi = curl_multi_init();
    up->timer = evtimer_new(base, on_timer, up);
    if (!up->multi || !up->timer) {
        sl_upstream_free(up);
        return NULL;
    }
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 512L);
    static const char *const proxy_vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY",
                                             "all_proxy", "ALL_PROXY"};
    up->no_proxy = 1;
    for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
        if (getenv(proxy_vars[i]))
            up->no_proxy = 0;
    return up;
}

void sl_upstream_free(struct sl_upstream *up)
{
    if (!up)
        return;
    while (up->calls)
        call_free(up->calls);
    while (up->nspare)
        curl_easy_cleanup(up->spare[--up->nspare]);
    if (up->multi)
        curl_multi_cleanup(up->multi);
    if (up->timer)
        event_free(up->timer);
    free(up);
}

static int setup_easy(struct sl_upstream_call *c, const struct sl_upstream_req *req)
{
    CURL *e = c->easy;
    const struct sl_timeouts *t = &req->timeouts;
    c->headers = curl_slist_append(NULL, "Expect:");
    for (int i = 0; c->headers && i < req->nheaders; i++)
        c->headers = curl_slist_append(c->headers, req->headers[i]);
    if (!c->headers)
        return -1;
    int rc = curl_easy_setopt(e, CURLOPT_URL, req->url) |
             curl_easy_setopt(e, CURLOPT_POST, 1L) |
             curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body) |
             curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len) |
             curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) |
             curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write) |
             curl_easy_setopt(e, CURLOPT_WRITEDATA, c) |
             curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header) |
             curl_easy_setopt(e, CURLOPT_HEADERDATA, c) |
             curl_easy_setopt(e, CURLOPT_PRIVATE, c) |
             curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) |
             curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) |
             curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") |
             curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_ms) |
             curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->total_ms) |
             curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (c->up->no_proxy)
        rc |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    return rc ? -1 : 0;
}

struct sl_upstream_call *sl_upstream_start(struct sl_upstream *up, const struct sl_upstream_req *req,
                                           const struct sl_upstream_cbs *cbs, void *ctx)
{
    struct sl_upstream_call *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->up = up;
    c->cbs = *cbs;
    c->ctx = ctx;
    c->idle_ms = req->timeouts.idle_ms;
    c->easy = up->nspare ? up->spare[--up->nspare] : curl_easy_init();
    c->deadline = evtimer_new(up->base, on_deadline, c);
    if (!c->easy || !c->deadline || setup_easy(c, req) ||
        curl_multi_add_handle(up->multi, c->easy) != CURLM_OK) {
        if (c->easy)
            release_easy(up, c->easy);
        curl_slist_free_all(c->headers);
        if (c->deadline)
            event_free(c->deadline);
        free(c);
        return NULL;
    }
    arm_deadline(c, req->timeouts.first_byte_ms);
    c->next = up->calls;
    if (up->calls)
        up->calls->prev = c;
    up->calls = c;
    up->active++;
    return c;
}

void sl_upstream_cancel(struct sl_upstream_call *c)
{
    if (!c || c->cancelled)
        return;
    c->cancelled = 1;
    if (c->up->in_curl)
        c->zombie = 1; /* curl is on the stack: check_done frees it right after */
    else
        call_free(c);
}

int sl_upstream_active(const struct sl_upstream *up)
{
    return up->active;
}

const char *sl_upstream_result_name(enum sl_upstream_result r)
{
    static const char *names[] = {"ok", "unreachable", "connect timeout", "first-byte timeout",
                                  "idle timeout", "total timeout", "broken", "reply too big"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}
