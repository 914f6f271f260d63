// LIB: both
// Spec 11.16: NOQUEUE EX against an EX holder: dlm_ls_lock returns 0 and fills
// sb_lkid; the AST reports EAGAIN (11); the failed id is dead afterwards
// (unlock and convert -> -1/ENOENT); the holder gets no BAST.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, n;
    struct dlm_lksb s;
    uint32_t id;

    lk_init(&h, "H", 0);
    lk_init(&n, "N", 0);
    LOCK_EXPECT(ls, &h, LKM_EXMODE, 0, "r", 0);
    REQUIRE_OK(t_lock_nb(ls, &n, LKM_EXMODE, LKF_NOQUEUE, "r"));
    id = n.lksb.sb_lkid;
    CHECK(id != 0, "sb_lkid not filled for the NOQUEUE request");
    CHECK(lk_wait(&n, T_POS_MS), "no AST for the NOQUEUE request");
    CHECK_EQ(n.lksb.sb_status, EAGAIN);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:H:0 ast:N:EAGAIN");
    CHECK_EQ(lk_basts(&h), 0);

    memset(&s, 0, sizeof s);
    CHECK_FAIL(dlm_ls_unlock(ls, id, 0, &s, NULL), ENOENT);
    memset(&s, 0, sizeof s);
    s.sb_lkid = id;
    CHECK_FAIL(dlm_ls_lock(ls, LKM_NLMODE, &s, LKF_CONVERT, "r", 1, 0, rec_ast, &s, NULL, NULL), ENOENT);
    settle(T_NEG_MS);
    CHECK_EQ(rec_count(), 2);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
