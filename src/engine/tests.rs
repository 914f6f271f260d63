//! Rule-by-rule tests of the lock engine.
//!
//! One test per rule of `spec/libdlm-behaviour.md` §3–§6, named after what it
//! proves, with the §11 case number in the name where one applies (`cNN_`).
//! Every step goes through the harness [`H`], which calls
//! `Engine::check_invariants()` after each input and compares the emitted
//! events exactly (owner, lock id, status, `sb_flags`, LVB bytes, end of
//! life; BAST mode). Where the real kernel DLM was observed
//! (`oracle/examples/EXPECTED.md`) the oracle wins over the spec.

use super::*;
use crate::types::Mode::{Cr, Cw, Ex, Nl, Pr, Pw};
use crate::types::{lkf, sbf, Errno, LockId, Lvb, Mode, Owner, Status};

// ----- harness ------------------------------------------------------------

const O1: Owner = Owner(1);
const O2: Owner = Owner(2);
const O3: Owner = Owner(3);
const O4: Owner = Owner(4);
const O5: Owner = Owner(5);

/// An event with the fields a test asserts (the incarnation is checked by a
/// dedicated test only).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Ast {
        owner: Owner,
        lkid: LockId,
        status: Status,
        sb_flags: u8,
        lvb: Option<Lvb>,
        eol: bool,
    },
    Bast {
        owner: Owner,
        lkid: LockId,
        mode: Mode,
    },
}

/// A completion with `sb_flags` 0 and no LVB; end of life only for EUNLOCK
/// (use `.eol()` for the other end-of-life cases).
fn ast(owner: Owner, lkid: LockId, status: Status) -> Ev {
    Ev::Ast {
        owner,
        lkid,
        status,
        sb_flags: 0,
        lvb: None,
        eol: status == Status::Unlocked,
    }
}

fn bast(owner: Owner, lkid: LockId, mode: Mode) -> Ev {
    Ev::Bast { owner, lkid, mode }
}

impl Ev {
    fn eol(mut self) -> Ev {
        if let Ev::Ast { eol, .. } = &mut self {
            *eol = true;
        }
        self
    }
    fn sbf(mut self, f: u8) -> Ev {
        if let Ev::Ast { sb_flags, .. } = &mut self {
            *sb_flags = f;
        }
        self
    }
    fn lvb(mut self, v: Lvb) -> Ev {
        if let Ev::Ast { lvb, .. } = &mut self {
            *lvb = Some(v);
        }
        self
    }
}

fn from_event(e: &Event) -> Ev {
    match *e {
        Event::Completion {
            owner,
            lkid,
            status,
            sb_flags,
            lvb,
            end_of_life,
            ..
        } => Ev::Ast {
            owner,
            lkid,
            status,
            sb_flags,
            lvb,
            eol: end_of_life,
        },
        Event::Blocking {
            owner, lkid, mode, ..
        } => Ev::Bast { owner, lkid, mode },
    }
}

/// 32 bytes: `s` followed by zeros.
fn v(s: &str) -> Lvb {
    let mut b = [0u8; 32];
    b[..s.len()].copy_from_slice(s.as_bytes());
    b
}

const ZERO: Lvb = [0u8; 32];

const G: Status = Status::Granted;
const AGAIN: Status = Status::Again;
const DEADLK: Status = Status::Deadlock;
const CANCEL: Status = Status::Cancelled;
const UNLOCK: Status = Status::Unlocked;

struct H {
    e: Engine,
}

impl H {
    fn new() -> H {
        H {
            e: Engine::default(),
        }
    }

    fn check(&self) {
        self.e.check_invariants();
    }

    /// Raw request; `pid` is the owner number, BAST routine registered.
    fn try_req(
        &mut self,
        o: Owner,
        name: &str,
        mode: i32,
        flags: u32,
        lvb: Option<&Lvb>,
    ) -> Result<LockId, Errno> {
        self.try_req_full(o, name.as_bytes(), mode, flags, lvb, true)
    }

    fn try_req_full(
        &mut self,
        o: Owner,
        name: &[u8],
        mode: i32,
        flags: u32,
        lvb: Option<&Lvb>,
        has_bast: bool,
    ) -> Result<LockId, Errno> {
        let r = self.e.request(Request {
            owner: o,
            pid: o.0 as u32,
            mode,
            flags,
            name,
            lvb,
            has_bast,
        });
        self.check();
        r
    }

    /// A request that must be accepted. With VALBLK it carries a zeroed
    /// buffer (c46 checks that other bytes are never handed back).
    fn req(&mut self, o: Owner, name: &str, mode: Mode, flags: u32) -> LockId {
        let lvb = (flags & lkf::VALBLK != 0).then_some(&ZERO);
        let id = self
            .try_req(o, name, mode as i32, flags, lvb)
            .expect("request accepted");
        assert_ne!(id.0, 0, "lock id 0 handed out");
        id
    }

    fn req_nobast(&mut self, o: Owner, name: &str, mode: Mode, flags: u32) -> LockId {
        let id = self
            .try_req_full(o, name.as_bytes(), mode as i32, flags, None, false)
            .expect("request accepted");
        assert_ne!(id.0, 0);
        id
    }

    fn try_conv(&mut self, o: Owner, id: LockId, mode: i32, flags: u32) -> Result<(), Errno> {
        let r = self.e.convert(
            o,
            o.0 as u32,
            id,
            mode,
            flags,
            (flags & lkf::VALBLK != 0).then_some(&ZERO),
            true,
        );
        self.check();
        r
    }

    /// A conversion that must be accepted (flags get CONVERT added).
    fn conv(&mut self, o: Owner, id: LockId, mode: Mode, flags: u32) {
        self.try_conv(o, id, mode as i32, flags | lkf::CONVERT)
            .expect("conversion accepted");
    }

    /// A conversion with VALBLK carrying `lvb`.
    fn conv_lvb(&mut self, o: Owner, id: LockId, mode: Mode, flags: u32, lvb: Lvb) {
        let r = self.e.convert(
            o,
            o.0 as u32,
            id,
            mode as i32,
            flags | lkf::CONVERT | lkf::VALBLK,
            Some(&lvb),
            true,
        );
        self.check();
        r.expect("conversion accepted");
    }

    fn conv_nobast(&mut self, o: Owner, id: LockId, mode: Mode, flags: u32) {
        let r = self.e.convert(
            o,
            o.0 as u32,
            id,
            mode as i32,
            flags | lkf::CONVERT,
            None,
            false,
        );
        self.check();
        r.expect("conversion accepted");
    }

    fn try_unlock(&mut self, o: Owner, id: LockId, flags: u32) -> Result<(), Errno> {
        let r = self.e.unlock(o, id, flags, None);
        self.check();
        r
    }

    fn unlock(&mut self, o: Owner, id: LockId) {
        self.try_unlock(o, id, 0).expect("unlock accepted");
    }

    fn unlock_lvb(&mut self, o: Owner, id: LockId, flags: u32, lvb: Lvb) {
        let r = self.e.unlock(o, id, flags | lkf::VALBLK, Some(&lvb));
        self.check();
        r.expect("unlock accepted");
    }

    fn cancel(&mut self, o: Owner, id: LockId) -> Result<(), Errno> {
        self.try_unlock(o, id, lkf::CANCEL)
    }

    fn deadlock_cancel(&mut self, o: Owner, id: LockId) -> Result<(), Errno> {
        self.deadlock_cancel_flags(o, id, 0)
    }

    fn deadlock_cancel_flags(&mut self, o: Owner, id: LockId, flags: u32) -> Result<(), Errno> {
        let r = self.e.deadlock_cancel(o, id, flags);
        self.check();
        r
    }

    fn close(&mut self, o: Owner) {
        self.e.close_owner(o);
        self.check();
    }

    fn adopt(&mut self, o: Owner, name: &str, mode: Mode) -> Result<LockId, Errno> {
        let r = self.e.adopt_orphan(Request {
            owner: o,
            pid: o.0 as u32,
            mode: mode as i32,
            flags: lkf::ORPHAN | lkf::PERSISTENT,
            name: name.as_bytes(),
            lvb: None,
            has_bast: true,
        });
        self.check();
        r
    }

    fn purge_orphans(&mut self, pid: u32) {
        self.e.purge_orphans(pid);
        self.check();
    }

    /// The events since the last call, as `Ev`s.
    fn ev(&mut self) -> Vec<Ev> {
        self.check();
        self.e.take_events().iter().map(from_event).collect()
    }

    #[track_caller]
    fn expect(&mut self, want: &[Ev]) {
        let got = self.ev();
        assert_eq!(got, want, "\n   got: {got:#?}\n  want: {want:#?}");
    }

    #[track_caller]
    fn none(&mut self) {
        self.expect(&[]);
    }

    fn res(&self, name: &str) -> Option<ResourceInfo> {
        self.e
            .resources()
            .into_iter()
            .find(|r| r.name.as_bytes() == name.as_bytes())
    }

    /// (lkid, granted mode) of the granted queue, head first.
    fn granted(&self, name: &str) -> Vec<(LockId, Mode)> {
        self.res(name).map_or(vec![], |r| {
            r.granted
                .iter()
                .map(|l| (l.lkid, l.granted.unwrap()))
                .collect()
        })
    }

    /// (lkid, granted mode, requested mode) of the converting queue.
    fn converting(&self, name: &str) -> Vec<(LockId, Mode, Mode)> {
        self.res(name).map_or(vec![], |r| {
            r.converting
                .iter()
                .map(|l| (l.lkid, l.granted.unwrap(), l.requested.unwrap()))
                .collect()
        })
    }

    /// (lkid, requested mode) of the waiting queue.
    fn waiting(&self, name: &str) -> Vec<(LockId, Mode)> {
        self.res(name).map_or(vec![], |r| {
            r.waiting
                .iter()
                .map(|l| (l.lkid, l.requested.unwrap()))
                .collect()
        })
    }

    fn res_lvb(&self, name: &str) -> (Option<Lvb>, bool) {
        let r = self.res(name).expect("resource exists");
        (r.lvb, r.lvb_valid)
    }
}

// ----- §3.1 compatibility ---------------------------------------------------

#[test]
fn compat_matrix_decides_every_immediate_grant() {
    for held in Mode::ALL {
        for want in Mode::ALL {
            let mut h = H::new();
            let a = h.req(O1, "r", held, 0);
            h.expect(&[ast(O1, a, G)]);
            let b = h.req(O2, "r", want, lkf::NOQUEUE);
            if held.compatible(want) {
                h.expect(&[ast(O2, b, G)]);
                assert_eq!(h.granted("r").len(), 2);
            } else {
                h.expect(&[ast(O2, b, AGAIN).eol()]);
                assert_eq!(h.granted("r"), vec![(a, held)]);
            }
        }
    }
}

#[test]
fn compat_matrix_is_the_spec_table() {
    // spec §3.1, row = granted, column = requested
    let t = [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 0, 1, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
    ];
    for a in Mode::ALL {
        for b in Mode::ALL {
            assert_eq!(a.compatible(b), t[a as usize][b as usize] == 1, "{a} {b}");
        }
    }
}

// ----- §11 basics and bad input ---------------------------------------------

#[test]
fn c01_uncontended_ex_granted_status_0() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(h.granted("r"), vec![(a, Ex)]);
    assert_eq!(h.e.lock_count(), 1);
    assert_eq!(h.e.resource_count(), 1);
}

#[test]
fn c02_mode_out_of_range_einval_no_event_no_lock() {
    let mut h = H::new();
    for m in [6, -1, 255, 256, i32::MIN, i32::MAX] {
        assert_eq!(
            h.try_req(O1, "r", m, 0, None),
            Err(Errno::Inval),
            "mode {m}"
        );
    }
    h.none();
    assert_eq!(h.e.lock_count(), 0);
    assert_eq!(h.e.resource_count(), 0);
    let a = h.req(O1, "r", Pr, 0);
    h.expect(&[ast(O1, a, G)]);
    for m in [6, -1, 255] {
        assert_eq!(
            h.try_conv(O1, a, m, lkf::CONVERT),
            Err(Errno::Inval),
            "convert mode {m}"
        );
    }
    h.none();
    assert_eq!(h.granted("r"), vec![(a, Pr)]);
}

#[test]
fn c03_name_of_65_bytes_einval_64_accepted() {
    let mut h = H::new();
    let n65 = [b'x'; 65];
    let n64 = [b'x'; 64];
    assert_eq!(
        h.try_req_full(O1, &n65, Ex as i32, 0, None, true),
        Err(Errno::Inval)
    );
    h.none();
    let a = h.try_req_full(O1, &n64, Ex as i32, 0, None, true).unwrap();
    h.expect(&[ast(O1, a, G)]);
}

#[test]
fn c04_empty_name_is_a_resource_like_any_other() {
    let mut h = H::new();
    let a = h.req(O1, "", Ex, 0);
    h.expect(&[ast(O1, a, G)]);
    let b = h.req(O2, "", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O2, b, AGAIN).eol()]);
    // names are exact (bytes, length): "A" and "A\0" differ
    let x = h.try_req_full(O1, b"A", Ex as i32, 0, None, true).unwrap();
    let y = h
        .try_req_full(O2, b"A\0", Ex as i32, lkf::NOQUEUE, None, true)
        .unwrap();
    h.expect(&[ast(O1, x, G), ast(O2, y, G)]);
}

#[test]
fn c10_quecvt_without_convert_and_illegal_quecvt_einval() {
    let mut h = H::new();
    assert_eq!(
        h.try_req(O1, "r", Ex as i32, lkf::QUECVT, None),
        Err(Errno::Inval)
    );
    let a = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(
        h.try_conv(O1, a, Nl as i32, lkf::CONVERT | lkf::QUECVT),
        Err(Errno::Inval)
    );
    h.none();
    let b = h.req(O2, "q", Pr, 0);
    h.expect(&[ast(O2, b, G)]);
    assert_eq!(
        h.try_conv(O2, b, Pr as i32, lkf::CONVERT | lkf::QUECVT),
        Err(Errno::Inval)
    );
    h.none();
    assert_eq!(h.granted("r"), vec![(a, Ex)]);
    assert_eq!(h.granted("q"), vec![(b, Pr)]);
}

#[test]
fn quecvt_legality_table_is_spec_3_3() {
    // NL→{CR,CW,PR,PW,EX}; CR→{CW,PR,PW,EX}; CW→{PR,PW,EX}; PR→{CW,PW,EX}; PW→{EX}
    let legal = |f: Mode, t: Mode| (t as u8 > f as u8) || (f == Pr && t == Cw);
    for from in Mode::ALL {
        for to in Mode::ALL {
            let mut h = H::new();
            let a = h.req(O1, "r", from, 0);
            h.expect(&[ast(O1, a, G)]);
            let r = h.try_conv(O1, a, to as i32, lkf::CONVERT | lkf::QUECVT);
            if legal(from, to) {
                assert_eq!(r, Ok(()), "{from}->{to}");
                h.expect(&[ast(O1, a, G)]);
                assert_eq!(h.granted("r"), vec![(a, to)]);
            } else {
                assert_eq!(r, Err(Errno::Inval), "{from}->{to}");
                h.none();
                assert_eq!(h.granted("r"), vec![(a, from)]);
            }
        }
    }
}

#[test]
fn c11_convdeadlk_without_convert_or_with_noqueue_einval() {
    let mut h = H::new();
    assert_eq!(
        h.try_req(O1, "r", Ex as i32, lkf::CONVDEADLK, None),
        Err(Errno::Inval)
    );
    let a = h.req(O1, "r", Pr, 0);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(
        h.try_conv(
            O1,
            a,
            Ex as i32,
            lkf::CONVERT | lkf::CONVDEADLK | lkf::NOQUEUE
        ),
        Err(Errno::Inval)
    );
    h.none();
}

#[test]
fn c12_expedite_only_for_new_nl_without_noqueue() {
    let mut h = H::new();
    for m in [Cr, Cw, Pr, Pw, Ex] {
        assert_eq!(
            h.try_req(O1, "r", m as i32, lkf::EXPEDITE, None),
            Err(Errno::Inval),
            "{m}"
        );
    }
    assert_eq!(
        h.try_req(O1, "r", Nl as i32, lkf::EXPEDITE | lkf::NOQUEUE, None),
        Err(Errno::Inval)
    );
    assert_eq!(
        h.try_req(O1, "r", Nl as i32, lkf::EXPEDITE | lkf::QUECVT, None),
        Err(Errno::Inval)
    );
    let a = h.req(O1, "r", Nl, 0);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(
        h.try_conv(O1, a, Nl as i32, lkf::CONVERT | lkf::EXPEDITE),
        Err(Errno::Inval)
    );
    h.none();
    assert_eq!(h.e.lock_count(), 1);
}

#[test]
fn c15_cancel_flag_on_a_lock_call_einval() {
    let mut h = H::new();
    assert_eq!(
        h.try_req(O1, "r", Ex as i32, lkf::CANCEL, None),
        Err(Errno::Inval)
    );
    let a = h.req(O1, "r", Pr, 0);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(
        h.try_conv(O1, a, Ex as i32, lkf::CONVERT | lkf::CANCEL),
        Err(Errno::Inval)
    );
    h.none();
    assert_eq!(h.e.lock_count(), 1);
}

#[test]
fn request_with_convert_or_orphan_flag_is_refused_by_request() {
    let mut h = H::new();
    assert_eq!(
        h.try_req(O1, "r", Ex as i32, lkf::CONVERT, None),
        Err(Errno::Inval)
    );
    assert_eq!(
        h.try_req(O1, "r", Ex as i32, lkf::ORPHAN, None),
        Err(Errno::Inval)
    );
    h.none();
    assert_eq!(h.e.lock_count(), 0);
}

#[test]
fn c66_unknown_and_ignored_flag_bits_accepted() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0x0010_0000 | lkf::TIMEOUT | lkf::NODLCKBLK);
    h.expect(&[ast(O1, a, G)]);
    let b = h.req(O2, "r", Ex, lkf::TIMEOUT);
    h.expect(&[bast(O1, a, Ex)]);
    assert_eq!(h.waiting("r"), vec![(b, Ex)]);
}

#[test]
fn c08_convert_of_lkid_0_or_unknown_enoent() {
    let mut h = H::new();
    assert_eq!(
        h.try_conv(O1, LockId(0), Ex as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    assert_eq!(
        h.try_conv(O1, LockId(0x7777), Ex as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    assert_eq!(
        h.try_conv(O1, LockId(u32::MAX), Ex as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    // unknown id is checked before the arguments (kernel: find_lkb first)
    assert_eq!(
        h.try_conv(O1, LockId(9), 6, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    h.none();
}

#[test]
fn c09_convert_of_waiting_or_converting_lock_ebusy_before_quecvt_einval() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, a, G), bast(O1, a, Ex)]);
    assert_eq!(h.try_conv(O2, w, Nl as i32, lkf::CONVERT), Err(Errno::Busy));
    // QUECVT EX->NL would be EINVAL, but EBUSY comes first
    assert_eq!(
        h.try_conv(O2, w, Nl as i32, lkf::CONVERT | lkf::QUECVT),
        Err(Errno::Busy)
    );
    let b = h.req(O3, "q", Pr, 0);
    let c = h.req(O4, "q", Pr, 0);
    h.expect(&[ast(O3, b, G), ast(O4, c, G)]);
    h.conv(O3, b, Ex, 0);
    h.expect(&[bast(O4, c, Ex)]);
    assert_eq!(h.try_conv(O3, b, Nl as i32, lkf::CONVERT), Err(Errno::Busy));
    h.none();
    assert_eq!(h.converting("q"), vec![(b, Pr, Ex)]);
    assert_eq!(h.waiting("r"), vec![(w, Ex)]);
}

// ----- §3.3 grant rules -------------------------------------------------------

#[test]
fn c13_expedite_nl_granted_at_once() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Pr)]);
    let n = h.req(O3, "r", Nl, lkf::EXPEDITE);
    h.expect(&[ast(O3, n, G)]);
    assert_eq!(h.waiting("r"), vec![(w, Pr)]);
}

#[test]
fn c14_plain_nl_waits_behind_a_waiter() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    let n = h.req(O3, "r", Nl, 0);
    h.none();
    assert_eq!(h.waiting("r"), vec![(w, Ex), (n, Nl)]);
    // the waiter ahead is cancelled: the NL request is granted
    h.cancel(O2, w).unwrap();
    h.expect(&[ast(O2, w, CANCEL).eol(), ast(O3, n, G)]);
    assert_eq!(h.waiting("r"), vec![]);
}

#[test]
fn c14_plain_nl_granted_right_after_the_waiter_ahead() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Ex, 0);
    let n = h.req(O3, "r", Nl, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK), ast(O2, w, G), ast(O3, n, G)]);
}

#[test]
fn c16_noqueue_conflict_eagain_id_dead_no_bast() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, x, G)]);
    let b = h.req(O2, "r", Ex, lkf::NOQUEUE);
    assert_ne!(b, x);
    h.expect(&[ast(O2, b, AGAIN).eol()]);
    assert_eq!(h.try_unlock(O2, b, 0), Err(Errno::NoEnt));
    assert_eq!(
        h.try_conv(O2, b, Nl as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    assert_eq!(h.cancel(O2, b), Err(Errno::NoEnt));
    h.none();
    assert_eq!(h.e.lock_count(), 1);
}

#[test]
fn c17_noqueuebast_completion_first_then_bast() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, x, G)]);
    let b = h.req(O2, "r", Ex, lkf::NOQUEUE | lkf::NOQUEUEBAST);
    h.expect(&[ast(O2, b, AGAIN).eol(), bast(O1, x, Ex)]);
    assert_eq!(h.e.lock_count(), 1);
}

#[test]
fn noqueuebast_reaches_converting_holders_plain_queueing_does_not() {
    // X (PR) converting to EX behind Y (PR): Y got the EX BAST already.
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let y = h.req(O2, "r", Pr, 0);
    h.conv(O1, x, Ex, 0);
    h.expect(&[ast(O1, x, G), ast(O2, y, G), bast(O2, y, Ex)]);
    // a PW request that is merely queued BASTs granted-queue holders only
    let q = h.req(O3, "r", Pw, 0);
    h.none(); // Y's highbast is EX already; X is converting
    h.unlock(O3, q);
    h.expect(&[ast(O3, q, UNLOCK)]);
    // NOQUEUE|NOQUEUEBAST also BASTs the converting holder X (granted PR)
    let c = h.req(O4, "r", Pw, lkf::NOQUEUE | lkf::NOQUEUEBAST);
    h.expect(&[ast(O4, c, AGAIN).eol(), bast(O1, x, Pw)]);
}

#[test]
fn c19_noqueue_conversion_eagain_keeps_old_mode() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G)]);
    h.conv(O1, a, Ex, lkf::NOQUEUE);
    h.expect(&[ast(O1, a, AGAIN)]); // not end of life
    assert_eq!(h.e.lock_info_by_id(a).unwrap().granted, Some(Pr));
    assert_eq!(h.e.lock_info_by_id(a).unwrap().queue, QueueKind::Granted);
    let c = h.req(O3, "r", Pr, lkf::NOQUEUE);
    h.expect(&[ast(O3, c, G)]);
    let d = h.req(O4, "r", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O4, d, AGAIN).eol()]);
    // the lock is still usable
    h.conv(O1, a, Nl, 0);
    h.expect(&[ast(O1, a, G)]);
}

#[test]
fn c20_fifo_only_first_waiter_granted() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let a = h.req(O2, "r", Pr, 0);
    let b = h.req(O3, "r", Ex, 0);
    let c = h.req(O4, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Pr), bast(O1, x, Ex)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK), ast(O2, a, G), bast(O2, a, Ex)]);
    assert_eq!(h.waiting("r"), vec![(b, Ex), (c, Pr)]);
    h.unlock(O2, a);
    h.expect(&[ast(O2, a, UNLOCK), ast(O3, b, G), bast(O3, b, Pr)]);
    h.unlock(O3, b);
    h.expect(&[ast(O3, b, UNLOCK), ast(O4, c, G)]);
}

#[test]
fn c21_compatible_request_waits_behind_incompatible_waiter() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let w = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    let n = h.req(O3, "r", Pr, 0);
    h.none();
    assert_eq!(h.waiting("r"), vec![(w, Ex), (n, Pr)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK), ast(O2, w, G), bast(O2, w, Pr)]);
}

#[test]
fn c21_noorder_request_jumps_incompatible_waiter() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let w = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    let n = h.req(O3, "r", Pr, lkf::NOORDER);
    h.expect(&[ast(O3, n, G)]);
    assert_eq!(h.waiting("r"), vec![(w, Ex)]);
}

#[test]
fn noorder_queued_request_granted_out_of_order() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Ex, 0);
    let n = h.req(O3, "r", Cr, lkf::NOORDER);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    // EX->PR: the NOORDER CR behind the EX waiter is granted anyway
    h.conv(O1, x, Pr, 0);
    h.expect(&[
        ast(O1, x, G),
        ast(O3, n, G),
        bast(O3, n, Ex),
        bast(O1, x, Ex),
    ]);
    assert_eq!(h.waiting("r"), vec![(w, Ex)]);
}

#[test]
fn noorder_queued_conversion_granted_out_of_order() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, 0);
    let a = h.req(O2, "r", Nl, 0);
    let b = h.req(O3, "r", Nl, 0);
    let z = h.req(O4, "r", Nl, 0);
    h.expect(&[ast(O1, p, G), ast(O2, a, G), ast(O3, b, G), ast(O4, z, G)]);
    h.conv(O2, a, Ex, 0);
    h.expect(&[bast(O1, p, Ex)]);
    // QUECVT puts B's compatible NL->CR behind A's conversion ...
    h.conv(O3, b, Cr, lkf::QUECVT | lkf::NOORDER);
    h.none();
    assert_eq!(h.converting("r"), vec![(a, Nl, Ex), (b, Nl, Cr)]);
    // ... and NOORDER lets it through at the next grant pass
    h.unlock(O4, z);
    h.expect(&[ast(O4, z, UNLOCK), ast(O3, b, G), bast(O3, b, Ex)]);
    assert_eq!(h.converting("r"), vec![(a, Nl, Ex)]);
}

#[test]
fn queued_conversion_without_noorder_waits_for_the_one_ahead() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, 0);
    let a = h.req(O2, "r", Nl, 0);
    let b = h.req(O3, "r", Nl, 0);
    let z = h.req(O4, "r", Nl, 0);
    h.conv(O2, a, Ex, 0);
    h.conv(O3, b, Cr, lkf::QUECVT);
    h.expect(&[
        ast(O1, p, G),
        ast(O2, a, G),
        ast(O3, b, G),
        ast(O4, z, G),
        bast(O1, p, Ex),
    ]);
    h.unlock(O4, z);
    h.expect(&[ast(O4, z, UNLOCK)]);
    assert_eq!(h.converting("r"), vec![(a, Nl, Ex), (b, Nl, Cr)]);
    // once A is out of the way, B follows
    h.cancel(O2, a).unwrap();
    h.expect(&[ast(O2, a, CANCEL), ast(O3, b, G)]);
}

#[test]
fn c22_conversion_priority_granted_in_place() {
    let mut h = H::new();
    let a = h.req(O1, "r", Nl, 0);
    let b = h.req(O2, "r", Pr, 0);
    let c = h.req(O3, "r", Ex, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G), bast(O2, b, Ex)]);
    h.conv(O1, a, Pr, 0);
    // granted at once; the grant pass then BASTs A for the still blocked EX
    h.expect(&[ast(O1, a, G), bast(O1, a, Ex)]);
    assert_eq!(h.waiting("r"), vec![(c, Ex)]);
}

#[test]
fn c23_quecvt_queues_behind_conversion() {
    for quecvt in [true, false] {
        let mut h = H::new();
        let a = h.req(O1, "r", Pr, 0);
        let c = h.req(O3, "r", Nl, 0);
        let b = h.req(O2, "r", Nl, 0);
        h.conv(O3, c, Ex, 0);
        h.expect(&[ast(O1, a, G), ast(O3, c, G), ast(O2, b, G), bast(O1, a, Ex)]);
        h.conv(O2, b, Pr, if quecvt { lkf::QUECVT } else { 0 });
        if quecvt {
            h.none();
            assert_eq!(h.converting("r"), vec![(c, Nl, Ex), (b, Nl, Pr)]);
        } else {
            h.expect(&[ast(O2, b, G), bast(O2, b, Ex)]);
            assert_eq!(h.converting("r"), vec![(c, Nl, Ex)]);
        }
    }
}

#[test]
fn quecvt_with_empty_converting_queue_granted_now() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let w = h.req(O2, "r", Ex, 0);
    let b = h.req(O3, "r", Nl, lkf::EXPEDITE);
    h.expect(&[ast(O1, a, G), bast(O1, a, Ex), ast(O3, b, G)]);
    h.conv(O3, b, Pr, lkf::QUECVT);
    h.expect(&[ast(O3, b, G), bast(O3, b, Ex)]);
    assert_eq!(h.waiting("r"), vec![(w, Ex)]);
}

#[test]
fn c24_headque_goes_first() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let a = h.req(O2, "r", Ex, 0);
    let b = h.req(O3, "r", Pr, lkf::HEADQUE);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    assert_eq!(h.waiting("r"), vec![(b, Pr), (a, Ex)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK), ast(O3, b, G), bast(O3, b, Ex)]);
    assert_eq!(h.waiting("r"), vec![(a, Ex)]);
}

#[test]
fn headque_puts_a_conversion_at_the_head_of_the_converting_queue() {
    for headque in [true, false] {
        let mut h = H::new();
        let x = h.req(O1, "r", Ex, 0);
        let a = h.req(O2, "r", Nl, 0);
        let b = h.req(O3, "r", Nl, 0);
        h.conv(O2, a, Pw, 0);
        h.conv(O3, b, Pr, if headque { lkf::HEADQUE } else { 0 });
        h.expect(&[ast(O1, x, G), ast(O2, a, G), ast(O3, b, G), bast(O1, x, Pw)]);
        h.conv(O1, x, Pr, 0);
        if headque {
            assert_eq!(h.converting("r"), vec![(a, Nl, Pw)]);
            h.expect(&[
                ast(O1, x, G),
                ast(O3, b, G),
                bast(O3, b, Pw),
                bast(O1, x, Pw),
            ]);
        } else {
            assert_eq!(h.converting("r"), vec![(a, Nl, Pw), (b, Nl, Pr)]);
            h.expect(&[ast(O1, x, G), bast(O1, x, Pw)]);
        }
    }
}

#[test]
fn c25_conversion_served_before_waiting_request() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let y = h.req(O2, "r", Nl, lkf::EXPEDITE);
    h.conv(O2, y, Pr, 0);
    let z = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), ast(O2, y, G), bast(O1, x, Pr)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK), ast(O2, y, G), ast(O2, z, G)]);
}

#[test]
fn c30_down_conversion_granted_then_waiters() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, a, G), bast(O1, a, Pr)]);
    h.conv(O1, a, Nl, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G)]);
}

#[test]
fn grant_pass_runs_after_cancel_of_a_blocking_waiter() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let w = h.req(O2, "r", Ex, 0);
    let n = h.req(O3, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    h.cancel(O2, w).unwrap();
    h.expect(&[ast(O2, w, CANCEL).eol(), ast(O3, n, G)]);
}

#[test]
fn c53_same_owner_two_locks_on_one_name_block_each_other() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    let b = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, a, G), bast(O1, a, Ex)]);
    assert_eq!(h.waiting("r"), vec![(b, Ex)]);
    let c = h.req(O1, "r", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O1, c, AGAIN).eol()]);
}

// ----- §3.4 alternate modes ---------------------------------------------------

#[test]
fn c28_altpr_grants_pr_with_altmode() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let a = h.req(O2, "r", Cw, lkf::ALTPR);
    h.expect(&[ast(O1, x, G), ast(O2, a, G).sbf(sbf::ALTMODE)]);
    assert_eq!(h.e.lock_info_by_id(a).unwrap().granted, Some(Pr));
    let e = h.req(O3, "r", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O3, e, AGAIN).eol()]);
    let p = h.req(O4, "r", Pr, 0);
    h.expect(&[ast(O4, p, G)]);
}

#[test]
fn c29_altcw_grants_cw_with_altmode() {
    let mut h = H::new();
    let x = h.req(O1, "r", Cw, 0);
    let a = h.req(O2, "r", Pr, lkf::ALTCW);
    h.expect(&[ast(O1, x, G), ast(O2, a, G).sbf(sbf::ALTMODE)]);
    assert_eq!(h.e.lock_info_by_id(a).unwrap().granted, Some(Cw));
}

#[test]
fn altpr_takes_precedence_over_altcw() {
    let mut h = H::new();
    let x = h.req(O1, "r", Cr, 0);
    let a = h.req(O2, "r", Ex, lkf::ALTPR | lkf::ALTCW);
    h.expect(&[ast(O1, x, G), ast(O2, a, G).sbf(sbf::ALTMODE)]);
    assert_eq!(h.e.lock_info_by_id(a).unwrap().granted, Some(Pr));
}

#[test]
fn altpr_not_grantable_queues_in_requested_mode_and_is_retried_later() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let a = h.req(O2, "r", Cw, lkf::ALTPR);
    h.expect(&[ast(O1, x, G), bast(O1, x, Cw)]);
    assert_eq!(h.waiting("r"), vec![(a, Cw)]);
    h.conv(O1, x, Pr, 0);
    h.expect(&[ast(O1, x, G), ast(O2, a, G).sbf(sbf::ALTMODE)]);
    assert_eq!(h.granted("r"), vec![(a, Pr), (x, Pr)]);
}

#[test]
fn altpr_on_a_conversion() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let a = h.req(O2, "r", Nl, 0);
    h.conv(O2, a, Ex, lkf::ALTPR);
    h.expect(&[
        ast(O1, x, G),
        ast(O2, a, G),
        ast(O2, a, G).sbf(sbf::ALTMODE),
    ]);
    assert_eq!(h.e.lock_info_by_id(a).unwrap().granted, Some(Pr));
}

#[test]
fn noqueue_alt_failure_is_eagain_in_requested_mode() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let a = h.req(O2, "r", Cw, lkf::ALTPR | lkf::NOQUEUE | lkf::NOQUEUEBAST);
    h.expect(&[ast(O1, x, G), ast(O2, a, AGAIN).eol(), bast(O1, x, Cw)]);
}

/// A queued conversion whose alternate mode equals its granted mode: the
/// conversion is granted in the alternate mode (spec §3.4) and the lock must
/// end on the granted queue with one completion.
#[test]
fn altmode_equal_to_granted_mode_on_queued_conversion_ends_granted() {
    let mut h = H::new();
    let x = h.req(O1, "r", Cw, 0);
    let hc = h.req(O2, "r", Cr, 0);
    let f = h.req(O3, "r", Nl, 0);
    h.expect(&[ast(O1, x, G), ast(O2, hc, G), ast(O3, f, G)]);
    h.conv(O3, f, Pr, 0); // blocked by X's CW
    h.expect(&[bast(O1, x, Pr)]);
    // X: CW->EX, EX blocked by the CR holder; deadlock with F (NODLCKWT: queue anyway)
    h.conv(O1, x, Ex, lkf::QUECVT | lkf::ALTCW | lkf::NODLCKWT);
    h.expect(&[bast(O2, hc, Ex)]);
    assert_eq!(h.converting("r"), vec![(f, Nl, Pr), (x, Cw, Ex)]);
    // F gives up: X is first; EX still blocked by CR, the alternate CW is grantable
    h.cancel(O3, f).unwrap();
    h.expect(&[ast(O3, f, CANCEL), ast(O1, x, G).sbf(sbf::ALTMODE)]);
    assert_eq!(h.converting("r"), vec![]);
    let info = h.e.lock_info_by_id(x).unwrap();
    assert_eq!(
        (info.queue, info.granted, info.requested),
        (QueueKind::Granted, Some(Cw), None)
    );
}

// ----- §3.5 conversion deadlock ---------------------------------------------------

#[test]
fn c26_conversion_deadlock_edeadlk() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G)]);
    h.conv(O1, a, Ex, 0);
    h.expect(&[bast(O2, b, Ex)]); // oracle 02 #17: the second converter's BAST first
    h.conv(O2, b, Ex, 0);
    h.expect(&[ast(O2, b, DEADLK)]); // #18; not end of life
    assert_eq!(h.e.lock_info_by_id(b).unwrap().granted, Some(Pr));
    assert_eq!(h.e.lock_info_by_id(b).unwrap().queue, QueueKind::Granted);
    h.unlock(O2, b);
    h.expect(&[ast(O2, b, UNLOCK), ast(O1, a, G)]); // #19, #20
}

#[test]
fn c27_convdeadlk_demotes_to_nl() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G), bast(O2, b, Ex)]); // #21-#23
    h.conv(O2, b, Ex, lkf::CONVDEADLK);
    h.expect(&[ast(O1, a, G), bast(O1, a, Ex)]); // #24, #25
    assert_eq!(h.converting("r"), vec![(b, Nl, Ex)]);
    let p = h.req(O3, "r", Pr, lkf::NOQUEUE);
    h.expect(&[ast(O3, p, AGAIN).eol()]); // #26
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK), ast(O2, b, G).sbf(sbf::DEMOTED)]); // #27, #28
}

#[test]
fn c27_convdeadlk_demoted_lock_granted_at_once_when_compatible() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Cw, 0);
    // PR/CW: the PR holder gets a CW BAST
    h.expect(&[ast(O1, a, G), ast(O2, b, G), bast(O2, b, Cw)]);
    h.conv(O2, b, Cw, lkf::CONVDEADLK);
    h.expect(&[ast(O1, a, G), ast(O2, b, G).sbf(sbf::DEMOTED)]);
    assert_eq!(h.granted("r"), vec![(b, Cw), (a, Cw)]);
}

#[test]
fn nodlckwt_queues_the_deadlocked_conversion_and_basts_itself() {
    let mut h = H::new();
    // A: PR->PW queued behind B's PR (B is BASTed PW); B: PR->EX deadlocks
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    let z = h.req(O3, "r", Nl, 0);
    h.conv(O1, a, Pw, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G), ast(O3, z, G), bast(O2, b, Pw)]);
    h.conv(O2, b, Ex, lkf::NODLCKWT);
    h.none(); // no EDEADLK: queued
    assert_eq!(h.converting("r"), vec![(a, Pr, Pw), (b, Pr, Ex)]);
    // at the next grant pass the deadlock is still there: B is BASTed with its own mode
    h.unlock(O3, z);
    h.expect(&[ast(O3, z, UNLOCK), bast(O2, b, Ex)]);
    // once only (EXPEDITE: a plain new request would wait behind the conversions)
    let y = h.req(O3, "r", Nl, lkf::EXPEDITE);
    h.unlock(O3, y);
    h.expect(&[ast(O3, y, G), ast(O3, y, UNLOCK)]);
    // nothing was cancelled; B backs off by cancelling, A is still blocked by B's PR
    h.cancel(O2, b).unwrap();
    h.expect(&[ast(O2, b, CANCEL)]);
    h.unlock(O2, b);
    h.expect(&[ast(O2, b, UNLOCK), ast(O1, a, G)]);
}

#[test]
fn nodlckwt_self_bast_dropped_when_compatible_with_last_completion_mode() {
    // A: PW->EX queued behind C's CR. B gets CR through NOORDER (so it was
    // never BASTed), then B: CR->PR|NODLCKWT deadlocks with A. At the next
    // grant pass B's self-BAST (PR) is compatible with B's last completion
    // mode (CR): dropped at delivery (spec §4.3).
    let mut h = H::new();
    let a = h.req(O1, "r", Pw, 0);
    let c = h.req(O2, "r", Cr, 0);
    let z = h.req(O3, "r", Nl, 0);
    h.conv(O1, a, Ex, 0);
    h.expect(&[ast(O1, a, G), ast(O2, c, G), ast(O3, z, G), bast(O2, c, Ex)]);
    let b = h.req(O4, "r", Cr, lkf::NOORDER);
    h.expect(&[ast(O4, b, G)]);
    h.conv(O4, b, Pr, lkf::NODLCKWT);
    h.none();
    assert_eq!(h.converting("r"), vec![(a, Pw, Ex), (b, Cr, Pr)]);
    h.unlock(O3, z);
    h.expect(&[ast(O3, z, UNLOCK)]);
}

// ----- §3.7 / §4 BASTs ------------------------------------------------------------

#[test]
fn c54_bast_once_per_mode_fresh_after_regrant() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let a = h.req(O2, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Pr)]);
    let b = h.req(O3, "r", Pr, 0);
    h.none(); // same mode again: no second BAST
              // EX->EX re-grants the holder: a fresh BAST after the conversion's AST
    h.conv(O1, x, Ex, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Pr)]);
    assert_eq!(h.waiting("r"), vec![(a, Pr), (b, Pr)]);
}

#[test]
fn bast_repeated_for_a_higher_mode_oracle_04_step2() {
    let mut h = H::new();
    let b = h.req(O2, "R1", Ex, 0);
    h.expect(&[ast(O2, b, G)]);
    let c = h.req(O3, "R1", Pr, 0);
    h.expect(&[bast(O2, b, Pr)]); // #5
    let a = h.req(O1, "R1", Ex, 0);
    h.expect(&[bast(O2, b, Ex)]); // #6
                                  // B down-converts EX->PR. The engine emits in generation order:
                                  // B's AST, C's AST (C granted by the grant pass), then the BASTs for the
                                  // still blocked EX, newest granted first (C, B). The 6.1 kernel delivered
                                  // AST B, BAST B, AST C, BAST C because it grouped callbacks per lock; the
                                  // node's delivery layer decides the order on one fd.
    h.conv(O2, b, Pr, 0);
    h.expect(&[
        ast(O2, b, G),
        ast(O3, c, G),
        bast(O3, c, Ex),
        bast(O2, b, Ex),
    ]);
    h.unlock(O2, b);
    h.expect(&[ast(O2, b, UNLOCK)]);
    h.unlock(O3, c);
    h.expect(&[ast(O3, c, UNLOCK), ast(O1, a, G)]);
}

#[test]
fn oracle_04_step1_bast_then_unlock_grants_waiter() {
    let mut h = H::new();
    let a = h.req(O1, "R1", Ex, 0);
    h.expect(&[ast(O1, a, G)]);
    let b = h.req(O2, "R1", Ex, 0);
    h.expect(&[bast(O1, a, Ex)]);
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK), ast(O2, b, G)]);
}

#[test]
fn oracle_04_step3_plain_noqueue_no_bast_noqueuebast_one() {
    let mut h = H::new();
    let a = h.req(O1, "R1", Ex, 0);
    h.expect(&[ast(O1, a, G)]);
    let d = h.req(O4, "R1", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O4, d, AGAIN).eol()]);
    let d2 = h.req(O4, "R1", Ex, lkf::NOQUEUE | lkf::NOQUEUEBAST);
    h.expect(&[ast(O4, d2, AGAIN).eol(), bast(O1, a, Ex)]);
}

#[test]
fn oracle_04_step4_basts_newest_granted_first() {
    let mut h = H::new();
    let a = h.req(O1, "R2", Pr, 0);
    let b = h.req(O2, "R2", Pr, 0);
    let c = h.req(O3, "R2", Pr, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G), ast(O3, c, G)]);
    let e = h.req(O5, "R2", Ex, 0);
    h.expect(&[bast(O3, c, Ex), bast(O2, b, Ex), bast(O1, a, Ex)]);
    h.unlock(O1, a);
    h.unlock(O2, b);
    h.unlock(O3, c);
    h.expect(&[
        ast(O1, a, UNLOCK),
        ast(O2, b, UNLOCK),
        ast(O3, c, UNLOCK),
        ast(O5, e, G),
    ]);
}

#[test]
fn c55_no_bast_for_a_compatible_request() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let c = h.req(O2, "r", Cr, 0);
    h.expect(&[ast(O1, x, G), ast(O2, c, G)]);
    let w = h.req(O3, "r", Ex, 0);
    // only the holders whose mode blocks EX, newest first
    h.expect(&[bast(O2, c, Ex), bast(O1, x, Ex)]);
    let n = h.req(O4, "r", Nl, 0);
    h.none();
    assert_eq!(h.waiting("r"), vec![(w, Ex), (n, Nl)]);
}

#[test]
fn c05_no_bast_routine_means_no_bast_ever() {
    let mut h = H::new();
    let x = h.req_nobast(O1, "r", Ex, 0);
    h.expect(&[ast(O1, x, G)]);
    let _a = h.req(O2, "r", Pr, 0);
    let b = h.req(O3, "r", Ex, lkf::NOQUEUE | lkf::NOQUEUEBAST);
    h.expect(&[ast(O3, b, AGAIN).eol()]);
    h.conv_nobast(O1, x, Ex, 0);
    h.expect(&[ast(O1, x, G)]);
}

#[test]
fn c57_conversion_without_bast_routine_turns_basts_off() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    h.conv_nobast(O1, x, Pr, 0);
    h.expect(&[ast(O1, x, G), ast(O1, x, G)]);
    let _w = h.req(O2, "r", Ex, 0);
    h.none();
}

#[test]
fn second_bast_for_same_pr_cw_mode_is_dropped_higher_modes_get_through() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    h.expect(&[ast(O1, x, G)]);
    let _a = h.req(O2, "r", Cw, 0);
    h.expect(&[bast(O1, x, Cw)]);
    // PR/CW may repeat at the master (up to EX), but the previous callback
    // was a BAST for the same mode: dropped (spec §4.3)
    let _b = h.req(O3, "r", Cw, 0);
    h.none();
    let _c = h.req(O4, "r", Pw, 0);
    h.expect(&[bast(O1, x, Pw)]);
    let _d = h.req(O5, "r", Ex, 0);
    h.expect(&[bast(O1, x, Ex)]);
    let _e = h.req(O5, "r", Cw, 0);
    h.none();
}

#[test]
fn grant_pass_pr_holder_gets_cw_bast_when_cw_and_pr_are_blocked() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w1 = h.req(O2, "r", Cw, 0);
    let w2 = h.req(O3, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Cw), bast(O1, x, Pr)]);
    h.conv(O1, x, Pr, 0);
    // highest blocked mode is PR (not first), a CW is blocked too: BAST mode CW
    h.expect(&[ast(O1, x, G), bast(O1, x, Cw)]);
    assert_eq!(h.waiting("r"), vec![(w1, Cw), (w2, Pr)]);
}

/// §4.3: after a grant pass a holder is BASTed again only for a strictly
/// higher blocking mode; the PR/CW exception of the grant pass is for a PR
/// holder while a CW request is blocked (kernel lock_requires_bast). A CW
/// holder already BASTed for PR gets no second PR BAST.
#[test]
fn grant_pass_does_not_repeat_a_pr_bast_to_a_cw_holder() {
    let mut h = H::new();
    let x = h.req(O1, "r", Cw, 0);
    let z = h.req(O2, "r", Cr, 0);
    let w = h.req(O3, "r", Pr, 0);
    h.expect(&[ast(O1, x, G), ast(O2, z, G), bast(O1, x, Pr)]);
    h.conv(O1, x, Ex, lkf::NOQUEUE); // blocked by Z's CR
    h.expect(&[ast(O1, x, AGAIN)]);
    // a grant pass with PR still blocked: X's highbast is PR already
    h.unlock(O2, z);
    h.expect(&[ast(O2, z, UNLOCK)]);
    assert_eq!(h.waiting("r"), vec![(w, Pr)]);
}

#[test]
fn c56_grant_ast_before_later_bast_for_the_same_lock() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let a = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, x, G), bast(O1, x, Ex)]);
    h.unlock(O1, x);
    let b = h.req(O3, "r", Pr, 0);
    h.expect(&[ast(O1, x, UNLOCK), ast(O2, a, G), bast(O2, a, Pr)]);
    let _ = b;
}

// ----- §5 lock value blocks ----------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Xfer {
    Read,
    Write,
    Nothing,
}

fn spec_lvb_table(from: Option<Mode>, to: Mode) -> Xfer {
    use Xfer::*;
    match from {
        None => Read,
        Some(f) => match (f, to) {
            (Pw, Ex) => Read,
            (Pw | Ex, _) => Write,
            (f, t) if t as u8 >= f as u8 => Read,
            _ => Nothing,
        },
    }
}

#[test]
fn lvb_transfer_table_every_transition_spec_5_2() {
    let old = v("old-value");
    let mine = v("mine");
    for from in [
        None,
        Some(Nl),
        Some(Cr),
        Some(Cw),
        Some(Pr),
        Some(Pw),
        Some(Ex),
    ] {
        for to in Mode::ALL {
            let mut h = H::new();
            // the anchor keeps the resource; W stores "old-value"
            let anchor = h.req(O1, "r", Nl, 0);
            let w = h.req(O2, "r", Ex, lkf::VALBLK);
            h.conv_lvb(O2, w, Nl, 0, old);
            h.ev();
            assert_eq!(h.res_lvb("r"), (Some(old), true));
            let what = spec_lvb_table(from, to);
            let l = match from {
                None => {
                    let l = h.req(O3, "r", to, lkf::VALBLK);
                    assert_eq!(what, Xfer::Read);
                    h.expect(&[ast(O3, l, G).lvb(old)]);
                    l
                }
                Some(f) => {
                    let l = h.req(O3, "r", f, 0);
                    h.expect(&[ast(O3, l, G)]);
                    h.conv_lvb(O3, l, to, 0, mine);
                    match what {
                        Xfer::Read => h.expect(&[ast(O3, l, G).lvb(old)]),
                        Xfer::Write => h.expect(&[ast(O3, l, G)]),
                        Xfer::Nothing => h.expect(&[ast(O3, l, G).lvb(mine)]),
                    }
                    l
                }
            };
            let stored = if what == Xfer::Write { mine } else { old };
            assert_eq!(h.res_lvb("r"), (Some(stored), true), "{from:?}->{to}");
            let _ = (anchor, l);
        }
    }
}

#[test]
fn c42_lvb_written_by_down_conversion_read_by_next_grant() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, lkf::VALBLK);
    h.expect(&[ast(O1, a, G).lvb(ZERO)]);
    h.conv_lvb(O1, a, Nl, 0, v("X"));
    h.expect(&[ast(O1, a, G)]); // a W transition: no LVB copied back
    let b = h.req(O2, "r", Pr, lkf::VALBLK);
    h.expect(&[ast(O2, b, G).lvb(v("X"))]);
}

#[test]
fn c43_pr_to_nl_does_not_write_nl_to_pr_reads() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Nl, 0, v("hello"));
    let b = h.req(O2, "r", Pr, 0);
    h.ev();
    h.conv_lvb(O2, b, Nl, 0, v("written-by-PR"));
    h.expect(&[ast(O2, b, G).lvb(v("written-by-PR"))]);
    assert_eq!(h.res_lvb("r"), (Some(v("hello")), true));
    h.conv_lvb(O2, b, Pr, 0, v("junk"));
    h.expect(&[ast(O2, b, G).lvb(v("hello"))]);
}

#[test]
fn c44_ex_to_ex_with_valblk_writes() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Ex, 0, v("v2"));
    h.expect(&[ast(O1, a, G).lvb(ZERO), ast(O1, a, G)]);
    assert_eq!(h.res_lvb("r"), (Some(v("v2")), true));
}

#[test]
fn c45_lvb_discarded_with_the_resource() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Nl, 0, v("survives?"));
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, G).lvb(ZERO), ast(O1, a, G), ast(O1, a, UNLOCK)]);
    assert_eq!(h.e.resource_count(), 0);
    let b = h.req(O2, "r", Pr, lkf::VALBLK);
    h.expect(&[ast(O2, b, G).lvb(ZERO)]);
}

#[test]
fn c46_first_valblk_read_gives_zeros_without_valnotvalid() {
    // oracle 03: "anchor: NL|VALBLK on new resource (buf was 0xEE) -> 00..(x32)"
    // and "A: EX|VALBLK (buf was 0xAA) -> 00..(x32)": a new request reads,
    // and what the caller's buffer held is never handed back.
    let mut h = H::new();
    let anchor = h
        .try_req(O1, "L", Nl as i32, lkf::VALBLK, Some(&[0xEE; 32]))
        .unwrap();
    h.expect(&[ast(O1, anchor, G).lvb(ZERO)]);
    let a = h
        .try_req(O2, "L", Ex as i32, lkf::VALBLK, Some(&[0xAA; 32]))
        .unwrap();
    h.expect(&[ast(O2, a, G).lvb(ZERO)]);
    assert_eq!(h.res_lvb("L"), (None, true));
}

#[test]
fn c47_ivvalblk_marks_valnotvalid_until_next_write() {
    let mut h = H::new();
    let anchor = h.req(O3, "L", Nl, 0);
    let a = h.req(O1, "L", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Ex, 0, v("v3"));
    h.expect(&[ast(O3, anchor, G), ast(O1, a, G).lvb(ZERO), ast(O1, a, G)]);
    h.conv(O1, a, Nl, lkf::IVVALBLK);
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(h.res_lvb("L"), (Some(v("v3")), false));
    // peek: a VALBLK grant reports VALNOTVALID and still delivers the bytes
    let p = h.req(O2, "L", Pr, lkf::VALBLK);
    h.expect(&[ast(O2, p, G).sbf(sbf::VALNOTVALID).lvb(v("v3"))]);
    h.unlock(O2, p);
    h.ev();
    h.conv_lvb(O1, a, Ex, 0, v("junk"));
    h.expect(&[ast(O1, a, G).sbf(sbf::VALNOTVALID).lvb(v("v3"))]);
    h.conv_lvb(O1, a, Nl, 0, v("v4"));
    h.expect(&[ast(O1, a, G)]);
    assert_eq!(h.res_lvb("L"), (Some(v("v4")), true));
    let p = h.req(O2, "L", Pr, lkf::VALBLK);
    h.expect(&[ast(O2, p, G).lvb(v("v4"))]);
}

#[test]
fn valnotvalid_on_dash_transitions_even_without_valblk_not_on_plain_reads() {
    let mut h = H::new();
    let a = h.req(O1, "L", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Ex, 0, v("s"));
    h.conv(O1, a, Nl, lkf::IVVALBLK);
    let b = h.req(O2, "L", Pr, 0);
    h.ev();
    // PR->NL is a "–" transition: VALNOTVALID without VALBLK
    h.conv(O2, b, Nl, 0);
    h.expect(&[ast(O2, b, G).sbf(sbf::VALNOTVALID)]);
    // NL->PR without VALBLK is a read that is not done: no flag
    h.conv(O2, b, Pr, 0);
    h.expect(&[ast(O2, b, G)]);
}

#[test]
fn no_valnotvalid_when_the_resource_has_no_stored_value() {
    let mut h = H::new();
    let anchor = h.req(O3, "L", Nl, 0);
    let a = h.req(O1, "L", Ex, 0);
    h.conv(O1, a, Nl, lkf::IVVALBLK);
    h.expect(&[ast(O3, anchor, G), ast(O1, a, G), ast(O1, a, G)]);
    assert_eq!(h.res_lvb("L"), (None, false));
    let b = h.req(O2, "L", Pr, lkf::VALBLK);
    h.expect(&[ast(O2, b, G).lvb(ZERO)]);
}

#[test]
fn c69_unlock_from_pw_or_ex_with_valblk_writes_the_unlocks_lvb() {
    let mut h = H::new();
    let anchor = h.req(O3, "L", Nl, 0);
    let a = h.req(O1, "L", Pw, 0);
    h.ev();
    h.unlock_lvb(O1, a, 0, v("from-unlock"));
    h.expect(&[ast(O1, a, UNLOCK)]);
    assert_eq!(h.res_lvb("L"), (Some(v("from-unlock")), true));
    // from PR: nothing written
    let b = h.req(O1, "L", Pr, 0);
    h.ev();
    h.unlock_lvb(O1, b, 0, v("ignored"));
    h.expect(&[ast(O1, b, UNLOCK)]);
    assert_eq!(h.res_lvb("L"), (Some(v("from-unlock")), true));
    // from EX without VALBLK: nothing written
    let c = h.req(O1, "L", Ex, 0);
    h.ev();
    h.unlock(O1, c);
    h.ev();
    assert_eq!(h.res_lvb("L"), (Some(v("from-unlock")), true));
    // from EX with IVVALBLK: invalidated
    let d = h.req(O1, "L", Ex, 0);
    h.ev();
    h.try_unlock(O1, d, lkf::IVVALBLK).unwrap();
    h.expect(&[ast(O1, d, UNLOCK)]);
    assert_eq!(h.res_lvb("L"), (Some(v("from-unlock")), false));
    let _ = anchor;
}

#[test]
fn c68_completion_carries_lvb_only_when_the_operation_used_valblk() {
    let mut h = H::new();
    let a = h.req(O1, "L", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Nl, 0, v("x"));
    h.ev();
    h.conv(O1, a, Pr, 0);
    h.expect(&[ast(O1, a, G)]);
}

#[test]
fn c48_close_of_an_ex_holder_invalidates_lvb_for_the_next_reader() {
    let mut h = H::new();
    let a = h.req(O1, "L", Ex, lkf::VALBLK);
    h.conv_lvb(O1, a, Ex, lkf::VALBLK, v("stored"));
    let b = h.req(O2, "L", Pr, lkf::VALBLK);
    h.expect(&[ast(O1, a, G).lvb(ZERO), ast(O1, a, G), bast(O1, a, Pr)]);
    h.close(O1);
    h.expect(&[ast(O2, b, G).sbf(sbf::VALNOTVALID).lvb(v("stored"))]);
    assert_eq!(h.e.lock_count(), 1);
}

// ----- §6 unlock, cancel ------------------------------------------------------------

#[test]
fn c31_unlock_of_granted_lock_eunlock_end_of_life() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.ev();
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK)]);
    assert_eq!(h.e.lock_count(), 0);
    assert_eq!(h.e.resource_count(), 0);
}

#[test]
fn c33_unlock_twice_second_enoent() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    let keep = h.req(O2, "other", Ex, 0);
    h.ev();
    h.unlock(O1, a);
    h.ev();
    assert_eq!(h.try_unlock(O1, a, 0), Err(Errno::NoEnt));
    assert_eq!(h.cancel(O1, a), Err(Errno::NoEnt));
    assert_eq!(h.try_unlock(O1, a, lkf::FORCEUNLOCK), Err(Errno::NoEnt));
    assert_eq!(h.deadlock_cancel(O1, a), Err(Errno::NoEnt));
    h.none();
    let _ = keep;
}

#[test]
fn c34_unlock_flags_outside_the_unlock_mask_einval() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.ev();
    for f in [
        lkf::CONVERT,
        lkf::NOQUEUE,
        lkf::PERSISTENT,
        lkf::CANCEL | lkf::FORCEUNLOCK,
        lkf::CANCEL | lkf::FORCEUNLOCK | lkf::VALBLK,
        0x8000_0000,
        0x0010_0000,
    ] {
        assert_eq!(h.try_unlock(O1, a, f), Err(Errno::Inval), "flags {f:#x}");
        assert_eq!(
            h.deadlock_cancel_flags(O1, a, f),
            Err(Errno::Inval),
            "deadlock_cancel flags {f:#x}"
        );
    }
    h.none();
    assert_eq!(h.granted("r"), vec![(a, Ex)]);
}

#[test]
fn c35_cancel_waiting_request_ecancel_id_dead() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Pr, 0);
    h.ev();
    h.cancel(O2, w).unwrap();
    h.expect(&[ast(O2, w, CANCEL).eol()]);
    assert_eq!(h.try_unlock(O2, w, 0), Err(Errno::NoEnt));
    assert_eq!(
        h.try_conv(O2, w, Nl as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK)]);
}

#[test]
fn c36_cancel_queued_conversion_back_to_old_mode() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    h.expect(&[ast(O1, a, G), ast(O2, b, G), bast(O2, b, Ex)]);
    h.cancel(O1, a).unwrap();
    h.expect(&[ast(O1, a, CANCEL)]); // the lock lives on
    assert_eq!(h.granted("r").iter().find(|g| g.0 == a), Some(&(a, Pr)));
    // still usable: a PR probe is granted (A is PR again)
    let p = h.req(O3, "r", Pr, lkf::NOQUEUE);
    h.expect(&[ast(O3, p, G)]);
    // oracle 02 step 4/5: convert again; B gets no second EX BAST (not re-granted)
    h.conv(O1, a, Ex, 0);
    h.expect(&[bast(O3, p, Ex)]);
    h.unlock(O3, p);
    h.unlock(O2, b);
    h.expect(&[ast(O3, p, UNLOCK), ast(O2, b, UNLOCK), ast(O1, a, G)]);
}

#[test]
fn second_cancel_after_completed_cancel_of_conversion_einval_until_next_convert() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    h.cancel(O1, a).unwrap();
    h.expect(&[
        ast(O1, a, G),
        ast(O2, b, G),
        bast(O2, b, Ex),
        ast(O1, a, CANCEL),
    ]);
    assert_eq!(h.cancel(O1, a), Err(Errno::Inval));
    h.none();
    // a new conversion clears it
    h.conv(O1, a, Ex, 0);
    h.none();
    h.cancel(O1, a).unwrap();
    h.expect(&[ast(O1, a, CANCEL)]);
    // a plain unlock is still fine
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK)]);
}

#[test]
fn c37_cancel_with_nothing_pending_ok_and_no_event() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.ev();
    assert_eq!(h.cancel(O1, a), Ok(()));
    assert_eq!(h.cancel(O1, a), Ok(()));
    assert_eq!(h.deadlock_cancel(O1, a), Ok(()));
    h.none();
    assert_eq!(h.granted("r"), vec![(a, Ex)]);
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK)]);
}

#[test]
fn c38_unlock_of_waiting_request_single_eunlock_no_grant() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w = h.req(O2, "r", Pr, 0);
    h.ev();
    h.unlock(O2, w);
    h.expect(&[ast(O2, w, UNLOCK)]);
    h.unlock(O1, x);
    h.expect(&[ast(O1, x, UNLOCK)]);
    assert_eq!(h.e.lock_count(), 0);
}

#[test]
fn c39_forceunlock_of_converting_lock_eunlock_and_others_reevaluated() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    let x = h.req(O3, "r", Pr, 0); // waits: a conversion is queued
    h.expect(&[ast(O1, a, G), ast(O2, b, G), bast(O2, b, Ex)]);
    h.try_unlock(O1, a, lkf::FORCEUNLOCK).unwrap();
    h.expect(&[ast(O1, a, UNLOCK), ast(O3, x, G)]);
    assert_eq!(h.try_unlock(O1, a, lkf::FORCEUNLOCK), Err(Errno::NoEnt));
}

#[test]
fn forceunlock_in_every_state_single_eunlock() {
    let mut h = H::new();
    let g = h.req(O1, "r", Pr, 0);
    let c = h.req(O2, "r", Pr, 0);
    h.conv(O2, c, Ex, 0);
    let w = h.req(O3, "r", Ex, 0);
    h.expect(&[ast(O1, g, G), ast(O2, c, G), bast(O1, g, Ex)]);
    // waiting: removed, one EUNLOCK, no grant AST ever
    h.try_unlock(O3, w, lkf::FORCEUNLOCK).unwrap();
    h.expect(&[ast(O3, w, UNLOCK)]);
    // converting: one EUNLOCK, its conversion never completes
    h.try_unlock(O2, c, lkf::FORCEUNLOCK | lkf::IVVALBLK)
        .unwrap();
    h.expect(&[ast(O2, c, UNLOCK)]);
    // granted
    h.try_unlock(O1, g, lkf::FORCEUNLOCK).unwrap();
    h.expect(&[ast(O1, g, UNLOCK)]);
    assert_eq!(h.e.lock_count(), 0);
    for id in [g, c, w] {
        assert_eq!(h.e.lock_info_by_id(id), None);
    }
}

#[test]
fn plain_unlock_of_converting_lock_single_eunlock() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    h.ev();
    h.unlock(O1, a);
    h.expect(&[ast(O1, a, UNLOCK)]);
    assert_eq!(h.granted("r"), vec![(b, Pr)]);
}

#[test]
fn c64_deadlock_cancel_reports_edeadlk() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let _y = h.req(O2, "r", Pr, 0);
    let w = h.req(O3, "r", Ex, 0);
    h.ev();
    h.deadlock_cancel(O3, w).unwrap();
    h.expect(&[ast(O3, w, DEADLK).eol()]);
    assert_eq!(h.try_unlock(O3, w, 0), Err(Errno::NoEnt));
    // on a conversion: back to the granted mode, lock lives
    h.conv(O1, x, Ex, 0);
    h.none(); // Y was BASTed for EX already

    h.deadlock_cancel(O1, x).unwrap();
    h.expect(&[ast(O1, x, DEADLK)]);
    assert_eq!(h.e.lock_info_by_id(x).unwrap().granted, Some(Pr));
    // a later plain cancel of a new conversion reports ECANCEL again
    h.conv(O1, x, Ex, 0);
    h.cancel(O1, x).unwrap();
    h.expect(&[ast(O1, x, CANCEL)]);
}

#[test]
fn completion_statuses_are_the_positive_user_values() {
    let mut h = H::new();
    let x = h.req(O1, "r", Pr, 0);
    let n = h.req(O2, "r", Ex, lkf::NOQUEUE);
    let y = h.req(O2, "r", Pr, 0);
    h.conv(O1, x, Ex, 0);
    h.conv(O2, y, Ex, 0);
    let w = h.req(O3, "r", Ex, 0);
    h.cancel(O3, w).unwrap();
    h.unlock(O2, y);
    let st: Vec<i32> = h
        .ev()
        .iter()
        .filter_map(|e| match e {
            Ev::Ast { status, .. } => Some(status.to_user()),
            _ => None,
        })
        .collect();
    assert_eq!(st, vec![0, 11, 0, 35, 65537, 65538, 0]);
    let _ = n;
}

// ----- §6 owners and orphans -------------------------------------------------------

#[test]
fn convert_unlock_cancel_restricted_to_the_owner() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.conv(O1, a, Ex, 0);
    h.ev();
    assert_eq!(
        h.try_conv(O2, a, Nl as i32, lkf::CONVERT),
        Err(Errno::NoEnt)
    );
    assert_eq!(h.try_unlock(O2, a, 0), Err(Errno::NoEnt));
    assert_eq!(h.try_unlock(O2, a, lkf::FORCEUNLOCK), Err(Errno::NoEnt));
    assert_eq!(h.cancel(O2, a), Err(Errno::NoEnt));
    assert_eq!(h.deadlock_cancel(O2, a), Err(Errno::NoEnt));
    h.none();
    assert_eq!(h.converting("r"), vec![(a, Pr, Ex)]);
    let _ = b;
}

#[test]
fn lock_ids_unique_among_live_locks_and_never_zero() {
    let mut h = H::new();
    let mut live: Vec<LockId> = Vec::new();
    for round in 0..5u32 {
        for i in 0..40u32 {
            let name = format!("n{}", (i * 7 + round) % 13);
            let id = h.req(Owner(1 + (i % 3) as u64), &name, Nl, 0);
            assert!(!live.contains(&id), "id {id:?} handed out twice");
            live.push(id);
        }
        // free every other lock
        let mut keep = Vec::new();
        for (k, id) in live.drain(..).enumerate() {
            if k % 2 == 0 {
                let o = h.e.lock_info_by_id(id).unwrap().owner;
                h.unlock(o, id);
            } else {
                keep.push(id);
            }
        }
        live = keep;
        h.ev();
    }
    // failed NOQUEUE requests get an id too, distinct from the live ones
    let x = h.req(O1, "x", Ex, 0);
    let y = h.req(O2, "x", Ex, lkf::NOQUEUE);
    assert!(!live.contains(&x) && !live.contains(&y) && x != y);
}

#[test]
fn a_reused_lock_id_has_a_new_incarnation() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.unlock(O1, a);
    let b = h.req(O2, "r", Ex, 0);
    let evs = h.e.take_events();
    let inc: Vec<(LockId, u32)> = evs
        .iter()
        .map(|e| match *e {
            Event::Completion {
                lkid, incarnation, ..
            }
            | Event::Blocking {
                lkid, incarnation, ..
            } => (lkid, incarnation),
        })
        .collect();
    assert_eq!(inc.len(), 3);
    assert_eq!(inc[0], inc[1]);
    if a == b {
        assert_ne!(inc[0].1, inc[2].1, "same id and incarnation for two locks");
    }
}

#[test]
fn c52_close_removes_pending_request_and_releases_non_persistent_locks() {
    let mut h = H::new();
    let x = h.req(O1, "r", Ex, 0);
    let w1 = h.req(O2, "r", Pr, 0); // O2 waits
    let y = h.req(O2, "s", Ex, 0);
    let w3 = h.req(O3, "s", Ex, 0); // O3 waits behind O2
    h.ev();
    h.close(O2);
    h.expect(&[ast(O3, w3, G)]);
    assert_eq!(h.waiting("r"), vec![]);
    assert_eq!(h.granted("r"), vec![(x, Ex)]);
    assert!(!h.e.owner_has_locks(O2));
    assert_eq!(h.try_unlock(O2, y, 0), Err(Errno::NoEnt));
    assert_eq!(h.try_unlock(O2, w1, 0), Err(Errno::NoEnt));
    assert_eq!(h.e.orphan_count(), 0);
}

#[test]
fn close_sends_no_event_to_the_closing_owner_even_for_its_own_later_locks() {
    // O1's second request is granted while O1's first lock is being
    // released: that grant must not reach the closed owner (spec §6.1).
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    let b = h.req(O1, "r", Pr, 0);
    let c = h.req(O2, "r", Ex, 0);
    h.expect(&[ast(O1, a, G), bast(O1, a, Pr), bast(O1, a, Ex)]);
    h.close(O1);
    h.expect(&[ast(O2, c, G)]);
    assert_eq!(h.e.lock_count(), 1);
    let _ = b;
}

#[test]
fn c49_orphan_adopt_by_name_and_mode() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, lkf::PERSISTENT);
    h.ev();
    h.close(O1);
    h.none();
    assert_eq!(h.e.orphan_count(), 1);
    assert!(h.e.lock_info_by_id(p).unwrap().orphan);
    // the orphan still blocks
    let e = h.req(O3, "r", Ex, lkf::NOQUEUE);
    h.expect(&[ast(O3, e, AGAIN).eol()]);
    // nobody can touch it until adopted
    assert_eq!(h.try_unlock(O1, p, 0), Err(Errno::NoEnt));
    assert_eq!(h.try_unlock(O2, p, 0), Err(Errno::NoEnt));
    // adopt: other mode EAGAIN, other name ENOENT, right one returns the id, no AST
    assert_eq!(h.adopt(O2, "r", Ex), Err(Errno::Again));
    assert_eq!(h.adopt(O2, "q", Pr), Err(Errno::NoEnt));
    assert_eq!(h.adopt(O2, "r", Pr), Ok(p));
    h.none();
    assert_eq!(h.e.orphan_count(), 0);
    assert_eq!(h.e.lock_info_by_id(p).unwrap().owner, O2);
    assert_eq!(h.adopt(O4, "r", Pr), Err(Errno::NoEnt));
    // the adopter owns it now
    h.unlock(O2, p);
    h.expect(&[ast(O2, p, UNLOCK)]);
}

#[test]
fn adopted_orphan_gets_the_adopters_basts() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, lkf::PERSISTENT);
    h.ev();
    h.close(O1);
    assert_eq!(h.adopt(O2, "r", Pr), Ok(p));
    let w = h.req(O3, "r", Ex, 0);
    h.expect(&[bast(O2, p, Ex)]);
    h.unlock(O2, p);
    h.expect(&[ast(O2, p, UNLOCK), ast(O3, w, G)]);
}

#[test]
fn orphan_gets_no_callbacks_and_its_pending_conversion_falls_back() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, lkf::PERSISTENT);
    let q = h.req(O2, "r", Pr, 0);
    h.conv(O1, p, Ex, lkf::PERSISTENT);
    h.expect(&[ast(O1, p, G), ast(O2, q, G), bast(O2, q, Ex)]);
    h.close(O1);
    h.none();
    assert_eq!(h.converting("r"), vec![]);
    assert_eq!(h.e.lock_info_by_id(p).unwrap().granted, Some(Pr));
    let w = h.req(O3, "r", Ex, 0);
    h.none(); // the orphan is BASTed by nobody's routine; Q's highbast is EX
    assert_eq!(h.waiting("r"), vec![(w, Ex)]);
}

#[test]
fn persistent_waiting_request_of_a_closing_owner_disappears() {
    let mut h = H::new();
    let x = h.req(O2, "r", Ex, 0);
    let p = h.req(O1, "r", Pr, lkf::PERSISTENT);
    h.ev();
    h.close(O1);
    h.none();
    assert_eq!(h.e.orphan_count(), 0);
    assert_eq!(h.waiting("r"), vec![]);
    assert_eq!(h.adopt(O3, "r", Pr), Err(Errno::NoEnt));
    let _ = (x, p);
}

#[test]
fn c50_purge_pid_0_releases_all_orphans_and_grants_waiters() {
    let mut h = H::new();
    let p1 = h.req(O1, "r", Pr, lkf::PERSISTENT);
    let p2 = h.req(O2, "s", Ex, lkf::PERSISTENT);
    h.ev();
    h.close(O1);
    h.close(O2);
    let w = h.req(O3, "r", Ex, 0);
    let z = h.req(O3, "s", Pr, 0);
    h.none();
    h.purge_orphans(0);
    h.expect(&[ast(O3, w, G), ast(O3, z, G)]);
    assert_eq!(h.e.orphan_count(), 0);
    let _ = (p1, p2);
}

#[test]
fn purge_by_pid_releases_only_that_pids_orphans() {
    let mut h = H::new();
    let p1 = h.req(O1, "r", Pr, lkf::PERSISTENT); // pid 1
    let p2 = h.req(O2, "r", Pr, lkf::PERSISTENT); // pid 2
    h.ev();
    h.close(O1);
    h.close(O2);
    assert_eq!(h.e.orphan_count(), 2);
    h.purge_orphans(7);
    assert_eq!(h.e.orphan_count(), 2);
    h.purge_orphans(2);
    assert_eq!(h.e.orphan_count(), 1);
    assert_eq!(h.granted("r"), vec![(p1, Pr)]);
    assert_eq!(h.adopt(O3, "r", Pr), Ok(p1));
    h.none();
    let _ = p2;
}

#[test]
fn purging_a_pw_orphan_invalidates_the_lvb() {
    let mut h = H::new();
    let anchor = h.req(O3, "L", Nl, 0);
    let p = h.req(O1, "L", Pw, lkf::PERSISTENT | lkf::VALBLK);
    h.conv_lvb(O1, p, Pw, lkf::PERSISTENT, v("pw"));
    h.ev();
    h.close(O1);
    assert_eq!(h.res_lvb("L"), (Some(v("pw")), true));
    h.purge_orphans(0);
    assert_eq!(h.res_lvb("L"), (Some(v("pw")), false));
    let _ = anchor;
}

#[test]
fn c51_persistent_dropped_by_a_later_conversion_is_released_at_close() {
    let mut h = H::new();
    let p = h.req(O1, "r", Pr, lkf::PERSISTENT);
    h.conv(O1, p, Pr, 0);
    h.ev();
    h.close(O1);
    assert_eq!(h.e.orphan_count(), 0);
    assert_eq!(h.e.lock_count(), 0);
}

#[test]
fn purge_owner_releases_all_its_locks_silently_persistent_too() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, lkf::PERSISTENT);
    let b = h.req(O1, "s", Pr, 0);
    let w = h.req(O2, "r", Pr, 0);
    h.ev();
    h.e.purge_owner(O1);
    h.check();
    h.expect(&[ast(O2, w, G)]);
    assert_eq!(h.e.orphan_count(), 0);
    assert!(!h.e.owner_has_locks(O1));
    let _ = (a, b);
}

#[test]
fn engine_refuses_requests_beyond_max_locks_with_enomem() {
    let mut h = H { e: Engine::new(2) };
    h.req(O1, "a", Nl, 0);
    h.req(O1, "b", Nl, 0);
    assert_eq!(h.try_req(O1, "c", Nl as i32, 0, None), Err(Errno::NoMem));
    assert_eq!(h.e.lock_count(), 2);
}

#[test]
fn bad_input_returns_an_errno_and_never_panics() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    h.ev();
    let weird_modes = [-128, -2, -1, 6, 7, 127, 128, 255, 256, i32::MAX, i32::MIN];
    let weird_flags = [
        u32::MAX,
        0xffff_fffe,
        lkf::CANCEL | lkf::CONVERT,
        lkf::UNLOCK_MASK,
        1 << 31,
        0,
    ];
    for &m in &weird_modes {
        for &f in &weird_flags {
            let _ = h.try_req(O2, "r", m, f, None);
            let _ = h.try_conv(O1, a, m, f);
            let _ = h.try_conv(O1, LockId(0), m, f);
            let _ = h.try_conv(O1, LockId(u32::MAX), m, f);
        }
    }
    for &f in &weird_flags {
        for id in [LockId(0), LockId(1), LockId(2), LockId(u32::MAX)] {
            let _ = h.deadlock_cancel_flags(O3, id, f);
            let _ = h.try_unlock(O3, id, f);
        }
    }
    let _ = h.e.adopt_orphan(Request {
        owner: O2,
        pid: 0,
        mode: 99,
        flags: u32::MAX,
        name: &[0u8; 200],
        lvb: None,
        has_bast: true,
    });
    h.check();
    let _ = h.ev();
}

// ----- udlm extensions: ending waits (timeouts, deadlock victims) ---------

#[test]
fn end_wait_ends_a_waiting_request_with_the_given_status() {
    let mut h = H::new();
    let a = h.req(O1, "r", Ex, 0);
    h.expect(&[ast(O1, a, Status::Granted)]);
    let b = h.req(O2, "r", Ex, 0);
    h.expect(&[bast(O1, a, Ex)]);
    assert!(h.e.end_wait(b, Status::TimedOut));
    h.check();
    h.expect(&[ast(O2, b, Status::TimedOut).eol()]);
    assert!(h.waiting("r").is_empty());
    // Its id is dead: a second end, or one on a granted lock, does nothing.
    assert!(!h.e.end_wait(b, Status::TimedOut));
    assert!(!h.e.end_wait(a, Status::Deadlock));
    h.none();
}

#[test]
fn end_wait_reverts_a_conversion_to_its_granted_mode() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    h.ev();
    h.conv(O1, a, Ex, 0);
    h.expect(&[bast(O2, b, Ex)]);
    assert!(h.e.end_wait(a, Status::Deadlock));
    h.check();
    h.expect(&[ast(O1, a, Status::Deadlock)]);
    assert_eq!(h.granted("r"), vec![(a, Pr), (b, Pr)]);
    // A lock already being cancelled is left to its cancel.
    h.conv(O1, a, Ex, 0);
    h.cancel(O1, a).unwrap();
    assert!(!h.e.end_wait(a, Status::TimedOut));
    h.expect(&[ast(O1, a, Status::Cancelled)]);
}

#[test]
fn wait_edges_name_incompatible_holders_of_other_owners_only() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Pr, 0);
    let c = h.req(O1, "r", Ex, 0); // waits for b (a is its own owner's)
    let d = h.req(O3, "r", Ex, lkf::NODLCKWT); // waits, but does not count
    let e2 = h.req(O4, "q", Ex, 0);
    h.ev();
    let edges: Vec<(LockId, LockId)> =
        h.e.wait_edges(100)
            .iter()
            .map(|e| (e.waiter, e.blocker))
            .collect();
    assert_eq!(edges, vec![(c, b)]);
    let _ = (a, d, e2);
    // A holder with NODLCKBLK blocks nobody in the graph.
    let mut h = H::new();
    let x = h.req(O1, "s", Ex, lkf::NODLCKBLK);
    let y = h.req(O2, "s", Ex, 0);
    h.ev();
    assert!(h.e.wait_edges(100).is_empty());
    let _ = (x, y);
}

#[test]
fn an_edge_holds_until_either_lock_changes() {
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let b = h.req(O2, "r", Ex, 0);
    let c = h.req(O3, "other", Ex, 0);
    h.ev();
    let e = h.e.wait_edges(10)[0];
    assert_eq!((e.waiter, e.blocker), (b, a));
    assert!(h.e.edge_holds(&e));
    // Changes elsewhere do not matter.
    h.conv(O3, c, Nl, 0);
    h.ev();
    assert!(h.e.edge_holds(&e));
    // The blocker converting away and back breaks the edge even though the
    // same locks block each other again.
    h.conv(O1, a, Nl, 0);
    h.ev();
    assert!(!h.e.edge_holds(&e));
    let mut h = H::new();
    let a = h.req(O1, "r", Pr, 0);
    let _b = h.req(O2, "r", Ex, 0);
    h.ev();
    let e = h.e.wait_edges(10)[0];
    h.unlock(O1, a);
    h.ev();
    assert!(!h.e.edge_holds(&e));
    // The limit bounds the answer.
    let mut h = H::new();
    h.req(O1, "r", Ex, 0);
    for o in 2..6 {
        h.req(Owner(o), "r", Ex, 0);
    }
    h.ev();
    assert_eq!(h.e.wait_edges(100).len(), 4);
    assert_eq!(h.e.wait_edges(2).len(), 2);
}
