//! Randomized model test of the lock engine.
//!
//! `Model` below is a second, deliberately plain implementation of the grant
//! rules, written from `spec/libdlm-behaviour.md` §3–§6 (Vec queues, linear
//! scans, no cleverness). Random sequences of requests, conversions, unlocks,
//! cancels, force-unlocks, deadlock cancels, owner closes, orphan adoptions and
//! purges are run against both; after every step the return value, the exact
//! events and the full queue state (`Engine::resources()`) must agree, and
//! independent invariants are checked on the engine's output.
//!
//! Environment:
//! * `UDLM_MODEL_SEED=N`  – base seed (case i uses seed N+i);
//! * `UDLM_MODEL_CASES=N` – number of sequences (default 10,000 in release,
//!   5,000 in debug builds);
//! * `UDLM_MODEL_MIMIC=a,b` – make the model copy known engine deviations so
//!   that a run can look past them (see `docs/ENGINE-TESTS.md`):
//!   `close_events`, `alt_in_place`, `cw_pr_bast` (or `all`).
//!
//! On a failure the sequence is shrunk (steps dropped one at a time while it
//! still fails) and the minimal sequence is printed with its seed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use udlm::engine::{Engine, Event, LockInfo, QueueKind, Request, ResourceInfo};
use udlm::types::{lkf, sbf, Errno, LockId, Lvb, Mode, Owner, Status};

// ----- a tiny deterministic PRNG (splitmix64) ---------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi_incl: u64) -> u64 {
        lo + self.below(hi_incl - lo + 1)
    }
    /// True with probability pct/100.
    fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

// ----- modes as the model sees them: -1 = none --------------------------------

const IV: i8 = -1;
const NL: i8 = 0;
const CW: i8 = 2;
const PR: i8 = 3;
const PW: i8 = 4;
const EX: i8 = 5;

/// Spec §3.1; "none" is compatible with everything.
fn compat(a: i8, b: i8) -> bool {
    const T: [[bool; 6]; 6] = [
        [true, true, true, true, true, true],
        [true, true, true, true, true, false],
        [true, true, true, false, false, false],
        [true, true, false, true, false, false],
        [true, true, false, false, false, false],
        [true, false, false, false, false, false],
    ];
    a < 0 || b < 0 || T[a as usize][b as usize]
}

fn to_mode(m: i8) -> Option<Mode> {
    (m >= 0).then(|| Mode::ALL[m as usize])
}

/// Spec §3.3: the upward conversions QUECVT may be used with.
fn quecvt_legal(from: i8, to: i8) -> bool {
    from >= 0 && (to > from || (from == PR && to == CW))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Xfer {
    Read,
    Write,
    Nothing,
}

/// Spec §5.2 (from = -1: a new request).
fn lvb_xfer(from: i8, to: i8) -> Xfer {
    if to < 0 {
        return Xfer::Nothing;
    }
    if from < 0 {
        return Xfer::Read;
    }
    if from == PW && to == EX {
        return Xfer::Read;
    }
    if from >= PW {
        return Xfer::Write;
    }
    if to >= from {
        Xfer::Read
    } else {
        Xfer::Nothing
    }
}

// ----- the reference model -----------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Q {
    Granted,
    Converting,
    Waiting,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LastCb {
    None,
    Cast,
    Bast(i8),
}

#[derive(Clone, Debug)]
struct MLock {
    owner: u64,
    pid: u32,
    name: Vec<u8>,
    q: Option<Q>,
    gr: i8,
    rq: i8,
    flags: u32,
    has_bast: bool,
    lvb: Option<Lvb>,
    highbast: i8,
    sb: u8,
    last_cast: i8,
    last_cb: LastCb,
    orphan: bool,
    silent: bool,
    seq: u64,
}

#[derive(Clone, Debug, Default)]
struct MRes {
    granted: Vec<u32>,
    converting: Vec<u32>,
    waiting: Vec<u32>,
    lvb: Option<Lvb>,
    invalid: bool,
}

/// An event as compared: the engine's events minus the incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum MEv {
    Ast {
        owner: u64,
        lkid: u32,
        status: Status,
        sb: u8,
        lvb: Option<Lvb>,
        eol: bool,
    },
    Bast {
        owner: u64,
        lkid: u32,
        mode: Mode,
    },
}

impl fmt::Display for MEv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MEv::Ast {
                owner,
                lkid,
                status,
                sb,
                lvb,
                eol,
            } => {
                write!(
                    f,
                    "AST  owner {owner} lkid {lkid} {:?}({}) sb {sb:#x}",
                    status,
                    status.to_user()
                )?;
                if let Some(v) = lvb {
                    write!(f, " lvb {}", show_lvb(v))?;
                }
                if *eol {
                    write!(f, " end-of-life")?;
                }
                Ok(())
            }
            MEv::Bast { owner, lkid, mode } => write!(f, "BAST owner {owner} lkid {lkid} {mode}"),
        }
    }
}

fn show_lvb(v: &Lvb) -> String {
    let n = v.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if n == 0 {
        "00*32".into()
    } else {
        v[..n]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    }
}

#[derive(Clone, Copy, Default, Debug)]
struct Mimic {
    /// engine emits events to the closing/purging owner's own locks
    close_events: bool,
    /// skip sequences where a queued conversion gets its alternate mode equal
    /// to its granted mode (the engine corrupts its queues there)
    alt_in_place: bool,
    /// grant pass: a CW holder is BASTed for a blocked PR up to EX (engine),
    /// instead of only for a strictly higher mode (kernel lock_requires_bast)
    cw_pr_bast: bool,
}

#[derive(Clone, Default)]
struct Model {
    locks: BTreeMap<u32, MLock>,
    res: BTreeMap<Vec<u8>, MRes>,
    orphans: Vec<u32>,
    events: Vec<MEv>,
    seq: u64,
    mimic: Mimic,
    /// set when the mimic `alt_in_place` situation arose
    hit_alt_in_place: bool,
}

impl Model {
    fn lk(&self, id: u32) -> &MLock {
        &self.locks[&id]
    }
    fn lkm(&mut self, id: u32) -> &mut MLock {
        self.locks.get_mut(&id).unwrap()
    }
    fn rs(&self, id: u32) -> &MRes {
        &self.res[&self.lk(id).name]
    }
    fn rsm(&mut self, id: u32) -> &mut MRes {
        let n = self.lk(id).name.clone();
        self.res.get_mut(&n).unwrap()
    }
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // --- queues ---

    fn queue_vec(&mut self, id: u32, q: Q) -> &mut Vec<u32> {
        let r = self.rsm(id);
        match q {
            Q::Granted => &mut r.granted,
            Q::Converting => &mut r.converting,
            Q::Waiting => &mut r.waiting,
        }
    }

    fn unqueue(&mut self, id: u32) {
        if let Some(q) = self.lk(id).q {
            let v = self.queue_vec(id, q);
            let pos = v.iter().position(|&x| x == id).expect("lock on its queue");
            v.remove(pos);
            self.lkm(id).q = None;
        }
    }

    /// Granted locks: a lock is put before the first lock whose requested
    /// mode is below its granted mode; since granted locks normally have no
    /// requested mode this is the head (newest granted first, oracle 04 step
    /// 4). A lock whose NOQUEUE conversion failed keeps its requested mode
    /// (as the kernel's do_convert does) and is skipped over.
    fn enqueue_granted(&mut self, id: u32) {
        let mode = self.lk(id).gr;
        let pos = {
            let r = self.rs(id);
            r.granted
                .iter()
                .position(|&x| self.lk(x).rq < mode)
                .unwrap_or(r.granted.len())
        };
        self.rsm(id).granted.insert(pos, id);
        self.lkm(id).q = Some(Q::Granted);
    }

    fn enqueue(&mut self, id: u32, q: Q, head: bool) {
        let v = self.queue_vec(id, q);
        if head {
            v.insert(0, id);
        } else {
            v.push(id);
        }
        self.lkm(id).q = Some(q);
    }

    /// Forgets a lock that is on no queue; the resource (and its LVB) goes
    /// with its last lock (spec §5.1). Returns whether the resource is left.
    fn free(&mut self, id: u32) -> bool {
        let l = self.locks.remove(&id).unwrap();
        assert!(l.q.is_none());
        self.orphans.retain(|&x| x != id);
        let left = self.locks.values().any(|x| x.name == l.name);
        if !left {
            self.res.remove(&l.name);
        }
        left
    }

    // --- callbacks (spec §4) ---

    fn cast(&mut self, id: u32, status: Status) {
        let l = self.lk(id).clone();
        let eol = match status {
            Status::Unlocked => true,
            Status::Granted => false,
            _ => l.gr < 0,
        };
        if l.orphan || l.silent {
            return;
        }
        let lvb = if status == Status::Granted
            && l.flags & lkf::VALBLK != 0
            && lvb_xfer(l.last_cast, l.gr) != Xfer::Write
        {
            l.lvb
        } else {
            None
        };
        let m = self.lkm(id);
        m.last_cast = l.gr;
        m.last_cb = LastCb::Cast;
        self.events.push(MEv::Ast {
            owner: l.owner,
            lkid: id,
            status,
            sb: l.sb,
            lvb,
            eol,
        });
    }

    /// Delivery side of a BAST: no routine, orphan or dying lock → nothing;
    /// dropped when compatible with the last completion's mode, or when the
    /// previous callback was a BAST for the same mode or a higher one above PR.
    fn bast(&mut self, id: u32, mode: i8) {
        let l = self.lk(id);
        if l.orphan || l.silent || !l.has_bast {
            return;
        }
        if l.last_cast >= 0 && compat(mode, l.last_cast) {
            return;
        }
        if let LastCb::Bast(prev) = l.last_cb {
            if prev == mode || (prev > mode && prev > PR) {
                return;
            }
        }
        let owner = l.owner;
        self.lkm(id).last_cb = LastCb::Bast(mode);
        self.events.push(MEv::Bast {
            owner,
            lkid: id,
            mode: to_mode(mode).unwrap(),
        });
    }

    /// Spec §4.2 when a request is queued (granted queue) or fails with
    /// NOQUEUEBAST (granted and converting queues). The master remembers the
    /// highest mode BASTed ("highbast") whether or not the lock has a routine
    /// (user locks always have the library's routine in the kernel).
    fn send_basts(&mut self, id: u32, with_converting: bool) {
        let rq = self.lk(id).rq;
        let mut holders = self.rs(id).granted.clone();
        if with_converting {
            holders.extend(self.rs(id).converting.clone());
        }
        for o in holders {
            if o == id {
                continue;
            }
            let (gr, hb) = (self.lk(o).gr, self.lk(o).highbast);
            let needs = if (gr == PR && rq == CW) || (gr == CW && rq == PR) {
                hb < EX
            } else {
                hb < rq && !compat(gr, rq)
            };
            if needs {
                self.bast(o, rq);
                self.lkm(o).highbast = rq;
            }
        }
    }

    // --- LVB (spec §5) ---

    fn lvb_on_grant(&mut self, id: u32) {
        let (gr, rq, flags, lvb) = {
            let l = self.lk(id);
            (l.gr, l.rq, l.flags, l.lvb)
        };
        match lvb_xfer(gr, rq) {
            Xfer::Read => {
                if flags & lkf::VALBLK == 0 || lvb.is_none() {
                    return;
                }
                let Some(stored) = self.rs(id).lvb else {
                    return;
                };
                self.lkm(id).lvb = Some(stored);
            }
            Xfer::Write => {
                if flags & lkf::IVVALBLK != 0 {
                    self.rsm(id).invalid = true;
                    return;
                }
                if flags & lkf::VALBLK == 0 {
                    return;
                }
                let Some(mine) = lvb else { return };
                let r = self.rsm(id);
                r.lvb = Some(mine);
                r.invalid = false;
            }
            Xfer::Nothing => {}
        }
        if self.rs(id).invalid {
            self.lkm(id).sb |= sbf::VALNOTVALID;
        }
    }

    fn lvb_on_unlock(&mut self, id: u32) {
        let l = self.lk(id).clone();
        if l.gr < PW {
            return;
        }
        if l.flags & lkf::IVVALBLK != 0 {
            self.rsm(id).invalid = true;
            return;
        }
        if l.flags & lkf::VALBLK == 0 {
            return;
        }
        if let Some(v) = l.lvb {
            let r = self.rsm(id);
            r.lvb = Some(v);
            r.invalid = false;
        }
    }

    // --- grant rules (spec §3.3 - §3.5) ---

    /// Spec §3.3 rules 1-9 for the lock's current requested mode.
    fn grantable(&self, id: u32, now: bool) -> bool {
        let l = self.lk(id);
        let r = self.rs(id);
        if l.flags & lkf::EXPEDITE != 0 {
            return true;
        }
        for &o in r.granted.iter().chain(r.converting.iter()) {
            if o != id && !compat(self.lk(o).gr, l.rq) {
                return false;
            }
        }
        let conv = l.gr >= 0;
        if conv && now {
            return l.flags & lkf::QUECVT == 0 || r.converting.is_empty();
        }
        if l.flags & lkf::NOORDER != 0 {
            return true;
        }
        if conv {
            return r.converting.first() == Some(&id);
        }
        if now {
            r.converting.is_empty() && r.waiting.is_empty()
        } else {
            r.converting.is_empty() && r.waiting.first() == Some(&id)
        }
    }

    /// Spec §3.5: the lock's granted mode blocks a conversion ahead of it, or
    /// it and one behind it block each other.
    fn conversion_deadlock(&self, id: u32) -> bool {
        let l = self.lk(id);
        let conv = &self.rs(id).converting;
        let me = conv.iter().position(|&x| x == id);
        for (i, &o) in conv.iter().enumerate() {
            if o == id {
                continue;
            }
            let other = self.lk(o);
            let ahead = match me {
                Some(p) => i < p,
                None => true,
            };
            if ahead {
                if !compat(l.gr, other.rq) {
                    return true;
                }
            } else if !compat(l.gr, other.rq) && !compat(other.gr, l.rq) {
                return true;
            }
        }
        false
    }

    /// The full test: plain rules, then conversion deadlock handling, then the
    /// alternate modes (spec §3.4). Returns (grantable, deadlock).
    fn try_grant(&mut self, id: u32, now: bool) -> (bool, bool) {
        if self.grantable(id, now) {
            return (true, false);
        }
        let l = self.lk(id).clone();
        if l.gr >= 0 && l.flags & lkf::NOQUEUE == 0 && self.conversion_deadlock(id) {
            if l.flags & lkf::CONVDEADLK != 0 {
                let m = self.lkm(id);
                m.gr = NL;
                m.sb |= sbf::DEMOTED;
                return (false, false);
            }
            return (false, true);
        }
        let alt = if l.rq != PR && l.flags & lkf::ALTPR != 0 {
            PR
        } else if l.rq != CW && l.flags & lkf::ALTCW != 0 {
            CW
        } else {
            return (false, false);
        };
        self.lkm(id).rq = alt;
        if self.grantable(id, now) {
            self.lkm(id).sb |= sbf::ALTMODE;
            if l.q == Some(Q::Converting) && l.gr == alt {
                self.hit_alt_in_place = true;
            }
            (true, false)
        } else {
            self.lkm(id).rq = l.rq;
            (false, false)
        }
    }

    fn grant(&mut self, id: u32) {
        self.lvb_on_grant(id);
        let (gr, rq, q) = {
            let l = self.lk(id);
            (l.gr, l.rq, l.q)
        };
        if gr != rq || q != Some(Q::Granted) {
            // a conversion granted in its own mode from the converting queue
            // (alternate mode == granted mode) must still end up granted
            self.unqueue(id);
            self.lkm(id).gr = rq;
            self.enqueue_granted(id);
        }
        let m = self.lkm(id);
        m.rq = IV;
        m.highbast = 0;
    }

    /// The conversion pass of spec §3.7 (1). Returns (highest blocked mode,
    /// a CW conversion is blocked).
    fn grant_pending_convert(&mut self, name: &[u8]) -> (i8, bool) {
        let mut cw = false;
        let mut quit = false;
        loop {
            let mut grant_restart = false;
            let mut demote_restart = false;
            let mut hi = IV;
            let list = self.res[name].converting.clone();
            for id in list {
                let demoted_before = self.lk(id).sb & sbf::DEMOTED != 0;
                let (ok, deadlk) = self.try_grant(id, false);
                if ok {
                    self.grant(id);
                    self.cast(id, Status::Granted);
                    grant_restart = true;
                    continue;
                }
                let l = self.lk(id).clone();
                if !demoted_before && l.sb & sbf::DEMOTED != 0 {
                    demote_restart = true;
                    continue;
                }
                if deadlk {
                    // NODLCKWT: BAST the deadlocked lock itself (spec §3.5)
                    if l.flags & lkf::NODLCKWT != 0 && l.highbast < l.rq {
                        self.bast(id, l.rq);
                        self.lkm(id).highbast = l.rq;
                    }
                    continue;
                }
                hi = hi.max(l.rq);
                if l.rq == CW {
                    cw = true;
                }
            }
            if grant_restart {
                continue;
            }
            if demote_restart && !quit {
                quit = true;
                continue;
            }
            return (hi, cw);
        }
    }

    /// Spec §3.7: conversions first, then waiting requests, then BASTs for
    /// the highest mode still blocked (with the PR/CW special case).
    fn grant_pending(&mut self, name: &[u8]) {
        if !self.res.contains_key(name) {
            return;
        }
        let (mut high, mut cw) = self.grant_pending_convert(name);
        for id in self.res[name].waiting.clone() {
            if self.try_grant(id, false).0 {
                self.grant(id);
                self.cast(id, Status::Granted);
            } else {
                let rq = self.lk(id).rq;
                high = high.max(rq);
                if rq == CW {
                    cw = true;
                }
            }
        }
        if high == IV {
            return;
        }
        for id in self.res[name].granted.clone() {
            let (gr, hb) = (self.lk(id).gr, self.lk(id).highbast);
            // the PR/CW special case (plus, mimicking the engine, CW holder & PR)
            let special = (gr == PR && cw) || (self.mimic.cw_pr_bast && gr == CW && high == PR);
            let needs = if special {
                hb < EX
            } else {
                hb < high && !compat(gr, high)
            };
            if needs {
                let mode = if cw && high == PR && gr == PR {
                    CW
                } else {
                    high
                };
                self.bast(id, mode);
                self.lkm(id).highbast = high;
            }
        }
    }

    // --- operations ---

    fn find_owned(&self, owner: u64, lkid: u32) -> Result<u32, Errno> {
        match self.locks.get(&lkid) {
            Some(l) if l.owner == owner && !l.orphan => Ok(lkid),
            _ => Err(Errno::NoEnt),
        }
    }

    /// Validation of a new request (spec §2.4; CONVERT/ORPHAN belong to the
    /// other entry points).
    fn check_request(mode: i32, flags: u32, name: &[u8]) -> Result<i8, Errno> {
        if !(0..=5).contains(&mode) {
            return Err(Errno::Inval);
        }
        let has = |f| flags & f != 0;
        if has(lkf::CANCEL)
            || has(lkf::CONVERT)
            || has(lkf::ORPHAN)
            || has(lkf::QUECVT)
            || has(lkf::CONVDEADLK)
            || (has(lkf::EXPEDITE) && (has(lkf::NOQUEUE) || mode != NL as i32))
            || name.len() > 64
        {
            return Err(Errno::Inval);
        }
        Ok(mode as i8)
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &mut self,
        id: u32,
        owner: u64,
        pid: u32,
        mode: i8,
        flags: u32,
        name: &[u8],
        lvb: Option<&Lvb>,
        has_bast: bool,
    ) {
        let seq = self.next_seq();
        // a new user lock's LVB copy starts zeroed; the caller's buffer is
        // not sent with a request (oracle 03)
        let _ = lvb;
        let lvb0 = (flags & lkf::VALBLK != 0).then_some([0u8; 32]);
        self.res.entry(name.to_vec()).or_default();
        self.locks.insert(
            id,
            MLock {
                owner,
                pid,
                name: name.to_vec(),
                q: None,
                gr: IV,
                rq: mode,
                flags,
                has_bast,
                lvb: lvb0,
                highbast: 0,
                sb: 0,
                last_cast: IV,
                last_cb: LastCb::None,
                orphan: false,
                silent: false,
                seq,
            },
        );
        if self.try_grant(id, true).0 {
            self.grant(id);
            self.cast(id, Status::Granted);
        } else if flags & lkf::NOQUEUE == 0 {
            self.enqueue(id, Q::Waiting, flags & lkf::HEADQUE != 0);
            self.send_basts(id, false);
        } else {
            self.cast(id, Status::Again);
            if flags & lkf::NOQUEUEBAST != 0 {
                self.send_basts(id, true);
            }
            self.free(id);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn convert(
        &mut self,
        owner: u64,
        pid: u32,
        lkid: u32,
        mode: i32,
        flags: u32,
        lvb: Option<&Lvb>,
        has_bast: bool,
    ) -> Result<(), Errno> {
        let id = self.find_owned(owner, lkid)?;
        if !(0..=5).contains(&mode) {
            return Err(Errno::Inval);
        }
        let mode = mode as i8;
        let has = |f| flags & f != 0;
        if has(lkf::CANCEL) || (has(lkf::CONVDEADLK) && has(lkf::NOQUEUE)) || has(lkf::EXPEDITE) {
            return Err(Errno::Inval);
        }
        if self.lk(id).q != Some(Q::Granted) {
            return Err(Errno::Busy);
        }
        if has(lkf::QUECVT) && !quecvt_legal(self.lk(id).gr, mode) {
            return Err(Errno::Inval);
        }
        {
            let l = self.lkm(id);
            l.flags = flags;
            l.sb = 0;
            l.pid = pid;
            l.rq = mode;
            l.has_bast = has_bast;
            if let Some(v) = lvb {
                l.lvb = Some(*v);
            }
        }
        let name = self.lk(id).name.clone();
        let (ok, deadlk) = self.try_grant(id, true);
        if ok {
            self.grant(id);
            self.cast(id, Status::Granted);
            self.grant_pending(&name);
            return Ok(());
        }
        if deadlk && flags & lkf::NODLCKWT == 0 {
            self.lkm(id).rq = IV; // stays granted in its old mode
            self.cast(id, Status::Deadlock);
            return Ok(());
        }
        if self.lk(id).sb & sbf::DEMOTED != 0 {
            // demoted to NL: earlier conversions may go now, then maybe this one
            self.grant_pending_convert(&name);
            if self.grantable(id, true) {
                self.grant(id);
                self.cast(id, Status::Granted);
                self.grant_pending(&name);
                return Ok(());
            }
        }
        if flags & lkf::NOQUEUE == 0 {
            self.unqueue(id);
            self.enqueue(id, Q::Converting, flags & lkf::HEADQUE != 0);
            self.send_basts(id, false);
        } else {
            // EAGAIN: old mode kept (the requested mode is left set, as the
            // kernel's do_convert leaves it)
            self.cast(id, Status::Again);
            if flags & lkf::NOQUEUEBAST != 0 {
                self.send_basts(id, true);
            }
        }
        Ok(())
    }

    /// The unlock-side validation (spec §2.5, §6.3, §6.4). Ok(false): accepted,
    /// nothing to do.
    fn check_unlock(&mut self, owner: u64, lkid: u32, flags: u32) -> Result<(u32, bool), Errno> {
        let id = self.find_owned(owner, lkid)?;
        if flags & !lkf::UNLOCK_MASK != 0
            || (flags & lkf::CANCEL != 0 && flags & lkf::FORCEUNLOCK != 0)
        {
            return Err(Errno::Inval);
        }
        let l = self.lk(id);
        if flags & lkf::CANCEL != 0 {
            if l.flags & lkf::CANCEL != 0 {
                return Err(Errno::Inval);
            }
            if l.q == Some(Q::Granted) {
                return Ok((id, false));
            }
        } else if flags & lkf::FORCEUNLOCK != 0 && l.flags & lkf::FORCEUNLOCK != 0 {
            return Err(Errno::Inval);
        }
        let m = self.lkm(id);
        m.flags |= flags;
        m.sb = 0;
        Ok((id, true))
    }

    fn unlock(
        &mut self,
        owner: u64,
        lkid: u32,
        flags: u32,
        lvb: Option<&Lvb>,
    ) -> Result<(), Errno> {
        let (id, act) = self.check_unlock(owner, lkid, flags)?;
        if !act {
            return Ok(());
        }
        if let Some(v) = lvb {
            self.lkm(id).lvb = Some(*v);
        }
        if flags & lkf::CANCEL != 0 {
            self.cancel(id, false);
        } else {
            self.unlock_lock(id);
        }
        Ok(())
    }

    fn deadlock_cancel(&mut self, owner: u64, lkid: u32, flags: u32) -> Result<(), Errno> {
        let (id, act) = self.check_unlock(owner, lkid, flags)?;
        if act {
            self.cancel(id, true);
        }
        Ok(())
    }

    fn cancel(&mut self, id: u32, deadlock: bool) {
        let status = if deadlock {
            Status::Deadlock
        } else {
            Status::Cancelled
        };
        let name = self.lk(id).name.clone();
        self.lkm(id).rq = IV;
        match self.lk(id).q {
            Some(Q::Granted) | None => {}
            Some(Q::Converting) => {
                self.unqueue(id);
                self.enqueue_granted(id);
                self.cast(id, status);
                self.grant_pending(&name);
            }
            Some(Q::Waiting) => {
                self.unqueue(id);
                self.cast(id, status);
                if self.free(id) {
                    self.grant_pending(&name);
                }
            }
        }
    }

    fn unlock_lock(&mut self, id: u32) {
        let name = self.lk(id).name.clone();
        self.lvb_on_unlock(id);
        self.unqueue(id);
        self.lkm(id).gr = IV;
        self.cast(id, Status::Unlocked);
        if self.free(id) {
            self.grant_pending(&name);
        }
    }

    fn release_silently(&mut self, id: u32) {
        let l = self.lkm(id);
        l.silent = true;
        l.flags |= lkf::FORCEUNLOCK | lkf::IVVALBLK;
        self.unlock_lock(id);
    }

    fn owner_locks(&self, owner: u64) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = self
            .locks
            .iter()
            .filter(|(_, l)| l.owner == owner && !l.orphan)
            .map(|(&id, l)| (l.seq, id))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// Spec §6.1, in acquisition order; no event reaches the closed owner
    /// (callbacks generated meanwhile for its not yet processed locks are
    /// discarded with its pending callbacks).
    fn close(&mut self, owner: u64) {
        let mark = self.events.len();
        for id in self.owner_locks(owner) {
            if !self.locks.contains_key(&id) {
                continue;
            }
            if self.lk(id).flags & lkf::PERSISTENT != 0 {
                let name = self.lk(id).name.clone();
                self.lkm(id).orphan = true;
                self.lkm(id).rq = IV;
                self.orphans.push(id);
                match self.lk(id).q {
                    Some(Q::Converting) => {
                        self.unqueue(id);
                        self.enqueue_granted(id);
                        self.grant_pending(&name);
                    }
                    Some(Q::Waiting) => {
                        self.unqueue(id);
                        if self.free(id) {
                            self.grant_pending(&name);
                        }
                    }
                    _ => {}
                }
            } else {
                self.release_silently(id);
            }
        }
        self.mute(mark, owner);
    }

    fn purge_owner(&mut self, owner: u64) {
        let mark = self.events.len();
        for id in self.owner_locks(owner) {
            if self.locks.contains_key(&id) {
                self.release_silently(id);
            }
        }
        self.mute(mark, owner);
    }

    fn mute(&mut self, mark: usize, owner: u64) {
        if self.mimic.close_events {
            return;
        }
        let tail: Vec<MEv> = self.events.drain(mark..).collect();
        self.events.extend(tail.into_iter().filter(|e| match e {
            MEv::Ast { owner: o, .. } | MEv::Bast { owner: o, .. } => *o != owner,
        }));
    }

    fn purge_orphans(&mut self, pid: u32) {
        let victims: Vec<u32> = self
            .orphans
            .iter()
            .copied()
            .filter(|&id| pid == 0 || self.lk(id).pid == pid)
            .collect();
        for id in victims {
            self.release_silently(id);
        }
    }

    fn adopt(
        &mut self,
        owner: u64,
        pid: u32,
        mode: i32,
        flags: u32,
        name: &[u8],
        has_bast: bool,
    ) -> Result<u32, Errno> {
        let mut other_mode = false;
        let mut found = None;
        for &id in &self.orphans {
            let l = self.lk(id);
            if l.name != name {
                continue;
            }
            if l.gr as i32 != mode {
                other_mode = true;
                continue;
            }
            found = Some(id);
            break;
        }
        let Some(id) = found else {
            return Err(if other_mode {
                Errno::Again
            } else {
                Errno::NoEnt
            });
        };
        self.orphans.retain(|&x| x != id);
        let seq = self.next_seq();
        let l = self.lkm(id);
        l.orphan = false;
        l.owner = owner;
        l.pid = pid;
        l.flags = flags;
        l.has_bast = has_bast;
        l.seq = seq;
        Ok(id)
    }

    /// The model's view in the engine's dump format.
    fn dump(&self) -> Vec<ResourceInfo> {
        let info = |id: u32, q: QueueKind| {
            let l = self.lk(id);
            LockInfo {
                lkid: LockId(id),
                owner: Owner(l.owner),
                pid: l.pid,
                queue: q,
                granted: to_mode(l.gr),
                requested: to_mode(l.rq),
                flags: l.flags,
                orphan: l.orphan,
            }
        };
        self.res
            .iter()
            .map(|(name, r)| ResourceInfo {
                name: udlm::types::ResName::new(name).unwrap(),
                lvb: r.lvb,
                lvb_valid: !r.invalid,
                granted: r
                    .granted
                    .iter()
                    .map(|&i| info(i, QueueKind::Granted))
                    .collect(),
                converting: r
                    .converting
                    .iter()
                    .map(|&i| info(i, QueueKind::Converting))
                    .collect(),
                waiting: r
                    .waiting
                    .iter()
                    .map(|&i| info(i, QueueKind::Waiting))
                    .collect(),
            })
            .collect()
    }
}

// ----- steps ---------------------------------------------------------------------

/// Which lock a step names: the lock id returned by step `j` of the same
/// sequence (a request, failed ones included, or an adoption), or a raw id.
#[derive(Clone, Copy, Debug)]
enum Target {
    Step(usize),
    Raw(u32),
}

/// Which owner performs a step on a lock: the lock's owner (as the model
/// knows it when the step runs) or a fixed one.
#[derive(Clone, Copy, Debug)]
enum Who {
    OwnerOf,
    Fixed(u64),
}

#[derive(Clone, Debug)]
enum Step {
    Request {
        owner: u64,
        pid: u32,
        mode: i32,
        flags: u32,
        name: Vec<u8>,
        lvb: Option<Lvb>,
        has_bast: bool,
    },
    Convert {
        who: Who,
        pid: u32,
        target: Target,
        mode: i32,
        flags: u32,
        lvb: Option<Lvb>,
        has_bast: bool,
    },
    Unlock {
        who: Who,
        target: Target,
        flags: u32,
        lvb: Option<Lvb>,
    },
    DeadlockCancel {
        who: Who,
        target: Target,
        flags: u32,
    },
    Close {
        owner: u64,
    },
    Adopt {
        owner: u64,
        pid: u32,
        mode: i32,
        flags: u32,
        name: Vec<u8>,
        has_bast: bool,
    },
    PurgeOrphans {
        pid: u32,
    },
    PurgeOwner {
        owner: u64,
    },
}

fn flag_names(f: u32) -> String {
    const N: [(u32, &str); 20] = [
        (lkf::NOQUEUE, "NOQUEUE"),
        (lkf::CANCEL, "CANCEL"),
        (lkf::CONVERT, "CONVERT"),
        (lkf::VALBLK, "VALBLK"),
        (lkf::QUECVT, "QUECVT"),
        (lkf::IVVALBLK, "IVVALBLK"),
        (lkf::CONVDEADLK, "CONVDEADLK"),
        (lkf::PERSISTENT, "PERSISTENT"),
        (lkf::NODLCKWT, "NODLCKWT"),
        (lkf::NODLCKBLK, "NODLCKBLK"),
        (lkf::EXPEDITE, "EXPEDITE"),
        (lkf::NOQUEUEBAST, "NOQUEUEBAST"),
        (lkf::HEADQUE, "HEADQUE"),
        (lkf::NOORDER, "NOORDER"),
        (lkf::ORPHAN, "ORPHAN"),
        (lkf::ALTPR, "ALTPR"),
        (lkf::ALTCW, "ALTCW"),
        (lkf::FORCEUNLOCK, "FORCEUNLOCK"),
        (lkf::TIMEOUT, "TIMEOUT"),
        (lkf::WAIT, "WAIT"),
    ];
    let mut parts: Vec<String> = N
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = f & !N.iter().fold(0, |a, (b, _)| a | b);
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}

fn mode_name(m: i32) -> String {
    if (0..=5).contains(&m) {
        Mode::ALL[m as usize].to_string()
    } else {
        format!("mode {m}")
    }
}

fn name_str(n: &[u8]) -> String {
    format!("\"{}\"", n.escape_ascii())
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lv = |l: &Option<Lvb>| {
            l.as_ref()
                .map_or(String::new(), |v| format!(" lvb {}", show_lvb(v)))
        };
        let nb = |b: bool| if b { "" } else { " (no bast routine)" };
        match self {
            Step::Request {
                owner,
                pid,
                mode,
                flags,
                name,
                lvb,
                has_bast,
            } => write!(
                f,
                "request  owner {owner} pid {pid} {} {} {}{}{}",
                name_str(name),
                mode_name(*mode),
                flag_names(*flags),
                lv(lvb),
                nb(*has_bast)
            ),
            Step::Convert {
                who,
                pid,
                target,
                mode,
                flags,
                lvb,
                has_bast,
            } => write!(
                f,
                "convert  {who:?} pid {pid} {target:?} -> {} {}{}{}",
                mode_name(*mode),
                flag_names(*flags),
                lv(lvb),
                nb(*has_bast)
            ),
            Step::Unlock {
                who,
                target,
                flags,
                lvb,
            } => {
                write!(
                    f,
                    "unlock   {who:?} {target:?} {}{}",
                    flag_names(*flags),
                    lv(lvb)
                )
            }
            Step::DeadlockCancel { who, target, flags } => {
                write!(
                    f,
                    "deadlock_cancel {who:?} {target:?} {}",
                    flag_names(*flags)
                )
            }
            Step::Close { owner } => write!(f, "close_owner {owner}"),
            Step::Adopt {
                owner,
                pid,
                mode,
                flags,
                name,
                has_bast,
            } => write!(
                f,
                "adopt    owner {owner} pid {pid} {} {} {}{}",
                name_str(name),
                mode_name(*mode),
                flag_names(*flags),
                nb(*has_bast)
            ),
            Step::PurgeOrphans { pid } => write!(f, "purge_orphans pid {pid}"),
            Step::PurgeOwner { owner } => write!(f, "purge_owner {owner}"),
        }
    }
}

// ----- running a sequence ----------------------------------------------------------

struct Failure {
    step: usize,
    what: String,
    trace: Vec<String>,
    /// the model saw the `alt_in_place` situation in this run
    alt_in_place: bool,
}

impl Failure {
    /// What kind of disagreement this is, for shrinking (numbers removed).
    fn kind(&self) -> String {
        let first = self.what.lines().next().unwrap_or("");
        first.chars().filter(|c| !c.is_ascii_digit()).collect()
    }

    /// Failures caused by a deviation the run was told to look past.
    fn mimicked(&self, mimic: Mimic) -> bool {
        mimic.alt_in_place && self.alt_in_place
    }
}

/// What the sequences exercised (printed after a run, as evidence of coverage).
#[derive(Default, Debug)]
struct Stats {
    granted: u64,
    again: u64,
    deadlock: u64,
    cancelled: u64,
    unlocked: u64,
    demoted: u64,
    altmode: u64,
    valnotvalid: u64,
    lvb_copied: u64,
    basts: u64,
    errors: BTreeMap<String, u64>,
    adopted: u64,
    orphaned_now: u64,
    max_converting: usize,
    max_waiting: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.granted += o.granted;
        self.again += o.again;
        self.deadlock += o.deadlock;
        self.cancelled += o.cancelled;
        self.unlocked += o.unlocked;
        self.demoted += o.demoted;
        self.altmode += o.altmode;
        self.valnotvalid += o.valnotvalid;
        self.lvb_copied += o.lvb_copied;
        self.basts += o.basts;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.adopted += o.adopted;
        self.orphaned_now += o.orphaned_now;
        self.max_converting = self.max_converting.max(o.max_converting);
        self.max_waiting = self.max_waiting.max(o.max_waiting);
    }
}

struct Run {
    stats: Stats,
    e: Engine,
    m: Model,
    /// the lock id each step returned, if any (for `Target::Step`)
    produced: Vec<Option<u32>>,
    /// per live lock: an operation is waiting for its completion
    outstanding: HashMap<u32, bool>,
    /// incarnation seen for each live lock id, and the last one per id
    incarnation: HashMap<u32, u32>,
    last_incarnation: HashMap<u32, u32>,
    trace: Vec<String>,
}

fn to_mev(e: &Event) -> MEv {
    match *e {
        Event::Completion {
            owner,
            lkid,
            status,
            sb_flags,
            lvb,
            end_of_life,
            ..
        } => MEv::Ast {
            owner: owner.0,
            lkid: lkid.0,
            status,
            sb: sb_flags,
            lvb,
            eol: end_of_life,
        },
        Event::Blocking {
            owner, lkid, mode, ..
        } => MEv::Bast {
            owner: owner.0,
            lkid: lkid.0,
            mode,
        },
    }
}

fn show_dump(d: &[ResourceInfo]) -> String {
    let mut s = String::new();
    for r in d {
        s += &format!(
            "    {:?} lvb {} {}\n",
            r.name,
            r.lvb.as_ref().map_or("none".into(), show_lvb),
            if r.lvb_valid { "valid" } else { "NOT VALID" }
        );
        for (q, v) in [
            ("granted", &r.granted),
            ("converting", &r.converting),
            ("waiting", &r.waiting),
        ] {
            for l in v.iter() {
                s += &format!(
                    "      {q:<10} lkid {} owner {} pid {} gr {:?} rq {:?} flags {}{}\n",
                    l.lkid.0,
                    l.owner.0,
                    l.pid,
                    l.granted,
                    l.requested,
                    flag_names(l.flags),
                    if l.orphan { " ORPHAN" } else { "" }
                );
            }
        }
    }
    s
}

impl Run {
    fn new(mimic: Mimic) -> Run {
        let m = Model {
            mimic,
            ..Model::default()
        };
        Run {
            stats: Stats::default(),
            e: Engine::default(),
            m,
            produced: Vec::new(),
            outstanding: HashMap::new(),
            incarnation: HashMap::new(),
            last_incarnation: HashMap::new(),
            trace: Vec::new(),
        }
    }

    fn resolve(&self, t: Target) -> u32 {
        match t {
            Target::Step(j) => self.produced.get(j).copied().flatten().unwrap_or(0),
            Target::Raw(x) => x,
        }
    }

    fn who(&self, w: Who, id: u32) -> u64 {
        match w {
            Who::Fixed(o) => o,
            Who::OwnerOf => self.m.locks.get(&id).map_or(1, |l| l.owner),
        }
    }

    /// Runs one step on both sides and compares everything.
    fn step(&mut self, s: &Step) -> Result<(), String> {
        let mut line = format!("{:>3}: {s}", self.produced.len());
        self.produced.push(None);
        let (eng, model): (Result<u32, Errno>, Result<u32, Errno>) = match s {
            Step::Request {
                owner,
                pid,
                mode,
                flags,
                name,
                lvb,
                has_bast,
            } => {
                let r = self.e.request(Request {
                    owner: Owner(*owner),
                    pid: *pid,
                    mode: *mode,
                    flags: *flags,
                    name,
                    lvb: lvb.as_ref(),
                    has_bast: *has_bast,
                });
                let m = Model::check_request(*mode, *flags, name);
                match (r, m) {
                    (Ok(id), Ok(mode)) => {
                        if id.0 == 0 {
                            return Err("request returned lock id 0".into());
                        }
                        if self.m.locks.contains_key(&id.0) {
                            return Err(format!(
                                "request returned lock id {} which is still live",
                                id.0
                            ));
                        }
                        *self.produced.last_mut().unwrap() = Some(id.0);
                        self.outstanding.insert(id.0, true);
                        line += &format!("   => lkid {}", id.0);
                        self.m.request(
                            id.0,
                            *owner,
                            *pid,
                            mode,
                            *flags,
                            name,
                            lvb.as_ref(),
                            *has_bast,
                        );
                        (Ok(id.0), Ok(id.0))
                    }
                    (r, m) => (r.map(|x| x.0), m.map(|_| 0)),
                }
            }
            Step::Convert {
                who,
                pid,
                target,
                mode,
                flags,
                lvb,
                has_bast,
            } => {
                let id = self.resolve(*target);
                let o = self.who(*who, id);
                line += &format!("   [lkid {id} by owner {o}]");
                let r = self.e.convert(
                    Owner(o),
                    *pid,
                    LockId(id),
                    *mode,
                    *flags,
                    lvb.as_ref(),
                    *has_bast,
                );
                let m = self
                    .m
                    .convert(o, *pid, id, *mode, *flags, lvb.as_ref(), *has_bast);
                if r.is_ok() && m.is_ok() {
                    self.outstanding.insert(id, true);
                }
                (r.map(|_| 0), m.map(|_| 0))
            }
            Step::Unlock {
                who,
                target,
                flags,
                lvb,
            } => {
                let id = self.resolve(*target);
                let o = self.who(*who, id);
                line += &format!("   [lkid {id} by owner {o}]");
                let pending = self.m.locks.get(&id).map(|l| l.q != Some(Q::Granted));
                let r = self.e.unlock(Owner(o), LockId(id), *flags, lvb.as_ref());
                let m = self.m.unlock(o, id, *flags, lvb.as_ref());
                if r.is_ok() && m.is_ok() {
                    // a cancel with nothing pending completes nothing; every
                    // other accepted unlock/cancel ends with one completion
                    let cancel_nothing = flags & lkf::CANCEL != 0 && pending == Some(false);
                    if !cancel_nothing {
                        self.outstanding.insert(id, true);
                    }
                }
                (r.map(|_| 0), m.map(|_| 0))
            }
            Step::DeadlockCancel { who, target, flags } => {
                let id = self.resolve(*target);
                let o = self.who(*who, id);
                line += &format!("   [lkid {id} by owner {o}]");
                let r = self.e.deadlock_cancel(Owner(o), LockId(id), *flags);
                let m = self.m.deadlock_cancel(o, id, *flags);
                (r.map(|_| 0), m.map(|_| 0))
            }
            Step::Close { owner } => {
                self.e.close_owner(Owner(*owner));
                self.m.close(*owner);
                (Ok(0), Ok(0))
            }
            Step::Adopt {
                owner,
                pid,
                mode,
                flags,
                name,
                has_bast,
            } => {
                let r = self.e.adopt_orphan(Request {
                    owner: Owner(*owner),
                    pid: *pid,
                    mode: *mode,
                    flags: *flags,
                    name,
                    lvb: None,
                    has_bast: *has_bast,
                });
                let m = self.m.adopt(*owner, *pid, *mode, *flags, name, *has_bast);
                if let (Ok(id), Ok(_)) = (m, r) {
                    *self.produced.last_mut().unwrap() = Some(id);
                    line += &format!("   => lkid {id}");
                }
                (r.map(|x| x.0), m)
            }
            Step::PurgeOrphans { pid } => {
                self.e.purge_orphans(*pid);
                self.m.purge_orphans(*pid);
                (Ok(0), Ok(0))
            }
            Step::PurgeOwner { owner } => {
                self.e.purge_owner(Owner(*owner));
                self.m.purge_owner(*owner);
                (Ok(0), Ok(0))
            }
        };
        if let (Err(e), _) | (_, Err(e)) = (&eng, &model) {
            line += &format!("   -> {e:?}");
            let op = format!("{s}")
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string();
            *self.stats.errors.entry(format!("{op} {e:?}")).or_default() += 1;
        }
        if let (Step::Adopt { .. }, Ok(_)) = (s, &model) {
            self.stats.adopted += 1;
        }
        self.trace.push(line);
        if eng != model {
            return Err(format!("return value: engine {eng:?}, model {model:?}"));
        }
        self.e.check_invariants();

        // events
        let evs = self.e.take_events();
        self.note_events(&evs)?;
        let got: Vec<MEv> = evs.iter().map(to_mev).collect::<Vec<_>>();
        let raw = std::mem::take(&mut self.m.events);
        if got != raw {
            let show = |v: &[MEv]| {
                v.iter()
                    .map(|e| format!("\n        {e}"))
                    .collect::<String>()
            };
            return Err(format!(
                "events differ\n      engine:{}\n      model: {}",
                show(&got),
                show(&raw)
            ));
        }
        for e in &got {
            let st = &mut self.stats;
            match e {
                MEv::Ast {
                    status, sb, lvb, ..
                } => {
                    match status {
                        Status::Granted => st.granted += 1,
                        Status::Again => st.again += 1,
                        Status::Deadlock => st.deadlock += 1,
                        Status::Cancelled => st.cancelled += 1,
                        Status::Unlocked => st.unlocked += 1,
                        Status::TimedOut => return Err("ETIMEDOUT without any timeout set".into()),
                    }
                    st.demoted += (sb & sbf::DEMOTED != 0) as u64;
                    st.altmode += (sb & sbf::ALTMODE != 0) as u64;
                    st.valnotvalid += (sb & sbf::VALNOTVALID != 0) as u64;
                    st.lvb_copied += lvb.is_some() as u64;
                }
                MEv::Bast { .. } => st.basts += 1,
            }
            self.trace.push(format!("        {e}"));
            if let MEv::Ast { lkid, .. } = e {
                if self.outstanding.insert(*lkid, false) != Some(true) {
                    return Err(format!(
                        "completion for lock {lkid} with no operation outstanding"
                    ));
                }
            }
        }
        // queues
        let ed = self.e.resources();
        for r in &ed {
            self.stats.max_converting = self.stats.max_converting.max(r.converting.len());
            self.stats.max_waiting = self.stats.max_waiting.max(r.waiting.len());
        }
        self.stats.orphaned_now += self.e.orphan_count() as u64;
        let md = self.m.dump();
        if ed != md {
            return Err(format!(
                "queue state differs\n      engine:\n{}      model:\n{}",
                show_dump(&ed),
                show_dump(&md)
            ));
        }
        self.check_own_invariants(&ed)
    }

    /// Invariants checked on the engine's output, independently of the model.
    fn check_own_invariants(&mut self, dump: &[ResourceInfo]) -> Result<(), String> {
        // every lock on exactly one queue; no two incompatible holders
        let mut seen: HashMap<u32, ()> = HashMap::new();
        for r in dump {
            let holders: Vec<&LockInfo> = r.granted.iter().chain(r.converting.iter()).collect();
            for (i, a) in holders.iter().enumerate() {
                let ga = a.granted.ok_or("holder without a granted mode")?;
                for b in &holders[i + 1..] {
                    let gb = b.granted.ok_or("holder without a granted mode")?;
                    if !ga.compatible(gb) {
                        return Err(format!(
                            "incompatible holders {} ({ga}) and {} ({gb}) on {:?}",
                            a.lkid.0, b.lkid.0, r.name
                        ));
                    }
                }
            }
            for l in r.granted.iter().chain(&r.converting).chain(&r.waiting) {
                if seen.insert(l.lkid.0, ()).is_some() {
                    return Err(format!("lock {} on two queues", l.lkid.0));
                }
            }
            if r.granted.is_empty() && r.converting.is_empty() && r.waiting.is_empty() {
                return Err(format!("empty resource {:?} kept", r.name));
            }
        }
        if seen.len() != self.e.lock_count() {
            return Err(format!(
                "{} locks on queues, lock_count() {}",
                seen.len(),
                self.e.lock_count()
            ));
        }
        // one completion per operation: a granted lock has nothing outstanding,
        // a queued one has exactly its pending operation
        let live: HashMap<u32, QueueKind> = dump
            .iter()
            .flat_map(|r| r.granted.iter().chain(&r.converting).chain(&r.waiting))
            .map(|l| (l.lkid.0, l.queue))
            .collect();
        for (&id, &q) in &live {
            if self.m.locks.get(&id).is_some_and(|l| l.orphan) {
                // an orphan's pending operation was cancelled silently
                self.outstanding.insert(id, false);
                continue;
            }
            let out = self.outstanding.get(&id).copied().unwrap_or(false);
            if q == QueueKind::Granted && out {
                return Err(format!(
                    "lock {id} is granted but its operation had no completion"
                ));
            }
            if q != QueueKind::Granted && !out {
                return Err(format!("lock {id} is queued with no operation outstanding"));
            }
        }
        self.outstanding.retain(|id, _| live.contains_key(id));
        // locks that died silently (close, purge) keep their last incarnation
        let dead: Vec<u32> = self
            .incarnation
            .keys()
            .copied()
            .filter(|id| !live.contains_key(id))
            .collect();
        for id in dead {
            let inc = self.incarnation.remove(&id).unwrap();
            self.last_incarnation.insert(id, inc);
        }
        Ok(())
    }

    fn note_events(&mut self, evs: &[Event]) -> Result<(), String> {
        for e in evs {
            let (lkid, inc) = match *e {
                Event::Completion {
                    lkid, incarnation, ..
                }
                | Event::Blocking {
                    lkid, incarnation, ..
                } => (lkid.0, incarnation),
            };
            match self.incarnation.get(&lkid) {
                Some(&i) if i != inc => {
                    return Err(format!(
                        "lock {lkid}: incarnation changed from {i} to {inc}"
                    ))
                }
                Some(_) => {}
                None => {
                    if self.last_incarnation.get(&lkid) == Some(&inc) {
                        return Err(format!(
                            "lock id {lkid} reused with the same incarnation {inc}"
                        ));
                    }
                    self.incarnation.insert(lkid, inc);
                }
            }
            if let Event::Completion {
                end_of_life: true, ..
            } = e
            {
                self.incarnation.remove(&lkid);
                self.last_incarnation.insert(lkid, inc);
            }
        }
        Ok(())
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs one step, turning an engine panic into a disagreement.
fn guarded_step(run: &mut Run, s: &Step, i: usize) -> Result<(), Failure> {
    let r = panic::catch_unwind(AssertUnwindSafe(|| run.step(s)));
    let what = match r {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(what)) => what,
        Err(p) => format!("engine panicked: {}", panic_text(p)),
    };
    Err(Failure {
        step: i,
        what,
        trace: run.trace.clone(),
        alt_in_place: run.m.hit_alt_in_place,
    })
}

/// Replays steps; stops at the first disagreement.
fn run_steps(steps: &[Step], mimic: Mimic) -> Result<(), Failure> {
    let mut run = Run::new(mimic);
    for (i, s) in steps.iter().enumerate() {
        guarded_step(&mut run, s, i)?;
    }
    Ok(())
}

// ----- generating sequences ----------------------------------------------------------

const NAMES: [&[u8]; 4] = [b"a", b"b", b"", b"a\0"];

struct Gen {
    rng: Rng,
    names: usize,
    owners: u64,
    counter: u8,
}

impl Gen {
    fn name(&mut self) -> Vec<u8> {
        NAMES[self.rng.below(self.names as u64) as usize].to_vec()
    }
    fn owner(&mut self) -> u64 {
        self.rng.range(1, self.owners)
    }
    fn pid(&mut self, owner: u64) -> u32 {
        if self.rng.pct(80) {
            owner as u32
        } else {
            owner as u32 + 100
        }
    }
    fn mode(&mut self) -> i32 {
        if self.rng.pct(2) {
            [6, -1, 255][self.rng.below(3) as usize]
        } else {
            self.rng.below(6) as i32
        }
    }
    fn lvb(&mut self) -> Lvb {
        self.counter = self.counter.wrapping_add(1);
        let mut v = [0u8; 32];
        v[0] = self.counter;
        v[1] = self.rng.below(256) as u8;
        v
    }
    fn bits(&mut self, table: &[(u32, u64)]) -> u32 {
        let mut f = 0;
        for &(b, p) in table {
            if self.rng.pct(p) {
                f |= b;
            }
        }
        f
    }

    /// A lock to act on: mostly a live one of the model (so that deep states
    /// are reached), sometimes any id handed out, sometimes a raw id.
    fn target(&mut self, run: &Run) -> Target {
        let made: Vec<usize> = run
            .produced
            .iter()
            .enumerate()
            .filter(|(_, id)| id.is_some())
            .map(|(j, _)| j)
            .collect();
        let live: Vec<usize> = made
            .iter()
            .copied()
            .filter(|&j| run.m.locks.contains_key(&run.produced[j].unwrap()))
            .collect();
        let roll = self.rng.below(100);
        if roll < 85 && !live.is_empty() {
            Target::Step(live[self.rng.below(live.len() as u64) as usize])
        } else if roll < 95 && !made.is_empty() {
            Target::Step(made[self.rng.below(made.len() as u64) as usize])
        } else {
            Target::Raw([0, 1, 2, 3, 9999][self.rng.below(5) as usize])
        }
    }

    fn who(&mut self) -> Who {
        if self.rng.pct(92) {
            Who::OwnerOf
        } else {
            Who::Fixed(self.owner())
        }
    }

    fn step(&mut self, run: &Run) -> Step {
        let roll = self.rng.below(100);
        match roll {
            0..=29 => {
                let owner = self.owner();
                let mut flags = self.bits(&[
                    (lkf::NOQUEUE, 18),
                    (lkf::NOQUEUEBAST, 10),
                    (lkf::VALBLK, 30),
                    (lkf::IVVALBLK, 5),
                    (lkf::PERSISTENT, 25),
                    (lkf::ALTPR, 8),
                    (lkf::ALTCW, 8),
                    (lkf::NOORDER, 8),
                    (lkf::HEADQUE, 8),
                    (lkf::EXPEDITE, 5),
                    (lkf::NODLCKWT, 3),
                    (lkf::QUECVT, 1),
                    (lkf::CONVDEADLK, 1),
                    (lkf::CANCEL, 1),
                    (lkf::TIMEOUT, 2),
                    (0x0010_0000, 2),
                ]);
                let mut mode = self.mode();
                if flags & lkf::EXPEDITE != 0 && self.rng.pct(85) {
                    mode = 0;
                    flags &= !lkf::NOQUEUE;
                }
                let lvb = (flags & lkf::VALBLK != 0).then(|| self.lvb());
                let has_bast = self.rng.pct(90);
                let pid = self.pid(owner);
                let name = self.name();
                Step::Request {
                    owner,
                    pid,
                    mode,
                    flags,
                    name,
                    lvb,
                    has_bast,
                }
            }
            30..=59 => {
                let target = self.target(run);
                let mut flags = self.bits(&[
                    (lkf::NOQUEUE, 15),
                    (lkf::NOQUEUEBAST, 8),
                    (lkf::VALBLK, 35),
                    (lkf::IVVALBLK, 10),
                    (lkf::QUECVT, 15),
                    (lkf::CONVDEADLK, 15),
                    (lkf::NODLCKWT, 12),
                    (lkf::ALTPR, 8),
                    (lkf::ALTCW, 8),
                    (lkf::NOORDER, 8),
                    (lkf::HEADQUE, 8),
                    (lkf::PERSISTENT, 25),
                    (lkf::EXPEDITE, 1),
                    (lkf::CANCEL, 1),
                ]) | lkf::CONVERT;
                if self.rng.pct(3) {
                    flags &= !lkf::CONVERT;
                }
                let lvb = (flags & lkf::VALBLK != 0).then(|| self.lvb());
                let has_bast = self.rng.pct(90);
                let who = self.who();
                let pid = self.rng.range(1, self.owners) as u32;
                let mode = self.mode();
                Step::Convert {
                    who,
                    pid,
                    target,
                    mode,
                    flags,
                    lvb,
                    has_bast,
                }
            }
            60..=71 => {
                let target = self.target(run);
                let flags = match self.rng.below(20) {
                    0..=8 => 0,
                    9..=10 => lkf::VALBLK,
                    11 => lkf::IVVALBLK,
                    12..=14 => lkf::FORCEUNLOCK,
                    15 => lkf::FORCEUNLOCK | lkf::IVVALBLK,
                    16 => lkf::FORCEUNLOCK | lkf::VALBLK,
                    17 => lkf::CANCEL | lkf::FORCEUNLOCK,
                    18 => lkf::CONVERT,
                    _ => lkf::VALBLK | lkf::IVVALBLK,
                };
                // libdlm sends no LVB with an unlock (spec §5.6): sometimes none
                let lvb = (flags & lkf::VALBLK != 0 && self.rng.pct(75)).then(|| self.lvb());
                let who = self.who();
                Step::Unlock {
                    who,
                    target,
                    flags,
                    lvb,
                }
            }
            72..=83 => {
                let target = self.target(run);
                let flags = lkf::CANCEL
                    | match self.rng.below(10) {
                        0 => lkf::VALBLK,
                        1 => lkf::IVVALBLK,
                        _ => 0,
                    };
                let lvb = (flags & lkf::VALBLK != 0).then(|| self.lvb());
                let who = self.who();
                Step::Unlock {
                    who,
                    target,
                    flags,
                    lvb,
                }
            }
            84..=86 => {
                let target = self.target(run);
                let flags = match self.rng.below(10) {
                    0 => lkf::IVVALBLK,
                    1 => lkf::CANCEL,
                    2 => lkf::NOQUEUE,
                    _ => 0,
                };
                let who = self.who();
                Step::DeadlockCancel { who, target, flags }
            }
            87..=89 => Step::Close {
                owner: self.owner(),
            },
            90..=95 => {
                // adopt: mostly the name and mode of an existing orphan
                let owner = self.owner();
                let pid = self.pid(owner);
                let (name, mode) = match run.m.orphans.first().map(|&id| run.m.lk(id)) {
                    Some(l) if self.rng.pct(70) => {
                        let m = if self.rng.pct(75) {
                            l.gr as i32
                        } else {
                            self.mode()
                        };
                        (l.name.clone(), m)
                    }
                    _ => (self.name(), self.mode()),
                };
                let flags = lkf::ORPHAN | self.bits(&[(lkf::PERSISTENT, 60), (lkf::VALBLK, 20)]);
                let has_bast = self.rng.pct(90);
                Step::Adopt {
                    owner,
                    pid,
                    mode,
                    flags,
                    name,
                    has_bast,
                }
            }
            96..=97 => {
                let pid = match self.rng.below(3) {
                    0 => 0,
                    1 => self.rng.range(1, self.owners) as u32,
                    _ => self.rng.range(101, 100 + self.owners) as u32,
                };
                Step::PurgeOrphans { pid }
            }
            _ => Step::PurgeOwner {
                owner: self.owner(),
            },
        }
    }
}

/// Generates and runs one sequence; returns the steps and the outcome.
fn run_case(seed: u64, mimic: Mimic, stats: &mut Stats) -> (Vec<Step>, Result<(), Failure>) {
    let mut rng = Rng::new(seed);
    let names = rng.range(2, 4) as usize;
    let owners = rng.range(1, 4);
    let n = rng.range(20, 200) as usize;
    let mut g = Gen {
        rng,
        names,
        owners,
        counter: 0,
    };
    let mut run = Run::new(mimic);
    let mut steps = Vec::with_capacity(n);
    for i in 0..n {
        let s = g.step(&run);
        steps.push(s);
        if let Err(f) = guarded_step(&mut run, &steps[i], i) {
            return (steps, Err(f));
        }
    }
    stats.add(&run.stats);
    (steps, Ok(()))
}

/// The sequence without step `i`; later references to step numbers follow.
fn without_step(steps: &[Step], i: usize) -> Vec<Step> {
    let fix = |t: &mut Target| {
        if let Target::Step(j) = *t {
            *t = match j.cmp(&i) {
                std::cmp::Ordering::Less => Target::Step(j),
                std::cmp::Ordering::Equal => Target::Raw(0),
                std::cmp::Ordering::Greater => Target::Step(j - 1),
            };
        }
    };
    let mut out: Vec<Step> = steps
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != i)
        .map(|(_, s)| s.clone())
        .collect();
    for s in &mut out {
        match s {
            Step::Convert { target, .. }
            | Step::Unlock { target, .. }
            | Step::DeadlockCancel { target, .. } => fix(target),
            _ => {}
        }
    }
    out
}

/// Drops steps one at a time while the sequence still fails the same way.
fn shrink(mut steps: Vec<Step>, mimic: Mimic) -> (Vec<Step>, Failure) {
    let mut fail = match run_steps(&steps, mimic) {
        Err(f) => f,
        Ok(()) => unreachable!("shrink called on a passing sequence"),
    };
    steps.truncate(fail.step + 1);
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < steps.len() {
            let mut shorter = without_step(&steps, i);
            match run_steps(&shorter, mimic) {
                Err(f) if !f.mimicked(mimic) && f.kind() == fail.kind() => {
                    shorter.truncate(f.step + 1);
                    steps = shorter;
                    fail = f;
                    changed = true;
                }
                _ => i += 1,
            }
        }
        if !changed {
            return (steps, fail);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn mimic_from_env() -> Mimic {
    let v = std::env::var("UDLM_MODEL_MIMIC").unwrap_or_default();
    let has = |s: &str| v.split(',').any(|x| x.trim() == s || x.trim() == "all");
    Mimic {
        close_events: has("close_events"),
        alt_in_place: has("alt_in_place"),
        cw_pr_bast: has("cw_pr_bast"),
    }
}

#[test]
fn engine_agrees_with_the_reference_model() {
    let base = env_u64("UDLM_MODEL_SEED").unwrap_or(0x5EED_0001);
    let default_cases = if cfg!(debug_assertions) {
        5_000
    } else {
        10_000
    };
    let cases = env_u64("UDLM_MODEL_CASES").unwrap_or(default_cases);
    let mimic = mimic_from_env();
    let started = Instant::now();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let mut total_steps = 0usize;
    let mut stats = Stats::default();
    let mut skipped = 0u64;
    let mut failure = None;
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        let (steps, outcome) = run_case(seed, mimic, &mut stats);
        match outcome {
            Ok(()) => total_steps += steps.len(),
            Err(f) if f.mimicked(mimic) => skipped += 1,
            Err(f) => {
                failure = Some((seed, steps, f));
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some((seed, steps, first)) = failure {
        let n = steps.len();
        let (min, f) = shrink(steps, mimic);
        panic::set_hook(hook);
        let mut msg = format!(
            "\nengine and model disagree (seed {seed}; reproduce with UDLM_MODEL_SEED={seed} UDLM_MODEL_CASES=1)\n\
             first seen at step {} of {n}: {}\n\nminimal sequence ({} steps):\n",
            first.step + 1,
            first.what.lines().next().unwrap_or(""),
            min.len()
        );
        for line in &f.trace {
            msg += &format!("  {line}\n");
        }
        msg += &format!("\nat the last step: {}\n", f.what);
        panic!("{msg}");
    }
    panic::set_hook(hook);
    eprintln!(
        "engine_model: {cases} sequences, {total_steps} steps, {:.2?} ({} skipped by mimic), base seed {base}",
        elapsed, skipped
    );
    eprintln!("engine_model: coverage {stats:?}");
}
