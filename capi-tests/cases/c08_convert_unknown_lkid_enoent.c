// LIB: both
// Spec 11.8: CONVERT with sb_lkid 0 -> -1/ENOENT; with an id that is not a
// live lock of the lockspace -> -1/ENOENT (oracle 01: sb_status EINPROG).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a;
    struct dlm_lksb s;
    uint32_t live[1];

    lk_init(&a, "A", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "c", 0);
    live[0] = a.lksb.sb_lkid;

    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &s, LKF_CONVERT, "c", 1, 0, rec_ast, &s, NULL, NULL), ENOENT);
    memset(&s, 0, sizeof s);
    s.sb_lkid = t_unused_lkid(live, 1);
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &s, LKF_CONVERT, "c", 1, 0, rec_ast, &s, NULL, NULL), ENOENT);
    CHECK_EQ(s.sb_status, EINPROG);
    CHECK(!wait_readable(fd, T_NEG_MS), "AST queued for a rejected conversion");
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
