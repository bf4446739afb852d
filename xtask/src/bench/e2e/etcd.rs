//! etcd, the peer a user would otherwise pick for a replicated key-value store: a cluster of
//! three members on loopback, started from the `etcd` binary on the `PATH` (Debian's
//! `etcd-server`), driven by the same load generator as the other systems through etcd's
//! JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`) over HTTP/1.1 connections that
//! stay open, one per client.
//!
//! etcd always writes to disk (a synced write-ahead log on every member), so its peer among
//! eve's configurations is `eve-disk`. Its reads are linearizable (`serializable: false`, the
//! default), as eve's are. Only the YCSB workloads are translated: a `Get` is a range read of
//! one key, a `Put` a put; the answer comes back as the key-value application's own reply.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use eve_apps::{KvOp, KvReply};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Members of the cluster.
pub const MEMBERS: u16 = 3;

/// Ports the cluster takes from its first: a client port and a peer port per member.
pub const PORTS: u16 = 2 * MEMBERS;

/// How long the cluster may take to elect a leader and answer every member's first read.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read from a member.
const RESPONSE_BYTES_MAX: usize = 4 << 20;

/// The `etcd` binary on the `PATH`, if there is one.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What to say when etcd is not there.
pub const MISSING: &str = "etcd is not on the PATH: install it (Debian, Ubuntu: `apt-get install \
                           etcd-server`) to measure the peer a user would otherwise pick";

/// The first line `etcd --version` prints (`etcd Version: 3.4.23`).
pub fn version(binary: &Path) -> Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .next()
        .unwrap_or("unknown version")
        .trim()
        .to_owned())
}

/// A running three-member cluster: dropping it kills the members and removes their data.
pub struct Etcd {
    members: Vec<Child>,
    clients: Vec<SocketAddr>,
    dir: PathBuf,
}

impl Etcd {
    /// Starts the members of `binary` on ports `base_port ..` [`PORTS`] with their data under
    /// `dir` (created, and removed when the cluster is dropped), and waits until each answers
    /// a linearizable read.
    pub async fn start(binary: &Path, base_port: u16, dir: PathBuf) -> Result<Self> {
        ensure!(
            base_port.checked_add(PORTS).is_some(),
            "etcd: port {base_port} is too high for {PORTS} ports"
        );
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let client_port = |m: u16| base_port + m;
        let peer_port = |m: u16| base_port + MEMBERS + m;
        let initial_cluster = (0..MEMBERS)
            .map(|m| format!("e{m}=http://127.0.0.1:{}", peer_port(m)))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Etcd {
            members: Vec::new(),
            clients: (0..MEMBERS)
                .map(|m| SocketAddr::from(([127, 0, 0, 1], client_port(m))))
                .collect(),
            dir,
        };
        for m in 0..MEMBERS {
            let log = std::fs::File::create(cluster.log_path(m))?;
            let peer = format!("http://127.0.0.1:{}", peer_port(m));
            let client = format!("http://127.0.0.1:{}", client_port(m));
            let child = Command::new(binary)
                .arg("--name")
                .arg(format!("e{m}"))
                .arg("--data-dir")
                .arg(cluster.dir.join(format!("e{m}")))
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--log-level", "error"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            cluster.members.push(child);
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    fn log_path(&self, member: u16) -> PathBuf {
        self.dir.join(format!("e{member}.log"))
    }

    /// Waits until every member answers a read (a leader was elected and each member reaches
    /// it), or fails with the log of a member that exited.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        for m in 0..MEMBERS {
            let mut client = EtcdCaller::new(self.clients[usize::from(m)]);
            loop {
                for (n, child) in self.members.iter_mut().enumerate() {
                    if let Some(status) = child.try_wait()? {
                        let log =
                            std::fs::read_to_string(self.log_path(n as u16)).unwrap_or_default();
                        bail!("etcd member e{n} exited ({status}) while starting:\n{log}");
                    }
                }
                let probe = KvOp::Get {
                    key: Bytes::from_static(b"eve-bench-probe"),
                };
                match client.call_op(probe).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() >= deadline => {
                        bail!("etcd member e{m} did not answer within {START_TIMEOUT:?}: {e}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(())
    }

    /// A caller for the `n`th client: clients are spread over the members.
    pub fn caller(&self, n: u64) -> EtcdCaller {
        EtcdCaller::new(self.clients[(n % u64::from(MEMBERS)) as usize])
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One client of the cluster: an HTTP/1.1 connection to one member, opened on the first call
/// and again after a failure.
pub struct EtcdCaller {
    member: SocketAddr,
    connection: Option<SendRequest<Full<Bytes>>>,
}

impl EtcdCaller {
    /// A caller of the member at `member`.
    pub fn new(member: SocketAddr) -> Self {
        Self {
            member,
            connection: None,
        }
    }

    /// Calls `op`, an encoded [`KvOp`]; the answer is an encoded [`KvReply`].
    pub async fn call(&mut self, op: Bytes) -> Result<Bytes, String> {
        let op = KvOp::decode(&op).map_err(|e| format!("etcd: not a key-value operation: {e}"))?;
        self.call_op(op)
            .await
            .map(|reply| reply.encode())
            .map_err(|e| format!("etcd: {e:#}"))
    }

    async fn call_op(&mut self, op: KvOp) -> Result<KvReply> {
        let (path, body) = request(&op)?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.post(path, body))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}")));
        if answer.is_err() {
            // The connection may be broken: the next call opens another.
            self.connection = None;
        }
        reply(&op, &answer?)
    }

    async fn post(&mut self, path: &'static str, body: Vec<u8>) -> Result<serde_json::Value> {
        let sender = match &mut self.connection {
            Some(sender) => sender,
            None => self.connection.insert(connect(self.member).await?),
        };
        sender.ready().await.context("the connection closed")?;
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, self.member.to_string())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .context("building a request")?;
        let response = sender.send_request(request).await.context("sending")?;
        let status = response.status();
        let limited = http_body_util::Limited::new(response.into_body(), RESPONSE_BYTES_MAX);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)))?;
        ensure!(status.is_success(), "{status}: {json}");
        Ok(json)
    }
}

async fn connect(member: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(member)
        .await
        .with_context(|| format!("connecting to {member}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(async move {
        // Ends when the member closes the connection or the sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

/// The gateway path and JSON body of `op`.
fn request(op: &KvOp) -> Result<(&'static str, Vec<u8>)> {
    let json = match op {
        KvOp::Get { key } => (
            "/v3/kv/range",
            serde_json::json!({ "key": BASE64.encode(key) }),
        ),
        KvOp::Put { key, value } => (
            "/v3/kv/put",
            serde_json::json!({ "key": BASE64.encode(key), "value": BASE64.encode(value) }),
        ),
        other => bail!("only reads and writes of one key are measured on etcd, not {other:?}"),
    };
    Ok((json.0, serde_json::to_vec(&json.1)?))
}

/// The key-value application's reply for etcd's `answer` to `op`: the value read, or nothing
/// for a write (etcd's put does not return the old value unless asked, and YCSB does not ask).
fn reply(op: &KvOp, answer: &serde_json::Value) -> Result<KvReply> {
    match op {
        KvOp::Get { .. } => {
            let value = answer
                .get("kvs")
                .and_then(|kvs| kvs.get(0))
                .map(|kv| {
                    // etcd leaves out empty fields: an empty value has no "value".
                    let text = kv.get("value").and_then(|v| v.as_str()).unwrap_or("");
                    BASE64.decode(text).context("a value that is not base64")
                })
                .transpose()?;
            Ok(KvReply::Value(value.map(Bytes::from)))
        }
        KvOp::Put { .. } => {
            ensure!(
                answer.get("header").is_some(),
                "a put answered without a header: {answer}"
            );
            Ok(KvReply::Value(None))
        }
        other => bail!("no reply for {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_become_gateway_calls_with_base64_keys() {
        let (path, body) = request(&KvOp::Put {
            key: Bytes::from_static(b"k1"),
            value: Bytes::from_static(b"hello"),
        })
        .unwrap();
        assert_eq!(path, "/v3/kv/put");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["key"], "azE=");
        assert_eq!(json["value"], "aGVsbG8=");

        let (path, body) = request(&KvOp::Get {
            key: Bytes::from_static(b"k1"),
        })
        .unwrap();
        assert_eq!(path, "/v3/kv/range");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({ "key": "azE=" })
        );

        let err = request(&KvOp::Delete {
            key: Bytes::from_static(b"k1"),
        })
        .unwrap_err();
        assert!(err.to_string().contains("only reads and writes"), "{err}");
    }

    #[test]
    fn answers_become_the_applications_replies() {
        let get = KvOp::Get {
            key: Bytes::from_static(b"k1"),
        };
        let found = serde_json::json!({
            "header": {"revision": "7"},
            "kvs": [{"key": "azE=", "value": "aGVsbG8=", "mod_revision": "7"}],
            "count": "1"
        });
        assert_eq!(
            reply(&get, &found).unwrap(),
            KvReply::Value(Some(Bytes::from_static(b"hello")))
        );
        let empty_value = serde_json::json!({ "header": {}, "kvs": [{"key": "azE="}] });
        assert_eq!(
            reply(&get, &empty_value).unwrap(),
            KvReply::Value(Some(Bytes::new()))
        );
        let missing = serde_json::json!({ "header": {"revision": "7"} });
        assert_eq!(reply(&get, &missing).unwrap(), KvReply::Value(None));
        let garbled = serde_json::json!({ "kvs": [{"value": "not base64!"}] });
        assert!(reply(&get, &garbled).is_err());

        let put = KvOp::Put {
            key: Bytes::from_static(b"k1"),
            value: Bytes::new(),
        };
        let written = serde_json::json!({ "header": {"revision": "8"} });
        assert_eq!(reply(&put, &written).unwrap(), KvReply::Value(None));
        assert!(reply(&put, &serde_json::json!({})).is_err());
    }

    /// Starts a real cluster when etcd is installed: a value written through one member is read
    /// back through another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cluster_on_loopback_serves_writes_and_linearizable_reads() {
        let Some(binary) = find() else {
            eprintln!("skipped: {MISSING}");
            return;
        };
        let dir = std::env::temp_dir().join(format!("eve-etcd-test-{}", std::process::id()));
        let port = 41_000 + (std::process::id() % 2_000) as u16 * 8;
        let etcd = Etcd::start(&binary, port, dir.clone()).await.unwrap();
        let put = KvOp::Put {
            key: Bytes::from_static(b"answer"),
            value: Bytes::from_static(b"42"),
        };
        let get = KvOp::Get {
            key: Bytes::from_static(b"answer"),
        };
        assert_eq!(
            etcd.caller(0).call(put.encode()).await.unwrap(),
            KvReply::Value(None).encode()
        );
        assert_eq!(
            etcd.caller(1).call(get.encode()).await.unwrap(),
            KvReply::Value(Some(Bytes::from_static(b"42"))).encode()
        );
        drop(etcd);
        assert!(!dir.exists(), "the data directory is removed");
    }
}
