//! End to end with real processes: `eve-node init` files, six `eve-node run` processes (three
//! execution replicas and three verifiers, one role each) on loopback, three clients under
//! steady load. An execution replica is killed with SIGKILL, clients keep succeeding, it is
//! restarted, recovers and catches up by state transfer to the others' committed root; then a
//! verifier goes the same way. The clients' whole history is checked for linearizability.

use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use eve_node::EveClient;
use eve_node::config::{LoadedConfig, Settings};
use eve_node::init::{InitOptions, init};
use eve_sim::kv_history::{KvEvent, check_kv_history};
use eve_sim::linearizability::SearchBudget;
use eve_types::ClientId;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A phase that has not made its progress by then has failed.
const PATIENCE: Duration = Duration::from_secs(60);

/// Calls each phase must see complete.
const CALLS_PER_PHASE: u64 = 300;

/// A run of `n` consecutive ports free for both UDP and TCP.
fn free_ports(n: u16) -> u16 {
    eve_node::ports::free_loopback_ports(n).expect("free loopback ports")
}

struct Cluster {
    dir: PathBuf,
    processes: Vec<(String, Option<Child>)>,
}

impl Cluster {
    fn spawn(&mut self, name: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_eve-node"))
            .arg("run")
            .arg("--config")
            .arg(self.dir.join(format!("{name}.toml")))
            .env("RUST_LOG", "warn,eve_node=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        match self.processes.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = Some(child),
            None => self.processes.push((name.to_owned(), Some(child))),
        }
    }

    /// SIGKILL: no shutdown, no goodbye to the peers.
    fn kill(&mut self, name: &str) {
        let slot = self.processes.iter_mut().find(|(n, _)| n == name).unwrap();
        let mut child = slot.1.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.processes {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// GETs `path` from an admin endpoint.
async fn admin_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: eve\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// `(process, committed, state root, (objects, bytes))` of every replica process that answers.
async fn replica_states(config: &LoadedConfig) -> Vec<(String, u64, Option<String>, (u64, u64))> {
    let mut states = Vec::new();
    for (process, addr) in &config.file.cluster.admin {
        if !process.starts_with("replica") {
            continue;
        }
        let Some(body) = admin_get(*addr, "/status").await else {
            continue;
        };
        let roles: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        for role in roles {
            states.push((
                process.clone(),
                role["committed"].as_u64().unwrap(),
                role["state_root"].as_str().map(str::to_owned),
                (
                    role["objects"].as_u64().unwrap_or(0),
                    role["bytes"].as_u64().unwrap_or(0),
                ),
            ));
        }
    }
    states
}

fn op(client: u64, n: u64) -> KvOp {
    let key = Bytes::from(format!("k{}", n % 4));
    match n % 3 {
        0 => KvOp::Put {
            key,
            value: Bytes::from(format!("c{client}-{n}")),
        },
        1 => KvOp::Get { key },
        _ => KvOp::Increment {
            key: Bytes::from(format!("n{client}")),
            delta: 1,
        },
    }
}

async fn wait_for_calls(done: &AtomicU64, more: u64, what: &str) {
    let target = done.load(Ordering::SeqCst) + more;
    let deadline = Instant::now() + PATIENCE;
    while done.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "{what}: clients stopped making progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three clients under steady load, one call at a time each, every call recorded.
struct Load {
    history: Arc<Mutex<Vec<KvEvent>>>,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn steady_load(clients: &[PathBuf]) -> Load {
    let start = Instant::now();
    let history = Arc::new(Mutex::new(Vec::<KvEvent>::new()));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for path in clients {
        let loaded = LoadedConfig::load(path).unwrap();
        let role = loaded.file.client.clone().unwrap();
        let credentials = loaded.credentials(&role, "client").unwrap();
        let client = EveClient::connect(&loaded.spec, ClientId(role.id), &credentials)
            .unwrap()
            .with_timeout(Duration::from_secs(5));
        let (history, done, stop) = (history.clone(), done.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let call = op(role.id, n);
                n += 1;
                let invoke = start.elapsed().as_micros() as u64;
                let result = client.call(call.encode()).await;
                let (complete, reply) = match result {
                    Ok(body) => {
                        done.fetch_add(1, Ordering::SeqCst);
                        (
                            Some(start.elapsed().as_micros() as u64),
                            Some(KvReply::decode(&body).unwrap()),
                        )
                    }
                    Err(_) => (None, None),
                };
                history.lock().unwrap().push(KvEvent {
                    client: role.id,
                    invoke,
                    complete,
                    op: call,
                    reply,
                });
            }
            client.close().await;
        }));
    }

    Load {
        history,
        done,
        stop,
        tasks: load,
    }
}

/// Six `eve-node run` processes (one role each) of a new cluster in a fresh directory, on disk
/// or in memory, started; returns the directory, what `init` wrote and the processes.
fn start_processes(disk: bool) -> (PathBuf, eve_node::init::InitOutput, Cluster, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "eve-processes-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let options = InitOptions {
        clients: 3,
        base_port: free_ports(12),
        one_role_per_process: true,
        disk,
        settings: Settings {
            batch_timeout_ms: Some(1),
            verify_timeout_ms: Some(300),
            ..Settings::default()
        },
        ..InitOptions::default()
    };
    let output = init(&options, &dir).unwrap();
    let mut cluster = Cluster {
        dir: dir.clone(),
        processes: Vec::new(),
    };
    let names: Vec<String> = output
        .nodes
        .iter()
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        cluster.spawn(name);
    }
    (dir, output, cluster, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_survive_a_replica_and_a_verifier_killed_and_restarted() {
    let (dir, output, mut cluster, _) = start_processes(false);
    let node_config = LoadedConfig::load(&output.nodes[0]).unwrap();

    let Load {
        history,
        done,
        stop,
        tasks: load,
    } = steady_load(&output.clients);

    wait_for_calls(&done, CALLS_PER_PHASE, "a healthy cluster").await;
    cluster.kill("replica-1");
    wait_for_calls(&done, CALLS_PER_PHASE, "replica 1 killed").await;
    cluster.spawn("replica-1");
    wait_for_calls(&done, CALLS_PER_PHASE, "replica 1 restarted").await;
    cluster.kill("verifier-1");
    wait_for_calls(&done, CALLS_PER_PHASE, "verifier 1 killed").await;
    cluster.spawn("verifier-1");
    wait_for_calls(&done, CALLS_PER_PHASE, "verifier 1 restarted").await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }

    // The restarted replica caught up: every replica on one committed batch and root.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let states = replica_states(&node_config).await;
        let agreed = states.len() == 3
            && states.iter().all(|(_, c, root, objects)| {
                (*c, root, *objects) == (states[0].1, &states[0].2, states[0].3)
            })
            && states[0].2.is_some()
            && states[0].3.0 > 0
            && states[0].3.1 > 0;
        if agreed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never converged: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = node_config.file.cluster.admin["replica-1"];
    let metrics = admin_get(admin, "/metrics").await.unwrap();
    let transfers: u64 = metrics
        .lines()
        .find(|l| l.starts_with("eve_state_transfers_completed_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        transfers > 0,
        "the restarted replica caught up by state transfer:\n{metrics}"
    );

    let history = history.lock().unwrap().clone();
    let completed = history.iter().filter(|e| e.complete.is_some()).count();
    assert!(completed as u64 >= 5 * CALLS_PER_PHASE);
    check_kv_history(&history, SearchBudget::default())
        .unwrap_or_else(|v| panic!("not linearizable: {v}"));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The durable mode with real processes: six `eve-node run` processes on disk under steady
/// load are all killed with SIGKILL at once, twice, and started again from their data
/// directories. Nothing acknowledged is lost: the clients' whole history, reads of every
/// earlier write and each client's counter included, is linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_on_disk_all_killed_at_once_lose_no_acknowledged_write() {
    let (dir, output, mut cluster, names) = start_processes(true);
    let Load {
        history,
        done,
        stop,
        tasks,
    } = steady_load(&output.clients);
    wait_for_calls(&done, CALLS_PER_PHASE, "a healthy cluster on disk").await;
    for round in 1..=2 {
        for name in &names {
            cluster.kill(name);
        }
        for name in &names {
            cluster.spawn(name);
        }
        wait_for_calls(
            &done,
            CALLS_PER_PHASE,
            &format!("every process killed at once ({round}) and started again"),
        )
        .await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let history = history.lock().unwrap().clone();
    let completed = history.iter().filter(|e| e.complete.is_some()).count();
    assert!(completed as u64 >= 3 * CALLS_PER_PHASE);
    check_kv_history(&history, SearchBudget::default())
        .unwrap_or_else(|v| panic!("an acknowledged write was lost or reordered: {v}"));
    let logs: String = names
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("recovered from disk") || logs.contains("resumed from its memory"),
        "the processes started again from their data directories"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
