// LIB: both
// Oracle 04 step 2 / spec 4.3: B holds EX; C's PR request BASTs B; A's later
// EX request (a higher blocking mode) BASTs B again; a further PR request does
// not.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c, d;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    lk_init(&d, "D", 0);
    LOCK_EXPECT(ls, &b, LKM_EXMODE, 0, "hb", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock_nb(ls, &c, LKM_PRMODE, 0, "hb"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "no BAST for C's PR");
    settle(T_NEG_MS);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, 0, "hb"));
    CHECK(lk_wait_bast(&b, 2, T_POS_MS), "no second BAST for A's EX");
    settle(T_NEG_MS);
    REQUIRE_OK(t_lock_nb(ls, &d, LKM_PRMODE, 0, "hb"));
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:B bast:B");
    t_ls_release(ls);
    return t_done();
}
