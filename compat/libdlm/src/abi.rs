//! The constants and types of `libdlm.h` (spec §1), exactly as the reference
//! header defines them. cbindgen turns this file into `include/libdlm.h`.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

pub const DLM_LVB_LEN: c_int = 32;
pub const DLM_LOCKSPACE_LEN: c_int = 64;
pub const DLM_RESNAME_MAXLEN: c_int = 64;

pub const DLM_SBF_DEMOTED: c_int = 0x01;
pub const DLM_SBF_VALNOTVALID: c_int = 0x02;
pub const DLM_SBF_ALTMODE: c_int = 0x04;

pub const DLM_LSFL_TIMEWARN: c_int = 0x00000002;
pub const DLM_LSFL_FS: c_int = 0x00000004;
pub const DLM_LSFL_NEWEXCL: c_int = 0x00000008;

pub const LKM_NLMODE: c_int = 0;
pub const LKM_CRMODE: c_int = 1;
pub const LKM_CWMODE: c_int = 2;
pub const LKM_PRMODE: c_int = 3;
pub const LKM_PWMODE: c_int = 4;
pub const LKM_EXMODE: c_int = 5;

pub const LKF_NOQUEUE: u32 = 0x00000001;
pub const LKF_CANCEL: u32 = 0x00000002;
pub const LKF_CONVERT: u32 = 0x00000004;
pub const LKF_VALBLK: u32 = 0x00000008;
pub const LKF_QUECVT: u32 = 0x00000010;
pub const LKF_IVVALBLK: u32 = 0x00000020;
pub const LKF_CONVDEADLK: u32 = 0x00000040;
pub const LKF_PERSISTENT: u32 = 0x00000080;
pub const LKF_NODLCKWT: u32 = 0x00000100;
pub const LKF_NODLCKBLK: u32 = 0x00000200;
pub const LKF_EXPEDITE: u32 = 0x00000400;
pub const LKF_NOQUEUEBAST: u32 = 0x00000800;
pub const LKF_HEADQUE: u32 = 0x00001000;
pub const LKF_NOORDER: u32 = 0x00002000;
pub const LKF_ORPHAN: u32 = 0x00004000;
pub const LKF_ALTPR: u32 = 0x00008000;
pub const LKF_ALTCW: u32 = 0x00010000;
pub const LKF_FORCEUNLOCK: u32 = 0x00020000;
pub const LKF_TIMEOUT: u32 = 0x00040000;
pub const LKF_WAIT: u32 = 0x80000000;

pub const ECANCEL: c_int = 0x10001;
pub const EUNLOCK: c_int = 0x10002;
pub const EINPROG: c_int = 0x10003;

/// The lock status block (spec §1.2).
#[repr(C)]
pub struct dlm_lksb {
    pub sb_status: c_int,
    pub sb_lkid: u32,
    pub sb_flags: c_char,
    pub sb_lvbptr: *mut c_char,
}

/// An open lockspace.
pub type dlm_lshandle_t = *mut c_void;

// The C layer works on its own identical definition; these keep them equal.
const _: () = {
    assert!(std::mem::size_of::<dlm_lksb>() == std::mem::size_of::<udlm::capi::Lksb>());
    assert!(
        std::mem::offset_of!(dlm_lksb, sb_status)
            == std::mem::offset_of!(udlm::capi::Lksb, sb_status)
    );
    assert!(
        std::mem::offset_of!(dlm_lksb, sb_lkid) == std::mem::offset_of!(udlm::capi::Lksb, sb_lkid)
    );
    assert!(
        std::mem::offset_of!(dlm_lksb, sb_flags)
            == std::mem::offset_of!(udlm::capi::Lksb, sb_flags)
    );
    assert!(
        std::mem::offset_of!(dlm_lksb, sb_lvbptr)
            == std::mem::offset_of!(udlm::capi::Lksb, sb_lvbptr)
    );
    assert!(udlm::types::lkf::WAIT == LKF_WAIT && udlm::types::lkf::TIMEOUT == LKF_TIMEOUT);
    assert!(udlm::types::Status::EINPROG == EINPROG);
};
