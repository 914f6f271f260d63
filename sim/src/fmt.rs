//! Readable renderings of what the trace shows: peer messages with their
//! byte strings as text, flags by name, statuses by name.

use udlm::node::peer::PeerMsg;
use udlm::types::{lkf, sbf, Status};

/// A peer message, decoded, with byte arrays shown as strings (names,
/// lockspaces) or LVB tags.
pub fn peer_msg(payload: &[u8]) -> String {
    match PeerMsg::decode(payload) {
        Ok(m) => bytes_as_text(&format!("{m:?}")),
        Err(e) => format!("<undecodable message: {e:?}>"),
    }
}

/// Replaces `[1, 2, 3]` lists of bytes in a Debug rendering: printable ones
/// become "text", 32-byte ones an LVB summary.
pub fn bytes_as_text(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            if let Some(j) = s[i..].find(']') {
                let inner = &s[i + 1..i + j];
                let parsed: Option<Vec<u8>> = if inner.trim().is_empty() {
                    Some(Vec::new())
                } else {
                    inner
                        .split(',')
                        .map(|x| x.trim().parse::<u8>().ok())
                        .collect()
                };
                if let Some(v) = parsed {
                    if v.len() == 32 {
                        out.push_str(&lvb_text(&v));
                        i += j + 1;
                        continue;
                    }
                    if !v.is_empty() && v.iter().all(|c| (0x20..0x7f).contains(c)) {
                        out.push('"');
                        out.push_str(&String::from_utf8_lossy(&v));
                        out.push('"');
                        i += j + 1;
                        continue;
                    }
                }
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// An LVB as the simulator writes them: a tag per resource.
pub fn lvb_text(v: &[u8]) -> String {
    if v.iter().all(|&x| x == 0) {
        return "lvb(zeros)".into();
    }
    if v.len() == 32 && v[8] == 0xa5 && v[11..].iter().all(|&x| x == 0) {
        let tag = u64::from_le_bytes(v[..8].try_into().unwrap());
        return format!("lvb(ls{} r{} #{tag})", v[9], v[10]);
    }
    format!("lvb({:02x?})", v)
}

pub fn mode(m: u8) -> &'static str {
    ["NL", "CR", "CW", "PR", "PW", "EX"]
        .get(m as usize)
        .copied()
        .unwrap_or("??")
}

pub fn flags(f: u32) -> String {
    const NAMES: [(u32, &str); 19] = [
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
    ];
    let v: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

pub fn sb_flags(f: u8) -> String {
    let mut v = Vec::new();
    if f & sbf::DEMOTED != 0 {
        v.push("DEMOTED");
    }
    if f & sbf::VALNOTVALID != 0 {
        v.push("VALNOTVALID");
    }
    if f & sbf::ALTMODE != 0 {
        v.push("ALTMODE");
    }
    if f & !(sbf::DEMOTED | sbf::VALNOTVALID | sbf::ALTMODE) != 0 {
        v.push("?");
    }
    v.join("|")
}

pub fn status(s: i32) -> String {
    match s {
        0 => "GRANTED".into(),
        Status::EUNLOCK => "EUNLOCK".into(),
        Status::ECANCEL => "ECANCEL".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EDEADLK => "EDEADLK".into(),
        libc::ENOLCK => "ENOLCK".into(),
        other => format!("status {other}"),
    }
}
