// LIB: both
// Spec 11.4: namelen 0 is accepted (the empty name is a resource like any
// other): EX -> AST 0; a second namelen-0 EX request with NOQUEUE -> AST 11.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    REQUIRE_OK(t_lock_full(ls, &a, LKM_EXMODE, 0, "", 0, NULL));
    CHECK(a.lksb.sb_lkid != 0, "no lock id");
    REQUIRE(lk_wait(&a, T_POS_MS), "no AST for the empty name");
    CHECK_EQ(a.lksb.sb_status, 0);

    REQUIRE_OK(t_lock_full(ls, &b, LKM_EXMODE, LKF_NOQUEUE, "", 0, NULL));
    REQUIRE(lk_wait(&b, T_POS_MS), "no AST for the second empty-name request");
    CHECK_EQ(b.lksb.sb_status, EAGAIN);

    /* a non-empty name is a different resource */
    REQUIRE_OK(t_lock_full(ls, &c, LKM_EXMODE, LKF_NOQUEUE, "x", 1, NULL));
    REQUIRE(lk_wait(&c, T_POS_MS), "no AST");
    CHECK_EQ(c.lksb.sb_status, 0);

    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
