// LIB: dlm
// Oracle 04 step 2, exactly as recorded on the real kernel DLM (callbacks run
// on the library's AST thread): B holds EX; C requests PR and A requests EX;
// B down-converts EX->PR -> AST B, BAST B, AST C, BAST C.
#include "../common.h"

int main(void)
{
    T_INIT();
    /* With the master on another node the down-conversion completes locally
     * at once (as on the kernel DLM), so B's AST is delivered before the
     * master's grant and BASTs arrive: this single-node order does not apply. */
    if (getenv("UDLM_REMOTE_MASTER")) {
        printf("skipped: single-node callback order\n");
        return 77;
    }
    dlm_lshandle_t ls = t_ls_create();
    struct lk a, b, c;
    int mark;

    t_enable_wait(ls);
    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT(ls, &b, LKM_EXMODE, 0, "R1", 0);
    REQUIRE_OK(t_lock(ls, &c, LKM_PRMODE, 0, "R1"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "no BAST for B");
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, 0, "R1"));
    settle(2 * T_NEG_MS);
    mark = rec_count();
    REQUIRE_OK(t_lock(ls, &b, LKM_PRMODE, LKF_CONVERT, "R1"));
    CHECK(rec_wait(mark + 4, T_POS_MS), "expected 4 callbacks");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "ast:B:0 bast:B ast:C:0 bast:C");
    t_ls_release(ls);
    return t_done();
}
