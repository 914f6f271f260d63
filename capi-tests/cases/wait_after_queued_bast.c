// LIB: both
// Spec 2.6 / 4.4: callbacks reach a handle in the order they were queued,
// _wait calls included. A holds EX on "r" with a BAST routine; another handle
// asks for "r", which queues a BAST for A; then a dlm_ls_lock_wait on another
// name is granted at once. Its return must come after A's BAST was delivered
// (the BAST was queued first), and the same for dlm_ls_unlock_wait. udlm may
// return a _wait call's completion with the reply instead of through the
// event link only when no callback is pending for the handle; this checks
// that a pending one still goes first.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    dlm_lshandle_t h2 = t_ls_open();
    struct lk a, b, w1, w2;
    struct dlm_lksb s;
    int rv;

    t_enable_wait(ls);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&w1, "W1", 0);
    lk_init(&w2, "W2", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "r", 0);
    LOCK_EXPECT(ls, &b, LKM_EXMODE, 0, "q", 0);

    /* a BAST for A is queued; no dispatch before the _wait call */
    REQUIRE_OK(t_lock_nb(h2, &w1, LKM_PRMODE, 0, "r"));
    memset(&s, 0, sizeof s);
    rv = dlm_ls_lock_wait(ls, LKM_EXMODE, &s, 0, "other", 5, 0, NULL, NULL, NULL);
    CHECK_EQ(rv, 0);
    CHECK_EQ(s.sb_status, 0);
    CHECK(lk_basts(&a) == 1, "lock_wait returned before the BAST queued ahead of it (%d BASTs)", lk_basts(&a));

    /* the same for an unlock_wait, with a BAST for B */
    REQUIRE_OK(t_lock_nb(h2, &w2, LKM_PRMODE, 0, "q"));
    rv = dlm_ls_unlock_wait(ls, s.sb_lkid, 0, &s);
    CHECK_EQ(rv, 0);
    CHECK_EQ(s.sb_status, EUNLOCK);
    CHECK(lk_basts(&b) == 1, "unlock_wait returned before the BAST queued ahead of it (%d BASTs)", lk_basts(&b));

    /* closing h2 cancels its two waiting requests */
    t_forget_handle(h2);
    CHECK_EQ(dlm_close_lockspace(h2), 0);
    t_ls_release(ls);
    return t_done();
}
