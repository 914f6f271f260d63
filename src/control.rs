//! The control protocol: how a cluster manager (`udlm node ...`, `udlm
//! reload`, or any program) tells `udlmd` which nodes it works with.
//!
//! It rides on the local protocol (proto.rs): one request packet of type
//! [`T_CONTROL`] on a fresh connection to `<run dir>/udlmd.sock`, then one
//! answer. It is documented as a stable interface in udlmd(8), section
//! CONTROL PROTOCOL; change it only by adding operations.
//!
//! Request (integers little-endian):
//! ```text
//! u8  11                 the control request type
//! u32 version            proto::ADMIN_VERSION (3)
//! u8  op                 1 list, 2 add, 3 remove, 4 reload, 5 fenced
//! add:     u32 id, u16 port (0: the config's global port),
//!          u8 length + that many bytes: the address (IP or host name)
//! remove:  u32 id
//! fenced:  u32 id
//! ```
//! Answer: 12 bytes — u32 status (0, or an errno value), u64 length N —
//! then N bytes of UTF-8 JSON in packets of at most 32 KiB. With status 0
//! the JSON is the result; otherwise it is `{"error": SENTENCE}`, the
//! sentence saying why in words (N is 0 only for EPROTO: a malformed
//! request or another version).
//!
//! Only root and the user `udlmd` runs as may use it (SO_PEERCRED);
//! everyone else gets EPERM with a sentence saying so.

use crate::node::server::{run_dir, SOCKET_NAME};
use crate::proto::{Malformed, Request, ADMIN_VERSION, MAX_PACKET, QUERY_CHUNK};
use crate::sys;
use std::os::fd::AsRawFd;

/// The local protocol's packet type of a control request.
pub const T_CONTROL: u8 = 11;
/// Longest address an `add` carries (an RFC 1123 host name's limit).
pub const MAX_ADDRESS_LEN: usize = 253;
/// Largest JSON answer to a control request.
pub const MAX_CONTROL_ANSWER: usize = 1 << 20;

/// What a cluster manager asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// The configured nodes, their addresses and state, and where the
    /// membership and quorum come from.
    List,
    /// A node joins the configured nodes at `address`:`port` (port 0: the
    /// config's global port).
    Add { id: u32, address: String, port: u16 },
    /// A node leaves the configured nodes (refused while it may still run).
    Remove { id: u32 },
    /// Read the config file again and apply the differences in its nodes.
    Reload,
    /// A node is dead and fenced: recover without waiting for its lease.
    Fenced { id: u32 },
}

const OP_LIST: u8 = 1;
const OP_ADD: u8 = 2;
const OP_REMOVE: u8 = 3;
const OP_RELOAD: u8 = 4;
const OP_FENCED: u8 = 5;

fn u32_at(b: &[u8], at: usize) -> Result<u32, Malformed> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or(Malformed("truncated"))
}

impl Op {
    /// Appends the op's bytes (after type and version) to `w`.
    pub fn encode_into(&self, w: &mut Vec<u8>) {
        match self {
            Op::List => w.push(OP_LIST),
            Op::Add { id, address, port } => {
                w.push(OP_ADD);
                w.extend_from_slice(&id.to_le_bytes());
                w.extend_from_slice(&port.to_le_bytes());
                let a = address.as_bytes();
                let n = a.len().min(MAX_ADDRESS_LEN);
                w.push(n as u8);
                w.extend_from_slice(&a[..n]);
            }
            Op::Remove { id } => {
                w.push(OP_REMOVE);
                w.extend_from_slice(&id.to_le_bytes());
            }
            Op::Reload => w.push(OP_RELOAD),
            Op::Fenced { id } => {
                w.push(OP_FENCED);
                w.extend_from_slice(&id.to_le_bytes());
            }
        }
    }

    /// Decodes the op from what follows type and version: all of it, or an
    /// error. Ids are 1 or more; an address is 1 to [`MAX_ADDRESS_LEN`]
    /// bytes of printable ASCII without spaces (what it means is checked by
    /// the node, which says why it refuses one).
    pub fn decode(b: &[u8]) -> Result<Op, Malformed> {
        let (&op, rest) = b.split_first().ok_or(Malformed("truncated"))?;
        let id_only = |rest: &[u8]| -> Result<u32, Malformed> {
            let id = u32_at(rest, 0)?;
            if rest.len() != 4 {
                return Err(Malformed("trailing bytes"));
            }
            if id == 0 {
                return Err(Malformed("node id 0"));
            }
            Ok(id)
        };
        match op {
            OP_LIST | OP_RELOAD if !rest.is_empty() => Err(Malformed("trailing bytes")),
            OP_LIST => Ok(Op::List),
            OP_RELOAD => Ok(Op::Reload),
            OP_REMOVE => Ok(Op::Remove { id: id_only(rest)? }),
            OP_FENCED => Ok(Op::Fenced { id: id_only(rest)? }),
            OP_ADD => {
                let id = u32_at(rest, 0)?;
                if id == 0 {
                    return Err(Malformed("node id 0"));
                }
                let port = rest
                    .get(4..6)
                    .map(|s| u16::from_le_bytes(s.try_into().unwrap()))
                    .ok_or(Malformed("truncated"))?;
                let n = *rest.get(6).ok_or(Malformed("truncated"))? as usize;
                if n == 0 || n > MAX_ADDRESS_LEN {
                    return Err(Malformed("bad address length"));
                }
                let a = rest.get(7..7 + n).ok_or(Malformed("truncated"))?;
                if rest.len() != 7 + n {
                    return Err(Malformed("trailing bytes"));
                }
                if !a.iter().all(|c| c.is_ascii_graphic()) {
                    return Err(Malformed("address is not printable ASCII"));
                }
                let address = String::from_utf8(a.to_vec()).map_err(|_| Malformed("address"))?;
                Ok(Op::Add { id, address, port })
            }
            _ => Err(Malformed("unknown control operation")),
        }
    }
}

/// A refusal or failure: an errno value and the sentence saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub errno: i32,
    pub sentence: String,
}

impl Refusal {
    pub fn new(errno: i32, sentence: impl Into<String>) -> Refusal {
        Refusal {
            errno,
            sentence: sentence.into(),
        }
    }
}

/// The 12-byte head of an answer.
pub fn encode_head(status: i32, len: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&(status as u32).to_le_bytes());
    b[4..].copy_from_slice(&len.to_le_bytes());
    b
}

/// The answer to a refused request: `{"error": SENTENCE}`.
pub fn error_json(sentence: &str) -> String {
    format!(
        "{{\"error\":{}}}",
        crate::node::json_str(sentence.as_bytes())
    )
}

/// Sends `op` to this host's node (`DLM_RUN_DIR`) and returns its answer:
/// `Ok(json)`, or the refusal with its sentence. Never starts a node.
pub fn call(op: &Op) -> Result<String, Refusal> {
    let sock = run_dir().join(SOCKET_NAME);
    let fd = sys::seqpacket_connect(&sock).map_err(|_| {
        Refusal::new(
            libc::ENOTCONN,
            format!(
                "no udlm node is running here: nothing answers at {}. Start one with 'udlmd', or set \
                 DLM_RUN_DIR to the runtime directory of a running node.",
                sock.display()
            ),
        )
    })?;
    let lost = || {
        Refusal::new(
            libc::EPROTO,
            "the node closed the connection before it answered.",
        )
    };
    let req = Request::Control {
        version: ADMIN_VERSION,
        op: op.clone(),
    }
    .encode();
    sys::send(fd.as_raw_fd(), &req, false).map_err(|_| lost())?;
    let mut head = [0u8; 16];
    let n = sys::recv(fd.as_raw_fd(), &mut head, false).map_err(|_| lost())?;
    if n != 12 {
        return Err(lost());
    }
    let status = u32::from_le_bytes(head[..4].try_into().unwrap()) as i32;
    let len = u64::from_le_bytes(head[4..12].try_into().unwrap()) as usize;
    if len > MAX_CONTROL_ANSWER {
        return Err(Refusal::new(libc::EPROTO, "the node's answer is too long."));
    }
    let mut text = Vec::with_capacity(len);
    let mut buf = vec![0u8; QUERY_CHUNK];
    while text.len() < len {
        match sys::recv(fd.as_raw_fd(), &mut buf, false) {
            Ok(n) if n > 0 => text.extend_from_slice(&buf[..n]),
            _ => return Err(lost()),
        }
    }
    let text = String::from_utf8(text)
        .map_err(|_| Refusal::new(libc::EPROTO, "the node's answer is not UTF-8."))?;
    if status == 0 {
        return Ok(text);
    }
    if status == libc::EPROTO && text.is_empty() {
        return Err(Refusal::new(
            status,
            "the node did not understand the request; is udlmd of the same version as this udlm?",
        ));
    }
    Err(Refusal::new(status, text))
}

/// Checks that a control request fits in one packet (it always does: the
/// largest is 1 + 4 + 1 + 4 + 2 + 1 + 253 bytes).
const _: () = assert!(1 + 4 + 1 + 4 + 2 + 1 + MAX_ADDRESS_LEN <= MAX_PACKET);

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Op> {
        vec![
            Op::List,
            Op::Reload,
            Op::Add {
                id: 4,
                address: "127.0.0.4".into(),
                port: 0,
            },
            Op::Add {
                id: u32::MAX,
                address: "a".repeat(MAX_ADDRESS_LEN),
                port: 65535,
            },
            Op::Remove { id: 3 },
            Op::Fenced { id: 2 },
        ]
    }

    fn enc(op: &Op) -> Vec<u8> {
        let mut v = Vec::new();
        op.encode_into(&mut v);
        v
    }

    #[test]
    fn ops_round_trip() {
        for op in samples() {
            assert_eq!(Op::decode(&enc(&op)), Ok(op));
        }
    }

    #[test]
    fn truncated_extended_and_bad_ops_are_refused() {
        for op in samples() {
            let b = enc(&op);
            for n in 0..b.len() {
                assert!(Op::decode(&b[..n]).is_err(), "{op:?} cut at {n}");
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(Op::decode(&longer).is_err(), "{op:?} extended");
        }
        assert_eq!(
            Op::decode(&[0]),
            Err(Malformed("unknown control operation"))
        );
        assert_eq!(
            Op::decode(&[6]),
            Err(Malformed("unknown control operation"))
        );
        assert_eq!(
            Op::decode(&[OP_REMOVE, 0, 0, 0, 0]),
            Err(Malformed("node id 0"))
        );
        assert_eq!(
            Op::decode(&[OP_FENCED, 0, 0, 0, 0]),
            Err(Malformed("node id 0"))
        );
        // An address: not empty, printable, no spaces.
        let add = |a: &[u8]| {
            let mut v = vec![OP_ADD, 4, 0, 0, 0, 0, 0, a.len() as u8];
            v.extend_from_slice(a);
            Op::decode(&v)
        };
        assert_eq!(add(b""), Err(Malformed("bad address length")));
        assert!(add(b"a b").is_err());
        assert!(add(b"a\n").is_err());
        assert!(add(&[0xc3, 0xa9]).is_err());
        assert!(add(b"10.0.0.4").is_ok());
        let mut zero = enc(&Op::Add {
            id: 1,
            address: "x".into(),
            port: 1,
        });
        zero[1..5].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Op::decode(&zero), Err(Malformed("node id 0")));
    }

    #[test]
    fn answers_are_json() {
        assert_eq!(
            error_json("node \"4\"\n"),
            "{\"error\":\"node \\\"4\\\"\\u000a\"}"
        );
        assert_eq!(
            encode_head(libc::EPERM, 7)[..4],
            (libc::EPERM as u32).to_le_bytes()
        );
    }
}
