// LIB: both
// Spec 11.54 / 4.2 / 4.3: holder EX with a BAST routine; a PR request queues
// -> the holder's BAST routine is called once with its astarg; a second PR
// request queued later produces no further BAST; the holder then converts
// EX->EX (re-granted while the PR waiters stay blocked) -> AST 0 and then a
// fresh BAST.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    struct lk h, p1, p2;
    int mark;

    lk_init(&h, "H", 0);
    lk_init(&p1, "P1", 0);
    lk_init(&p2, "P2", 0);
    LOCK_EXPECT(ls, &h, LKM_EXMODE, 0, "b", 0);
    mark = rec_count();
    REQUIRE_OK(t_lock_nb(ls, &p1, LKM_PRMODE, 0, "b"));
    CHECK(lk_wait_bast(&h, 1, T_POS_MS), "no BAST for the holder");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:H");

    REQUIRE_OK(t_lock_nb(ls, &p2, LKM_PRMODE, 0, "b"));
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:H");

    REQUIRE_OK(t_lock(ls, &h, LKM_EXMODE, LKF_CONVERT, "b"));
    CHECK(lk_wait(&h, T_POS_MS), "EX->EX conversion not granted");
    CHECK(lk_wait_bast(&h, 2, T_POS_MS), "no fresh BAST after the re-grant");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "bast:H ast:H:0 bast:H");
    CHECK_EQ(lk_asts(&p1) + lk_asts(&p2), 0);
    t_ls_release(ls);
    return t_done();
}
