//! The application alone, unreplicated: the ceiling a replicated system is measured against.
//!
//! One executor (the same mixer and thread pool a replica uses) behind a batching loop on its
//! own thread: it takes every call waiting (at most a batch), executes them as one batch, and
//! answers each. No network, no agreement, no second copy: what the service would do on this
//! machine without replication.

use super::load::Caller;
use bytes::Bytes;
use eve_exec::{Application, ExecMode, Executor, ThreadPoolRunner};
use eve_mixer::GreedyMixer;
use eve_state::{StateConfig, StateStore};
use eve_types::limits::BATCH_REQUESTS_MAX;
use eve_types::{BatchSeq, ClientId, NonDet, Request, RequestNo};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// A call waiting for the executor.
struct Call {
    client: ClientId,
    request_no: RequestNo,
    op: Bytes,
    answer: oneshot::Sender<Result<Bytes, String>>,
}

/// The unreplicated service: dropping it (and every caller) stops its thread.
pub struct Alone {
    calls: mpsc::Sender<Call>,
}

impl Alone {
    /// Starts `app` on an executor with `threads` workers and a state of `2^bucket_bits`
    /// buckets.
    pub fn start<A: Application>(
        app: A,
        threads: usize,
        state: StateConfig,
    ) -> anyhow::Result<Self> {
        let runner = ThreadPoolRunner::new(threads)?;
        let executor = Executor::new(
            app,
            StateStore::new(state),
            Box::new(GreedyMixer),
            Box::new(runner),
        );
        let (calls, waiting) = mpsc::channel(BATCH_REQUESTS_MAX);
        std::thread::Builder::new()
            .name("eve-alone".into())
            .spawn(move || serve(executor, waiting))?;
        Ok(Self { calls })
    }

    /// A caller for client `client`.
    pub fn caller(&self, client: ClientId) -> AloneCaller {
        AloneCaller {
            calls: self.calls.clone(),
            client,
            next: RequestNo(1),
        }
    }
}

fn serve<A: Application>(mut executor: Executor<A>, mut waiting: mpsc::Receiver<Call>) {
    let mut seq = BatchSeq(1);
    while let Some(first) = waiting.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH_REQUESTS_MAX {
            match waiting.try_recv() {
                Ok(call) => batch.push(call),
                Err(_) => break,
            }
        }
        let requests: Vec<Request> = batch
            .iter()
            .map(|c| Request::new(c.client, c.request_no, c.op.clone()))
            .collect::<Result<_, _>>()
            .expect("operations within the request limit");
        let nondet = NonDet {
            time_ms: 0,
            seed: seq.0,
        };
        let outcome = match executor.execute(seq, &requests, nondet, ExecMode::Parallel) {
            Ok(outcome) => outcome,
            Err(err) => {
                for call in batch {
                    let _ = call.answer.send(Err(err.to_string()));
                }
                continue;
            }
        };
        // Keep no history: nothing is ever rolled back.
        let _ = executor.mark_stable(seq);
        // Each client has one call outstanding, so a batch holds at most one of its calls.
        let mut replies: HashMap<ClientId, Bytes> = outcome
            .replies
            .into_iter()
            .map(|r| (r.client, r.body))
            .collect();
        for call in batch {
            let reply = replies
                .remove(&call.client)
                .ok_or_else(|| "the executor gave no reply".to_owned());
            let _ = call.answer.send(reply);
        }
        seq = seq.next();
    }
}

/// One client of [`Alone`].
pub struct AloneCaller {
    calls: mpsc::Sender<Call>,
    client: ClientId,
    next: RequestNo,
}

impl Caller for AloneCaller {
    async fn call(&mut self, op: Bytes) -> Result<Bytes, String> {
        let (answer, reply) = oneshot::channel();
        let call = Call {
            client: self.client,
            request_no: self.next,
            op,
            answer,
        };
        self.next = RequestNo(self.next.0 + 1);
        // The queue holds a batch's worth; a full one means the executor is behind, and the
        // caller waits its turn like a client of a busy server.
        self.calls
            .send(call)
            .await
            .map_err(|_| "the service stopped".to_owned())?;
        reply
            .await
            .map_err(|_| "the service dropped the call".to_owned())?
    }
}
