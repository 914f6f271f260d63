//! The local protocol between a lockspace handle (the C library) and its
//! node (`udlmd`, or the in-process node of embedded mode).
//!
//! One `SOCK_SEQPACKET` connection serves one handle; it carries requests
//! and their replies (one packet each, strictly one reply per request). The
//! handle's callbacks travel on a socket pair whose far end the library
//! passes to the node (SCM_RIGHTS) with its first request: one packet per
//! callback. The near end is the descriptor a program polls
//! (`dlm_ls_get_fd`), so it is readable exactly while callbacks are pending
//! (spec §2.8), which a link shared with replies could not promise.
//!
//! Every packet starts with a one-byte type; integers are little-endian.
//! Packets are bounded by [`MAX_PACKET`]; a decoder rejects anything
//! malformed, truncated, oversized or of an unknown type with an error and
//! never panics. The first request on a connection is a hello carrying
//! [`PROTOCOL_VERSION`]; a node refuses other versions.

use crate::types::{Errno, Lvb, LOCKSPACE_LEN, LVB_LEN, RESNAME_MAXLEN};

/// The version of a lockspace handle's requests (library and node come
/// from one build).
pub const PROTOCOL_VERSION: u32 = 4;
/// The version of the query and control requests (`udlm`, and outside
/// tools: the control protocol is documented in udlmd(8)). It changes only
/// when their own format does, not with the handles' requests.
pub const ADMIN_VERSION: u32 = 3;
/// The largest packet either side sends or accepts.
pub const MAX_PACKET: usize = 512;

/// A `_wait` call asks for its completion in the reply instead of on the
/// event link, when that changes nothing a program could see: the handle
/// has read and delivered every callback the node ever queued for it
/// (`seen`, the count of callback packets it has read, equals the node's
/// count of packets queued), the operation's completion is the only
/// callback the call produces for the handle, and it would run `func`, the
/// library's own no-op completion routine of `_wait` calls. Otherwise the
/// completion goes on the event link as always. This saves the `_wait`
/// call a second packet and a wake-up of whoever reads the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineAsk {
    pub seen: u64,
    pub func: u64,
}

/// What a program passed with an operation, echoed back in its callbacks.
/// Meaningful only inside that program; the node never dereferences them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserArgs {
    pub ast: u64,
    pub astarg: u64,
    pub bast: u64,
    pub bastarg: u64,
    pub lksb: u64,
}

/// A request from a handle to its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// First packet of a request link: open (or create) a lockspace.
    Open {
        version: u32,
        name: Vec<u8>,
        create: Option<(u32, u32)>,
        tid: u32,
    },
    /// A new lock, a conversion (`LKF_CONVERT`) or an orphan adoption.
    Lock {
        mode: u8,
        flags: u32,
        lkid: u32,
        name: Vec<u8>,
        lvb: Option<Lvb>,
        user: UserArgs,
        tid: u32,
        /// `parent` of the call (a lock id in a hierarchical lockspace).
        parent: u32,
        /// `dlm_ls_lockx`'s timeout in centiseconds (with `LKF_TIMEOUT`).
        timeout_cs: u64,
        inline: Option<InlineAsk>,
    },
    /// Unlock or cancel; `astarg` 0 keeps the lock's argument.
    Unlock {
        lkid: u32,
        flags: u32,
        lvb: Option<Lvb>,
        astarg: u64,
        lksb: u64,
        inline: Option<InlineAsk>,
    },
    DeadlockCancel {
        lkid: u32,
        flags: u32,
    },
    Purge {
        nodeid: u32,
        pid: u32,
        tid: u32,
    },
    /// Close this handle and drop one creation reference of its lockspace.
    Release {
        force: u32,
    },
    /// Close this handle (its locks are released or orphaned).
    Close,
    /// The query call (`udlm_query_*`): the resource `name`, or with
    /// `lkid` non-zero the resource of that lock of this handle. Answered
    /// like a [`Request::Query`]: the length, then the bytes of a
    /// `node::inspect::ResourceView`.
    Inspect {
        lkid: u32,
        name: Vec<u8>,
    },
    /// First packet of a query link: a read-only question for `udlm`.
    Query {
        version: u32,
        query: Query,
    },
    /// First packet of a control link: a membership change for `udlmd`
    /// (control.rs has its layout and answer).
    Control {
        version: u32,
        op: crate::control::Op,
    },
}

/// What `udlm` may ask a node. The answer is a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// The node, its peers, quorum and lockspaces.
    Status,
    /// The lockspaces on this node.
    Lockspaces,
    /// Every resource and lock of one lockspace.
    Lockdump(Vec<u8>),
}

/// Largest JSON answer to a query.
pub const MAX_QUERY_ANSWER: usize = 64 << 20;
/// Answers travel in packets of at most this many bytes.
pub const QUERY_CHUNK: usize = 32 << 10;

/// A reply: `Ok(value)` (a lock id, a token) or an errno.
pub type Reply = Result<u64, Errno>;

/// A callback from the node to a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callback {
    pub blocking: bool,
    pub lkid: u32,
    pub incarnation: u32,
    /// `sb_status` as the user sees it (positive).
    pub status: i32,
    pub sb_flags: u8,
    pub lvb: Option<Lvb>,
    /// The routine to call and its argument.
    pub func: u64,
    pub arg: u64,
    /// Where to write status, id and flags (completions only).
    pub lksb: u64,
}

pub const CALLBACK_LEN: usize = 4 + 4 + 4 + 4 + LVB_LEN + 8 * 3;

const T_OPEN: u8 = 1;
const T_LOCK: u8 = 3;
const T_UNLOCK: u8 = 4;
const T_DEADLOCK_CANCEL: u8 = 5;
const T_PURGE: u8 = 6;
const T_RELEASE: u8 = 7;
const T_CLOSE: u8 = 8;
const T_QUERY: u8 = 9;
const T_INSPECT: u8 = 10;

/// Decoding failure: the packet is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

struct Writer(Vec<u8>);

impl Writer {
    fn new(t: u8) -> Writer {
        let mut v = Vec::with_capacity(128);
        v.push(t);
        Writer(v)
    }
    fn u8(&mut self, x: u8) -> &mut Self {
        self.0.push(x);
        self
    }
    fn u32(&mut self, x: u32) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn u64(&mut self, x: u64) -> &mut Self {
        self.0.extend_from_slice(&x.to_le_bytes());
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u8(b.len() as u8);
        self.0.extend_from_slice(b);
        self
    }
    fn lvb(&mut self, l: &Option<Lvb>) -> &mut Self {
        match l {
            Some(v) => {
                self.u8(1);
                self.0.extend_from_slice(v);
            }
            None => {
                self.u8(0);
            }
        }
        self
    }
    fn inline(&mut self, i: &Option<InlineAsk>) -> &mut Self {
        match i {
            Some(a) => self.u8(1).u64(a.seen).u64(a.func),
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, Malformed> {
        let n = self.u8()? as usize;
        if n > max {
            return Err(Malformed("name too long"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn lvb(&mut self) -> Result<Option<Lvb>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.take(LVB_LEN)?.try_into().unwrap())),
            _ => Err(Malformed("bad lvb tag")),
        }
    }
    fn inline(&mut self) -> Result<Option<InlineAsk>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(InlineAsk {
                seen: self.u64()?,
                func: self.u64()?,
            })),
            _ => Err(Malformed("bad inline tag")),
        }
    }
    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed("trailing bytes"))
        }
    }
}

impl Request {
    /// Whether the call asks for its completion in the reply.
    pub fn asks_inline(&self) -> bool {
        matches!(
            self,
            Request::Lock {
                inline: Some(_),
                ..
            } | Request::Unlock {
                inline: Some(_),
                ..
            }
        )
    }

    /// A lock call: it waits while a recovery blocks operations, as the
    /// kernel's do (node/server.rs `lock_when_ready`).
    pub fn is_lock_call(&self) -> bool {
        matches!(
            self,
            Request::Lock { .. }
                | Request::Unlock { .. }
                | Request::DeadlockCancel { .. }
                | Request::Purge { .. }
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let w = match self {
            Request::Open {
                version,
                name,
                create,
                tid,
            } => {
                let mut w = Writer::new(T_OPEN);
                w.u32(*version).bytes(name).u32(*tid);
                match create {
                    Some((mode, flags)) => w.u8(1).u32(*mode).u32(*flags),
                    None => w.u8(0),
                };
                w
            }
            Request::Lock {
                mode,
                flags,
                lkid,
                name,
                lvb,
                user,
                tid,
                parent,
                timeout_cs,
                inline,
            } => {
                let mut w = Writer::new(T_LOCK);
                w.u8(*mode).u32(*flags).u32(*lkid).bytes(name).lvb(lvb);
                w.u64(user.ast)
                    .u64(user.astarg)
                    .u64(user.bast)
                    .u64(user.bastarg)
                    .u64(user.lksb)
                    .u32(*tid)
                    .u32(*parent)
                    .u64(*timeout_cs);
                w.inline(inline);
                w
            }
            Request::Unlock {
                lkid,
                flags,
                lvb,
                astarg,
                lksb,
                inline,
            } => {
                let mut w = Writer::new(T_UNLOCK);
                w.u32(*lkid).u32(*flags).lvb(lvb).u64(*astarg).u64(*lksb);
                w.inline(inline);
                w
            }
            Request::DeadlockCancel { lkid, flags } => {
                let mut w = Writer::new(T_DEADLOCK_CANCEL);
                w.u32(*lkid).u32(*flags);
                w
            }
            Request::Purge { nodeid, pid, tid } => {
                let mut w = Writer::new(T_PURGE);
                w.u32(*nodeid).u32(*pid).u32(*tid);
                w
            }
            Request::Release { force } => {
                let mut w = Writer::new(T_RELEASE);
                w.u32(*force);
                w
            }
            Request::Close => Writer::new(T_CLOSE),
            Request::Inspect { lkid, name } => {
                let mut w = Writer::new(T_INSPECT);
                w.u32(*lkid).bytes(name);
                w
            }
            Request::Query { version, query } => {
                let mut w = Writer::new(T_QUERY);
                w.u32(*version);
                match query {
                    Query::Status => w.u8(0),
                    Query::Lockspaces => w.u8(1),
                    Query::Lockdump(ls) => w.u8(2).bytes(ls),
                };
                w
            }
            Request::Control { version, op } => {
                let mut w = Writer::new(crate::control::T_CONTROL);
                w.u32(*version);
                op.encode_into(&mut w.0);
                w
            }
        };
        debug_assert!(w.0.len() <= MAX_PACKET);
        w.0
    }

    pub fn decode(p: &[u8]) -> Result<Request, Malformed> {
        if p.len() > MAX_PACKET {
            return Err(Malformed("oversized"));
        }
        let mut r = Reader(p);
        let req = match r.u8()? {
            T_OPEN => {
                let version = r.u32()?;
                let name = r.bytes(LOCKSPACE_LEN)?;
                let tid = r.u32()?;
                let create = match r.u8()? {
                    0 => None,
                    1 => Some((r.u32()?, r.u32()?)),
                    _ => return Err(Malformed("bad create tag")),
                };
                Request::Open {
                    version,
                    name,
                    create,
                    tid,
                }
            }
            T_LOCK => {
                let mode = r.u8()?;
                let flags = r.u32()?;
                let lkid = r.u32()?;
                let name = r.bytes(RESNAME_MAXLEN)?;
                let lvb = r.lvb()?;
                let user = UserArgs {
                    ast: r.u64()?,
                    astarg: r.u64()?,
                    bast: r.u64()?,
                    bastarg: r.u64()?,
                    lksb: r.u64()?,
                };
                let tid = r.u32()?;
                Request::Lock {
                    mode,
                    flags,
                    lkid,
                    name,
                    lvb,
                    user,
                    tid,
                    parent: r.u32()?,
                    timeout_cs: r.u64()?,
                    inline: r.inline()?,
                }
            }
            T_UNLOCK => Request::Unlock {
                lkid: r.u32()?,
                flags: r.u32()?,
                lvb: r.lvb()?,
                astarg: r.u64()?,
                lksb: r.u64()?,
                inline: r.inline()?,
            },
            T_DEADLOCK_CANCEL => Request::DeadlockCancel {
                lkid: r.u32()?,
                flags: r.u32()?,
            },
            T_PURGE => Request::Purge {
                nodeid: r.u32()?,
                pid: r.u32()?,
                tid: r.u32()?,
            },
            T_RELEASE => Request::Release { force: r.u32()? },
            T_CLOSE => Request::Close,
            T_INSPECT => Request::Inspect {
                lkid: r.u32()?,
                name: r.bytes(RESNAME_MAXLEN)?,
            },
            T_QUERY => {
                let version = r.u32()?;
                let query = match r.u8()? {
                    0 => Query::Status,
                    1 => Query::Lockspaces,
                    2 => Query::Lockdump(r.bytes(LOCKSPACE_LEN)?),
                    _ => return Err(Malformed("unknown query")),
                };
                Request::Query { version, query }
            }
            crate::control::T_CONTROL => {
                let version = r.u32()?;
                let op = crate::control::Op::decode(r.take(r.0.len())?)?;
                Request::Control { version, op }
            }
            _ => return Err(Malformed("unknown request type")),
        };
        r.end()?;
        Ok(req)
    }
}

/// A reply followed by the completion of its operation ([`InlineAsk`]):
/// 12 + [`CALLBACK_LEN`] bytes.
pub fn encode_reply_with(reply: &Reply, completion: &[u8; CALLBACK_LEN]) -> Vec<u8> {
    let mut b = encode_reply(reply).to_vec();
    b.extend_from_slice(completion);
    b
}

/// A reply, with the completion that came inline if any.
pub fn decode_reply_with(p: &[u8]) -> Result<(Reply, Option<Callback>), Malformed> {
    match p.len() {
        12 => Ok((decode_reply(p)?, None)),
        n if n == 12 + CALLBACK_LEN => {
            let cb = Callback::decode(&p[12..])?;
            if cb.blocking {
                return Err(Malformed("a blocking callback as a completion"));
            }
            Ok((decode_reply(&p[..12])?, Some(cb)))
        }
        _ => Err(Malformed("bad reply length")),
    }
}

/// Replies are 12 bytes: an errno (0 for success) and a value.
pub fn encode_reply(reply: &Reply) -> [u8; 12] {
    let mut b = [0u8; 12];
    match reply {
        Ok(v) => b[4..].copy_from_slice(&v.to_le_bytes()),
        Err(e) => b[..4].copy_from_slice(&(e.to_raw() as u32).to_le_bytes()),
    }
    b
}

pub fn decode_reply(p: &[u8]) -> Result<Reply, Malformed> {
    if p.len() != 12 {
        return Err(Malformed("bad reply length"));
    }
    let err = u32::from_le_bytes(p[..4].try_into().unwrap());
    let val = u64::from_le_bytes(p[4..].try_into().unwrap());
    if err == 0 {
        Ok(Ok(val))
    } else {
        Ok(Err(Errno::from_raw(err as i32)))
    }
}

impl Callback {
    pub fn encode(&self) -> [u8; CALLBACK_LEN] {
        let mut b = [0u8; CALLBACK_LEN];
        b[0] = self.blocking as u8;
        b[1] = self.sb_flags;
        b[2] = self.lvb.is_some() as u8;
        b[4..8].copy_from_slice(&self.lkid.to_le_bytes());
        b[8..12].copy_from_slice(&self.incarnation.to_le_bytes());
        b[12..16].copy_from_slice(&self.status.to_le_bytes());
        if let Some(l) = &self.lvb {
            b[16..48].copy_from_slice(l);
        }
        b[48..56].copy_from_slice(&self.func.to_le_bytes());
        b[56..64].copy_from_slice(&self.arg.to_le_bytes());
        b[64..72].copy_from_slice(&self.lksb.to_le_bytes());
        b
    }

    pub fn decode(p: &[u8]) -> Result<Callback, Malformed> {
        if p.len() != CALLBACK_LEN {
            return Err(Malformed("bad callback length"));
        }
        if p[0] > 1 || p[2] > 1 || p[3] != 0 {
            return Err(Malformed("bad callback tags"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap());
        Ok(Callback {
            blocking: p[0] == 1,
            sb_flags: p[1],
            lvb: (p[2] == 1).then(|| p[16..48].try_into().unwrap()),
            lkid: u32_at(4),
            incarnation: u32_at(8),
            status: u32_at(12) as i32,
            func: u64_at(48),
            arg: u64_at(56),
            lksb: u64_at(64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Request> {
        vec![
            Request::Open {
                version: 1,
                name: b"ls".to_vec(),
                create: Some((0o600, 8)),
                tid: 7,
            },
            Request::Open {
                version: 1,
                name: vec![b'x'; 64],
                create: None,
                tid: 7,
            },
            Request::Lock {
                mode: 5,
                flags: 0x8000_0008,
                lkid: 3,
                name: vec![0; 64],
                lvb: Some([9; 32]),
                user: UserArgs {
                    ast: 1,
                    astarg: 2,
                    bast: 3,
                    bastarg: 4,
                    lksb: 5,
                },
                tid: 9,
                parent: 7,
                timeout_cs: 250,
                inline: Some(InlineAsk {
                    seen: u64::MAX,
                    func: 0x5555_1234,
                }),
            },
            Request::Lock {
                mode: 0,
                flags: 0,
                lkid: 0,
                name: vec![],
                lvb: None,
                user: UserArgs::default(),
                tid: 0,
                parent: 0,
                timeout_cs: 0,
                inline: None,
            },
            Request::Unlock {
                lkid: 1,
                flags: 2,
                lvb: None,
                astarg: 0,
                lksb: 8,
                inline: None,
            },
            Request::Unlock {
                lkid: 1,
                flags: 2,
                lvb: Some([1; 32]),
                astarg: 0,
                lksb: 8,
                inline: Some(InlineAsk { seen: 3, func: 9 }),
            },
            Request::DeadlockCancel { lkid: 1, flags: 0 },
            Request::Inspect {
                lkid: 0,
                name: vec![b'r'; 64],
            },
            Request::Inspect {
                lkid: 7,
                name: vec![],
            },
            Request::Purge {
                nodeid: 0,
                pid: 5,
                tid: 5,
            },
            Request::Release { force: 1 },
            Request::Close,
            Request::Query {
                version: 1,
                query: Query::Status,
            },
            Request::Query {
                version: 1,
                query: Query::Lockdump(b"ls".to_vec()),
            },
            Request::Control {
                version: 2,
                op: crate::control::Op::Add {
                    id: 4,
                    address: "10.0.0.4".into(),
                    port: 21064,
                },
            },
            Request::Control {
                version: 2,
                op: crate::control::Op::Fenced { id: 3 },
            },
        ]
    }

    #[test]
    fn requests_round_trip() {
        for r in samples() {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        for r in samples() {
            let b = r.encode();
            for n in 0..b.len() {
                assert!(Request::decode(&b[..n]).is_err(), "{r:?} cut at {n}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Request::decode(&longer).is_err());
        }
        assert!(Request::decode(&[99]).is_err());
        assert!(Request::decode(&vec![T_LOCK; MAX_PACKET + 1]).is_err());
    }

    #[test]
    fn oversized_names_are_rejected() {
        let mut b = Request::Open {
            version: 1,
            name: vec![b'a'; 64],
            create: None,
            tid: 0,
        }
        .encode();
        b[5] = 65;
        b.insert(6, b'a');
        assert_eq!(Request::decode(&b), Err(Malformed("name too long")));
    }

    #[test]
    fn callbacks_and_replies_round_trip() {
        let c = Callback {
            blocking: false,
            lkid: 4,
            incarnation: 77,
            status: 65538,
            sb_flags: 2,
            lvb: Some([1; 32]),
            func: 10,
            arg: 11,
            lksb: 12,
        };
        assert_eq!(Callback::decode(&c.encode()).unwrap(), c);
        assert!(Callback::decode(&c.encode()[1..]).is_err());
        let mut bad = c.encode();
        bad[0] = 7;
        assert!(Callback::decode(&bad).is_err());
        for r in [Ok(5u64), Err(Errno::Busy), Err(Errno::NoEnt)] {
            assert_eq!(decode_reply(&encode_reply(&r)).unwrap(), r);
            assert_eq!(decode_reply_with(&encode_reply(&r)).unwrap(), (r, None));
            let with = encode_reply_with(&r, &c.encode());
            assert_eq!(decode_reply_with(&with).unwrap(), (r, Some(c)));
            assert!(decode_reply_with(&with[..with.len() - 1]).is_err());
        }
        // A BAST is never a completion.
        let bast = Callback {
            blocking: true,
            ..c
        };
        assert!(decode_reply_with(&encode_reply_with(&Ok(1), &bast.encode())).is_err());
    }

    /// Random bytes and random mutations of valid packets: errors, never
    /// panics; whatever decodes re-encodes identically.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid: Vec<Vec<u8>> = samples().iter().map(|r| r.encode()).collect();
        for i in 0..20_000 {
            let mut b = if i % 2 == 0 {
                valid[(next() as usize) % valid.len()].clone()
            } else {
                (0..(next() % 80) as usize).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 4) {
                if !b.is_empty() {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
            }
            if let Ok(r) = Request::decode(&b) {
                assert_eq!(Request::decode(&r.encode()).unwrap(), r);
            }
            let _ = decode_reply(&b);
            let _ = Callback::decode(&b);
        }
    }
}
