// LIB: both
// Spec 4.2: BASTs go to locks on the granted queue only: A and B hold PR; A's
// PR->EX conversion queues (B is BASTed); C's EX request then blocks on both,
// but A (converting) gets no BAST and B is not BASTed again for the same mode.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "bc", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "bc", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, LKF_CONVERT, "bc"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "no BAST to B");
    REQUIRE_OK(t_lock(ls, &c, LKM_EXMODE, 0, "bc"));
    settle(2 * T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:B");
    t_ls_release(ls);
    return t_done();
}
