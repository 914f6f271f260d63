// LIB: both
// Spec 2.8 / 4.4: callbacks of different locks on one handle are delivered in
// the order they were generated: 12 requests on distinct names, dispatched
// together after they are all pending.
#include "../common.h"

#define N 12

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    static struct lk l[N];
    static char tags[N][8];
    char want[512] = "";
    int i;

    for (i = 0; i < N; i++) {
        char res[8];
        snprintf(tags[i], sizeof tags[i], "L%d", i);
        snprintf(res, sizeof res, "ff%d", i);
        lk_init(&l[i], tags[i], 0);
        REQUIRE_OK(t_lock_nb(ls, &l[i], LKM_EXMODE, 0, res));
        snprintf(want + strlen(want), sizeof want - strlen(want), "%sast:%s:0", i ? " " : "", tags[i]);
    }
    REQUIRE(wait_readable(fd, T_POS_MS), "nothing pending");
    t_sleep_ms(T_NEG_MS);
    CHECK(rec_wait(N, T_POS_MS), "not all ASTs arrived");
    CHECK_SEQ(rec_str(), want);
    t_ls_release(ls);
    return t_done();
}
