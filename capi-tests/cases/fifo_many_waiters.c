// LIB: both
// Spec 3.2 / 3.3: 16 EX requests queued behind a holder are granted strictly
// in request order, one at a time, as each unlocks.
#include "../common.h"

#define N 16

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    static struct lk w[N];
    static char tags[N][8];
    struct lk h;
    int i;

    lk_init(&h, "H", 0);
    LOCK_EXPECT_NB(ls, &h, LKM_EXMODE, 0, "fifo", 0);
    for (i = 0; i < N; i++) {
        snprintf(tags[i], sizeof tags[i], "W%d", i);
        lk_init(&w[i], tags[i], 0);
        REQUIRE_OK(t_lock_nb(ls, &w[i], LKM_EXMODE, 0, "fifo"));
    }
    settle(T_NEG_MS);
    UNLOCK_EXPECT(ls, &h, 0, EUNLOCK);
    for (i = 0; i < N; i++) {
        int j;
        CHECK(lk_wait(&w[i], T_POS_MS), "W%d not granted", i);
        for (j = i + 1; j < N; j++)
            CHECK(lk_asts(&w[j]) == 0, "W%d granted while W%d holds EX", j, i);
        UNLOCK_EXPECT(ls, &w[i], 0, EUNLOCK);
    }
    t_ls_release(ls);
    return t_done();
}
