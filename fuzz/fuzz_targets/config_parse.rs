//! Fuzzes the config parser: any bytes, read as text the way a config file
//! is (invalid UTF-8 replaced), must give a config or a list of errors, never
//! a panic; and what the parser accepts must be safe to look things up in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use udlm::cluster::config::{directory_node, Config};

fuzz_target!(|data: &[u8]| {
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
});
