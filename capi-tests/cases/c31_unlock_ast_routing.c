// LIB: both
// Spec 11.31 / 2.5 / oracle 05 a: an unlock of a granted lock returns 0; its
// AST (status EUNLOCK) is written to the lksb passed to the unlock; the lock's
// own AST routine (given at request time) runs, with the unlock's astarg if
// non-NULL, else with the original argument.
#include "../common.h"

static int arg_u;

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;
    struct dlm_lksb c2;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    rec_name(&arg_u, "U");

    /* 1: routine ast2 given at request time, unlock with a new argument */
    a.expect = 1;
    REQUIRE_OK(dlm_ls_lock(ls, LKM_EXMODE, &a.lksb, 0, "u1", 2, 0, rec_ast2, &a, rec_bast, NULL));
    REQUIRE(lk_wait(&a, T_POS_MS), "A not granted");
    mark = rec_count();
    CHECK_OK(dlm_ls_unlock(ls, a.lksb.sb_lkid, 0, &a.lksb, &arg_u));
    CHECK(rec_wait(mark + 1, T_POS_MS), "no AST for the unlock");
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    settle(50);
    CHECK_SEQ(rec_str_from(mark), "ast2:U");

    /* 2: unlock with a NULL argument -> the original argument */
    LOCK_EXPECT(ls, &b, LKM_EXMODE, 0, "u2", 0);
    mark = rec_count();
    b.expect = lk_asts(&b) + 1;
    CHECK_OK(dlm_ls_unlock(ls, b.lksb.sb_lkid, 0, &b.lksb, NULL));
    CHECK(lk_wait(&b, T_POS_MS), "no AST for the unlock with NULL astarg");
    settle(50);
    CHECK_SEQ(rec_str_from(mark), "ast:B:EUNLOCK");

    /* 3: unlock with another lksb: the result goes there */
    LOCK_EXPECT(ls, &c, LKM_EXMODE, 0, "u3", 0);
    memset(&c2, 0, sizeof c2);
    mark = rec_count();
    CHECK_OK(dlm_ls_unlock(ls, c.lksb.sb_lkid, 0, &c2, &arg_u));
    CHECK(rec_wait(mark + 1, T_POS_MS), "no AST for the unlock with another lksb");
    CHECK_EQ(c2.sb_status, EUNLOCK);
    CHECK_EQ(c2.sb_lkid, c.lksb.sb_lkid);
    CHECK_EQ(c.lksb.sb_status, 0);
    t_ls_release(ls);
    return t_done();
}
