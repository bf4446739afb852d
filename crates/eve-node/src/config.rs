//! A node's configuration file (TOML): the cluster (mode, protocol settings, every node's
//! address and admin endpoint), the TLS files, which roles this process runs, the application
//! and its threads. Loading checks everything and reports the first problem in one line that
//! names the field and what is allowed.

use crate::node::ClusterSpec;
use eve_agreement::NodeId;
use eve_net::{Credentials, DOMAIN, parse_dns_name};
use eve_types::{ClusterConfig, ConfigError, ReplicationMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One process's configuration, as written in its file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// What every node of the cluster shares.
    pub cluster: ClusterSection,
    /// The cluster CA's certificate.
    pub tls: TlsSection,
    /// The execution replica this process runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<RoleSection>,
    /// The verifier this process runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<RoleSection>,
    /// The client identity (for `eve-node kv` and tools), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<RoleSection>,
    /// The replicated application.
    #[serde(default)]
    pub app: AppSection,
    /// The admin endpoint (metrics and status).
    #[serde(default)]
    pub admin: AdminSection,
    /// Where the roles keep their state.
    #[serde(default)]
    pub storage: StorageSection,
}

/// Where a process keeps its roles' state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `memory` (the default: a restarted process recovers from its peers, and a cluster whose
    /// every process stops at once loses its state) or `disk`.
    #[serde(default)]
    pub mode: StorageMode,
    /// The data directory (with `disk`), relative to the configuration file; one folder per
    /// role inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// Where state is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageMode {
    /// In memory.
    #[default]
    Memory,
    /// On disk, in `storage.dir`.
    Disk,
}

/// The cluster's shared settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// A name for logs and certificates.
    pub name: String,
    /// `eve` or `primary-backup`.
    pub mode: Mode,
    /// Failures of any kind tolerated (Eve).
    #[serde(default = "one")]
    pub u: u32,
    /// Byzantine failures tolerated (Eve, `r <= u`).
    #[serde(default)]
    pub r: u32,
    /// Protocol settings left out keep their defaults.
    #[serde(default)]
    pub settings: Settings,
    /// Every execution replica's and verifier's address, by node name (`replica-0`,
    /// `verifier-0`, ...).
    pub nodes: BTreeMap<String, SocketAddr>,
    /// Each process's admin endpoint, by process name (for `eve-node status`).
    #[serde(default)]
    pub admin: BTreeMap<String, SocketAddr>,
}

fn one() -> u32 {
    1
}

/// The replication mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Execute-verify with verifiers.
    Eve,
    /// Two replicas, no verifiers.
    PrimaryBackup,
}

/// Optional overrides of [`ClusterConfig`]'s defaults (same names, same ranges).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Settings {
    pub batch_requests_max: Option<usize>,
    pub batch_timeout_ms: Option<u64>,
    pub pipeline_depth: Option<usize>,
    pub checkpoint_interval: Option<u64>,
    pub verify_timeout_ms: Option<u64>,
    pub client_retransmit_ms: Option<u64>,
    pub backup_timeout_ms: Option<u64>,
    pub merkle_bucket_bits: Option<u8>,
    pub object_value_bytes_max: Option<usize>,
    pub reply_from_every_replica: Option<bool>,
}

/// The CA certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Path of the CA certificate (PEM), relative to the configuration file.
    pub ca: PathBuf,
}

/// One role's identity and key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSection {
    /// Its number (`replica-<id>`, `verifier-<id>`, `client-<id>`).
    pub id: u64,
    /// Its certificate (PEM), relative to the configuration file.
    pub cert: PathBuf,
    /// Its private key (PEM), relative to the configuration file.
    pub key: PathBuf,
}

/// The application replicated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// `kv` (the key-value store) or `racy` (a counter with a deliberate data race, for
    /// testing divergence repair).
    #[serde(default = "kv")]
    pub name: AppName,
    /// Executor worker threads; 0 means one per core.
    #[serde(default)]
    pub threads: usize,
}

fn kv() -> AppName {
    AppName::Kv
}

impl Default for AppSection {
    fn default() -> Self {
        Self {
            name: AppName::Kv,
            threads: 0,
        }
    }
}

/// A built-in application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppName {
    /// `eve_apps::KvStore`.
    Kv,
    /// `eve_apps::RacyCounter`.
    Racy,
}

/// The admin endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Where to serve `/metrics` (Prometheus text) and `/status` (JSON); off when absent.
    pub listen: Option<SocketAddr>,
}

/// A configuration file could not be used: one line, naming the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LoadError {
    /// The file.
    pub path: String,
    /// What is wrong, and what is allowed.
    pub message: String,
}

/// A configuration, checked, with its paths resolved.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The file as written.
    pub file: NodeConfig,
    /// The cluster it describes.
    pub spec: ClusterSpec,
    /// The CA certificate's text.
    pub ca_pem: String,
    /// The directory paths are relative to.
    pub dir: PathBuf,
}

impl NodeConfig {
    /// Parses a configuration file's text and checks the cluster it describes: everything but
    /// the files it names (certificates, keys, the data directory). The error names the line
    /// or the setting at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: NodeConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = e.message().replace('\n', " ");
            match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            }
        })?;
        file.cluster.spec()?;
        Ok(file)
    }
}

impl LoadedConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let fail = |message: String| LoadError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        // Checked before the CA is read, so that a bad setting is named first.
        let file = NodeConfig::parse(&text).map_err(fail)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let ca_path = dir.join(&file.tls.ca);
        let ca_pem = std::fs::read_to_string(&ca_path)
            .map_err(|e| fail(format!("tls.ca: cannot read {}: {e}", ca_path.display())))?;
        let spec = file.cluster.spec_of(cluster_id(&ca_pem)).map_err(fail)?;
        file.check_roles(&spec).map_err(fail)?;
        if file.storage.mode == StorageMode::Disk && file.storage.dir.is_none() {
            return Err(fail(
                "storage.dir: `mode = \"disk\"` needs a data directory (`dir = \"data\"`)".into(),
            ));
        }
        Ok(Self {
            file,
            spec,
            ca_pem,
            dir,
        })
    }

    /// Where the roles keep their state, with the data directory resolved.
    pub fn storage(&self) -> crate::storage::Storage {
        match (&self.file.storage.mode, &self.file.storage.dir) {
            (StorageMode::Disk, Some(dir)) => crate::storage::Storage::Disk(self.dir.join(dir)),
            _ => crate::storage::Storage::Memory,
        }
    }

    /// The credentials of a role section (`which` names it in errors).
    pub fn credentials(&self, role: &RoleSection, which: &str) -> Result<Credentials, LoadError> {
        let read = |field: &str, path: &Path| {
            let full = self.dir.join(path);
            std::fs::read_to_string(&full).map_err(|e| LoadError {
                path: full.display().to_string(),
                message: format!("{which}.{field}: cannot read: {e}"),
            })
        };
        Ok(Credentials {
            ca_pem: self.ca_pem.clone(),
            cert_pem: read("cert", &role.cert)?,
            key_pem: read("key", &role.key)?,
        })
    }
}

/// A cluster's identity: the hash of its CA's certificate (clients sign it into requests).
pub fn cluster_id(ca_pem: &str) -> eve_types::Digest {
    eve_types::Digest(*blake3::hash(ca_pem.trim().as_bytes()).as_bytes())
}

impl ClusterSection {
    /// The cluster configuration and addresses, checked (with no cluster id).
    pub fn spec(&self) -> Result<ClusterSpec, String> {
        self.spec_of(eve_types::Digest::ZERO)
    }

    /// The cluster configuration and addresses of the cluster `id`, checked.
    pub fn spec_of(&self, id: eve_types::Digest) -> Result<ClusterSpec, String> {
        let mode = match self.mode {
            Mode::Eve => ReplicationMode::Eve {
                u: self.u,
                r: self.r,
            },
            Mode::PrimaryBackup => ReplicationMode::PrimaryBackup,
        };
        let mut config = ClusterConfig::new(mode);
        config.cluster_id = id;
        let s = &self.settings;
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(value) = s.$field { config.$field = value; }
            )*};
        }
        set!(
            batch_requests_max,
            batch_timeout_ms,
            pipeline_depth,
            checkpoint_interval,
            verify_timeout_ms,
            client_retransmit_ms,
            backup_timeout_ms,
            merkle_bucket_bits,
            object_value_bytes_max,
            reply_from_every_replica
        );
        let config = config.validate().map_err(|e: ConfigError| {
            let field = match e.field {
                "mode.u" => "cluster.u".to_owned(),
                "mode.r" => "cluster.r".to_owned(),
                other => format!("cluster.settings.{other}"),
            };
            format!(
                "{field} = {} is out of range: allowed {}",
                e.value, e.allowed
            )
        })?;
        let mut addresses = BTreeMap::new();
        for (name, addr) in &self.nodes {
            let node = parse_dns_name(&format!("{name}.{DOMAIN}"))
                .filter(|n| !matches!(n, NodeId::Client(_)))
                .ok_or_else(|| {
                    format!(
                        "cluster.nodes: `{name}` is not a node name: allowed replica-<n> or verifier-<n>"
                    )
                })?;
            addresses.insert(node, *addr);
        }
        let spec = ClusterSpec::new(config, addresses).map_err(|e| match e {
            crate::NodeError::NoAddress(node) => format!(
                "cluster.nodes: no address for `{}` (this mode has {} replicas and {} verifiers)",
                node_name(node),
                self.replica_count(),
                self.verifier_count()
            ),
            other => other.to_string(),
        })?;
        for node in spec.addresses.keys() {
            if !spec.replicas().chain(spec.verifiers()).any(|n| n == *node) {
                return Err(format!(
                    "cluster.nodes: `{}` is not a member: this mode has {} replicas and {} verifiers",
                    node_name(*node),
                    self.replica_count(),
                    self.verifier_count()
                ));
            }
        }
        Ok(spec)
    }

    fn replica_count(&self) -> usize {
        match self.mode {
            Mode::Eve => eve_types::QuorumSizes::eve(self.u, self.r).n_exec,
            Mode::PrimaryBackup => 2,
        }
    }

    fn verifier_count(&self) -> usize {
        match self.mode {
            Mode::Eve => eve_types::QuorumSizes::eve(self.u, self.r).n_ver,
            Mode::PrimaryBackup => 0,
        }
    }
}

impl NodeConfig {
    fn check_roles(&self, spec: &ClusterSpec) -> Result<(), String> {
        if let Some(replica) = &self.replica {
            let n = spec.replicas().count() as u64;
            if replica.id >= n {
                return Err(format!(
                    "replica.id = {} is out of range: allowed 0 ..= {}",
                    replica.id,
                    n - 1
                ));
            }
        }
        if let Some(verifier) = &self.verifier {
            let n = spec.verifiers().count() as u64;
            if n == 0 {
                return Err("verifier: primary-backup mode has no verifiers".to_owned());
            }
            if verifier.id >= n {
                return Err(format!(
                    "verifier.id = {} is out of range: allowed 0 ..= {}",
                    verifier.id,
                    n - 1
                ));
            }
        }
        if self.app.threads > eve_types::limits::EXECUTOR_THREADS_MAX {
            return Err(format!(
                "app.threads = {} is out of range: allowed 0 ..= {}",
                self.app.threads,
                eve_types::limits::EXECUTOR_THREADS_MAX
            ));
        }
        Ok(())
    }
}

/// A node's name in configuration files: its DNS name without the domain.
pub fn node_name(node: NodeId) -> String {
    let name = eve_net::dns_name(node);
    name.strip_suffix(&format!(".{DOMAIN}"))
        .unwrap_or(&name)
        .to_owned()
}
