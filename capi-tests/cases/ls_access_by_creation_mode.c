// LIB: dlm
// PROC: multi
// Spec 2.10 / issue 3: access to a lockspace follows the mode given at its
// creation, checked against the connecting process's credentials: another
// user cannot open a lockspace created with mode 0600 (EACCES) but can open
// one created with mode 0666. Needs root (to switch user); skipped otherwise.
#include "../common.h"
#include <sys/stat.h>

int main(void)
{
    T_INIT();
    if (getuid() != 0) {
        printf("skipped: needs root to act as another user\n");
        return 77;
    }
    const char *dir = getenv("DLM_RUN_DIR");
    if (dir) chmod(dir, 0755); /* let the other user reach the node's socket */
    char priv[64], pub[64];
    snprintf(priv, sizeof priv, "acc_priv_%d", (int)getpid());
    snprintf(pub, sizeof pub, "acc_pub_%d", (int)getpid());
    dlm_lshandle_t a = dlm_create_lockspace(priv, 0600);
    dlm_lshandle_t b = dlm_create_lockspace(pub, 0666);
    REQUIRE(a && b, "create: errno %d", errno);

    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        if (setgid(65534) || setuid(65534)) _exit(3);
        errno = 0;
        dlm_lshandle_t x = dlm_open_lockspace(priv);
        if (x || errno != EACCES) { printf("open of a 0600 lockspace by another user: %p errno %d\n", x, errno); _exit(1); }
        dlm_lshandle_t y = dlm_open_lockspace(pub);
        if (!y) { printf("open of a 0666 lockspace by another user failed: errno %d\n", errno); _exit(2); }
        struct dlm_lksb l = {0};
#if T_THREADED
        /* libdlm's _wait needs a dispatcher: with none it waits forever on
         * the kernel DLM (spec 2.6; oracle). */
        if (dlm_ls_pthread_init(y)) _exit(5);
#endif
        if (dlm_ls_lock_wait(y, LKM_EXMODE, &l, 0, "r", 1, 0, NULL, NULL, NULL) == -1 && errno != 0) _exit(4);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child (other user) exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    dlm_release_lockspace(priv, a, 1);
    dlm_release_lockspace(pub, b, 1);
    return t_done();
}
