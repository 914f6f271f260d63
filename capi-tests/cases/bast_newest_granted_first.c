// LIB: both
// Oracle 04 step 4 / spec 4.6: A, B, C hold PR (granted in that order); an EX
// request blocks all three -> one BAST each, delivered newest-granted first
// (C, B, A).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c, e;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    lk_init(&e, "E", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "R2", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "R2", 0);
    LOCK_EXPECT(ls, &c, LKM_PRMODE, 0, "R2", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock(ls, &e, LKM_EXMODE, 0, "R2"));
    CHECK(rec_wait(mark + 3, T_POS_MS), "expected three BASTs");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:C bast:B bast:A");
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &b, 0, EUNLOCK);
    UNLOCK_EXPECT(ls, &c, 0, EUNLOCK);
    CHECK(lk_wait(&e, T_POS_MS), "E not granted");
    t_ls_release(ls);
    return t_done();
}
