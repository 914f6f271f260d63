// LIB: both
// Spec 3.6: a NOQUEUE conversion that fails sends no BAST to the blocking
// holder; with NOQUEUE|NOQUEUEBAST the holder gets one; the converting lock
// keeps its mode in both cases.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "nc", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "nc", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE, "nc", EAGAIN);
    settle(T_NEG_MS);
    CHECK_EQ(lk_basts(&b), 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, LKF_CONVERT | LKF_NOQUEUE | LKF_NOQUEUEBAST, "nc", EAGAIN);
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "holder got no BAST with NOQUEUEBAST");
    settle(T_NEG_MS);
    CHECK_EQ(lk_basts(&b), 1);
    CHECK_EQ(lk_basts(&a), 0);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "nc"), 0);
    t_ls_release(ls);
    return t_done();
}
