//! `eve-node init`: a cluster's certificates and one configuration file per process, on
//! loopback by default. Process `node-<i>` runs execution replica `i` and verifier `i` where the
//! mode has them (or, with one role per process, `replica-<i>` and `verifier-<i>` run one
//! each); client identities get their own files.

use crate::config::{
    AdminSection, AppSection, ClusterSection, Mode, NodeConfig, RoleSection, Settings, TlsSection,
    node_name,
};
use eve_agreement::NodeId;
use eve_net::ClusterCa;
use eve_types::{ClientId, QuorumSizes, ReplicaId, VerifierId};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// What to generate.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The cluster's name.
    pub name: String,
    /// Eve or primary-backup.
    pub mode: Mode,
    /// Eve's `u`.
    pub u: u32,
    /// Eve's `r`.
    pub r: u32,
    /// Client identities to make.
    pub clients: u64,
    /// The address every node listens on (unless `process_hosts` says otherwise).
    pub host: IpAddr,
    /// Each process's own address, by its position among the processes written (`node-<i>`;
    /// with one role per process every replica, then every verifier): for processes on
    /// different hosts or network namespaces. Empty: every process on `host`.
    pub process_hosts: Vec<IpAddr>,
    /// The first port; nodes take consecutive ports from it, admin endpoints after them.
    pub base_port: u16,
    /// Protocol settings.
    pub settings: Settings,
    /// The application.
    pub app: AppSection,
    /// One process per role (`replica-<i>.toml`, `verifier-<i>.toml`) instead of one process
    /// per index running replica `i` and verifier `i` together (`node-<i>.toml`).
    pub one_role_per_process: bool,
    /// Keep each process's state on disk (in `data-<process>` beside its configuration)
    /// instead of in memory.
    pub disk: bool,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            name: "local".to_owned(),
            mode: Mode::Eve,
            u: 1,
            r: 0,
            clients: 4,
            host: [127, 0, 0, 1].into(),
            process_hosts: Vec::new(),
            base_port: 7400,
            settings: Settings::default(),
            app: AppSection::default(),
            one_role_per_process: false,
            disk: false,
        }
    }
}

/// What `init` wrote.
#[derive(Clone, Debug)]
pub struct InitOutput {
    /// One configuration per process, in order.
    pub nodes: Vec<PathBuf>,
    /// One configuration per client identity.
    pub clients: Vec<PathBuf>,
}

/// Writes the cluster's files into `dir` (created if missing; existing files are refused, so
/// a cluster's CA is never overwritten by accident).
pub fn init(options: &InitOptions, dir: &Path) -> Result<InitOutput, String> {
    let sizes = match options.mode {
        Mode::Eve => QuorumSizes::eve(options.u, options.r),
        Mode::PrimaryBackup => QuorumSizes::primary_backup(),
    };
    let (n_exec, n_ver) = match options.mode {
        Mode::Eve => (sizes.n_exec, sizes.n_ver),
        Mode::PrimaryBackup => (2, 0),
    };
    // Each process: its name, and the replica and verifier it runs.
    let processes: Vec<(String, Option<usize>, Option<usize>)> = if options.one_role_per_process {
        (0..n_exec)
            .map(|i| {
                (
                    node_name(NodeId::Replica(ReplicaId(i as u32))),
                    Some(i),
                    None,
                )
            })
            .chain((0..n_ver).map(|i| {
                (
                    node_name(NodeId::Verifier(VerifierId(i as u32))),
                    None,
                    Some(i),
                )
            }))
            .collect()
    } else {
        (0..n_exec.max(n_ver))
            .map(|i| {
                (
                    format!("node-{i}"),
                    (i < n_exec).then_some(i),
                    (i < n_ver).then_some(i),
                )
            })
            .collect()
    };
    if !options.process_hosts.is_empty() && options.process_hosts.len() != processes.len() {
        return Err(format!(
            "{} process addresses given for {} processes",
            options.process_hosts.len(),
            processes.len()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if dir.join("ca.pem").exists() {
        return Err(format!(
            "{}: already holds a cluster (ca.pem); choose another directory",
            dir.display()
        ));
    }
    let ca = ClusterCa::generate(&options.name).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("ca.pem", ca.cert_pem())?;
    // The host of the process at `index`, and of the process running a role.
    let host_of = |index: usize| {
        options
            .process_hosts
            .get(index)
            .copied()
            .unwrap_or(options.host)
    };
    let process_of = |replica: Option<usize>, verifier: Option<usize>| {
        processes
            .iter()
            .position(|&(_, r, v)| {
                (replica.is_some() && r == replica) || (verifier.is_some() && v == verifier)
            })
            .expect("every role has a process")
    };
    let mut port = options.base_port;
    let mut next_port = |host: IpAddr| {
        let p = port;
        port += 1;
        SocketAddr::new(host, p)
    };
    let mut nodes = BTreeMap::new();
    for i in 0..n_exec {
        let host = host_of(process_of(Some(i), None));
        nodes.insert(
            node_name(NodeId::Replica(ReplicaId(i as u32))),
            next_port(host),
        );
    }
    for i in 0..n_ver {
        let host = host_of(process_of(None, Some(i)));
        nodes.insert(
            node_name(NodeId::Verifier(VerifierId(i as u32))),
            next_port(host),
        );
    }
    let admin: BTreeMap<String, SocketAddr> = processes
        .iter()
        .enumerate()
        .map(|(index, (name, _, _))| (name.clone(), next_port(host_of(index))))
        .collect();
    let cluster = ClusterSection {
        name: options.name.clone(),
        mode: options.mode,
        u: options.u,
        r: options.r,
        settings: options.settings.clone(),
        nodes,
        admin: admin.clone(),
    };
    // Everything below refers to the files by names relative to the configuration.
    cluster.spec()?;
    let role = |node: NodeId, id: u64| -> Result<RoleSection, String> {
        let name = node_name(node);
        let credentials = ca.issue(node).map_err(|e| e.to_string())?;
        write(&format!("{name}.pem"), &credentials.cert_pem)?;
        write(&format!("{name}.key"), &credentials.key_pem)?;
        Ok(RoleSection {
            id,
            cert: format!("{name}.pem").into(),
            key: format!("{name}.key").into(),
        })
    };
    let base = |admin_listen: Option<SocketAddr>| NodeConfig {
        cluster: cluster.clone(),
        tls: TlsSection {
            ca: "ca.pem".into(),
        },
        replica: None,
        verifier: None,
        client: None,
        app: options.app.clone(),
        admin: AdminSection {
            listen: admin_listen,
        },
        storage: Default::default(),
    };
    let mut output = InitOutput {
        nodes: Vec::new(),
        clients: Vec::new(),
    };
    for (process, replica, verifier) in &processes {
        let mut config = base(Some(admin[process]));
        if options.disk {
            config.storage = crate::config::StorageSection {
                mode: crate::config::StorageMode::Disk,
                dir: Some(format!("data-{process}").into()),
            };
        }
        if let Some(i) = *replica {
            config.replica = Some(role(NodeId::Replica(ReplicaId(i as u32)), i as u64)?);
        }
        if let Some(i) = *verifier {
            config.verifier = Some(role(NodeId::Verifier(VerifierId(i as u32)), i as u64)?);
        }
        let name = format!("{process}.toml");
        write(&name, &to_toml(&config)?)?;
        output.nodes.push(dir.join(name));
    }
    for c in 1..=options.clients {
        let mut config = base(None);
        config.client = Some(role(NodeId::Client(ClientId(c)), c)?);
        let name = format!("client-{c}.toml");
        write(&name, &to_toml(&config)?)?;
        output.clients.push(dir.join(name));
    }
    Ok(output)
}

fn to_toml(config: &NodeConfig) -> Result<String, String> {
    toml::to_string(config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadedConfig;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("eve-init-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn each_process_can_listen_on_an_address_of_its_own() {
        let hosts: Vec<IpAddr> = (1..=3).map(|i| [10, 77, 0, i].into()).collect();
        let options = InitOptions {
            process_hosts: hosts.clone(),
            base_port: 9100,
            ..InitOptions::default()
        };
        let dir = scratch("hosts");
        let output = init(&options, &dir).unwrap();
        assert_eq!(output.nodes.len(), 3);
        let loaded = LoadedConfig::load(&dir.join("node-1.toml")).unwrap();
        let cluster = &loaded.file.cluster;
        for (name, host) in [
            ("replica-0", hosts[0]),
            ("verifier-0", hosts[0]),
            ("replica-1", hosts[1]),
            ("verifier-2", hosts[2]),
        ] {
            assert_eq!(cluster.nodes[name].ip(), host, "{name}");
        }
        assert_eq!(cluster.admin["node-1"].ip(), hosts[1]);
        let ports: std::collections::BTreeSet<u16> = cluster
            .nodes
            .values()
            .chain(cluster.admin.values())
            .map(|a| a.port())
            .collect();
        assert_eq!(ports.len(), 9, "every endpoint has a port of its own");
        std::fs::remove_dir_all(&dir).unwrap();

        let wrong = InitOptions {
            process_hosts: hosts[..2].to_vec(),
            ..InitOptions::default()
        };
        let err = init(&wrong, &scratch("wrong")).unwrap_err();
        assert!(
            err.contains("2 process addresses given for 3 processes"),
            "{err}"
        );
    }
}
