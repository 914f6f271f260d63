// LIB: lt
// Spec 2.6: a libdlm_lt _wait call dispatches inline and runs every callback of
// the handle that arrives meanwhile: an async request's pending AST is
// delivered (to its own routine) during an unrelated dlm_ls_lock_wait.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a;
    struct dlm_lksb b;

    lk_init(&a, "A", 0);
    memset(&b, 0, sizeof b);
    REQUIRE_OK(t_lock_nb(ls, &a, LKM_EXMODE, 0, "async"));
    REQUIRE(wait_readable(dlm_ls_get_fd(ls), T_POS_MS), "no callback pending for A");
    CHECK_EQ(rec_count(), 0);
    CHECK_EQ(dlm_ls_lock_wait(ls, LKM_EXMODE, &b, 0, "sync", 4, 0, NULL, NULL, NULL), 0);
    CHECK_EQ(b.sb_status, 0);
    CHECK_SEQ(rec_str(), "ast:A:0");
    CHECK_EQ(dlm_ls_unlock_wait(ls, b.sb_lkid, 0, &b), 0);
    t_ls_release(ls);
    return t_done();
}
