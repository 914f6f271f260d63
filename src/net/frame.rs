//! The wire format of the node-to-node transport: the fixed 32-byte frame
//! header, the payloads of the control frames (HELLO, HELLO_REPLY, BYE), and
//! a bounded frame reader.
//!
//! Everything here is pure (no sockets, no threads) so that it can be unit
//! tested and fuzzed on its own. Every decoder checks a length before it
//! allocates or slices, and reports a [`FrameError`] instead of panicking:
//! the bytes come from the network. `docs/PROTOCOL.md` is the normative
//! description; keep the two in step.

use std::fmt;
use std::io::{self, Read};

/// `b"UDLN"` read as a little-endian u32: the first four bytes of every frame.
pub const MAGIC: u32 = u32::from_le_bytes(*b"UDLN");
/// The protocol version this code speaks. A peer with another version is refused.
pub const VERSION: u8 = 1;
/// Size of the fixed header that starts every frame.
pub const HEADER_LEN: usize = 32;
/// Length of the random challenge in a HELLO.
pub const NONCE_LEN: usize = 32;
/// Length of an HMAC-SHA256 tag.
pub const MAC_LEN: usize = 32;
/// Longest cluster name (it is sent with a one-byte length).
pub const MAX_CLUSTER_NAME: usize = 255;
/// Longest human-readable text in a BYE.
pub const MAX_BYE_TEXT: usize = 256;
/// Hard upper bound on `max_message`, whatever the configuration says, so a
/// single frame can never ask for more than this much memory.
pub const MAX_MESSAGE_LIMIT: usize = 16 << 20;

/// HELLO fixed part: node id, target id, incarnation, nonce, cluster name length.
pub const HELLO_FIXED_LEN: usize = 4 + 4 + 8 + NONCE_LEN + 1;
/// HELLO_REPLY payload: node id, incarnation, MAC.
pub const HELLO_REPLY_LEN: usize = 4 + 8 + MAC_LEN;
/// BYE fixed part: reason code.
pub const BYE_FIXED_LEN: usize = 4;

/// Header flag on HELLO: the sender has a cluster key and will authenticate.
pub const FLAG_AUTH: u16 = 0x0001;

/// BYE reason codes (informational: a receiver logs them, nothing else).
pub mod reason {
    /// The sender is shutting down.
    pub const SHUTDOWN: u32 = 0;
    /// The cluster names differ.
    pub const WRONG_CLUSTER: u32 = 1;
    /// The claimed node id is not configured (or is the receiver's own id).
    pub const UNKNOWN_NODE: u32 = 2;
    /// The challenge response did not verify (different key).
    pub const AUTH_FAILED: u32 = 3;
    /// One side has a key and the other has none.
    pub const AUTH_MISMATCH: u32 = 4;
    /// A better connection between the same two nodes already exists.
    pub const DUPLICATE: u32 = 5;
    /// The frame sequence broke the protocol.
    pub const PROTOCOL: u32 = 6;
    /// The dialer reached a node other than the one it meant to reach.
    pub const WRONG_TARGET: u32 = 7;

    /// A short name for a reason code, for log lines.
    pub fn name(code: u32) -> &'static str {
        match code {
            SHUTDOWN => "shutdown",
            WRONG_CLUSTER => "wrong cluster",
            UNKNOWN_NODE => "unknown node",
            AUTH_FAILED => "authentication failed",
            AUTH_MISMATCH => "authentication mismatch",
            DUPLICATE => "duplicate connection",
            PROTOCOL => "protocol error",
            WRONG_TARGET => "wrong target node",
            _ => "unknown reason",
        }
    }
}

/// The frame types. The numeric values are on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Handshake opening: identity, incarnation and a challenge nonce.
    Hello = 1,
    /// Handshake answer: the MAC over the peer's nonce.
    HelloReply = 2,
    /// One application message with a sequence number.
    Data = 3,
    /// A cumulative acknowledgement (the `ack` header field) and nothing else.
    Ack = 4,
    /// Keeps an idle connection alive; also carries an ack.
    Heartbeat = 5,
    /// Orderly close, with a reason.
    Bye = 6,
}

impl FrameType {
    pub fn from_u8(v: u8) -> Option<FrameType> {
        Some(match v {
            1 => FrameType::Hello,
            2 => FrameType::HelloReply,
            3 => FrameType::Data,
            4 => FrameType::Ack,
            5 => FrameType::Heartbeat,
            6 => FrameType::Bye,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "HELLO",
            FrameType::HelloReply => "HELLO_REPLY",
            FrameType::Data => "DATA",
            FrameType::Ack => "ACK",
            FrameType::Heartbeat => "HEARTBEAT",
            FrameType::Bye => "BYE",
        }
    }

    /// The inclusive range of payload lengths a frame of this type may have.
    /// Control frames have small fixed bounds whatever `max_message` is, so a
    /// peer that has not authenticated yet cannot make us allocate much.
    pub fn payload_bounds(self, max_message: usize) -> (usize, usize) {
        match self {
            FrameType::Hello => (HELLO_FIXED_LEN, HELLO_FIXED_LEN + MAX_CLUSTER_NAME),
            FrameType::HelloReply => (HELLO_REPLY_LEN, HELLO_REPLY_LEN),
            FrameType::Data => (0, max_message.min(MAX_MESSAGE_LIMIT)),
            FrameType::Ack | FrameType::Heartbeat => (0, 0),
            FrameType::Bye => (BYE_FIXED_LEN, BYE_FIXED_LEN + MAX_BYE_TEXT),
        }
    }
}

/// Why a frame was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The input ended inside a frame (`need` bytes were required, `have` present).
    Truncated {
        need: usize,
        have: usize,
    },
    BadMagic(u32),
    BadVersion(u8),
    UnknownType(u8),
    /// The length field is outside the bounds for the frame type (this is
    /// also how an oversized DATA frame is reported).
    BadLength {
        ftype: FrameType,
        len: u32,
        min: usize,
        max: usize,
    },
    /// The payload does not parse.
    BadPayload(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { need, have } => {
                write!(f, "truncated frame ({have} of {need} bytes)")
            }
            FrameError::BadMagic(m) => write!(f, "bad magic 0x{m:08x}"),
            FrameError::BadVersion(v) => {
                write!(
                    f,
                    "unsupported protocol version {v} (this node speaks {VERSION})"
                )
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type {t}"),
            FrameError::BadLength {
                ftype,
                len,
                min,
                max,
            } => write!(
                f,
                "bad length {len} for a {} frame (allowed {min}..={max})",
                ftype.name()
            ),
            FrameError::BadPayload(why) => write!(f, "malformed payload: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The fixed header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ftype: FrameType,
    pub flags: u16,
    /// Payload length in bytes (the payload follows the header).
    pub len: u32,
    /// Node id of the sender.
    pub sender: u32,
    /// DATA: the message's sequence number (from 1). Other types: 0.
    pub seq: u64,
    /// Cumulative acknowledgement: every DATA sequence number up to and
    /// including this one has been delivered by the sender of this frame.
    pub ack: u64,
}

impl Header {
    pub fn new(ftype: FrameType, sender: u32) -> Header {
        Header {
            ftype,
            flags: 0,
            len: 0,
            sender,
            seq: 0,
            ack: 0,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4] = VERSION;
        b[5] = self.ftype as u8;
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.sender.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.ack.to_le_bytes());
        b
    }

    /// Decode and validate a header: magic, version, type, and the length
    /// against the bounds of the type (so the caller may then allocate
    /// `len` bytes safely).
    pub fn decode(b: &[u8], max_message: usize) -> Result<Header, FrameError> {
        if b.len() < HEADER_LEN {
            return Err(FrameError::Truncated {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        if b[4] != VERSION {
            return Err(FrameError::BadVersion(b[4]));
        }
        let ftype = FrameType::from_u8(b[5]).ok_or(FrameError::UnknownType(b[5]))?;
        let flags = u16::from_le_bytes([b[6], b[7]]);
        let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let (min, max) = ftype.payload_bounds(max_message);
        if (len as usize) < min || (len as usize) > max {
            return Err(FrameError::BadLength {
                ftype,
                len,
                min,
                max,
            });
        }
        Ok(Header {
            ftype,
            flags,
            len,
            sender: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            seq: u64::from_le_bytes(le8(&b[16..24])),
            ack: u64::from_le_bytes(le8(&b[24..32])),
        })
    }
}

fn le8(s: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&s[..8]);
    a
}

/// Append one frame (header with `len` set from the payload, then the payload) to `out`.
pub fn encode_frame(header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    let mut h = *header;
    h.len = payload.len() as u32;
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(payload);
}

/// Decode one frame from the start of `buf`: its header, its payload, and
/// the number of bytes it occupies. An incomplete frame is `Truncated`.
pub fn decode_frame(buf: &[u8], max_message: usize) -> Result<(Header, &[u8], usize), FrameError> {
    let h = Header::decode(buf, max_message)?;
    let total = HEADER_LEN + h.len as usize;
    if buf.len() < total {
        return Err(FrameError::Truncated {
            need: total,
            have: buf.len(),
        });
    }
    Ok((h, &buf[HEADER_LEN..total], total))
}

/// Why [`read_frame`] stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended cleanly between two frames.
    Eof,
    /// A socket error (including a read timeout: `WouldBlock`/`TimedOut`).
    Io(io::Error),
    /// The bytes are not a valid frame (this includes an end of stream in
    /// the middle of a frame, reported as `Truncated`).
    Frame(FrameError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Eof => write!(f, "connection closed"),
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Frame(e) => write!(f, "{e}"),
        }
    }
}

/// Whether `buf` begins with a whole frame (or with a header that does not
/// decode, which reading it will report): the next `read_frame` from a
/// buffer holding `buf` does not wait for the network.
pub fn whole_frame_in(buf: &[u8], max_message: usize) -> bool {
    if buf.len() < HEADER_LEN {
        return false;
    }
    match Header::decode(&buf[..HEADER_LEN], max_message) {
        Ok(h) => buf.len() - HEADER_LEN >= h.len as usize,
        Err(_) => true,
    }
}

/// Read one whole frame from a stream. The header is validated before the
/// payload buffer is allocated, so a hostile length cannot make us allocate
/// more than the bound for its frame type.
pub fn read_frame<R: Read>(r: &mut R, max_message: usize) -> Result<(Header, Vec<u8>), ReadError> {
    let mut hb = [0u8; HEADER_LEN];
    let mut have = 0;
    while have < HEADER_LEN {
        match r.read(&mut hb[have..]) {
            Ok(0) if have == 0 => return Err(ReadError::Eof),
            Ok(0) => {
                return Err(ReadError::Frame(FrameError::Truncated {
                    need: HEADER_LEN,
                    have,
                }))
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let h = Header::decode(&hb, max_message).map_err(ReadError::Frame)?;
    let len = h.len as usize;
    let mut payload = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut payload[got..]) {
            Ok(0) => {
                return Err(ReadError::Frame(FrameError::Truncated {
                    need: HEADER_LEN + len,
                    have: HEADER_LEN + got,
                }))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok((h, payload))
}

/// HELLO payload: who the sender is and the challenge it sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub node_id: u32,
    /// The node the sender meant to reach (the dialer knows it), 0 if unknown (the acceptor).
    pub target_id: u32,
    /// Random per-process value: a change means the peer restarted.
    pub incarnation: u64,
    pub nonce: [u8; NONCE_LEN],
    pub cluster: Vec<u8>,
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let name = &self.cluster[..self.cluster.len().min(MAX_CLUSTER_NAME)];
        let mut b = Vec::with_capacity(HELLO_FIXED_LEN + name.len());
        b.extend_from_slice(&self.node_id.to_le_bytes());
        b.extend_from_slice(&self.target_id.to_le_bytes());
        b.extend_from_slice(&self.incarnation.to_le_bytes());
        b.extend_from_slice(&self.nonce);
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        b
    }

    pub fn decode(p: &[u8]) -> Result<Hello, FrameError> {
        if p.len() < HELLO_FIXED_LEN {
            return Err(FrameError::BadPayload("HELLO too short"));
        }
        let name_len = p[HELLO_FIXED_LEN - 1] as usize;
        if p.len() != HELLO_FIXED_LEN + name_len {
            return Err(FrameError::BadPayload(
                "HELLO cluster name length does not match the frame",
            ));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&p[16..16 + NONCE_LEN]);
        Ok(Hello {
            node_id: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            target_id: u32::from_le_bytes([p[4], p[5], p[6], p[7]]),
            incarnation: u64::from_le_bytes(le8(&p[8..16])),
            nonce,
            cluster: p[HELLO_FIXED_LEN..].to_vec(),
        })
    }
}

/// HELLO_REPLY payload: the answer to the peer's challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloReply {
    /// Must repeat the HELLO's node id.
    pub node_id: u32,
    /// Must repeat the HELLO's incarnation.
    pub incarnation: u64,
    /// HMAC-SHA256(key, peer nonce || node_id || cluster || incarnation); zeros without a key.
    pub mac: [u8; MAC_LEN],
}

impl HelloReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HELLO_REPLY_LEN);
        b.extend_from_slice(&self.node_id.to_le_bytes());
        b.extend_from_slice(&self.incarnation.to_le_bytes());
        b.extend_from_slice(&self.mac);
        b
    }

    pub fn decode(p: &[u8]) -> Result<HelloReply, FrameError> {
        if p.len() != HELLO_REPLY_LEN {
            return Err(FrameError::BadPayload("HELLO_REPLY has the wrong size"));
        }
        let mut mac = [0u8; MAC_LEN];
        mac.copy_from_slice(&p[12..12 + MAC_LEN]);
        Ok(HelloReply {
            node_id: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            incarnation: u64::from_le_bytes(le8(&p[4..12])),
            mac,
        })
    }
}

/// BYE payload: a reason code and a short text for the peer's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bye {
    pub reason: u32,
    pub text: String,
}

impl Bye {
    pub fn encode(&self) -> Vec<u8> {
        let mut text = self.text.as_bytes();
        if text.len() > MAX_BYE_TEXT {
            // Cut on a character boundary so the text stays valid UTF-8.
            let mut end = MAX_BYE_TEXT;
            while !self.text.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
        }
        let mut b = Vec::with_capacity(BYE_FIXED_LEN + text.len());
        b.extend_from_slice(&self.reason.to_le_bytes());
        b.extend_from_slice(text);
        b
    }

    pub fn decode(p: &[u8]) -> Result<Bye, FrameError> {
        if p.len() < BYE_FIXED_LEN || p.len() > BYE_FIXED_LEN + MAX_BYE_TEXT {
            return Err(FrameError::BadPayload("BYE has the wrong size"));
        }
        Ok(Bye {
            reason: u32::from_le_bytes([p[0], p[1], p[2], p[3]]),
            // The text is only logged; replace anything that is not UTF-8.
            text: String::from_utf8_lossy(&p[BYE_FIXED_LEN..]).into_owned(),
        })
    }
}

/// Decode a byte string as a sequence of frames, parsing the payload of
/// every control frame, until the input ends or a frame is rejected. This
/// is the entry point of the `net_frame` fuzz target; it must never panic
/// and never allocate more than the input's worth.
pub fn fuzz_decode(data: &[u8]) {
    let max_message = 64 * 1024;
    let mut rest = data;
    while !rest.is_empty() {
        let (h, payload, used) = match decode_frame(rest, max_message) {
            Ok(f) => f,
            Err(_) => break,
        };
        let ok = match h.ftype {
            FrameType::Hello => Hello::decode(payload)
                .map(|x| x.encode() == payload)
                .unwrap_or(true),
            FrameType::HelloReply => HelloReply::decode(payload)
                .map(|x| x.encode() == payload)
                .unwrap_or(true),
            FrameType::Bye => Bye::decode(payload).map(|_| true).unwrap_or(true),
            _ => true,
        };
        // A control payload that decodes must encode back to the same bytes.
        assert!(ok, "payload does not round-trip");
        // And the header itself must round-trip.
        assert_eq!(&h.encode()[..], &rest[..HEADER_LEN]);
        rest = &rest[used..];
    }
    // The stream reader must agree with the slice decoder on the same bytes.
    let mut cur = io::Cursor::new(data);
    while let Ok(_f) = read_frame(&mut cur, max_message) {}
}
