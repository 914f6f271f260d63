// LIB: both
// Spec 11.27 / oracle 02 step 7: A and B hold PR; A converts to EX (queued,
// BAST to B); B converts to EX with LKF_CONVDEADLK -> B is demoted to NL, A's
// AST 0 comes at once, then A gets a BAST (B's NL->EX now waits for A).
// A unlocks -> B's AST 0 with DLM_SBF_DEMOTED.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    LOCK_EXPECT(ls, &a, LKM_PRMODE, 0, "cd", 0);
    LOCK_EXPECT(ls, &b, LKM_PRMODE, 0, "cd", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, LKF_CONVERT, "cd"));
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:B");

    REQUIRE_OK(t_lock(ls, &b, LKM_EXMODE, LKF_CONVERT | LKF_CONVDEADLK, "cd"));
    CHECK(lk_wait(&a, T_POS_MS), "A not granted after B's CONVDEADLK conversion");
    CHECK_EQ(a.lksb.sb_status, 0);
    CHECK(lk_wait_bast(&a, 1, T_POS_MS), "A got no BAST");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:B ast:A:0 bast:A");
    CHECK_EQ(b.lksb.sb_status, EINPROG);

    /* A holds EX now */
    CHECK_EQ(t_probe(ls, LKM_PRMODE, 0, "cd"), EAGAIN);

    UNLOCK_EXPECT(ls, &a, 0, EUNLOCK);
    CHECK(lk_wait(&b, T_POS_MS), "B not granted after A unlocked");
    CHECK_EQ(b.lksb.sb_status, 0);
    CHECK((b.lksb.sb_flags & DLM_SBF_DEMOTED) != 0, "B's sb_flags 0x%x lack DLM_SBF_DEMOTED",
          (unsigned char)b.lksb.sb_flags);
    t_ls_release(ls);
    return t_done();
}
