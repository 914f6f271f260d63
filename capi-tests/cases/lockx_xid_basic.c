// LIB: both
// Spec 2.11: dlm_ls_lockx with an xid and no timeout behaves like dlm_ls_lock
// (grant, NOQUEUE conflict, conversion).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    uint64_t xid = 0x1122334455667788ULL;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    a.expect = 1;
    REQUIRE_OK(dlm_ls_lockx(ls, LKM_EXMODE, &a.lksb, 0, "lx", 2, 0, rec_ast, &a, rec_bast, &xid, NULL));
    CHECK(a.lksb.sb_lkid != 0, "no lock id");
    CHECK(lk_wait(&a, T_POS_MS), "no AST");
    CHECK_EQ(a.lksb.sb_status, 0);
    b.expect = 1;
    REQUIRE_OK(dlm_ls_lockx(ls, LKM_PRMODE, &b.lksb, LKF_NOQUEUE, "lx", 2, 0, rec_ast, &b, NULL, NULL, NULL));
    CHECK(lk_wait(&b, T_POS_MS), "no AST");
    CHECK_EQ(b.lksb.sb_status, EAGAIN);
    a.expect = 2;
    REQUIRE_OK(dlm_ls_lockx(ls, LKM_PRMODE, &a.lksb, LKF_CONVERT, "lx", 2, 0, rec_ast, &a, rec_bast, &xid, NULL));
    CHECK(lk_wait(&a, T_POS_MS), "no AST for the conversion");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "lx"), 0);
    t_ls_release(ls);
    return t_done();
}
