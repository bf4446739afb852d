//! `cargo xtask cluster ...`: a local cluster of real `eve-node` processes on 127.0.0.1, its
//! files (certificates, configurations, logs, pid files) in the ignored folder
//! `target/eve-cluster`.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Build eve-node (release), write a cluster and start every process.
    Up {
        /// Failures of any kind tolerated.
        #[arg(long, default_value_t = 1)]
        u: u32,
        /// Byzantine failures tolerated.
        #[arg(long, default_value_t = 0)]
        r: u32,
        /// Execution replicas (checked against u and r).
        #[arg(long)]
        replicas: Option<usize>,
        /// One process per role instead of replica i and verifier i together.
        #[arg(long)]
        one_role_per_process: bool,
        /// The first port.
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
    },
    /// Every process's roles and where they stand.
    Status,
    /// SIGKILL one process (its name, e.g. node-1 or replica-2, or its index).
    Kill { process: String },
    /// Start one process again (it recovers from its peers).
    Restart { process: String },
    /// Print one process's log.
    Logs { process: String },
    /// Stop every process and remove the cluster's files.
    Down,
}

fn dir() -> PathBuf {
    PathBuf::from("target/eve-cluster")
}

fn binary() -> Result<PathBuf> {
    crate::node_binary::path()
}

/// Runs a cluster command.
pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Up {
            u,
            r,
            replicas,
            one_role_per_process,
            base_port,
        } => up(u, r, replicas, one_role_per_process, base_port),
        ClusterCommand::Status => {
            let config = processes()?
                .into_iter()
                .next()
                .context("the cluster has no processes")?;
            let status = Command::new(binary()?)
                .args(["status", "--config"])
                .arg(dir().join(format!("{config}.toml")))
                .status()?;
            if !status.success() {
                bail!("eve-node status failed");
            }
            Ok(())
        }
        ClusterCommand::Kill { process } => {
            let name = resolve(&process)?;
            signal(&name, "-KILL")?;
            println!("killed {name}");
            Ok(())
        }
        ClusterCommand::Restart { process } => {
            let name = resolve(&process)?;
            if running(&name) {
                bail!("{name} is running; kill it first");
            }
            spawn(&name)?;
            println!("restarted {name}");
            Ok(())
        }
        ClusterCommand::Logs { process } => {
            let name = resolve(&process)?;
            let log = dir().join(format!("{name}.log"));
            print!(
                "{}",
                std::fs::read_to_string(&log).with_context(|| log.display().to_string())?
            );
            Ok(())
        }
        ClusterCommand::Down => {
            if !dir().exists() {
                println!("no cluster is up");
                return Ok(());
            }
            for name in processes()? {
                if running(&name) {
                    let _ = signal(&name, "-TERM");
                }
            }
            for name in processes()? {
                for _ in 0..50 {
                    if !running(&name) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                if running(&name) {
                    let _ = signal(&name, "-KILL");
                }
            }
            std::fs::remove_dir_all(dir())?;
            println!("cluster down");
            Ok(())
        }
    }
}

fn up(u: u32, r: u32, replicas: Option<usize>, one_role: bool, base_port: u16) -> Result<()> {
    if dir().join("ca.pem").exists() {
        bail!(
            "a cluster is up in {}; `cargo xtask cluster down` first",
            dir().display()
        );
    }
    let binary = crate::node_binary::build()?;
    let mut init = Command::new(&binary);
    init.args(["init", "--out"]).arg(dir());
    init.args(["--u", &u.to_string(), "--r", &r.to_string()]);
    init.args(["--base-port", &base_port.to_string()]);
    if let Some(n) = replicas {
        init.args(["--replicas", &n.to_string()]);
    }
    if one_role {
        init.arg("--one-role-per-process");
    }
    if !init.status()?.success() {
        bail!("eve-node init failed");
    }
    for name in processes()? {
        spawn(&name)?;
    }
    println!(
        "cluster up: `cargo xtask cluster status`, logs in {}",
        dir().display()
    );
    Ok(())
}

/// The processes of the cluster, by the configurations `init` wrote.
fn processes() -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .with_context(|| format!("no cluster in {}", dir().display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".toml").map(str::to_owned))
        .filter(|f| !f.starts_with("client-"))
        .collect();
    names.sort();
    Ok(names)
}

/// A process name from a name or an index into the sorted list.
fn resolve(process: &str) -> Result<String> {
    let names = processes()?;
    if names.iter().any(|n| n == process) {
        return Ok(process.to_owned());
    }
    if let Ok(i) = process.parse::<usize>()
        && let Some(name) = names.get(i)
    {
        return Ok(name.clone());
    }
    bail!(
        "no process `{process}`: the cluster has {}",
        names.join(", ")
    )
}

fn pid_file(name: &str) -> PathBuf {
    dir().join(format!("{name}.pid"))
}

fn spawn(name: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir().join(format!("{name}.log")))?;
    let binary = binary()?;
    let child = Command::new(&binary)
        .arg("run")
        .arg("--config")
        .arg(dir().join(format!("{name}.toml")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C at this terminal later does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    std::fs::write(pid_file(name), child.id().to_string())?;
    Ok(())
}

fn pid(name: &str) -> Option<String> {
    std::fs::read_to_string(pid_file(name))
        .ok()
        .map(|p| p.trim().to_owned())
}

fn running(name: &str) -> bool {
    pid(name).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists() && !zombie(&pid))
}

fn zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

fn signal(name: &str, signal: &str) -> Result<()> {
    let pid = pid(name).with_context(|| format!("{name} has no pid file"))?;
    let status = Command::new("kill").arg(signal).arg(&pid).status()?;
    if !status.success() {
        bail!("kill {signal} {pid} ({name}) failed");
    }
    Ok(())
}
