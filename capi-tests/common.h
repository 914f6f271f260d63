/*
 * common.h - helpers for the udlm C conformance scenarios (capi-tests/cases/).
 *
 * Every scenario is one program: exit 0 = pass, 1 = fail, 77 = skipped.
 * The same sources run against udlm (run.sh) and against the real kernel DLM
 * (oracle-bundle.sh / oracle-multi.sh + shared/oracle/run-in-vm.sh), so nothing
 * here may depend on udlm specifics (DLM_RUN_DIR, udlmd, lock id values).
 *
 * Build flavours (chosen by run.sh from the "// LIB:" line of a case):
 *   threaded libdlm : -pthread -D_REENTRANT, linked with -ldlm
 *   libdlm_lt       : -DUDLM_TEST_LT=1 (no _REENTRANT), linked with -ldlm_lt
 * T_LT is 1 in the lt build, T_THREADED is 1 in the threaded build.
 *
 * Callback model used by the scenarios:
 *  - a handle is "manual" (callbacks delivered by dlm_dispatch() called from
 *    t_pump()/rec_wait()/settle()) unless t_enable_wait() started the library's
 *    AST thread on it (threaded build only: the _wait calls of the threaded
 *    libdlm need a dispatcher, spec 2.6);
 *  - rec_ast / rec_bast (and rec_ast2 / rec_bast2) record every callback in
 *    order: kind, routine, argument and, when the argument is a registered
 *    struct lk, a snapshot of its lksb (status, lkid, flags) taken at call time.
 *  - rec_str() renders the record as tokens, e.g. "ast:A:0 bast:B ast:C:EAGAIN",
 *    with ":f0x1" appended to an AST token when sb_flags != 0.
 */
#ifndef UDLM_CAPI_COMMON_H
#define UDLM_CAPI_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libdlm.h>

#if defined(UDLM_TEST_LT) && UDLM_TEST_LT
#define T_LT 1
#define T_THREADED 0
#elif defined(_REENTRANT)
#define T_LT 0
#define T_THREADED 1
#else
#define T_LT 0
#define T_THREADED 0
#endif

#define T_UNUSED __attribute__((unused))
#define T_POS_MS 5000   /* how long to wait for something that must happen */
#define T_NEG_MS 300    /* how long to watch for something that must NOT happen */

/* ------------------------------------------------------------------ basics */

static int t_failures;
static char t_base[48] = "test";
static pid_t t_main_pid;

static T_UNUSED const char *t_errname(int e)
{
    static char buf[4][32];
    static int k;
    switch (e) {
    case 0: return "0";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EDEADLK: return "EDEADLK";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EUNLOCK: return "EUNLOCK";
    case ECANCEL: return "ECANCEL";
    case EINPROG: return "EINPROG";
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%d", e);
    return buf[k];
}

static T_UNUSED void t_failf(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    const char *b = strrchr(file, '/');
    t_failures++;
    printf("FAIL %s:%d: ", b ? b + 1 : file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* CHECK(cond, fmt, ...): record a failure (with file:line and message), go on */
#define CHECK(cond, ...) do { \
        if (!(cond)) { \
            printf("  check failed: %s\n", #cond); \
            t_failf(__FILE__, __LINE__, __VA_ARGS__); \
        } \
    } while (0)

/* REQUIRE: like CHECK but the scenario cannot go on: exit(1) */
#define REQUIRE(cond, ...) do { \
        if (!(cond)) { \
            printf("  required condition failed: %s\n", #cond); \
            t_failf(__FILE__, __LINE__, __VA_ARGS__); \
            t_finish_now(); \
        } \
    } while (0)

#define CHECK_EQ(actual, expected) do { \
        long long _a = (long long)(actual), _x = (long long)(expected); \
        if (_a != _x) \
            t_failf(__FILE__, __LINE__, "%s == %lld (%s), expected %s == %lld (%s)", \
                    #actual, _a, t_errname((int)_a), #expected, _x, t_errname((int)_x)); \
    } while (0)

/* the int-returning call must fail with -1 and errno == err */
#define CHECK_FAIL(expr, err) do { \
        errno = 0; \
        long long _rv = (long long)(expr); \
        int _e = errno; \
        if (!(_rv == -1 && _e == (err))) \
            t_failf(__FILE__, __LINE__, "%s -> %lld errno %d (%s); expected -1 errno %s", \
                    #expr, _rv, _e, t_errname(_e), t_errname(err)); \
    } while (0)

/* the handle-returning call must return NULL with errno == err */
#define CHECK_NULL_ERR(expr, err) do { \
        errno = 0; \
        void *_p = (void *)(expr); \
        int _e = errno; \
        if (!(_p == NULL && _e == (err))) \
            t_failf(__FILE__, __LINE__, "%s -> %p errno %d (%s); expected NULL errno %s", \
                    #expr, _p, _e, t_errname(_e), t_errname(err)); \
    } while (0)

/* the call must return 0 */
#define CHECK_OK(expr) do { \
        errno = 0; \
        long long _rv = (long long)(expr); \
        int _e = errno; \
        if (_rv != 0) \
            t_failf(__FILE__, __LINE__, "%s -> %lld errno %d (%s); expected 0", \
                    #expr, _rv, _e, t_errname(_e)); \
    } while (0)

#define REQUIRE_OK(expr) do { \
        errno = 0; \
        long long _rv = (long long)(expr); \
        int _e = errno; \
        if (_rv != 0) { \
            t_failf(__FILE__, __LINE__, "%s -> %lld errno %d (%s); expected 0", \
                    #expr, _rv, _e, t_errname(_e)); \
            t_finish_now(); \
        } \
    } while (0)

static T_UNUSED void t_finish_now(void)
{
    printf("%s: FAILED (%d check(s)) [pid %d]\n", t_base, t_failures, (int)getpid());
    fflush(stdout);
    _exit(1);
}

static void t_alarm(int sig)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "TIMEOUT: %s (pid %d) did not finish in time (internal watchdog)\n",
                     t_base, (int)getpid());
    (void)sig;
    if (write(1, msg, (size_t)n) < 0) { /* nothing */ }
    _exit(3);
}

static T_UNUSED void t_set_watchdog(int seconds)
{
    signal(SIGALRM, t_alarm);
    alarm((unsigned)seconds);
}

static T_UNUSED void t_init_named(const char *file)
{
    const char *b = strrchr(file, '/');
    size_t n;
    b = b ? b + 1 : file;
    n = strcspn(b, ".");
    if (n >= sizeof t_base) n = sizeof t_base - 1;
    memcpy(t_base, b, n);
    t_base[n] = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    t_main_pid = getpid();
    t_set_watchdog(18);
    printf("== %s [%s] pid %d\n", t_base, T_LT ? "libdlm_lt" : (T_THREADED ? "libdlm" : "libdlm (no _REENTRANT)"),
           (int)getpid());
}
#define T_INIT() t_init_named(__FILE__)

/* end of main(): report and return the exit status */
static T_UNUSED int t_done(void)
{
    fflush(stdout);
    if (t_failures) {
        printf("%s: FAILED (%d check(s))\n", t_base, t_failures);
        return 1;
    }
    printf("%s: ok\n", t_base);
    return 0;
}

#define T_SKIP(...) do { printf("SKIP: "); printf(__VA_ARGS__); printf("\n"); fflush(stdout); exit(77); } while (0)

static T_UNUSED long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static T_UNUSED void t_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) { }
}

/* ------------------------------------------------------------ fds, dispatch */

/* poll(fd, POLLIN) for up to ms; 1 if readable, 0 if not */
static T_UNUSED int wait_readable(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    int rv;
    long long end = t_now_ms() + ms;
    for (;;) {
        int left = (int)(end - t_now_ms());
        if (left < 0) left = 0;
        rv = poll(&p, 1, left);
        if (rv > 0) return (p.revents & POLLIN) ? 1 : 0;
        if (rv == 0) return 0;
        if (errno != EINTR) return 0;
    }
}

static T_UNUSED int dispatch_all(int fd)
{
    return dlm_dispatch(fd);
}

/* ------------------------------------------------------------ lockspaces */

#define T_MAXH 8
struct t_handle {
    dlm_lshandle_t ls;
    int fd;
    int threaded;   /* AST thread started: never dispatch it by hand */
    int used;
};
static struct t_handle t_h[T_MAXH];

static T_UNUSED void t_register_handle(dlm_lshandle_t ls)
{
    int i;
    for (i = 0; i < T_MAXH; i++) if (t_h[i].used && t_h[i].ls == ls) return;
    for (i = 0; i < T_MAXH; i++)
        if (!t_h[i].used) {
            t_h[i].used = 1;
            t_h[i].ls = ls;
            t_h[i].fd = dlm_ls_get_fd(ls);
            t_h[i].threaded = 0;
            return;
        }
}

static T_UNUSED void t_forget_handle(dlm_lshandle_t ls)
{
    int i;
    for (i = 0; i < T_MAXH; i++) if (t_h[i].used && t_h[i].ls == ls) t_h[i].used = 0;
}

/* also used for the default lockspace: pass its fd, ls == NULL */
static T_UNUSED void t_register_fd(int fd)
{
    int i;
    for (i = 0; i < T_MAXH; i++) if (t_h[i].used && t_h[i].fd == fd) return;
    for (i = 0; i < T_MAXH; i++)
        if (!t_h[i].used) {
            t_h[i].used = 1; t_h[i].ls = NULL; t_h[i].fd = fd; t_h[i].threaded = 0;
            return;
        }
}

/* lockspace name unique to this scenario and process: t_<base>[_<sfx>]_<pid> */
static T_UNUSED const char *t_ls_name(const char *sfx)
{
    static char buf[4][DLM_LOCKSPACE_LEN + 1];
    static int k;
    char base[33];
    size_t bl = strlen(t_base);
    if (bl > sizeof base - 1) bl = sizeof base - 1;
    memcpy(base, t_base, bl);
    base[bl] = 0;
    k = (k + 1) % 4;
    if (sfx && *sfx)
        snprintf(buf[k], sizeof buf[k], "t_%s_%s_%d", base, sfx, (int)t_main_pid);
    else
        snprintf(buf[k], sizeof buf[k], "t_%s_%d", base, (int)t_main_pid);
    return buf[k];
}

/* create (or join) the scenario's lockspace with dlm_new_lockspace flags;
 * fatal on failure */
static T_UNUSED dlm_lshandle_t t_ls_create_flags(const char *sfx, uint32_t flags)
{
    const char *name = t_ls_name(sfx);
    dlm_lshandle_t ls;
    errno = 0;
    ls = dlm_new_lockspace(name, 0600, flags);
    if (!ls) {
        int e = errno;
        t_failf(__FILE__, __LINE__, "dlm_new_lockspace(%s) -> NULL errno %d (%s)", name, e, strerror(e));
        t_finish_now();
    }
    t_register_handle(ls);
    return ls;
}
#define t_ls_create_sfx(sfx) t_ls_create_flags((sfx), 0)
#define t_ls_create() t_ls_create_flags(NULL, 0)

static T_UNUSED dlm_lshandle_t t_ls_open_sfx(const char *sfx)
{
    const char *name = t_ls_name(sfx);
    dlm_lshandle_t ls;
    errno = 0;
    ls = dlm_open_lockspace(name);
    if (!ls) {
        int e = errno;
        t_failf(__FILE__, __LINE__, "dlm_open_lockspace(%s) -> NULL errno %d (%s)", name, e, strerror(e));
        t_finish_now();
    }
    t_register_handle(ls);
    return ls;
}
#define t_ls_open() t_ls_open_sfx(NULL)

/* release (force) and check the documented return value 0 */
static T_UNUSED void t_ls_release_sfx(dlm_lshandle_t ls, const char *sfx)
{
    int rv;
    t_forget_handle(ls);
    errno = 0;
    rv = dlm_release_lockspace(t_ls_name(sfx), ls, 1);
    if (rv != 0)
        t_failf(__FILE__, __LINE__, "dlm_release_lockspace -> %d errno %d", rv, errno);
}
#define t_ls_release(ls) t_ls_release_sfx((ls), NULL)

/* Make the _wait calls usable on this handle. Threaded build: start the
 * library's AST thread (the _wait calls of libdlm sleep until a dispatcher
 * delivers their completion). lt build: nothing (lt dispatches inline). */
static T_UNUSED void t_enable_wait(dlm_lshandle_t ls)
{
#if T_THREADED
    int i, rv = dlm_ls_pthread_init(ls);
    if (rv != 0) {
        t_failf(__FILE__, __LINE__, "dlm_ls_pthread_init -> %d errno %d", rv, errno);
        t_finish_now();
    }
    for (i = 0; i < T_MAXH; i++) if (t_h[i].used && t_h[i].ls == ls) t_h[i].threaded = 1;
#else
    (void)ls;
#endif
}

/* How long udlm's deadlock detection waits (UDLM_DEADLOCK_DETECT_MS, which
 * run.sh sets, else udlm's 5 s default); for the x_deadlock_* scenarios of
 * udlm's extensions only. */
static T_UNUSED int t_deadlock_detect_ms(void)
{
    const char *v = getenv("UDLM_DEADLOCK_DETECT_MS");
    return v ? atoi(v) : 5000;
}

/* ------------------------------------------------------------ recorder */

enum { EV_AST = 1, EV_BAST = 2 };
#define EV_ANY (EV_AST | EV_BAST)

struct lk {
    const char *tag;
    struct dlm_lksb lksb;
    char lvb[DLM_LVB_LEN];
    volatile int asts, basts;
    int expect;          /* asts count that completes the pending operation */
};

struct ev {
    int kind;
    const char *fn;
    void *arg;
    const char *tag;     /* tag of the argument, or NULL */
    int snap;            /* lksb snapshot valid */
    int status;
    uint32_t lkid;
    unsigned flags;
    pthread_t thr;
};

#define T_MAXEV 1024
static struct ev rec_ev[T_MAXEV];
static volatile int rec_n;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;

#define T_MAXNAMES 64
static struct { const void *p; const char *tag; int is_lk; } rec_names[T_MAXNAMES];
static int rec_nnames;

/* give a pointer a printable name (for callback-argument routing checks) */
static T_UNUSED void rec_name(const void *p, const char *tag)
{
    int i;
    for (i = 0; i < rec_nnames; i++) if (rec_names[i].p == p) { rec_names[i].tag = tag; return; }
    if (rec_nnames < T_MAXNAMES) {
        rec_names[rec_nnames].p = p;
        rec_names[rec_nnames].tag = tag;
        rec_names[rec_nnames].is_lk = 0;
        rec_nnames++;
    }
}

/* prepare a lock record: zeroed lksb, LVB buffer attached if with_lvb */
static T_UNUSED void lk_init(struct lk *l, const char *tag, int with_lvb)
{
    int i;
    memset(l, 0, sizeof *l);
    l->tag = tag;
    if (with_lvb) l->lksb.sb_lvbptr = l->lvb;
    rec_name(l, tag);
    for (i = 0; i < rec_nnames; i++) if (rec_names[i].p == l) rec_names[i].is_lk = 1;
}

static void rec_add(int kind, const char *fn, void *arg)
{
    int i;
    pthread_mutex_lock(&rec_mu);
    if (rec_n < T_MAXEV) {
        struct ev *e = &rec_ev[rec_n];
        memset(e, 0, sizeof *e);
        e->kind = kind;
        e->fn = fn;
        e->arg = arg;
        e->thr = pthread_self();
        for (i = 0; i < rec_nnames; i++)
            if (rec_names[i].p == arg) {
                e->tag = rec_names[i].tag;
                if (rec_names[i].is_lk) {
                    struct lk *l = (struct lk *)arg;
                    e->snap = 1;
                    e->status = l->lksb.sb_status;
                    e->lkid = l->lksb.sb_lkid;
                    e->flags = (unsigned char)l->lksb.sb_flags;
                    if (kind == EV_AST) l->asts++; else l->basts++;
                }
                break;
            }
        rec_n++;
    }
    pthread_mutex_unlock(&rec_mu);
}

static T_UNUSED void rec_ast(void *arg) { rec_add(EV_AST, "ast", arg); }
static T_UNUSED void rec_bast(void *arg) { rec_add(EV_BAST, "bast", arg); }
static T_UNUSED void rec_ast2(void *arg) { rec_add(EV_AST, "ast2", arg); }
static T_UNUSED void rec_bast2(void *arg) { rec_add(EV_BAST, "bast2", arg); }

static T_UNUSED int rec_count(void)
{
    int n;
    pthread_mutex_lock(&rec_mu);
    n = rec_n;
    pthread_mutex_unlock(&rec_mu);
    return n;
}

static T_UNUSED void rec_reset(void)
{
    pthread_mutex_lock(&rec_mu);
    rec_n = 0;
    pthread_mutex_unlock(&rec_mu);
}

static T_UNUSED struct ev rec_get(int i)
{
    struct ev e;
    pthread_mutex_lock(&rec_mu);
    e = rec_ev[i];
    pthread_mutex_unlock(&rec_mu);
    return e;
}

static T_UNUSED int lk_asts(struct lk *l)
{
    int n;
    pthread_mutex_lock(&rec_mu);
    n = l->asts;
    pthread_mutex_unlock(&rec_mu);
    return n;
}

static T_UNUSED int lk_basts(struct lk *l)
{
    int n;
    pthread_mutex_lock(&rec_mu);
    n = l->basts;
    pthread_mutex_unlock(&rec_mu);
    return n;
}

static T_UNUSED const char *t_stname(int s)
{
    return t_errname(s);
}

/* render events [from, rec_n) of the given kinds whose tag is in the
 * space-separated list `tags` (NULL = all) */
static T_UNUSED const char *rec_str_filter(int from, int kinds, const char *tags)
{
    static char bufs[4][4096];
    static int k;
    char *buf;
    size_t len = 0;
    int i, n = rec_count();
    k = (k + 1) % 4;
    buf = bufs[k];
    buf[0] = 0;
    for (i = from; i < n; i++) {
        struct ev e = rec_get(i);
        char tok[160];
        const char *tag = e.tag ? e.tag : (e.arg ? "?" : "NULL");
        if (!(e.kind & kinds)) continue;
        if (tags) {
            /* whole-word match of tag in tags */
            const char *p = tags;
            size_t tl = strlen(tag);
            int hit = 0;
            while ((p = strstr(p, tag)) != NULL) {
                if ((p == tags || p[-1] == ' ') && (p[tl] == 0 || p[tl] == ' ')) { hit = 1; break; }
                p += tl;
            }
            if (!hit) continue;
        }
        if (e.kind == EV_BAST)
            snprintf(tok, sizeof tok, "%s:%s", e.fn, tag);
        else if (!e.snap)
            snprintf(tok, sizeof tok, "%s:%s", e.fn, tag);
        else if (e.flags)
            snprintf(tok, sizeof tok, "%s:%s:%s:f0x%x", e.fn, tag, t_stname(e.status), e.flags);
        else
            snprintf(tok, sizeof tok, "%s:%s:%s", e.fn, tag, t_stname(e.status));
        if (len + strlen(tok) + 2 >= sizeof bufs[k]) break;
        if (len) buf[len++] = ' ';
        strcpy(buf + len, tok);
        len += strlen(tok);
    }
    return buf;
}
#define rec_str() rec_str_filter(0, EV_ANY, NULL)
#define rec_str_from(from) rec_str_filter((from), EV_ANY, NULL)

#define CHECK_SEQ(got, expected) do { \
        const char *_g = (got), *_x = (expected); \
        if (strcmp(_g, _x) != 0) \
            t_failf(__FILE__, __LINE__, "callback sequence\n    got:      \"%s\"\n    expected: \"%s\"", _g, _x); \
    } while (0)

/* ------------------------------------------------------------ pumping */

/* deliver callbacks of every manual handle for up to ms (returns early when
 * something was dispatched); threaded handles deliver on their own */
static T_UNUSED void t_pump(int ms)
{
    struct pollfd p[T_MAXH];
    int idx[T_MAXH];
    int i, n = 0, rv;
    for (i = 0; i < T_MAXH; i++)
        if (t_h[i].used && !t_h[i].threaded && t_h[i].fd >= 0) {
            p[n].fd = t_h[i].fd;
            p[n].events = POLLIN;
            p[n].revents = 0;
            idx[n] = i;
            n++;
        }
    if (n == 0) { t_sleep_ms(ms < 5 ? ms : 5); return; }
    rv = poll(p, (nfds_t)n, ms);
    if (rv <= 0) return;
    for (i = 0; i < n; i++)
        if (p[i].revents & POLLIN) {
            if (dlm_dispatch(p[i].fd) != 0)
                printf("  (dlm_dispatch(%d) -> -1 errno %d)\n", p[i].fd, errno);
        }
    (void)idx;
}

/* wait (pumping) until at least n callbacks were recorded; 1 = yes */
static T_UNUSED int rec_wait(int n, int ms)
{
    long long end = t_now_ms() + ms;
    while (rec_count() < n) {
        long long left = end - t_now_ms();
        if (left <= 0) return rec_count() >= n;
        t_pump(left > 20 ? 20 : (int)left);
    }
    return 1;
}

/* pump for ms in total, delivering whatever arrives */
static T_UNUSED void settle(int ms)
{
    long long end = t_now_ms() + ms;
    for (;;) {
        long long left = end - t_now_ms();
        if (left <= 0) break;
        t_pump(left > 20 ? 20 : (int)left);
    }
}

/* wait until lock l has seen `n` ASTs in total */
static T_UNUSED int lk_wait_n(struct lk *l, int n, int ms)
{
    long long end = t_now_ms() + ms;
    while (lk_asts(l) < n) {
        long long left = end - t_now_ms();
        if (left <= 0) return lk_asts(l) >= n;
        t_pump(left > 20 ? 20 : (int)left);
    }
    return 1;
}

static T_UNUSED int lk_wait_bast(struct lk *l, int n, int ms)
{
    long long end = t_now_ms() + ms;
    while (lk_basts(l) < n) {
        long long left = end - t_now_ms();
        if (left <= 0) return lk_basts(l) >= n;
        t_pump(left > 20 ? 20 : (int)left);
    }
    return 1;
}

/* wait for the completion of the operation last issued with t_lock/t_unlock */
static T_UNUSED int lk_wait(struct lk *l, int ms)
{
    return lk_wait_n(l, l->expect, ms);
}

/* ------------------------------------------------------------ lock helpers */

static T_UNUSED int t_lock_full(dlm_lshandle_t ls, struct lk *l, int mode, uint32_t flags,
                                const char *res, int namelen, void (*bast)(void *))
{
    int rv;
    if (!(flags & LKF_CONVERT)) l->lksb.sb_lkid = 0;
    l->expect = lk_asts(l) + 1;
    rv = dlm_ls_lock(ls, (uint32_t)mode, &l->lksb, flags, res, (unsigned)namelen, 0,
                     rec_ast, l, bast, NULL);
    return rv;
}

/* async request/convert with rec_ast/rec_bast, argument = l */
static T_UNUSED int t_lock(dlm_lshandle_t ls, struct lk *l, int mode, uint32_t flags, const char *res)
{
    return t_lock_full(ls, l, mode, flags, res, (int)strlen(res), rec_bast);
}

/* same without a BAST routine */
static T_UNUSED int t_lock_nb(dlm_lshandle_t ls, struct lk *l, int mode, uint32_t flags, const char *res)
{
    return t_lock_full(ls, l, mode, flags, res, (int)strlen(res), NULL);
}

/* async unlock/cancel, argument = l */
static T_UNUSED int t_unlock(dlm_lshandle_t ls, struct lk *l, uint32_t flags)
{
    l->expect = lk_asts(l) + 1;
    return dlm_ls_unlock(ls, l->lksb.sb_lkid, flags, &l->lksb, l);
}

/* issue, wait for the completion, check its status (fatal on mismatch) */
#define LOCK_EXPECT(ls, l, mode, flags, res, status) \
    t_lock_expect(__FILE__, __LINE__, (ls), (l), (mode), (flags), (res), (status), 1)
#define LOCK_EXPECT_NB(ls, l, mode, flags, res, status) \
    t_lock_expect(__FILE__, __LINE__, (ls), (l), (mode), (flags), (res), (status), 0)

static T_UNUSED void t_lock_expect(const char *file, int line, dlm_lshandle_t ls, struct lk *l,
                                   int mode, uint32_t flags, const char *res, int status, int with_bast)
{
    int rv;
    errno = 0;
    rv = with_bast ? t_lock(ls, l, mode, flags, res) : t_lock_nb(ls, l, mode, flags, res);
    if (rv != 0) {
        t_failf(file, line, "dlm_ls_lock(%s mode %d flags 0x%x \"%s\") -> %d errno %d (%s)",
                l->tag, mode, flags, res, rv, errno, t_errname(errno));
        t_finish_now();
    }
    if (!lk_wait(l, T_POS_MS)) {
        t_failf(file, line, "no completion AST for %s (mode %d flags 0x%x \"%s\") within %d ms; sb_status %s",
                l->tag, mode, flags, res, T_POS_MS, t_errname(l->lksb.sb_status));
        t_finish_now();
    }
    if (l->lksb.sb_status != status) {
        t_failf(file, line, "%s (mode %d flags 0x%x \"%s\"): AST status %s, expected %s",
                l->tag, mode, flags, res, t_errname(l->lksb.sb_status), t_errname(status));
        t_finish_now();
    }
}

#define UNLOCK_EXPECT(ls, l, flags, status) \
    t_unlock_expect(__FILE__, __LINE__, (ls), (l), (flags), (status))

static T_UNUSED void t_unlock_expect(const char *file, int line, dlm_lshandle_t ls, struct lk *l,
                                     uint32_t flags, int status)
{
    int rv;
    errno = 0;
    rv = t_unlock(ls, l, flags);
    if (rv != 0) {
        t_failf(file, line, "dlm_ls_unlock(%s flags 0x%x) -> %d errno %d (%s)", l->tag, flags, rv,
                errno, t_errname(errno));
        t_finish_now();
    }
    if (!lk_wait(l, T_POS_MS)) {
        t_failf(file, line, "no AST for the unlock of %s within %d ms", l->tag, T_POS_MS);
        t_finish_now();
    }
    if (l->lksb.sb_status != status) {
        t_failf(file, line, "%s unlock flags 0x%x: AST status %s, expected %s", l->tag, flags,
                t_errname(l->lksb.sb_status), t_errname(status));
        t_finish_now();
    }
}

/* NOQUEUE probe with a throw-away lock: returns the AST status (0 or EAGAIN);
 * a granted probe is unlocked again */
static T_UNUSED int t_probe(dlm_lshandle_t ls, int mode, uint32_t flags, const char *res)
{
    struct lk p;
    int st;
    lk_init(&p, "probe", 0);
    if (t_lock_nb(ls, &p, mode, flags | LKF_NOQUEUE, res) != 0) {
        printf("  probe: dlm_ls_lock -> -1 errno %d\n", errno);
        return -1000;
    }
    if (!lk_wait(&p, T_POS_MS)) return -1001;
    st = p.lksb.sb_status;
    if (st == 0) {
        if (t_unlock(ls, &p, 0) != 0 || !lk_wait(&p, T_POS_MS)) return -1002;
    }
    return st;
}

/* an id that is certainly not a live lock of this lockspace */
static T_UNUSED uint32_t t_unused_lkid(const uint32_t *live, int n)
{
    uint32_t c = 0x7777;
    int i, again = 1;
    while (again) {
        again = 0;
        for (i = 0; i < n; i++) if (live[i] == c) { c += 0x1111; again = 1; }
    }
    return c;
}

/* After a process holding a PERSISTENT lock exited, its lock becomes an
 * orphan. The exit reaches the lock manager at some point after waitpid()
 * returned (at once with the kernel DLM, a little later with a node daemon),
 * so wait for it: an LKF_ORPHAN request in a mode other than the orphan's
 * answers EAGAIN once the orphan exists (ENOENT before). 1 = orphan seen. */
static T_UNUSED int t_wait_orphan(dlm_lshandle_t ls, const char *res, int other_mode, int ms)
{
    long long end = t_now_ms() + ms;
    for (;;) {
        struct dlm_lksb s;
        int rv, e;
        memset(&s, 0, sizeof s);
        errno = 0;
        rv = dlm_ls_lock(ls, (uint32_t)other_mode, &s, LKF_ORPHAN, res, (unsigned)strlen(res), 0,
                         rec_ast, NULL, NULL, NULL);
        e = errno;
        if (rv == -1 && e == EAGAIN) return 1;
        if (rv == 0) {
            printf("  t_wait_orphan: LKF_ORPHAN in mode %d unexpectedly adopted a lock\n", other_mode);
            return 0;
        }
        if (e != ENOENT) {
            printf("  t_wait_orphan: LKF_ORPHAN -> %d errno %s\n", rv, t_errname(e));
            return 0;
        }
        if (t_now_ms() > end) return 0;
        t_sleep_ms(20);
    }
}

/* ------------------------------------------------------------ processes */

struct t_child {
    pid_t pid;
    int to_child;     /* parent writes */
    int from_child;   /* parent reads */
    int c_in;         /* child reads */
    int c_out;        /* child writes */
};

/* fork a child that runs fn(c, arg) and exits with its return value.
 * Pipes: parent->child (t_send(c->to_child) / t_recv(c->c_in)) and back. */
static T_UNUSED pid_t t_fork(struct t_child *c, int (*fn)(struct t_child *, void *), void *arg)
{
    int a[2], b[2];
    if (pipe(a) || pipe(b)) { perror("pipe"); t_finish_now(); }
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    if (c->pid < 0) { perror("fork"); t_finish_now(); }
    if (c->pid == 0) {
        int rc;
        close(a[1]);
        close(b[0]);
        c->c_in = a[0];
        c->c_out = b[1];
        c->to_child = c->from_child = -1;
        t_failures = 0;
        t_set_watchdog(18);
        rc = fn(c, arg);
        if (t_failures && rc == 0) rc = 1;
        fflush(stdout);
        _exit(rc);
    }
    close(a[0]);
    close(b[1]);
    c->to_child = a[1];
    c->from_child = b[0];
    c->c_in = c->c_out = -1;
    return c->pid;
}

static T_UNUSED void t_send(int fd, uint32_t v)
{
    if (write(fd, &v, sizeof v) != (ssize_t)sizeof v) perror("t_send");
}

/* 1 = got a value, 0 = timeout/EOF */
static T_UNUSED int t_recv(int fd, uint32_t *v, int ms)
{
    if (!wait_readable(fd, ms)) return 0;
    return read(fd, v, sizeof *v) == (ssize_t)sizeof *v;
}

/* wait for a child; returns its exit status, 128+sig if killed by a signal,
 * -1 on timeout (the child is then killed) */
static T_UNUSED int t_wait_child(pid_t pid, int ms)
{
    long long end = t_now_ms() + ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st)) return WEXITSTATUS(st);
            if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
            return -2;
        }
        if (r < 0 && errno != EINTR) return -3;
        if (t_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        t_sleep_ms(10);
    }
}

#endif /* UDLM_CAPI_COMMON_H */
