/*
 * holder: takes a known set of locks in one lockspace and keeps them until
 * its standard input closes, so that udlm_tool.sh can look at them with
 * `udlm status`, `udlm ls` and `udlm lockdump`.
 *
 *   holder LOCKSPACE
 *
 * Resource "res1": lock A granted PR (it wrote the LVB "udlm-tool-test" as
 * EX, then converted down), lock B granted PR and converting to EX, lock C
 * waiting for EX. Resource "\001z" (a binary name): lock D granted NL.
 * Prints "ready A B C D" (the lock ids) once all of that is in place, then
 * waits for end of input and releases the lockspace.
 */
#include <errno.h>
#include <libdlm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ast(void *arg) { (void)arg; }
static void bast(void *arg) { (void)arg; }

static void check(int rc, const struct dlm_lksb *lksb, int want_status, const char *what)
{
    if (rc != 0 || lksb->sb_status != want_status) {
        fprintf(stderr, "holder: %s failed: rc %d errno %d status %d\n", what, rc, rc ? errno : 0,
                lksb->sb_status);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "tooltest";
    dlm_lshandle_t ls = dlm_create_lockspace(name, 0600);
    if (!ls) {
        perror("holder: dlm_create_lockspace");
        return 1;
    }
    char lvb[DLM_LVB_LEN] = "udlm-tool-test";
    struct dlm_lksb a = {0}, b = {0}, c = {0}, d = {0};
    a.sb_lvbptr = lvb;

    check(dlm_ls_lock_wait(ls, LKM_EXMODE, &a, LKF_VALBLK, "res1", 4, 0, NULL, NULL, NULL), &a, 0, "A EX");
    memcpy(lvb, "udlm-tool-test", 15);
    check(dlm_ls_lock_wait(ls, LKM_PRMODE, &a, LKF_VALBLK | LKF_CONVERT, "res1", 4, 0, NULL, NULL, NULL), &a, 0,
          "A EX->PR");
    check(dlm_ls_lock_wait(ls, LKM_PRMODE, &b, 0, "res1", 4, 0, NULL, NULL, NULL), &b, 0, "B PR");
    check(dlm_ls_lock(ls, LKM_EXMODE, &b, LKF_CONVERT, "res1", 4, 0, ast, NULL, bast, NULL), &b, EINPROG,
          "B PR->EX");
    check(dlm_ls_lock(ls, LKM_EXMODE, &c, 0, "res1", 4, 0, ast, NULL, bast, NULL), &c, EINPROG, "C EX");
    check(dlm_ls_lock_wait(ls, LKM_NLMODE, &d, 0, "\001z", 2, 0, NULL, NULL, NULL), &d, 0, "D NL");
    printf("ready %u %u %u %u\n", a.sb_lkid, b.sb_lkid, c.sb_lkid, d.sb_lkid);
    fflush(stdout);

    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    if (dlm_release_lockspace(name, ls, 1) != 0) {
        perror("holder: dlm_release_lockspace");
        return 1;
    }
    return 0;
}
