// LIB: both
// Oracle-checked (2026-12-05, see ORACLE-NOTES.md): the kernel finds a lock
// by its id alone, so a second handle on the same lockspace may convert and
// unlock a lock of the first. Both calls return 0; their completions arrive
// on the first handle's descriptor (none on the second's), with the
// argument (and lksb) of the call that caused them.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = dlm_open_lockspace(t_ls_name(NULL));
    int fd1 = dlm_ls_get_fd(h1), fd2;
    struct lk a, c, u;

    REQUIRE(h2 != NULL, "open errno %d", errno);
    t_register_handle(h2);
    fd2 = dlm_ls_get_fd(h2);
    lk_init(&a, "A", 0);
    lk_init(&c, "C", 0);
    lk_init(&u, "U", 0);
    REQUIRE_OK(t_lock_nb(h1, &a, LKM_EXMODE, 0, "z"));
    REQUIRE(wait_readable(fd1, T_POS_MS), "no grant on the first handle");
    CHECK_EQ(dlm_dispatch(fd1), 0);
    CHECK_SEQ(rec_str(), "ast:A:0");

    c.lksb.sb_lkid = a.lksb.sb_lkid;
    CHECK_EQ(t_lock_nb(h2, &c, LKM_NLMODE, LKF_CONVERT, "z"), 0);
    REQUIRE(wait_readable(fd1, T_POS_MS), "the conversion's completion is not on the first handle");
    CHECK(!wait_readable(fd2, T_NEG_MS), "a callback on the second handle");
    CHECK_EQ(dlm_dispatch(fd1), 0);
    CHECK_SEQ(rec_str(), "ast:A:0 ast:C:0");

    u.lksb.sb_lkid = a.lksb.sb_lkid;
    CHECK_EQ(t_unlock(h2, &u, 0), 0);
    REQUIRE(wait_readable(fd1, T_POS_MS), "the unlock's completion is not on the first handle");
    CHECK(!wait_readable(fd2, T_NEG_MS), "a callback on the second handle");
    CHECK_EQ(dlm_dispatch(fd1), 0);
    CHECK_SEQ(rec_str(), "ast:A:0 ast:C:0 ast:U:EUNLOCK");
    CHECK_EQ(u.lksb.sb_status, EUNLOCK);

    // The lock is gone: an EX from the second handle is granted.
    CHECK_EQ(t_probe(h2, LKM_EXMODE, 0, "z"), 0);
    t_forget_handle(h2);
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    t_ls_release(h1);
    return t_done();
}
