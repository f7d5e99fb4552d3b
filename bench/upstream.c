/* upstream.c - the benchmark's fast local upstream.
 *
 * One small epoll server (optionally one thread per SO_REUSEPORT listener)
 * that every contestant in bench/run proxies to, so that differences come
 * from the gateways and not from the thing behind them:
 *
 *   - any path: a small fixed JSON response (lane 1, plain proxy);
 *   - POST .../chat/completions without "stream":true: a fixed
 *     DashScope-shaped chat completion (lane 2, ai-proxy non-streaming);
 *   - POST .../v1/messages: a fixed Anthropic Messages answer with the same
 *     text and usage (DashScope's Anthropic-compatible endpoint,
 *     /apps/anthropic/v1/messages; non-streaming only);
 *   - the same with "stream":true: an SSE stream of N tokens, one chunk
 *     every I microseconds on a fixed schedule (lane 3).  Every token's text
 *     is "@<CLOCK_MONOTONIC ns> ", the time the upstream wrote it, so the
 *     load generator can compute per-token delivery latency through a
 *     gateway exactly (same host, same clock) instead of guessing from gaps.
 *
 * Stream timing uses timerfd with absolute deadlines and a min-heap of
 * streams: epoll_wait's millisecond timeout is too coarse for a lane that
 * claims microsecond overheads.  Query parameters ?tokens=N&interval_us=U
 * override the defaults per request.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define UP_READ_SIZE 65536
#define UP_MAX_BODY (8u << 20) /* body kept for "stream" detection */
#define UP_MAX_EVENTS 512

typedef struct up_conn up_conn_t;
typedef struct up_thread up_thread_t;

struct up_conn {
    int fd;
    up_thread_t *th;
    llhttp_t parser;
    char *url; /* current request URL (NUL-terminated) */
    size_t url_len, url_cap;
    char *body; /* current request body, for chat paths */
    size_t body_len, body_cap;
    char *out; /* unsent output */
    size_t out_len, out_off, out_cap;
    int want_out; /* EPOLLOUT registered */
    int keep_alive;
    int closing; /* close once output drains */
    /* streaming state */
    int streaming;
    int heap_idx;     /* -1 when not scheduled */
    uint64_t next_ns; /* absolute deadline of the next token */
    uint64_t interval_ns;
    int tokens_left;
    int tokens_sent;
    int include_usage;
    int dead; /* closed; freed after the current event batch */
    up_conn_t *next_dead;
};

struct up_thread {
    int ep, lfd, tfd;
    up_conn_t **heap; /* min-heap on next_ns */
    int heap_n, heap_cap;
    uint64_t armed_ns; /* deadline the timerfd is armed for, 0 = none */
    up_conn_t *dead;   /* closed connections awaiting free */
};

static struct {
    struct sockaddr_in addr;
    int threads;
    int tokens;
    uint64_t interval_ns;
    const char *small_body;
    size_t small_len;
} g;

static char g_small_resp[512];
static size_t g_small_resp_len;
static char g_chat_resp[2048];
static size_t g_chat_resp_len;
static char g_msg_resp[2048];
static size_t g_msg_resp_len;

static const char CHAT_BODY[] =
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
    "\"Hello! I am a benchmark answer from the local upstream. The quick brown fox "
    "jumps over the lazy dog; nothing here is real model output.\"},"
    "\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null}],"
    "\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":12034,"
    "\"completion_tokens\":31,\"total_tokens\":12065,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0}},\"created\":1735320910,"
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\","
    "\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-a6be2d823ee5\"}";

static const char MSG_BODY[] =
    "{\"id\":\"msg_db13c38b42919f909117a6be\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"qwen-plus\",\"content\":[{\"type\":\"text\",\"text\":"
    "\"Hello! I am a benchmark answer from the local upstream. The quick brown fox "
    "jumps over the lazy dog; nothing here is real model output.\"}],"
    "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":12034,"
    "\"output_tokens\":31,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}}";

static const char SSE_HEAD[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/event-stream;charset=UTF-8\r\n"
                               "Cache-Control: no-cache\r\n"
                               "x-request-id: db13c38b-4291-9f90-9117-a6be2d823ee5\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";

#define SSE_CHUNK_PRE "data: {\"choices\":[{\"delta\":{\"content\":\""
#define SSE_CHUNK_POST                                                                             \
    "\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],"                                  \
    "\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":1735320910,"                  \
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\","                                         \
    "\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-a6be2d823ee5\"}\n\n"

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
grow(char **p, size_t *cap, size_t need)
{
    size_t nc = *cap ? *cap : 256;
    char *np;

    if (need <= *cap)
        return 0;
    while (nc < need)
        nc *= 2;
    np = realloc(*p, nc);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* ---- output ------------------------------------------------------------ */

static void conn_close(up_conn_t *c);

static void
set_out_interest(up_conn_t *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

    if (c->want_out == on)
        return;
    c->want_out = on;
    epoll_ctl(c->th->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what can be written now; keep the rest.  -1: the connection died. */
static int
flush_out(up_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out_interest(c, 1);
            return 0;
        }
        return -1;
    }
    c->out_off = c->out_len = 0;
    set_out_interest(c, 0);
    return 0;
}

static int
queue_out(up_conn_t *c, const char *p, size_t n)
{
    if (grow(&c->out, &c->out_cap, c->out_len + n) != 0)
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* ---- stream scheduling ---------------------------------------------------- */

static void
heap_swap(up_thread_t *t, int i, int j)
{
    up_conn_t *a = t->heap[i];

    t->heap[i] = t->heap[j];
    t->heap[j] = a;
    t->heap[i]->heap_idx = i;
    t->heap[j]->heap_idx = j;
}

static void
heap_up(up_thread_t *t, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (t->heap[p]->next_ns <= t->heap[i]->next_ns)
            break;
        heap_swap(t, i, p);
        i = p;
    }
}

static void
heap_down(up_thread_t *t, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->heap_n && t->heap[l]->next_ns < t->heap[m]->next_ns)
            m = l;
        if (r < t->heap_n && t->heap[r]->next_ns < t->heap[m]->next_ns)
            m = r;
        if (m == i)
            return;
        heap_swap(t, i, m);
        i = m;
    }
}

static int
heap_push(up_thread_t *t, up_conn_t *c)
{
    if (t->heap_n == t->heap_cap) {
        int nc = t->heap_cap ? t->heap_cap * 2 : 1024;
        up_conn_t **nh = realloc(t->heap, (size_t)nc * sizeof(*nh));
        if (nh == NULL)
            return -1;
        t->heap = nh;
        t->heap_cap = nc;
    }
    c->heap_idx = t->heap_n;
    t->heap[t->heap_n++] = c;
    heap_up(t, c->heap_idx);
    return 0;
}

static void
heap_remove(up_thread_t *t, up_conn_t *c)
{
    int i = c->heap_idx;

    if (i < 0)
        return;
    c->heap_idx = -1;
    t->heap_n--;
    if (i == t->heap_n)
        return;
    t->heap[i] = t->heap[t->heap_n];
    t->heap[i]->heap_idx = i;
    heap_down(t, i);
    heap_up(t, i);
}

static void
arm_timer(up_thread_t *t)
{
    struct itimerspec its;
    uint64_t when;

    if (t->heap_n == 0 || t->armed_ns == t->heap[0]->next_ns)
        return;
    when = t->heap[0]->next_ns;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(when / 1000000000u);
    its.it_value.tv_nsec = (long)(when % 1000000000u);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timerfd_settime(t->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    t->armed_ns = when;
}

/* Append one SSE event as one HTTP chunk. */
static int
queue_chunk(up_conn_t *c, const char *data, size_t n)
{
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);

    if (queue_out(c, hdr, (size_t)h) != 0 || queue_out(c, data, n) != 0)
        return -1;
    return queue_out(c, "\r\n", 2);
}

/* Emit the next token (or the end of the stream) for c. */
static int
stream_step(up_conn_t *c)
{
    char ev[640];
    int n;

    if (c->tokens_left > 0) {
        n = snprintf(ev, sizeof(ev), SSE_CHUNK_PRE "@%llu " SSE_CHUNK_POST,
                     (unsigned long long)now_ns());
        if (queue_chunk(c, ev, (size_t)n) != 0)
            return -1;
        c->tokens_left--;
        c->tokens_sent++;
    }
    if (c->tokens_left == 0) {
        n = snprintf(ev, sizeof(ev),
                     "data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"},"
                     "\"index\":0,\"logprobs\":null}],\"object\":\"chat.completion.chunk\","
                     "\"usage\":null,\"created\":1735320910,\"system_fingerprint\":null,"
                     "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-"
                     "a6be2d823ee5\"}\n\n");
        if (queue_chunk(c, ev, (size_t)n) != 0)
            return -1;
        if (c->include_usage) {
            n = snprintf(ev, sizeof(ev),
                         "data: {\"choices\":[],\"object\":\"chat.completion.chunk\","
                         "\"usage\":{\"prompt_tokens\":12034,\"completion_tokens\":%d,"
                         "\"total_tokens\":%d},\"created\":1735320910,\"system_fingerprint\":null,"
                         "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-"
                         "a6be2d823ee5\"}\n\n",
                         c->tokens_sent, 12034 + c->tokens_sent);
            if (queue_chunk(c, ev, (size_t)n) != 0)
                return -1;
        }
        if (queue_chunk(c, "data: [DONE]\n\n", 14) != 0 || queue_out(c, "0\r\n\r\n", 5) != 0)
            return -1;
        c->streaming = 0;
        if (!c->keep_alive)
            c->closing = 1;
    }
    return flush_out(c);
}

static void
on_timer(up_thread_t *t)
{
    uint64_t exp, now = now_ns();

    if (read(t->tfd, &exp, sizeof(exp)) < 0) {
        /* spurious wake-up: the deadlines below decide */
    }
    t->armed_ns = 0;
    while (t->heap_n > 0 && t->heap[0]->next_ns <= now) {
        up_conn_t *c = t->heap[0];
        heap_remove(t, c);
        if (stream_step(c) != 0) {
            conn_close(c);
            continue;
        }
        if (c->streaming) {
            c->next_ns += c->interval_ns; /* fixed schedule, no drift */
            heap_push(t, c);
        } else {
            if (c->closing && c->out_len == 0) {
                conn_close(c);
                continue;
            }
            llhttp_resume(&c->parser); /* pipelined requests wait */
        }
    }
    arm_timer(t);
}

/* ---- request handling ------------------------------------------------------ */

static long
query_num(const char *url, const char *key, long dflt)
{
    const char *q = strchr(url, '?');
    size_t kl = strlen(key);

    while (q != NULL) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=')
            return strtol(q + kl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

static int
on_message_begin(llhttp_t *p)
{
    up_conn_t *c = p->data;

    c->url_len = 0;
    c->body_len = 0;
    return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t n)
{
    up_conn_t *c = p->data;

    if (grow(&c->url, &c->url_cap, c->url_len + n + 1) != 0)
        return -1;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    c->url[c->url_len] = '\0';
    return 0;
}

static int
is_messages(const up_conn_t *c)
{
    return c->url != NULL && c->url_len > 0 && strstr(c->url, "/v1/messages") != NULL;
}

static int
is_chat(const up_conn_t *c)
{
    return c->url != NULL && c->url_len > 0 && strstr(c->url, "/chat/completions") != NULL;
}

static int
on_body(llhttp_t *p, const char *at, size_t n)
{
    up_conn_t *c = p->data;

    if (!is_chat(c) || c->body_len + n > UP_MAX_BODY)
        return 0;
    if (grow(&c->body, &c->body_cap, c->body_len + n) != 0)
        return -1;
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int
body_has(const up_conn_t *c, const char *a, const char *b)
{
    return memmem(c->body, c->body_len, a, strlen(a)) != NULL ||
           memmem(c->body, c->body_len, b, strlen(b)) != NULL;
}

static int
on_message_complete(llhttp_t *p)
{
    up_conn_t *c = p->data;

    if (c->url_len == 0)
        on_url(p, "/", 1);
    c->keep_alive = llhttp_should_keep_alive(p);
    if (is_chat(c) && c->body_len > 0 && body_has(c, "\"stream\":true", "\"stream\": true")) {
        long tokens = query_num(c->url, "tokens", g.tokens);
        long iv_us = query_num(c->url, "interval_us", (long)(g.interval_ns / 1000));

        if (queue_out(c, SSE_HEAD, sizeof(SSE_HEAD) - 1) != 0)
            return -1;
        c->streaming = 1;
        c->tokens_left = tokens > 0 ? (int)tokens : 1;
        c->tokens_sent = 0;
        c->interval_ns = (uint64_t)(iv_us > 0 ? iv_us : 1) * 1000u;
        c->include_usage = body_has(c, "\"include_usage\":true", "\"include_usage\": true");
        /* headers and the first token go out now: time to first token then
         * measures the path, not the schedule */
        c->next_ns = now_ns();
        if (stream_step(c) != 0)
            return -1;
        if (c->streaming) {
            c->next_ns += c->interval_ns;
            if (heap_push(c->th, c) != 0)
                return -1;
            arm_timer(c->th);
            return HPE_PAUSED; /* hold pipelined requests */
        }
        return 0;
    }
    if (is_chat(c)) {
        if (queue_out(c, g_chat_resp, g_chat_resp_len) != 0)
            return -1;
    } else if (is_messages(c)) {
        if (queue_out(c, g_msg_resp, g_msg_resp_len) != 0)
            return -1;
    } else {
        if (queue_out(c, g_small_resp, g_small_resp_len) != 0)
            return -1;
    }
    if (!c->keep_alive)
        c->closing = 1;
    return 0;
}

static llhttp_settings_t g_settings;

/* ---- connections ------------------------------------------------------------ */

/* Close now, free later: the same epoll batch may still hold events for c
 * (a timer tick can close a stream whose read event comes next). */
static void
conn_close(up_conn_t *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    heap_remove(c->th, c);
    epoll_ctl(c->th->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->next_dead = c->th->dead;
    c->th->dead = c;
}

static void
free_dead(up_thread_t *t)
{
    while (t->dead != NULL) {
        up_conn_t *c = t->dead;
        t->dead = c->next_dead;
        free(c->url);
        free(c->body);
        free(c->out);
        free(c);
    }
}

static void
on_accept(up_thread_t *t)
{
    for (;;) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int one = 1;
        up_conn_t *c;
        struct epoll_event ev;

        if (fd < 0)
            return; /* EAGAIN, or out of fds: retry later */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->th = t;
        c->heap_idx = -1;
        llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
        c->parser.data = c;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
        }
    }
}

static void
on_readable(up_conn_t *c, char *buf)
{
    for (;;) {
        ssize_t n;
        llhttp_errno_t err;

        n = read(c->fd, buf, UP_READ_SIZE);
        if (n == 0) {
            conn_close(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(c);
            return;
        }
        if (c->streaming)
            continue; /* benchmark clients never pipeline
                       * behind a stream: drop, keep EOF */
        err = llhttp_execute(&c->parser, buf, (size_t)n);
        if (err == HPE_PAUSED) {
            /* a stream started mid-buffer: anything after it is dropped;
             * benchmark clients never pipeline behind a stream */
        } else if (err != HPE_OK) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n";
            queue_out(c, bad, sizeof(bad) - 1);
            c->closing = 1;
        }
        if (flush_out(c) != 0 || (c->closing && c->out_len == 0 && !c->streaming)) {
            conn_close(c);
            return;
        }
        if ((size_t)n < UP_READ_SIZE)
            return;
    }
}

static int
listen_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *
thread_main(void *arg)
{
    up_thread_t *t = arg;
    struct epoll_event evs[UP_MAX_EVENTS];
    char *buf = malloc(UP_READ_SIZE);

    if (buf == NULL)
        return NULL;
    for (;;) {
        int n = epoll_wait(t->ep, evs, UP_MAX_EVENTS, -1);

        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;

            if (p == &t->lfd) {
                on_accept(t);
            } else if (p == &t->tfd) {
                on_timer(t);
            } else {
                up_conn_t *c = p;
                if (c->dead)
                    continue;
                if (evs[i].events & EPOLLOUT) {
                    if (flush_out(c) != 0 || (c->closing && c->out_len == 0 && !c->streaming)) {
                        conn_close(c);
                        continue;
                    }
                }
                if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    on_readable(c, buf);
            }
        }
        free_dead(t);
    }
    return NULL;
}

static int
thread_init(up_thread_t *t)
{
    struct epoll_event ev;

    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->lfd = listen_socket();
    t->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t->ep < 0 || t->lfd < 0 || t->tfd < 0)
        return -1;
    ev.events = EPOLLIN;
    ev.data.ptr = &t->lfd;
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->lfd, &ev) != 0)
        return -1;
    ev.data.ptr = &t->tfd;
    return epoll_ctl(t->ep, EPOLL_CTL_ADD, t->tfd, &ev);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: sl-bench-upstream -l 127.0.0.1:PORT [-t THREADS] [-n TOKENS] [-i INTERVAL_US]\n"
            "  any path: small JSON; POST */v1/messages: Anthropic message;\n"
            "  POST */chat/completions: chat completion,\n"
            "  or an SSE stream of TOKENS tokens every INTERVAL_US when \"stream\":true\n");
}

int
main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:18081";
    up_thread_t *th;
    int opt;

    g.threads = 1;
    g.tokens = 200;
    g.interval_ns = 5000000u;
    while ((opt = getopt(argc, argv, "l:t:n:i:h")) != -1) {
        switch (opt) {
        case 'l':
            listen_at = optarg;
            break;
        case 't':
            g.threads = atoi(optarg);
            break;
        case 'n':
            g.tokens = atoi(optarg);
            break;
        case 'i':
            g.interval_ns = (uint64_t)strtoull(optarg, NULL, 10) * 1000u;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    {
        char host[64];
        const char *colon = strrchr(listen_at, ':');
        size_t hl;

        if (colon == NULL || (hl = (size_t)(colon - listen_at)) >= sizeof(host)) {
            usage();
            return 2;
        }
        memcpy(host, listen_at, hl);
        host[hl] = '\0';
        g.addr.sin_family = AF_INET;
        g.addr.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1) {
            fprintf(stderr, "sl-bench-upstream: bad address %s\n", listen_at);
            return 2;
        }
    }
    if (g.threads < 1)
        g.threads = 1;

    g.small_body = "{\"ok\":true,\"bench\":\"sluice\"}";
    g.small_len = strlen(g.small_body);
    g_small_resp_len = (size_t)snprintf(
        g_small_resp, sizeof(g_small_resp),
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
        g.small_len, g.small_body);
    g_chat_resp_len = (size_t)snprintf(
        g_chat_resp, sizeof(g_chat_resp),
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "x-request-id: db13c38b-4291-9f90-9117-a6be2d823ee5\r\nContent-Length: %zu\r\n\r\n%s",
        sizeof(CHAT_BODY) - 1, CHAT_BODY);
    g_msg_resp_len = (size_t)snprintf(
        g_msg_resp, sizeof(g_msg_resp),
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "request-id: db13c38b-4291-9f90-9117-a6be2d823ee5\r\nContent-Length: %zu\r\n\r\n%s",
        sizeof(MSG_BODY) - 1, MSG_BODY);

    llhttp_settings_init(&g_settings);
    g_settings.on_message_begin = on_message_begin;
    g_settings.on_url = on_url;
    g_settings.on_body = on_body;
    g_settings.on_message_complete = on_message_complete;
    signal(SIGPIPE, SIG_IGN);

    th = calloc((size_t)g.threads, sizeof(*th));
    if (th == NULL)
        return 1;
    for (int i = 0; i < g.threads; i++) {
        if (thread_init(&th[i]) != 0) {
            fprintf(stderr, "sl-bench-upstream: cannot listen on %s: %s\n", listen_at,
                    strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, "sl-bench-upstream: listening on %s (%d thread%s, %d tokens every %llu us)\n",
            listen_at, g.threads, g.threads == 1 ? "" : "s", g.tokens,
            (unsigned long long)(g.interval_ns / 1000));
    for (int i = 1; i < g.threads; i++) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, thread_main, &th[i]) != 0)
            return 1;
    }
    thread_main(&th[0]);
    return 0;
}
