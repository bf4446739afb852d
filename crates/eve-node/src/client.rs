//! The client library: [`EveClient`] connects to a cluster with a client certificate and calls
//! operations. The protocol's client logic runs in its own loop (the same driver as everywhere):
//! it accepts a result only when `r + 1` replicas sent identical replies, and retransmits the
//! same request (same number) to every replica until then, so nothing runs twice.

use crate::clock::NodeClock;
use crate::node::ClusterSpec;
use crate::runner::{Command, Runner};
use bytes::Bytes;
use eve_agreement::{Client, ClientError, Completion, NodeId};
use eve_net::{Credentials, TlsIdentity, Transport, TransportConfig};
use eve_types::{ClientId, RequestNo};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// How long [`EveClient::call`] waits by default.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call returned no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No `r + 1` matching replies within the timeout. The request stays outstanding and is
    /// retransmitted with the same number; the next call waits for it first.
    #[error("request {request_no} timed out after {after:?} (still retransmitted)")]
    Timeout {
        /// The request.
        request_no: RequestNo,
        /// How long the call waited.
        after: Duration,
    },
    /// The operation is not a valid request (too large).
    #[error(transparent)]
    Invalid(#[from] eve_types::RequestError),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// The client could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials are unusable.
    #[error(transparent)]
    Tls(#[from] eve_net::TlsError),
    /// The endpoint did not start.
    #[error(transparent)]
    Net(#[from] eve_net::NetError),
    /// The cluster tolerates Byzantine replicas (`r >= 1`), so requests must be signed, and
    /// the client's key cannot sign them.
    #[error("requests must be signed (r >= 1): {0}")]
    Signer(#[from] eve_net::SignerError),
}

/// A connection to a cluster, calling one operation at a time (open several clients, each with
/// its own id and certificate, for concurrency).
pub struct EveClient {
    id: ClientId,
    commands: mpsc::Sender<Command<Client>>,
    completions: Mutex<mpsc::UnboundedReceiver<Completion>>,
    /// A request that timed out and is still outstanding.
    outstanding: Mutex<Option<RequestNo>>,
    timeout: Duration,
    durations: Histogram,
    transport: Transport,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl EveClient {
    /// Connects as client `id` (its certificate must name `client-<id>.eve`). Request numbers
    /// start at 1: a client that restarts with the same id must use
    /// [`connect_resuming`](Self::connect_resuming).
    pub fn connect(
        spec: &ClusterSpec,
        id: ClientId,
        credentials: &Credentials,
    ) -> Result<Self, ConnectError> {
        Self::connect_resuming(spec, id, credentials, RequestNo(1))
    }

    /// Connects as client `id`, numbering requests from `next` (higher than any number this
    /// id used before: replicas answer a number they saw from their reply cache).
    pub fn connect_resuming(
        spec: &ClusterSpec,
        id: ClientId,
        credentials: &Credentials,
        next: RequestNo,
    ) -> Result<Self, ConnectError> {
        let me = NodeId::Client(id);
        let identity = TlsIdentity::new(me, credentials)?;
        let config = TransportConfig {
            listen: None,
            peers: spec.peers_of(me),
            ..Default::default()
        };
        let (transport, inbound) = Transport::start(&identity, config)?;
        let mut logic = Client::resume(id, &spec.config, next);
        if spec.config.sizes().client_reply_quorum > 1 {
            // r >= 1: replicas check that each request is this client's, whoever relays it.
            let signer = eve_net::Ed25519Signer::from_credentials(credentials)?;
            logic = logic.with_signer(std::sync::Arc::new(signer), &spec.config);
        }
        let (completions_tx, completions) = mpsc::unbounded_channel();
        let (runner, commands) =
            Runner::new(logic, transport.clone(), inbound, None, NodeClock::start());
        let runner = runner.with_completions(completions_tx);
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(runner.run(stop));
        Ok(Self {
            id,
            commands,
            completions: Mutex::new(completions),
            outstanding: Mutex::new(None),
            timeout: CALL_TIMEOUT,
            // 100 us to about 26 s.
            durations: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            transport,
            shutdown,
            task,
        })
    }

    /// Waits at most `timeout` per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This client.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// Calls `op` and returns the reply `r + 1` replicas agreed on.
    pub async fn call(&self, op: impl Into<Bytes>) -> Result<Bytes, CallError> {
        let op = op.into();
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut completions = self.completions.lock().await;
        let mut outstanding = self.outstanding.lock().await;
        // A request that timed out before is still in flight: its result comes first.
        if let Some(previous) = *outstanding {
            wait_for(&mut completions, previous, deadline, self.timeout).await?;
            *outstanding = None;
        }
        let (tx, rx) = oneshot::channel();
        let command: Command<Client> = Box::new(move |driver, io| {
            let now = eve_agreement::Io::now(io);
            let _ = tx.send(driver.logic_mut().submit(now, op));
        });
        self.commands
            .send(command)
            .await
            .map_err(|_| CallError::Closed)?;
        let request_no = match rx.await.map_err(|_| CallError::Closed)? {
            Ok(request_no) => request_no,
            Err(ClientError::Invalid(err)) => return Err(CallError::Invalid(err)),
            Err(ClientError::Busy(_)) => unreachable!("calls are serialized"),
        };
        match wait_for(&mut completions, request_no, deadline, self.timeout).await {
            Ok(body) => {
                self.durations.observe(started.elapsed().as_secs_f64());
                Ok(body)
            }
            Err(err) => {
                if matches!(err, CallError::Timeout { .. }) {
                    *outstanding = Some(request_no);
                }
                Err(err)
            }
        }
    }

    /// How long successful calls took, in seconds: a handle on a shared histogram, to
    /// register in the application's registry as `eve_client_request_duration_seconds`.
    pub fn request_durations(&self) -> Histogram {
        self.durations.clone()
    }

    /// What the client's transport did.
    pub fn net_counters(&self) -> eve_net::NetCounters {
        self.transport.counters()
    }

    /// Stops the client.
    pub async fn close(self) {
        self.shutdown.send_replace(true);
        let _ = self.task.await;
        self.transport.close().await;
    }
}

async fn wait_for(
    completions: &mut mpsc::UnboundedReceiver<Completion>,
    request_no: RequestNo,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Bytes, CallError> {
    loop {
        match tokio::time::timeout_at(deadline, completions.recv()).await {
            Ok(Some(done)) if done.request_no == request_no => return Ok(done.body),
            Ok(Some(_)) => continue,
            Ok(None) => return Err(CallError::Closed),
            Err(_) => {
                return Err(CallError::Timeout {
                    request_no,
                    after: timeout,
                });
            }
        }
    }
}
