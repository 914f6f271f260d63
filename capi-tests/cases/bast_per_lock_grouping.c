// LIB: both
// Oracle 04 step 2: B holds EX; C (PR) and A (EX) wait. B down-converts EX->PR:
// B's conversion is granted, C's PR is granted, and both PR holders are BASTed
// for A's EX. With all four callbacks pending at once, they are delivered
// grouped per lock, in the order each lock first had a callback pending:
// AST B, BAST B, AST C, BAST C.
#include "../common.h"

int main(void)
{
    T_INIT();
    dlm_lshandle_t ls = t_ls_create();
    int fd = dlm_ls_get_fd(ls);
    struct lk a, b, c;
    int mark;

    lk_init(&a, "A", 0);
    lk_init(&b, "B", 0);
    lk_init(&c, "C", 0);
    LOCK_EXPECT(ls, &b, LKM_EXMODE, 0, "R1", 0);
    REQUIRE_OK(t_lock(ls, &c, LKM_PRMODE, 0, "R1"));
    CHECK(lk_wait_bast(&b, 1, T_POS_MS), "no BAST for B");
    REQUIRE_OK(t_lock(ls, &a, LKM_EXMODE, 0, "R1"));
    settle(T_NEG_MS);
    mark = rec_count();

    REQUIRE_OK(t_lock(ls, &b, LKM_PRMODE, LKF_CONVERT, "R1"));
    REQUIRE(wait_readable(fd, T_POS_MS), "nothing pending after the down-conversion");
    t_sleep_ms(2 * T_NEG_MS);                 /* everything pending before dispatch */
    CHECK(rec_wait(mark + 4, T_POS_MS), "expected 4 callbacks");
    settle(T_NEG_MS);
    CHECK_SEQ(rec_str_from(mark), "ast:B:0 bast:B ast:C:0 bast:C");
    CHECK_EQ(lk_asts(&a), 0);
    t_ls_release(ls);
    return t_done();
}
