/*
 * smoke: a small libdlm program for the install test, built with
 * `cc smoke.c $(pkg-config --cflags --libs libdlm)` (or libdlm_lt) against
 * an installed udlm and run with no DLM_DAEMON: the library must start the
 * installed udlmd by itself.
 *
 * It creates a lockspace, takes an EX lock and waits for it, writes the LVB
 * while converting down, reads it back with a second lock, takes a lock
 * asynchronously and delivers its completion with poll() and
 * dlm_dispatch(), and releases everything. With -DTHREADED (libdlm only)
 * it also uses an AST thread and lock_resource/unlock_resource.
 * Prints "smoke: ok" and exits 0 when every step behaved.
 */
#include <errno.h>
#include <libdlm.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            fprintf(stderr, "smoke: line %d: ", __LINE__);                                                        \
            fprintf(stderr, __VA_ARGS__);                                                                         \
            fprintf(stderr, " (errno %d)\n", errno);                                                              \
            exit(1);                                                                                              \
        }                                                                                                         \
    } while (0)

static volatile int completions;

static void ast(void *arg)
{
    (void)arg;
    completions++;
}

int main(int argc, char **argv)
{
    const char *lsname = argc > 1 ? argv[1] : "smoke";
    uint32_t maj = 0, min = 0, patch = 0;
    dlm_library_version(&maj, &min, &patch);
    CHECK(maj == 6, "dlm_library_version says %u.%u.%u", maj, min, patch);

    dlm_lshandle_t ls = dlm_create_lockspace(lsname, 0600);
    CHECK(ls != NULL, "dlm_create_lockspace failed");

    char lvb[DLM_LVB_LEN] = { 0 };
    struct dlm_lksb a = { 0 };
    a.sb_lvbptr = lvb;
    int rc = dlm_ls_lock_wait(ls, LKM_EXMODE, &a, LKF_VALBLK, "smoke-res", 9, 0, NULL, NULL, NULL);
    CHECK(rc == 0 && a.sb_status == 0, "EX lock: rc %d status %d", rc, a.sb_status);
    strcpy(lvb, "installed");
    rc = dlm_ls_lock_wait(ls, LKM_NLMODE, &a, LKF_VALBLK | LKF_CONVERT, "smoke-res", 9, 0, NULL, NULL, NULL);
    CHECK(rc == 0 && a.sb_status == 0, "EX->NL: rc %d status %d", rc, a.sb_status);

    /* An asynchronous PR lock that reads the LVB, delivered by dlm_dispatch. */
    char lvb2[DLM_LVB_LEN] = { 0 };
    struct dlm_lksb b = { 0 };
    b.sb_lvbptr = lvb2;
    rc = dlm_ls_lock(ls, LKM_PRMODE, &b, LKF_VALBLK, "smoke-res", 9, 0, ast, NULL, NULL, NULL);
    CHECK(rc == 0 && b.sb_lkid != 0, "async PR: rc %d", rc);
    struct pollfd pfd = { .fd = dlm_ls_get_fd(ls), .events = POLLIN };
    while (completions == 0) {
        CHECK(poll(&pfd, 1, 10000) == 1, "no completion within 10 s");
        CHECK(dlm_dispatch(pfd.fd) == 0, "dlm_dispatch failed");
    }
    CHECK(b.sb_status == 0, "async PR status %d", b.sb_status);
    CHECK(strcmp(lvb2, "installed") == 0, "the LVB read back is \"%.32s\"", lvb2);

    rc = dlm_ls_unlock_wait(ls, b.sb_lkid, 0, &b);
    CHECK(rc == 0 && b.sb_status == EUNLOCK, "unlock B: rc %d status %d", rc, b.sb_status);
    rc = dlm_ls_unlock_wait(ls, a.sb_lkid, 0, &a);
    CHECK(rc == 0 && a.sb_status == EUNLOCK, "unlock A: rc %d status %d", rc, a.sb_status);

#ifdef THREADED
    /* The AST thread of the threaded library delivers instead of us. */
    CHECK(dlm_ls_pthread_init(ls) == 0, "dlm_ls_pthread_init failed");
    struct dlm_lksb c = { 0 };
    rc = dlm_ls_lock_wait(ls, LKM_EXMODE, &c, 0, "smoke-thread", 12, 0, NULL, NULL, NULL);
    CHECK(rc == 0 && c.sb_status == 0, "EX with the AST thread: rc %d status %d", rc, c.sb_status);
    rc = dlm_ls_unlock_wait(ls, c.sb_lkid, 0, &c);
    CHECK(rc == 0 && c.sb_status == EUNLOCK, "unlock C: rc %d status %d", rc, c.sb_status);

    int lockid = 0;
    CHECK(lock_resource("smoke-simple", LKM_EXMODE, 0, &lockid) == 0, "lock_resource failed");
    CHECK(unlock_resource(lockid) == 0, "unlock_resource failed");
    CHECK(dlm_pthread_cleanup() == 0, "dlm_pthread_cleanup failed");
#endif

    CHECK(dlm_release_lockspace(lsname, ls, 0) == 0, "dlm_release_lockspace failed");
    printf("smoke: ok\n");
    return 0;
}
