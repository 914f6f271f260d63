//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) on the
//! stable toolchain, so that `cargo test` (and CI) re-checks every input the
//! fuzzers kept. Each function below is the body of the cargo-fuzz target of
//! the same name in `fuzz/fuzz_targets/`: the same entry points and the same
//! assertions. Keep the two in step.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use udlm::cluster::config::{directory_node, Config};
use udlm::node::peer::PeerMsg;
use udlm::proto::{decode_reply, encode_reply, Callback, Request};

/// fuzz/fuzz_targets/config_parse.rs
fn config_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text, Path::new("fuzz.conf")) {
        Ok((config, _warnings)) => {
            // No peer_addrs or local_node_id here: they resolve host names.
            for ls in &config.lockspaces {
                let weights = config.weights(&ls.name);
                let _ = directory_node(ls.name.as_bytes(), &weights);
                let _ = config.nodir(&ls.name);
            }
            for node in &config.nodes {
                assert!(config.node(node.id).is_some());
                let _ = config.port_of(node.id);
            }
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
}

/// fuzz/fuzz_targets/local_proto.rs
fn local_proto(data: &[u8]) {
    if let Ok(req) = Request::decode(data) {
        let bytes = req.encode();
        assert_eq!(bytes, data);
        assert_eq!(Request::decode(&bytes).as_ref(), Ok(&req));
    }
    if let Ok(reply) = decode_reply(data) {
        assert_eq!(decode_reply(&encode_reply(&reply)), Ok(reply));
    }
    if let Ok(cb) = Callback::decode(data) {
        assert_eq!(Callback::decode(&cb.encode()), Ok(cb));
    }
}

/// fuzz/fuzz_targets/net_frame.rs
fn net_frame(data: &[u8]) {
    udlm::net::frame::fuzz_decode(data);
}

/// fuzz/fuzz_targets/peer_msg.rs
fn peer_msg(data: &[u8]) {
    if let Ok(m) = PeerMsg::decode(data) {
        let bytes = m.encode();
        assert_eq!(bytes, data);
        assert_eq!(PeerMsg::decode(&bytes).as_ref(), Ok(&m));
        assert_eq!(m.lockspace().is_empty(), m.is_membership());
    }
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Feeds every file of the target's corpus to `f`; reports every input
/// that panics (by path), not only the first.
fn replay(target: &str, f: fn(&[u8])) {
    let mut failed = Vec::new();
    let files = corpus(target);
    for path in &files {
        let data = fs::read(path).unwrap();
        if panic::catch_unwind(|| f(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus inputs panicked:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn config_parse_corpus() {
    replay("config_parse", config_parse);
}

#[test]
fn local_proto_corpus() {
    replay("local_proto", local_proto);
}

#[test]
fn net_frame_corpus() {
    replay("net_frame", net_frame);
}

#[test]
fn peer_msg_corpus() {
    replay("peer_msg", peer_msg);
}
