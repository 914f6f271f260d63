//! `libdlm.so.3`: udlm's drop-in for the threaded libdlm. Exports the 26
//! functions of Debian's libdlm3 (spec §2.1) and nothing else; the SONAME is
//! set in build.rs.

pub mod abi;
mod exports;

use std::ffi::{c_char, c_int};
use udlm::capi::{self, guard, Flavor};

const FLAVOR: Flavor = Flavor::Threaded;

/// Locks `resource` synchronously in the default lockspace (starting it and
/// its AST thread if needed); errno is the final status.
///
/// # Safety
/// `resource` must be a NUL-terminated string; `lockid` null or writable.
#[cfg(feature = "reentrant")]
#[no_mangle]
pub unsafe extern "C" fn lock_resource(
    resource: *const c_char,
    mode: c_int,
    flags: c_int,
    lockid: *mut c_int,
) -> c_int {
    guard(-1, || unsafe {
        capi::lock_resource(resource, mode, flags, lockid)
    })
}

/// Unlocks a lock taken with `lock_resource`; errno is the final status.
///
/// # Safety
/// None beyond the C contract.
#[cfg(feature = "reentrant")]
#[no_mangle]
pub unsafe extern "C" fn unlock_resource(lockid: c_int) -> c_int {
    guard(-1, || capi::unlock_resource(lockid))
}

/// Opens the default lockspace and starts its AST thread.
///
/// # Safety
/// None beyond the C contract.
#[cfg(feature = "reentrant")]
#[no_mangle]
pub unsafe extern "C" fn dlm_pthread_init() -> c_int {
    guard(-1, capi::pthread_init)
}

/// Starts an AST thread for `lockspace`.
///
/// # Safety
/// None beyond the C contract.
#[cfg(feature = "reentrant")]
#[no_mangle]
pub unsafe extern "C" fn dlm_ls_pthread_init(lockspace: abi::dlm_lshandle_t) -> c_int {
    guard(-1, || capi::ls_pthread_init(lockspace))
}

/// Stops the default lockspace's AST thread and closes it.
///
/// # Safety
/// None beyond the C contract.
#[cfg(feature = "reentrant")]
#[no_mangle]
pub unsafe extern "C" fn dlm_pthread_cleanup() -> c_int {
    guard(-1, capi::pthread_cleanup)
}
