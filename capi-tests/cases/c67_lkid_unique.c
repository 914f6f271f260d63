// LIB: both
// Spec 11.67: lock ids are non-zero and unique among the live locks of a
// lockspace (40 locks on 20 names, two per name); the id in sb_lkid at return
// is the one delivered with the AST.
#include "../common.h"

#define N 40

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    static struct lk l[N];
    uint32_t ids[N];
    int i, j;

    for (i = 0; i < N; i++) {
        char res[16];
        snprintf(res, sizeof res, "id%d", i / 2);
        lk_init(&l[i], "L", 0);
        REQUIRE_OK(t_lock_nb(ls, &l[i], (i & 1) ? LKM_PRMODE : LKM_CRMODE, 0, res));
        ids[i] = l[i].lksb.sb_lkid;
        CHECK(ids[i] != 0, "lock %d got id 0", i);
    }
    for (i = 0; i < N; i++) {
        CHECK(lk_wait(&l[i], T_POS_MS), "lock %d not granted", i);
        CHECK_EQ(l[i].lksb.sb_status, 0);
        CHECK_EQ(l[i].lksb.sb_lkid, ids[i]);
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            CHECK(ids[i] != ids[j], "locks %d and %d share id %u", i, j, ids[i]);
    t_ls_release(ls);
    return t_done();
}
