// LIB: both
// Kernel quirk seen with the oracle: a conversion that is rejected with EBUSY
// (the lock is still waiting) has already replaced the lock's AST routine,
// argument and lksb pointer with the ones of the rejected call, so the
// pending request's completion is delivered through them. (Real programs never
// notice; the scenario pins down what the reference does.)
#include "../common.h"

static int arg_s;

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    struct dlm_lksb s;
    int mark;

    rec_name(&arg_s, "S");
    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "rr", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "rr"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was granted");
    memset(&s, 0, sizeof s);
    s.sb_lkid = w.lksb.sb_lkid;
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &s, LKF_CONVERT, "rr", 2, 0, rec_ast2, &arg_s, NULL, NULL), EBUSY);
    mark = rec_count();
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(rec_wait(mark + 2, T_POS_MS), "no grant AST for W");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "ast:H:EUNLOCK ast2:S");
    CHECK_EQ(s.sb_status, 0);
    CHECK_EQ(s.sb_lkid, w.lksb.sb_lkid);
    CHECK_EQ(w.lksb.sb_status, EINPROG);
    t_ls_release(ls);
    return t_done();
}
