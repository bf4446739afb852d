//! The cluster's processes in a chaos run: each `eve-node run` in its own network namespace,
//! its output appended to a log, killed, paused, continued and started again on the
//! schedule's word. With libfaketime installed every process starts under it, its clock
//! offset read from a file the run rewrites (a skew without a restart); only the wall clock
//! is skewed (`FAKETIME_DONT_FAKE_MONOTONIC`), as a wrong system clock would be.

use super::net;
use anyhow::{Context, Result, bail};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where Debian's and Ubuntu's libfaketime lives.
const FAKETIME_LIBRARIES: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
];

/// The libfaketime library, if installed.
pub fn faketime() -> Option<PathBuf> {
    FAKETIME_LIBRARIES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// One process of the cluster.
pub struct Process {
    /// Its index: its namespace and address.
    pub index: usize,
    config: PathBuf,
    log: PathBuf,
    clock_file: PathBuf,
    child: Option<Child>,
    paused: bool,
}

/// Every process of the cluster, stopped when dropped.
pub struct Processes {
    binary: PathBuf,
    faketime: Option<PathBuf>,
    procs: Vec<Process>,
}

impl Processes {
    /// The processes of the configurations `configs` (process `i` runs `configs[i]`), not
    /// started; logs and clock files go to `dir`.
    pub fn new(binary: &Path, configs: &[PathBuf], dir: &Path, faketime: Option<PathBuf>) -> Self {
        let procs = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Process {
                index,
                config: config.clone(),
                log: dir.join(format!("node-{index}.log")),
                clock_file: dir.join(format!("node-{index}.clock")),
                child: None,
                paused: false,
            })
            .collect();
        Self {
            binary: binary.to_owned(),
            faketime,
            procs,
        }
    }

    /// How many processes there are.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Starts process `i` (its clock right, unless a skew is on).
    pub fn start(&mut self, i: usize) -> Result<()> {
        let faketime = self.faketime.clone();
        let binary = self.binary.clone();
        let p = &mut self.procs[i];
        if p.child.is_some() {
            bail!("node-{i} is already running");
        }
        if !p.clock_file.exists() {
            std::fs::write(&p.clock_file, "+0\n")?;
        }
        let log = OpenOptions::new().create(true).append(true).open(&p.log)?;
        let ns = net::namespace(i);
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns]).arg(&binary);
        command.arg("run").arg("--config").arg(&p.config);
        if let Some(library) = &faketime {
            command
                .env("LD_PRELOAD", library)
                .env("FAKETIME_TIMESTAMP_FILE", &p.clock_file)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_CACHE_DURATION", "1");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node-{i}"))?;
        p.child = Some(child);
        p.paused = false;
        Ok(())
    }

    /// Starts every process.
    pub fn start_all(&mut self) -> Result<()> {
        (0..self.procs.len()).try_for_each(|i| self.start(i))
    }

    /// Kills process `i` with SIGKILL (nothing if it is not running).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let p = &mut self.procs[i];
        if let Some(mut child) = p.child.take() {
            child.kill().ok();
            child
                .wait()
                .with_context(|| format!("waiting for node-{i}"))?;
        }
        p.paused = false;
        Ok(())
    }

    /// Stops (`true`) or continues process `i` with SIGSTOP or SIGCONT.
    pub fn pause(&mut self, i: usize, stop: bool) -> Result<()> {
        let p = &mut self.procs[i];
        let Some(child) = &p.child else {
            return Ok(());
        };
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} node-{i} failed");
        }
        p.paused = stop;
        Ok(())
    }

    /// Sets process `i`'s wall clock `offset_s` seconds off (0: right). Without libfaketime,
    /// fails.
    pub fn skew(&mut self, i: usize, offset_s: i64) -> Result<()> {
        if self.faketime.is_none() {
            bail!("clock skew needs libfaketime (apt-get install faketime)");
        }
        std::fs::write(&self.procs[i].clock_file, format!("{offset_s:+}\n"))?;
        Ok(())
    }

    /// Processes that exited on their own since they were started: `(index, status)`, each
    /// reaped and counted as not running.
    pub fn exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if let Some(child) = &mut p.child
                && let Ok(Some(status)) = child.try_wait()
            {
                out.push((p.index, status));
                p.child = None;
            }
        }
        out
    }

    /// The last `lines` lines of process `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.procs[i].log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if self.procs[i].paused {
                let _ = self.pause(i, false);
            }
            let _ = self.kill(i);
        }
    }
}
