/* loadgen.c - constant-rate HTTP/1.1 load generator for bench/run.
 *
 * wrk measures saturation well but, being closed-loop, it hides tail latency:
 * a stalled connection stops issuing requests, so the stall is counted once
 * instead of for every request that should have been sent during it
 * ("coordinated omission").  wrk2 fixes that but is not packaged by Debian,
 * so this is the small replacement the benchmark needs:
 *
 *   -R RATE   open loop: request i is due at t0 + i/RATE whatever happened
 *             before; latency runs from that intended time, not from when a
 *             connection was free to send it.
 *   -S        streaming: bodies are scanned for "@<ns>" tokens written by
 *             bench/upstream.c; reports time to first token, per-token
 *             delivery latency (receive time minus the upstream's send time:
 *             same host, same CLOCK_MONOTONIC) and inter-token gaps.
 *   -k        hold: open -c streams, report "ready N" on stderr once every
 *             stream delivered a token, keep them open -d seconds.
 *   -P US     closed loop: connection i sends its first request at
 *             t0 + i * US / CONNS instead of all at once.  Streams started
 *             together stay in phase (each token of every stream is written
 *             in the same burst), so a token's latency would be the queue
 *             behind the burst, not its own delivery; independent clients
 *             are not in phase, and -P US = one token interval spreads them.
 *   -T US     with -S: also report the token latency of tokens the upstream
 *             wrote within US of a request's send, before or after it (on any
 *             connection: a stream end and the next start the gateway is busy
 *             with) apart from the rest, to tell the cost of stream starts
 *             and ends from a token's own path.
 *
 * Plain epoll + timerfd rather than libuv: libuv timers have millisecond
 * granularity, too coarse for a schedule of one request every 100 us.
 * Latencies go into log-linear buckets (HdrHistogram-style, 64 sub-buckets
 * per power of two: < 1.6 % error).  The result is one JSON object on
 * stdout.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* ---- histogram ----------------------------------------------------------- */

#define H_BUCKETS 4096

typedef struct hist {
    uint64_t count, sum, min, max;
    uint64_t b[H_BUCKETS];
} hist_t;

static int
h_index(uint64_t v)
{
    int msb, shift, i;

    if (v < 128)
        return (int)v;
    msb = 63 - __builtin_clzll(v);
    shift = msb - 6;
    i = 128 + (shift - 1) * 64 + (int)((v >> shift) - 64);
    return i < H_BUCKETS ? i : H_BUCKETS - 1;
}

static uint64_t
h_value(int i)
{
    int shift;
    uint64_t mant;

    if (i < 128)
        return (uint64_t)i;
    shift = (i - 128) / 64 + 1;
    mant = (uint64_t)((i - 128) % 64 + 64);
    return (mant << shift) + ((1ull << shift) >> 1); /* bucket midpoint */
}

static void
h_add(hist_t *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->b[h_index(v)]++;
}

static uint64_t
h_pct(const hist_t *h, double p)
{
    uint64_t rank, acc = 0;

    if (h->count == 0)
        return 0;
    rank = (uint64_t)(p * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < H_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= rank) {
            uint64_t v = h_value(i);
            return v > h->max ? h->max : (v < h->min ? h->min : v);
        }
    }
    return h->max;
}

static void
h_json(const char *name, const hist_t *h, int last)
{
    printf("\"%s\":{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
           "\"max\":%.1f,\"mean\":%.1f}%s",
           name, (unsigned long long)h->count, h_pct(h, 0.50) / 1e3, h_pct(h, 0.90) / 1e3,
           h_pct(h, 0.99) / 1e3, h_pct(h, 0.999) / 1e3, h->max / 1e3,
           h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0, last ? "" : ",");
}

/* ---- state ----------------------------------------------------------------- */

enum { C_CONNECTING = 1, C_IDLE, C_BUSY, C_DEAD };

typedef struct conn {
    int fd;
    int state;
    llhttp_t parser;
    size_t woff;          /* bytes of the request written */
    uint64_t intended_ns; /* latency origin of the request in flight */
    uint64_t sent_ns;
    int want_out;
    int status;
    /* stream scanning */
    int in_tok; /* after '@', reading digits */
    uint64_t tok_val;
    int tokens; /* tokens seen in the current response */
    uint64_t last_tok_ns;
    int counted_ready;
    int started; /* -P: the first request went out */
    struct conn *next_idle;
} conn_t;

static struct {
    struct sockaddr_in addr;
    char *req; /* complete request bytes */
    size_t req_len;
    int conns;
    double duration, warmup, rate;
    uint64_t spread_ns; /* -P */
    int stream, hold;
    int ep, tfd;
    uint64_t t0, t_measure, t_end;
    uint64_t now; /* time of the current batch of events */
    conn_t *cs;
    conn_t *idle;
    /* open-loop queue of intended send times */
    uint64_t *q;
    size_t q_head, q_len, q_cap;
    uint64_t issued;
    /* results */
    hist_t lat, ttft, toklat, gap;
    /* -T: recent send times (a ring) and the token latency split */
    uint64_t near_ns, sends[64];
    unsigned nsends;
    hist_t tok_near, tok_far;
    uint64_t done, done_measured, errors, non2xx, conn_errors, dropped;
    int ready, ready_reported;
} g;

static llhttp_settings_t g_settings;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- connections -------------------------------------------------------------- */

static void conn_send(conn_t *c, uint64_t intended);

static void
set_out(conn_t *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

    if (c->want_out == on)
        return;
    c->want_out = on;
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int
conn_open(conn_t *c)
{
    int one = 1;
    struct epoll_event ev;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = C_CONNECTING;
    c->want_out = 1;
    c->woff = 0;
    llhttp_init(&c->parser, HTTP_RESPONSE, &g_settings);
    c->parser.data = c;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    return epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
make_idle(conn_t *c)
{
    c->state = C_IDLE;
    c->next_idle = g.idle;
    g.idle = c;
}

static conn_t *
take_idle(void)
{
    conn_t *c = g.idle;

    if (c != NULL)
        g.idle = c->next_idle;
    return c;
}

static uint64_t
q_pop(void)
{
    uint64_t v = g.q[g.q_head];

    g.q_head = (g.q_head + 1) % g.q_cap;
    g.q_len--;
    return v;
}

/* Hand the next waiting request (open loop) or a new one (closed loop) to c. */
static void
next_work(conn_t *c)
{
    if (g.now >= g.t_end && !g.hold) {
        if (g.rate <= 0 || g.q_len == 0) {
            make_idle(c);
            return;
        }
    }
    if (g.rate > 0) {
        if (g.q_len > 0)
            conn_send(c, q_pop());
        else
            make_idle(c);
    } else if (g.hold) {
        make_idle(c); /* a held stream ended: do not reopen */
    } else {
        conn_send(c, g.now);
    }
}

static void
conn_fail(conn_t *c)
{
    if (c->state == C_BUSY)
        g.errors++;
    g.conn_errors++;
    epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = C_DEAD;
    if (g.now < g.t_end && !g.hold && conn_open(c) != 0)
        c->state = C_DEAD;
}

static void
conn_write(conn_t *c)
{
    while (c->woff < g.req_len) {
        ssize_t n = write(c->fd, g.req + c->woff, g.req_len - c->woff);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out(c, 1);
            return;
        }
        conn_fail(c);
        return;
    }
    set_out(c, 0);
}

static void
conn_send(conn_t *c, uint64_t intended)
{
    c->state = C_BUSY;
    c->intended_ns = intended;
    c->sent_ns = now_ns();
    g.sends[g.nsends++ % 64] = c->sent_ns;
    c->woff = 0;
    c->status = 0;
    c->tokens = 0;
    c->in_tok = 0;
    conn_write(c);
}

/* ---- response parsing ------------------------------------------------------------ */

static int
on_headers_complete(llhttp_t *p)
{
    conn_t *c = p->data;

    c->status = p->status_code;
    return 0;
}

/* Was the token written at ts within -T of a send, before or after it?  A
 * gateway does a stream's end just before the client sends the next request
 * on that connection (it gets the end, then sends) and the next stream's
 * start just after. */
static int
near_start(uint64_t ts)
{
    unsigned n = g.nsends < 64 ? g.nsends : 64;

    for (unsigned i = 1; i <= n; i++) {
        uint64_t s = g.sends[(g.nsends - i) % 64];
        if ((s <= ts ? ts - s : s - ts) < g.near_ns)
            return 1;
    }
    return 0;
}

static void
token_seen(conn_t *c, uint64_t ts)
{
    int measured = c->sent_ns >= g.t_measure;

    if (c->tokens == 0) {
        if (measured)
            h_add(&g.ttft, g.now - c->sent_ns);
        if (g.hold && !c->counted_ready) {
            c->counted_ready = 1;
            g.ready++;
        }
    } else if (measured) {
        h_add(&g.gap, g.now - c->last_tok_ns);
    }
    if (measured && g.now >= ts) {
        h_add(&g.toklat, g.now - ts);
        if (g.near_ns > 0)
            h_add(near_start(ts) ? &g.tok_near : &g.tok_far, g.now - ts);
    }
    c->tokens++;
    c->last_tok_ns = g.now;
}

static int
on_body(llhttp_t *p, const char *at, size_t n)
{
    conn_t *c = p->data;

    if (!g.stream)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = at[i];
        if (c->in_tok) {
            if (ch >= '0' && ch <= '9') {
                c->tok_val = c->tok_val * 10 + (uint64_t)(ch - '0');
                continue;
            }
            c->in_tok = 0;
            token_seen(c, c->tok_val);
        }
        if (ch == '@') {
            c->in_tok = 1;
            c->tok_val = 0;
        }
    }
    return 0;
}

static int
on_message_complete(llhttp_t *p)
{
    conn_t *c = p->data;

    if (c->in_tok) {
        c->in_tok = 0;
        token_seen(c, c->tok_val);
    }
    g.done++;
    if (c->status < 200 || c->status > 299)
        g.non2xx++;
    if (c->intended_ns >= g.t_measure && c->intended_ns < g.t_end) {
        g.done_measured++;
        h_add(&g.lat, g.now - c->intended_ns);
    }
    c->state = C_IDLE;
    return HPE_PAUSED; /* let the caller start the next request */
}

static void
conn_read(conn_t *c)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        size_t off = 0;

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_fail(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        g.now = now_ns();
        while (off < (size_t)n) {
            llhttp_errno_t err = llhttp_execute(&c->parser, buf + off, (size_t)n - off);
            if (err == HPE_PAUSED) {
                off = (size_t)(llhttp_get_error_pos(&c->parser) - buf);
                llhttp_resume(&c->parser);
                if (off < (size_t)n) {
                    /* the server sent more than one response: not expected */
                }
                next_work(c);
                continue;
            }
            if (err != HPE_OK) {
                conn_fail(c);
                return;
            }
            break;
        }
        if ((size_t)n < sizeof(buf))
            return;
    }
}

/* ---- schedule ---------------------------------------------------------------------- */

static uint64_t
due_at(uint64_t i)
{
    return g.t0 + (uint64_t)((double)i * 1e9 / g.rate);
}

static void
arm(uint64_t when)
{
    struct itimerspec its;

    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(when / 1000000000u);
    its.it_value.tv_nsec = (long)(when % 1000000000u);
    timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* -P: when connection c sends its first request. */
static uint64_t
first_due(const conn_t *c)
{
    return g.t0 + (uint64_t)(c - g.cs) * g.spread_ns / (uint64_t)g.conns;
}

/* -P: send the first request of every connected connection that is due;
 * arm the timer for the next one not yet due. */
static void
start_due(void)
{
    uint64_t next = 0;

    for (int i = 0; i < g.conns; i++) {
        conn_t *c = &g.cs[i];

        if (c->started)
            continue;
        if (first_due(c) > g.now) {
            if (next == 0 || first_due(c) < next)
                next = first_due(c);
        } else if (c->state == C_IDLE) {
            c->started = 1;
            conn_send(c, g.now);
        }
    }
    if (next != 0)
        arm(next);
}

static void
on_tick(void)
{
    uint64_t x;
    conn_t *c;

    if (read(g.tfd, &x, sizeof(x)) < 0) {
        /* spurious: the clock decides */
    }
    g.now = now_ns();
    if (g.rate <= 0) {
        start_due();
        return;
    }
    while (due_at(g.issued) <= g.now && due_at(g.issued) < g.t_end) {
        if (g.q_len == g.q_cap) {
            g.dropped++; /* hopelessly behind: count, not queue */
        } else {
            g.q[(g.q_head + g.q_len) % g.q_cap] = due_at(g.issued);
            g.q_len++;
        }
        g.issued++;
    }
    while (g.q_len > 0 && (c = take_idle()) != NULL)
        conn_send(c, q_pop());
    if (due_at(g.issued) < g.t_end)
        arm(due_at(g.issued));
}

/* ---- setup --------------------------------------------------------------------------- */

static int
build_request(const char *url, const char *method, const char *body_file, char **hdrs, int nhdrs)
{
    char host[256], path[2048];
    const char *p = url, *slash;
    char *body = NULL;
    size_t blen = 0, cap;
    int port = 80, n;

    if (strncmp(p, "http://", 7) != 0)
        return -1;
    p += 7;
    slash = strchr(p, '/');
    snprintf(path, sizeof(path), "%s", slash ? slash : "/");
    n = (int)(slash ? (size_t)(slash - p) : strlen(p));
    if (n >= (int)sizeof(host))
        return -1;
    memcpy(host, p, (size_t)n);
    host[n] = '\0';
    {
        char *colon = strrchr(host, ':');
        if (colon != NULL) {
            *colon = '\0';
            port = atoi(colon + 1);
        }
    }
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1)
        return -1;
    if (body_file != NULL) {
        FILE *f = fopen(body_file, "rb");
        struct stat st;
        if (f == NULL || fstat(fileno(f), &st) != 0)
            return -1;
        blen = (size_t)st.st_size;
        body = malloc(blen + 1);
        if (body == NULL || fread(body, 1, blen, f) != blen) {
            fclose(f);
            return -1;
        }
        fclose(f);
    }
    cap = blen + 4096 + strlen(path);
    for (int i = 0; i < nhdrs; i++)
        cap += strlen(hdrs[i]) + 2;
    g.req = malloc(cap);
    if (g.req == NULL)
        return -1;
    n = snprintf(g.req, cap, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", method, path, host, port);
    for (int i = 0; i < nhdrs; i++)
        n += snprintf(g.req + n, cap - (size_t)n, "%s\r\n", hdrs[i]);
    if (body != NULL)
        n += snprintf(g.req + n, cap - (size_t)n, "Content-Length: %zu\r\n", blen);
    n += snprintf(g.req + n, cap - (size_t)n, "\r\n");
    if (body != NULL) {
        memcpy(g.req + n, body, blen);
        n += (int)blen;
    }
    g.req_len = (size_t)n;
    free(body);
    return 0;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: sl-bench-loadgen [-R RATE] [-c CONNS] [-d SECONDS] [-w WARMUP] [-S] [-k]\n"
            "                        [-m METHOD] [-b BODYFILE] [-H 'Name: value']... URL\n"
            "  -R RATE  open-loop requests/s (0: closed loop, each connection back to back)\n"
            "  -S       streaming: report ttft / token latency / gaps from @<ns> tokens\n"
            "  -k       hold -c streams open; print 'ready N' on stderr when all started\n"
            "  -P US    closed loop: spread the connections' first requests over US\n"
            "  -T US    with -S: token latency apart for tokens written within US of a send\n");
}

int
main(int argc, char **argv)
{
    const char *method = "GET", *body_file = NULL;
    char *hdrs[32];
    int nhdrs = 0, opt;
    struct epoll_event evs[512], ev;
    uint64_t t_ready = 0, t_stop;
    int opened = 0;

    g.conns = 10;
    g.duration = 5;
    g.warmup = 0.5;
    while ((opt = getopt(argc, argv, "R:c:d:w:SkP:T:m:b:H:h")) != -1) {
        switch (opt) {
        case 'R':
            g.rate = atof(optarg);
            break;
        case 'c':
            g.conns = atoi(optarg);
            break;
        case 'd':
            g.duration = atof(optarg);
            break;
        case 'w':
            g.warmup = atof(optarg);
            break;
        case 'S':
            g.stream = 1;
            break;
        case 'T':
            g.near_ns = (uint64_t)(atof(optarg) * 1000);
            break;
        case 'P': {
            double us = atof(optarg);
            if (!(us >= 0 && us <= 60e6)) {
                fprintf(stderr, "sl-bench-loadgen: -P takes 0 to 60000000 microseconds\n");
                return 2;
            }
            g.spread_ns = (uint64_t)(us * 1000);
            break;
        }
        case 'k':
            g.hold = 1;
            g.stream = 1;
            break;
        case 'm':
            method = optarg;
            break;
        case 'b':
            body_file = optarg;
            break;
        case 'H':
            if (nhdrs < 32)
                hdrs[nhdrs++] = optarg;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1 || g.conns < 1) {
        usage();
        return 2;
    }
    if (build_request(argv[optind], method, body_file, hdrs, nhdrs) != 0) {
        fprintf(stderr, "sl-bench-loadgen: bad URL or body file\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    llhttp_settings_init(&g_settings);
    g_settings.on_headers_complete = on_headers_complete;
    g_settings.on_body = on_body;
    g_settings.on_message_complete = on_message_complete;

    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    g.cs = calloc((size_t)g.conns, sizeof(conn_t));
    g.q_cap = 1u << 20;
    g.q = malloc(g.q_cap * sizeof(*g.q));
    if (g.ep < 0 || g.tfd < 0 || g.cs == NULL || g.q == NULL)
        return 1;
    ev.events = EPOLLIN;
    ev.data.ptr = &g.tfd;
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &ev);

    g.now = now_ns();
    g.t0 = g.now + 50000000u; /* connections settle first */
    g.t_measure = g.t0 + (uint64_t)(g.warmup * 1e9);
    g.t_end = g.t0 + (uint64_t)((g.warmup + g.duration) * 1e9);
    if (g.hold) {
        g.t_measure = 0;
        g.t_end = UINT64_MAX;
    }
    if (!g.hold) {
        for (int i = 0; i < g.conns; i++)
            if (conn_open(&g.cs[i]) != 0)
                g.conn_errors++;
        opened = g.conns;
    }
    if (g.rate > 0 || (g.spread_ns > 0 && !g.hold))
        arm(g.t0);

    for (;;) {
        int n;

        g.now = now_ns();
        if (g.hold) {
            /* ramp up with a bounded number of handshakes in flight so the
             * gateway's accept queue never overflows (SYN cookies, retries) */
            int connecting = 0;
            for (int k = opened - 1; k >= 0 && k >= opened - 2048; k--)
                connecting += g.cs[k].state == C_CONNECTING;
            for (int k = 0; k < 256 - connecting && opened < g.conns; k++, opened++)
                if (conn_open(&g.cs[opened]) != 0)
                    g.conn_errors++;
            if (!g.ready_reported && g.ready + (int)g.conn_errors >= g.conns) {
                g.ready_reported = 1;
                t_ready = g.now;
                fprintf(stderr, "ready %d\n", g.ready);
            }
            if (g.ready_reported && g.now >= t_ready + (uint64_t)(g.duration * 1e9))
                break;
        } else {
            t_stop = g.t_end + 2000000000u; /* grace for requests in flight */
            if (g.now >= g.t_end) {
                int busy = 0;
                for (int i = 0; i < g.conns; i++)
                    busy += g.cs[i].state == C_BUSY || g.cs[i].state == C_CONNECTING;
                if ((busy == 0 && g.q_len == 0) || g.now >= t_stop)
                    break;
            }
        }
        n = epoll_wait(g.ep, evs, 512, opened < g.conns ? 1 : 10);
        g.now = now_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c;

            if (evs[i].data.ptr == &g.tfd) {
                on_tick();
                continue;
            }
            c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == C_CONNECTING && (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err != 0) {
                    conn_fail(c);
                    continue;
                }
                c->want_out = 1;
                set_out(c, 0);
                if (g.rate > 0 || g.now >= g.t_end) {
                    if (g.rate > 0 && g.q_len > 0)
                        conn_send(c, q_pop());
                    else
                        make_idle(c);
                } else if (g.spread_ns > 0 && !c->started && first_due(c) > g.now) {
                    c->state = C_IDLE; /* start_due sends it */
                } else {
                    c->started = 1;
                    conn_send(c, g.now);
                }
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && c->state == C_BUSY)
                conn_write(c);
            if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                conn_read(c);
        }
    }

    {
        double secs = g.duration;
        uint64_t unfinished = 0;
        for (int i = 0; i < g.conns; i++)
            unfinished += g.cs[i].state == C_BUSY;
        unfinished += g.q_len;
        printf("{\"mode\":\"%s\",\"rate\":%.1f,\"conns\":%d,\"duration_s\":%.3f,"
               "\"requests\":%llu,\"measured\":%llu,\"rps\":%.1f,\"errors\":%llu,"
               "\"conn_errors\":%llu,\"non2xx\":%llu,\"unfinished\":%llu,\"dropped\":%llu,",
               g.hold       ? "hold"
               : g.rate > 0 ? "rate"
                            : "closed",
               g.rate, g.conns, secs, (unsigned long long)g.done,
               (unsigned long long)g.done_measured, secs > 0 ? (double)g.done_measured / secs : 0.0,
               (unsigned long long)g.errors, (unsigned long long)g.conn_errors,
               (unsigned long long)g.non2xx, (unsigned long long)unfinished,
               (unsigned long long)g.dropped);
        if (g.hold)
            printf("\"held\":%d,", g.ready);
        if (g.stream) {
            h_json("ttft_us", &g.ttft, 0);
            h_json("token_latency_us", &g.toklat, 0);
            h_json("gap_us", &g.gap, 0);
            if (g.near_ns > 0) {
                h_json("token_latency_near_start_us", &g.tok_near, 0);
                h_json("token_latency_other_us", &g.tok_far, 0);
            }
        }
        h_json("latency_us", &g.lat, 1);
        printf("}\n");
    }
    return 0;
}
