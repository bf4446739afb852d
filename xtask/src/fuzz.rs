//! `cargo xtask fuzz ...`: the seed corpora of the cargo-fuzz targets in `fuzz/`, and a run of
//! every target for a set number of inputs on a nightly toolchain (fuzzing stays out of the
//! test command: it needs nightly and `cargo install cargo-fuzz`).

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use clap::Subcommand;
use eve_agreement::{Client, Message};
use eve_state::{StateConfig, StateStore};
use eve_types::{
    BatchSeq, ClientId, ClusterConfig, Digest, ReplicationMode, Reply, Request, RequestNo, View,
};
use std::path::PathBuf;
use std::process::Command;

/// The targets, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 5] = [
    "message_decode",
    "frame_read",
    "config_parse",
    "chunk_import",
    "client_reply",
];

/// The fuzz commands.
#[derive(Debug, Subcommand)]
pub enum FuzzCommand {
    /// Write the seed corpora (`fuzz/corpus/<target>/seed-*`) from real messages, frames,
    /// configurations and chunks.
    Seeds,
    /// Run targets for a number of inputs each, one after another, and print their counts.
    Run {
        /// Inputs per target
        #[arg(long, default_value_t = 10_000_000)]
        runs: u64,
        /// Targets, comma-separated [default: all]
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        targets: Option<Vec<String>>,
    },
}

fn fuzz_dir() -> PathBuf {
    crate::workspace::root().join("fuzz")
}

/// Runs a fuzz command.
pub fn run(command: FuzzCommand) -> Result<()> {
    match command {
        FuzzCommand::Seeds => {
            for (target, seeds) in seeds()? {
                let dir = fuzz_dir().join("corpus").join(target);
                std::fs::create_dir_all(&dir)?;
                for (i, seed) in seeds.iter().enumerate() {
                    std::fs::write(dir.join(format!("seed-{i}")), seed)?;
                }
                println!("{target}: {} seeds in {}", seeds.len(), dir.display());
            }
            Ok(())
        }
        FuzzCommand::Run { runs, targets } => {
            let targets: Vec<String> = match targets {
                Some(t) => t,
                None => TARGETS.iter().map(|t| t.to_string()).collect(),
            };
            for t in &targets {
                ensure!(
                    TARGETS.contains(&t.as_str()),
                    "unknown target {t:?}: one of {}",
                    TARGETS.join(", ")
                );
            }
            let probe = Command::new("cargo")
                .args(["+nightly", "fuzz", "--version"])
                .output();
            if !probe.is_ok_and(|o| o.status.success()) {
                bail!(
                    "fuzzing needs a nightly toolchain and cargo-fuzz: `rustup toolchain install \
                     nightly` and `cargo install cargo-fuzz`"
                );
            }
            for target in &targets {
                let corpus = format!("corpus/{target}");
                let started = std::time::Instant::now();
                let out = Command::new("cargo")
                    .current_dir(fuzz_dir())
                    .args(["+nightly", "fuzz", "run", target, &corpus, "--"])
                    .arg(format!("-runs={runs}"))
                    .output()
                    .with_context(|| format!("running the {target} target"))?;
                let log = String::from_utf8_lossy(&out.stderr);
                let done = log
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("Done "))
                    .unwrap_or("no summary line");
                if !out.status.success() {
                    let tail: Vec<&str> = log.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    bail!(
                        "{target} failed after {:.0} s:\n{}",
                        started.elapsed().as_secs_f64(),
                        tail.join("\n")
                    );
                }
                println!(
                    "{target}: {done} ({:.0} s, 0 crashes)",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
    }
}

/// A target's name and its seed inputs.
type Seeds = (&'static str, Vec<Vec<u8>>);

/// Each target's seeds.
fn seeds() -> Result<Vec<Seeds>> {
    let messages: Vec<Bytes> = sample_messages()?.iter().map(Message::encode).collect();
    let frames: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| eve_net::encode_frame(m).to_vec())
        .chain([messages
            .iter()
            .flat_map(|m| eve_net::encode_frame(m).to_vec())
            .collect()])
        .collect();
    let configs = sample_configs()?;
    let chunks = sample_chunks()?;
    // The client's target reads (sender byte, u16 length, message) records.
    let replies: Vec<Vec<u8>> = [0u8, 4]
        .iter()
        .map(|&sender| {
            let reply = Message::Reply {
                view: View(0),
                reply: Reply {
                    client: ClientId(7),
                    request_no: RequestNo(1),
                    seq: BatchSeq(1),
                    body: Bytes::from_static(b"ok"),
                },
            }
            .encode();
            let mut record = vec![sender];
            record.extend_from_slice(&(reply.len() as u16).to_le_bytes());
            record.extend_from_slice(&reply);
            record
        })
        .collect();
    Ok(vec![
        (
            "message_decode",
            messages.iter().map(|m| m.to_vec()).collect(),
        ),
        ("frame_read", frames),
        ("config_parse", configs),
        ("chunk_import", chunks),
        ("client_reply", vec![replies.concat(), replies[0].clone()]),
    ])
}

fn sample_messages() -> Result<Vec<Message>> {
    let token = eve_agreement::Token(Digest([7; 32]));
    let config = ClusterConfig::new(ReplicationMode::Eve { u: 1, r: 0 }).validate()?;
    let mut client = Client::new(ClientId(7), &config);
    client.submit(eve_agreement::Time::ZERO, Bytes::from_static(b"op"))?;
    Ok(vec![
        Message::Request(Request::new(ClientId(7), RequestNo(1), &b"put k v"[..])?),
        Message::Reply {
            view: View(2),
            reply: Reply {
                client: ClientId(7),
                request_no: RequestNo(1),
                seq: BatchSeq(9),
                body: Bytes::from_static(b"reply"),
            },
        },
        Message::Verify {
            view: View(1),
            seq: BatchSeq(4),
            token,
            prev: token,
        },
        Message::Suspect { view: View(3) },
        Message::QueryCommitted,
        Message::Commit {
            view: View(1),
            seq: BatchSeq(4),
            token,
            signature: None,
        },
        Message::Verified {
            view: View(1),
            seq: BatchSeq(4),
            token,
            sequential: true,
        },
        Message::ViewChange {
            new_view: View(2),
            view: View(1),
            committed: (BatchSeq(3), token),
            locked: Vec::new(),
            proof: None,
        },
    ])
}

fn sample_configs() -> Result<Vec<Vec<u8>>> {
    let dir = std::env::temp_dir().join(format!("eve-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let written = eve_node::init::init(&eve_node::init::InitOptions::default(), &dir)
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut out = Vec::new();
    for path in written.nodes.iter().chain(written.clients.iter().take(1)) {
        out.push(std::fs::read(path)?);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(out)
}

/// The chunks of a transfer of the fuzz target's source state (the same 60 objects).
fn sample_chunks() -> Result<Vec<Vec<u8>>> {
    let config = StateConfig::new(4, 64)?;
    let mut source = StateStore::new(config);
    for i in 0..60u32 {
        source.put(format!("key-{i}").as_bytes(), format!("value-{i}").into())?;
    }
    source.seal()?;
    let fresh = StateStore::new(config);
    let manifest = source.manifest(source.sealed_version())?;
    let mut import = eve_state::StateImport::new(&fresh, manifest, source.root())?;
    let mut all = Vec::new();
    let mut chunks = Vec::new();
    while let Some(request) = import.next_request(200) {
        let chunk = source.export_chunk(&request)?;
        let bytes = postcard::to_allocvec(&chunk)?;
        all.extend_from_slice(&bytes);
        chunks.push(bytes);
        import.add_chunk(chunk)?;
    }
    chunks.truncate(3);
    chunks.push(all);
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_gets_seeds_its_decoder_accepts() {
        let seeds = seeds().unwrap();
        assert_eq!(seeds.len(), TARGETS.len());
        for (target, list) in &seeds {
            assert!(!list.is_empty(), "{target}");
        }
        for seed in &seeds[0].1 {
            Message::decode(seed).unwrap();
        }
        for seed in &seeds[2].1 {
            eve_node::config::NodeConfig::parse(std::str::from_utf8(seed).unwrap()).unwrap();
        }
        // The last chunk seed is a whole transfer: every chunk decodes in turn.
        let whole = seeds[3].1.last().unwrap();
        let mut rest = &whole[..];
        let mut n = 0;
        while !rest.is_empty() {
            let (_, tail) = postcard::take_from_bytes::<eve_state::Chunk>(rest).unwrap();
            rest = tail;
            n += 1;
        }
        assert!(n >= 2, "{n} chunks");
    }
}
