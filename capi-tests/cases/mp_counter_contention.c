// LIB: both
// PROC: multi
// Several processes contending on one host: 4 children each increment a
// counter in a shared file 100 times, each read-modify-write under an EX lock
// taken with dlm_ls_lock_wait; the final value must be exactly 400.
#include "../common.h"

#define NCHILD 4
#define NITER 100

static char path[128];

static int child(struct t_child *c, void *arg)
{
    uint32_t v;
    dlm_lshandle_t ls;
    int i, fd, bad = 0;
    (void)arg;
    if (!t_recv(c->c_in, &v, T_POS_MS)) return 2;
    t_set_watchdog(60);
    ls = t_ls_open();
    t_enable_wait(ls);
    fd = open(path, O_RDWR);
    if (fd < 0) return 3;
    for (i = 0; i < NITER; i++) {
        struct dlm_lksb l;
        int rv;
        long n = 0;
        char buf[32];
        ssize_t got;
        memset(&l, 0, sizeof l);
        rv = dlm_ls_lock_wait(ls, LKM_EXMODE, &l, 0, "counter", 7, 0, NULL, NULL, NULL);
        if (rv != 0 || l.sb_status != 0) { printf("child %d: lock_wait -> %d status %d\n", (int)getpid(), rv, l.sb_status); bad++; break; }
        got = pread(fd, buf, sizeof buf - 1, 0);
        if (got < 0) got = 0;
        buf[got] = 0;
        n = strtol(buf, NULL, 10);
        usleep(i % 7 == 0 ? 200 : 0);
        snprintf(buf, sizeof buf, "%010ld\n", n + 1);
        if (pwrite(fd, buf, strlen(buf), 0) != (ssize_t)strlen(buf)) bad++;
        rv = dlm_ls_unlock_wait(ls, l.sb_lkid, 0, &l);
        if (rv != 0 || l.sb_status != EUNLOCK) { printf("child %d: unlock_wait -> %d status %d\n", (int)getpid(), rv, l.sb_status); bad++; break; }
    }
    close(fd);
    dlm_close_lockspace(ls);
    return bad ? 1 : 0;
}

int main(void)
{
    T_INIT();
    struct t_child c[NCHILD];
    dlm_lshandle_t ls;
    int i, fd;
    char buf[32];
    ssize_t got;
    long n;

    t_set_watchdog(90);
    snprintf(path, sizeof path, "/tmp/udlm-counter-%d", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0, "cannot create %s", path);
    if (write(fd, "0000000000\n", 11) != 11) REQUIRE(0, "write");
    for (i = 0; i < NCHILD; i++) t_fork(&c[i], child, NULL);
    ls = t_ls_create();
    for (i = 0; i < NCHILD; i++) t_send(c[i].to_child, 1);
    for (i = 0; i < NCHILD; i++) {
        int st = t_wait_child(c[i].pid, 80000);
        CHECK(st == 0, "child %d exited with %d", i, st);
    }
    got = pread(fd, buf, sizeof buf - 1, 0);
    buf[got > 0 ? got : 0] = 0;
    n = strtol(buf, NULL, 10);
    CHECK(n == NCHILD * NITER, "counter is %ld, expected %d", n, NCHILD * NITER);
    close(fd);
    unlink(path);
    t_ls_release(ls);
    return t_done();
}
