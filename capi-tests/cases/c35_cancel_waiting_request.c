// LIB: both
// Spec 11.35 / 6.4: cancelling a waiting new request -> dlm_ls_unlock returns
// 0; AST ECANCEL (65537); the id is dead afterwards (ENOENT); the holder is
// unaffected.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    struct dlm_lksb s;
    uint32_t id;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "cw", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_EXMODE, 0, "cw"));
    id = w.lksb.sb_lkid;
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "W was granted");
    CHECK_OK(t_unlock(ls, &w, LKF_CANCEL));
    CHECK(lk_wait(&w, T_POS_MS), "no AST for the cancel");
    CHECK_EQ(w.lksb.sb_status, ECANCEL);
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&w), 1);
    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_unlock(ls, id, 0, &s, NULL), ENOENT);
    CHECK_FAIL(dlm_ls_unlock(ls, id, LKF_CANCEL, &s, NULL), ENOENT);
    CHECK_EQ(t_probe(ls, LKM_NLMODE, 0, "cw"), 0);
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "cw"), EAGAIN);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
