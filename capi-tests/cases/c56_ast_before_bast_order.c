// LIB: both
// Spec 11.56 / 4.4: for one lock the grant AST is dispatched before a BAST that
// was generated later, even when both are pending at dispatch time; an unlock's
// EUNLOCK comes before the next holder's grant.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a, b;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, 0, "o"));
    REQUIRE(wait_readable(fd, T_POS_MS), "no callback for A");
    REQUIRE_OK(t_lock(ls, &b, LKM_EXMODE, 0, "o"));
    t_sleep_ms(T_NEG_MS);          /* let the BAST be queued behind the AST */
    CHECK_EQ(rec_count(), 0);
    CHECK(rec_wait(2, T_POS_MS), "expected A's AST and BAST");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:A:0 bast:A");

    REQUIRE_OK(t_unlock(ls, &a, 0));
    CHECK(lk_wait(&b, T_POS_MS), "B not granted");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str(), "ast:A:0 bast:A ast:A:EUNLOCK ast:B:0");
    t_ls_release(ls);
    return t_done();
}
