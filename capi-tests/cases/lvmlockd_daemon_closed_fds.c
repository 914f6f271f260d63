// LIB: both
// lvmlockd's first DLM calls come after it has daemonised, closing every
// descriptor it had (research note R9): the library must not have opened
// anything at load time that the program can close under it, and must
// connect on the first call. Then lvmlockd's own sequence on one resource:
// new NL with EXPEDITE|VALBLK, NL->EX NOQUEUE|CONVERT|PERSISTENT|VALBLK,
// EX->NL CONVERT|VALBLK writing the LVB, read back by NL->PR.
#include "../common.h"
#include <unistd.h>

int main(void)
{
    T_INIT();
    struct dlm_lksb sb;
    char lvb[32];
    dlm_lshandle_t ls;
    uint32_t maj = 0, min = 0, patch = 0;
    int fd;

    /* What daemon(3)-style code does: close all but the test's output. */
    for (fd = 3; fd < 1024; fd++)
        close(fd);
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0) { dup2(fd, 0); if (fd != 0) close(fd); }

    CHECK_EQ(dlm_kernel_version(&maj, &min, &patch), 0);
    CHECK(maj == 6 && min == 0 && patch == 2, "dlm_kernel_version %u.%u.%u, not 6.0.2", maj, min, patch);
    ls = dlm_new_lockspace(t_ls_name("lvm"), 0600, DLM_LSFL_NEWEXCL);
    REQUIRE(ls != NULL, "dlm_new_lockspace after closing every fd -> NULL errno %d", errno);
#if T_THREADED
    /* lvmlockd links libdlm_lt; with the threaded libdlm its _wait calls need
     * the AST thread, or they wait forever on the kernel DLM (spec 2.6). */
    REQUIRE_OK(dlm_ls_pthread_init(ls));
#endif

    memset(&sb, 0, sizeof sb);
    memset(lvb, 0, sizeof lvb);
    sb.sb_lvbptr = lvb;
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_NLMODE, &sb, LKF_EXPEDITE | LKF_VALBLK, "VGLK", 4, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(sb.sb_status, 0);
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_EXMODE, &sb, LKF_NOQUEUE | LKF_CONVERT | LKF_PERSISTENT | LKF_VALBLK,
                              "VGLK", 4, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(sb.sb_status, 0);
    memcpy(lvb, "\x02\x00\x00\x00\x07\x00\x00\x00", 8);
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_NLMODE, &sb, LKF_CONVERT | LKF_VALBLK, "VGLK", 4, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(sb.sb_status, 0);
    memset(lvb, 0, sizeof lvb);
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_PRMODE, &sb, LKF_NOQUEUE | LKF_CONVERT | LKF_VALBLK,
                              "VGLK", 4, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(sb.sb_status, 0);
    CHECK(memcmp(lvb, "\x02\x00\x00\x00\x07\x00\x00\x00", 8) == 0, "the LVB written from EX did not come back");
    CHECK_EQ(dlm_ls_unlock_wait(ls, sb.sb_lkid, 0, &sb), 0);
    CHECK_EQ(dlm_release_lockspace(t_ls_name("lvm"), ls, 1), 0);
    return t_done();
}
