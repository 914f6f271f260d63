// LIB: both
// Spec 2.7 / 2.8: the default-lockspace helpers: dlm_get_fd opens (or creates)
// the lockspace "default" and returns the same fd each time; dlm_lock /
// dlm_unlock work asynchronously on it with dlm_dispatch; a NOQUEUE conflict
// is an EAGAIN AST.
#include "../common.h"

int main(void)
{
    T_INIT();
    int fd, fd2;
    struct lk a, b;
    char name[48];

    snprintf(name, sizeof name, "t_default_async_%d", (int)getpid());
    fd = dlm_get_fd();
    REQUIRE(fd >= 0, "dlm_get_fd -> %d errno %d", fd, errno);
    fd2 = dlm_get_fd();
    CHECK_EQ(fd2, fd);
    t_register_fd(fd);

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    a.expect = 1;
    REQUIRE_OK(dlm_lock(LKM_EXMODE, &a.lksb, 0, name, (unsigned)strlen(name), 0, rec_ast, &a, rec_bast, NULL));
    CHECK(a.lksb.sb_lkid != 0, "no lock id");
    CHECK(lk_wait(&a, T_POS_MS), "no AST");
    CHECK_EQ(a.lksb.sb_status, 0);

    b.expect = 1;
    REQUIRE_OK(dlm_lock(LKM_PRMODE, &b.lksb, LKF_NOQUEUE, name, (unsigned)strlen(name), 0, rec_ast, &b, NULL, NULL));
    CHECK(lk_wait(&b, T_POS_MS), "no AST");
    CHECK_EQ(b.lksb.sb_status, EAGAIN);

    a.expect = 2;
    CHECK_OK(dlm_unlock(a.lksb.sb_lkid, 0, &a.lksb, &a));
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the unlock");
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:A:0 ast:B:EAGAIN ast:A:EUNLOCK");
    return t_done();
}
