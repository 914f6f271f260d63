// LIB: both
// Spec 2.10 / 6.1: dlm_close_lockspace returns 0 and releases every lock of
// that handle (granted and waiting); the lockspace itself stays.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t h1 = t_ls_create();
    dlm_lshandle_t h2 = t_ls_open();
    struct lk a, b, c;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(h2, &a, LKM_EXMODE, 0, "cr", 0);
    LOCK_EXPECT_NB(h2, &b, LKM_PRMODE, 0, "cr2", 0);
    REQUIRE_OK(t_lock_nb(h1, &c, LKM_EXMODE, 0, "cr"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&c), 0);
    t_forget_handle(h2);
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    CHECK(lk_wait(&c, T_POS_MS), "C not granted after the other handle was closed");
    CHECK_EQ(t_probe(h1, LKM_EXMODE, 0, "cr2"), 0);
    t_ls_release(h1);
    return t_done();
}
