// LIB: both
// Spec 2.13: modes 6..255 on a new request -> -1/EINVAL (7, 100, 255 tried),
// also on a conversion; no AST.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    static const int modes[] = { 6, 7, 100, 255 };
    unsigned i;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        CHECK_FAIL(t_lock_nb(ls, &a, modes[i], 0, "bm"), EINVAL);
    LOCK_EXPECT_NB(ls, &b, LKM_NLMODE, 0, "bm", 0);
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        CHECK_FAIL(t_lock_nb(ls, &b, modes[i], LKF_CONVERT, "bm"), EINVAL);
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:B:0");
    t_ls_release(ls);
    return t_done();
}
