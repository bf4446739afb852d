//! Any text parsed as a node's configuration file: a clear error or a configuration whose
//! cluster checks out, never a panic.
#![no_main]

use eve_node::config::NodeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = NodeConfig::parse(text) {
        assert!(
            config.cluster.spec().is_ok(),
            "a parsed configuration checks out"
        );
    }
});
