// LIB: dlm
// Spec 2.9: dlm_pthread_init opens the default lockspace and starts its AST
// thread (-> 0); a second call -> -1/EEXIST; callbacks of dlm_lock arrive on
// that thread without dlm_dispatch; dlm_pthread_cleanup -> 0 and a second
// cleanup (no default lockspace any more) -> 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    struct lk a;
    char name[48];

    snprintf(name, sizeof name, "t_pthread_default_%d", (int)getpid());
    CHECK_EQ(dlm_pthread_init(), 0);
    CHECK_FAIL(dlm_pthread_init(), EEXIST);
    lk_init(&a, "A", 0);
    a.expect = 1;
    REQUIRE_OK(dlm_lock(LKM_EXMODE, &a.lksb, 0, name, (unsigned)strlen(name), 0, rec_ast, &a, rec_bast, NULL));
    CHECK(lk_wait(&a, T_POS_MS), "AST not delivered by the default AST thread");
    CHECK_EQ(a.lksb.sb_status, 0);
    if (rec_count() > 0)
        CHECK(!pthread_equal(rec_get(0).thr, pthread_self()), "AST ran on the main thread");
    a.expect = 2;
    CHECK_OK(dlm_unlock(a.lksb.sb_lkid, 0, &a.lksb, &a));
    CHECK(lk_wait(&a, T_POS_MS), "unlock AST not delivered");
    CHECK_EQ(a.lksb.sb_status, EUNLOCK);
    CHECK_EQ(dlm_pthread_cleanup(), 0);
    CHECK_EQ(dlm_pthread_cleanup(), 0);
    return t_done();
}
