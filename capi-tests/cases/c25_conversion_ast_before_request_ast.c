// LIB: both
// Spec 11.25: one handle. X holds EX; Y (NL) converts NL->PR and is queued;
// Z requests PR and waits. X unlocks -> both are granted, and Y's conversion
// AST is dispatched before Z's request AST (conversions are served first).
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk x, y, z;
    int mark;

    lk_init(&x, "X", 0);
    lk_init(&y, "Y", 0);
    lk_init(&z, "Z", 0);
    LOCK_EXPECT_NB(ls, &x, LKM_EXMODE, 0, "cz", 0);
    LOCK_EXPECT_NB(ls, &y, LKM_NLMODE, 0, "cz", 0);
    REQUIRE_OK(t_lock_nb(ls, &y, LKM_PRMODE, LKF_CONVERT, "cz"));
    REQUIRE_OK(t_lock_nb(ls, &z, LKM_PRMODE, 0, "cz"));
    settle(T_NEG_MS);
    CHECK_EQ(lk_asts(&y), 1);
    CHECK_EQ(lk_asts(&z), 0);

    mark = rec_count();
    UNLOCK_EXPECT(ls, &x, 0, EUNLOCK);
    CHECK(lk_wait(&y, T_POS_MS), "Y not granted");
    CHECK(lk_wait(&z, T_POS_MS), "Z not granted");
    CHECK_SEQ(rec_str_filter(mark, EV_AST, "Y Z"), "ast:Y:0 ast:Z:0");
    t_ls_release(ls);
    return t_done();
}
