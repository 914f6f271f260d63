/*
 * udlm.h - udlm's extensions to the libdlm API.
 *
 * libdlm.h is left exactly as the kernel DLM's library has it; everything
 * udlm adds beyond it is named here. A program that never includes this
 * header behaves as on the kernel DLM. See udlm.h(3).
 *
 * Extensions:
 *   - lock timeouts: in a lockspace created with UDLM_LSFL_TIMEOUT, a
 *     request or conversion made with LKF_TIMEOUT through dlm_ls_lockx()
 *     that is not granted within its timeout (centiseconds) completes with
 *     sb_status ETIMEDOUT; a conversion falls back to its granted mode.
 *     Elsewhere LKF_TIMEOUT is ignored, as by kernels since Linux 6.4.
 *   - cluster-wide deadlock detection: a cycle of waiting requests (on any
 *     resources, on any nodes, conversions included) is broken by ending one
 *     request with EDEADLK; see udlm.h(3) for the choice of the victim.
 */
#ifndef UDLM_H
#define UDLM_H

#include <stdint.h>
#include <libdlm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dlm_new_lockspace() flags, in bits the kernel never used. They take
 * effect on the node where the lockspace is first created. */

/* LKF_TIMEOUT with dlm_ls_lockx()'s timeout takes effect. */
#define UDLM_LSFL_TIMEOUT   0x00010000
/* Reserved: the parent argument names a parent lock (hierarchical locks). */
#define UDLM_LSFL_HIERARCHY 0x00020000

/* The sb_status of a request or conversion whose timeout ran out. */
#define UDLM_ETIMEDOUT 110

#ifdef __cplusplus
}
#endif

#endif /* UDLM_H */
