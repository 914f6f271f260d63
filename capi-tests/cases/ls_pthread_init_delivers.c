// LIB: dlm
// Spec 2.9: after dlm_ls_pthread_init the handle's callbacks (AST and BAST)
// run on the library's thread, not the caller's; dlm_release_lockspace stops
// that thread and returns 0.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, w;
    int i;

    t_enable_wait(ls);
    lk_init(&h, "H", 0);
    lk_init(&w, "W", 0);
    LOCK_EXPECT(ls, &h, LKM_EXMODE, 0, "th", 0);
    REQUIRE_OK(t_lock(ls, &w, LKM_EXMODE, 0, "th"));
    CHECK(lk_wait_bast(&h, 1, T_POS_MS), "no BAST");
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    CHECK(lk_wait(&w, T_POS_MS), "W not granted");
    CHECK_SEQ(rec_str(), "ast:H:0 bast:H ast:H:EUNLOCK ast:W:0");
    for (i = 0; i < rec_count(); i++)
        CHECK(!pthread_equal(rec_get(i).thr, pthread_self()), "callback %d ran on the main thread", i);
    t_ls_release(ls);
    return t_done();
}
