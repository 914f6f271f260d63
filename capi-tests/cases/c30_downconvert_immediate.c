// LIB: both
// Spec 11.30: down-conversion EX->NL while another request waits -> the
// converter's AST 0 comes immediately, then the waiter is granted.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    int mark;

    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "dc", 0);
    REQUIRE_OK(t_lock_nb(ls, &w, LKM_PRMODE, 0, "dc"));
    settle(T_NEG_MS);
    REQUIRE(lk_asts(&w) == 0, "PR granted against EX");
    mark = rec_count();
    REQUIRE_OK(t_lock_nb(ls, &h, LKM_NLMODE, LKF_CONVERT, "dc"));
    CHECK(lk_wait(&h, T_POS_MS), "no AST for the down-conversion");
    CHECK_EQ(h.lksb.sb_status, 0);
    CHECK(lk_wait(&w, T_POS_MS), "waiter not granted after the down-conversion");
    CHECK_EQ(w.lksb.sb_status, 0);
    CHECK_SEQ(rec_str_from(mark), "ast:H:0 ast:W:0");
    CHECK_EQ(t_probe(ls, LKM_CRMODE, 0, "dc"), 0);
    t_ls_release(ls);
    return t_done();
}
