// LIB: both
// Spec 2.4 / oracle 05 b: a conversion replaces the lock's AST routine, BAST
// routine and argument: A is requested with (ast, arg A, bast), converted
// EX->PR with (ast2, arg C, bast2); B's EX request then BASTs A through bast2
// with arg C; A's unlock completes through ast2 with the unlock's argument U.
#include "../common.h"

static int arg_c, arg_u;

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    int mark;

    rec_name(&arg_c, "C");
    rec_name(&arg_u, "U");
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "rc", 0);
    mark = rec_count();
    REQUIRE_OK(dlm_ls_lock(ls, LKM_PRMODE, &a.lksb, LKF_CONVERT, "rc", 2, 0, rec_ast2, &arg_c, rec_bast2, NULL));
    CHECK(rec_wait(mark + 1, T_POS_MS), "no AST for the conversion");
    CHECK_EQ(a.lksb.sb_status, 0);
    REQUIRE_OK(t_lock(ls, &b, LKM_EXMODE, 0, "rc"));
    CHECK(rec_wait(mark + 2, T_POS_MS), "no BAST for A");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "ast2:C bast2:C");

    CHECK_OK(dlm_ls_unlock(ls, a.lksb.sb_lkid, 0, &a.lksb, &arg_u));
    CHECK(lk_wait(&b, T_POS_MS), "B not granted");
    settle(T_NEG_MS);
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    CHECK_SEQ(rec_str_from(mark), "ast2:C bast2:C ast2:U ast:B:0");
    t_ls_release(ls);
    return t_done();
}
