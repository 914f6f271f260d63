//! `libdlm_lt.so.3`: udlm's drop-in for libdlm_lt, the library without
//! threads. Exports the 21 functions of Debian's libdlm_lt (spec §2.1); the
//! `_wait` calls dispatch inline and return -1 with errno = final status on
//! failure (spec §2.6).

#[path = "../../libdlm/src/abi.rs"]
pub mod abi;
#[path = "../../libdlm/src/exports.rs"]
mod exports;

use udlm::capi::Flavor;

const FLAVOR: Flavor = Flavor::Lt;
