// LIB: dlm
// Spec 11.61 / 2.9: dlm_pthread_cleanup() with no default lockspace -> 0;
// dlm_ls_pthread_init twice on one handle -> 0, then -1/EEXIST; the thread
// delivers callbacks without any dlm_dispatch call.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls;
    struct lk a;

    CHECK_EQ(dlm_pthread_cleanup(), 0);
    ls = t_ls_create();
    CHECK_EQ(dlm_ls_pthread_init(ls), 0);
    CHECK_FAIL(dlm_ls_pthread_init(ls), EEXIST);
    t_h[0].threaded = 1;
    lk_init(&a, "A", 0);
    LOCK_EXPECT(ls, &a, LKM_EXMODE, 0, "pt", 0);
    CHECK(!pthread_equal(rec_get(0).thr, pthread_self()), "AST ran in the main thread");
    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    t_ls_release(ls);
    return t_done();
}
