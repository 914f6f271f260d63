// LIB: both
// Spec 11.53 / 3.1: two requests on one name from the same process are two
// independent locks: the second EX waits behind the first (no recursion); with
// NOQUEUE -> AST 11.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &a, LKM_EXMODE, 0, "same", 0);
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_EXMODE, 0, "same"));
    CHECK(b.lksb.sb_lkid != a.lksb.sb_lkid, "second request got the same lock id");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&b), 0);
    LOCK_EXPECT_NB(ls, &c, LKM_EXMODE, LKF_NOQUEUE, "same", EAGAIN);
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted after A unlocked");
    CHECK_EQ(b.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
