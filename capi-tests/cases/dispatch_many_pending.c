// LIB: both
// Spec 2.8: callbacks accumulate while nobody dispatches: 300 grants pending on
// one handle are all delivered, in order, once dispatching starts.
#include "../common.h"

#define N 300

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    static struct lk l[N];
    int i, inorder = 1;

    for (i = 0; i < N; i++) {
        char res[16];
        snprintf(res, sizeof res, "mp%d", i);
        lk_init(&l[i], "L", 0);
        REQUIRE_OK(t_lock_nb(ls, &l[i], LKM_PRMODE, 0, res));
    }
    REQUIRE(wait_readable(fd, T_POS_MS), "nothing pending");
    t_sleep_ms(T_NEG_MS);
    CHECK(rec_wait(N, 2 * T_POS_MS), "only %d of %d ASTs delivered", rec_count(), N);
    for (i = 0; i < rec_count() && i < N; i++) {
        struct ev e = rec_get(i);
        if (e.arg != &l[i]) inorder = 0;
    }
    CHECK(inorder, "ASTs not delivered in request order");
    for (i = 0; i < N; i++) CHECK(l[i].lksb.sb_status == 0, "lock %d status %d", i, l[i].lksb.sb_status);
    t_ls_release(ls);
    return t_done();
}
