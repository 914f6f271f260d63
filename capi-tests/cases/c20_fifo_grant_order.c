// LIB: both
// Spec 11.20: FIFO. Holder EX; queue PR(A), EX(B), PR(C). The holder unlocks
// -> only A is granted (C is compatible with A but waits behind B); A unlocks
// -> B; B unlocks -> C.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, a, b, c;
    int mark;

    lk_init(&h, "H", 0);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "f", 0);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_PRMODE, 0, "f"));
    REQUIRE_OK(t_lock_nb(ls, &b, LKM_EXMODE, 0, "f"));
    REQUIRE_OK(t_lock_nb(ls, &c, LKM_PRMODE, 0, "f"));
    settle(T_NEG_MS);
    CHECK_EQ(rec_count(), 1);
    mark = rec_count();

    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&a, T_POS_MS), "A not granted");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "ast:H:EUNLOCK ast:A:0");

    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted");
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&c), 0);

    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    CHECK(lk_wait(&c, T_POS_MS), "C not granted");
    settle(50);
    CHECK_SEQ(rec_str_from(mark),
              "ast:H:EUNLOCK ast:A:0 ast:A:EUNLOCK ast:B:0 ast:B:EUNLOCK ast:C:0");
    t_ls_release(ls);
    return t_done();
}
