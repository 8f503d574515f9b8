//! Group commit: webhook handlers hand their verified event to one writer
//! task, which commits everything waiting in a single transaction and then
//! answers each handler. Durability stays per event (nothing is acknowledged
//! before its commit); the fsync cost is shared by the batch.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{InsertOutcome, NewEvent, Store, StoreError};

/// The most events one transaction carries.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<InsertOutcome, Arc<StoreError>>>;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the inbox write failed: {0}")]
    Store(#[from] Arc<StoreError>),
    #[error("the inbox writer has stopped")]
    Closed,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<(NewEvent, Reply)>,
}

impl InboxWriter {
    /// Starts the writer. On `stop` it refuses new events, commits everything
    /// already queued, and ends: in-flight events are committed or refused,
    /// never dropped.
    pub fn spawn(
        store: Store,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 8);
        let task = tokio::spawn(write_loop(store, rx, wake, stop));
        (Self { tx }, task)
    }

    /// Returns once the event is durably committed (or known as a duplicate).
    pub async fn submit(&self, event: NewEvent) -> Result<InsertOutcome, InboxError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((event, reply))
            .await
            .map_err(|_| InboxError::Closed)?;
        Ok(answer.await.map_err(|_| InboxError::Closed)??)
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<(NewEvent, Reply)>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut events = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            _ = stop.cancelled(), if !rx.is_closed() => {
                // Refuse new sends; what is buffered is still received below.
                rx.close();
                continue;
            }
        };
        let Some(first) = next else { break };
        events.push(first.0);
        replies.push(first.1);
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((event, reply)) => {
                    events.push(event);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let outcomes = commit(&store, &events).await;
        tracing::debug!(
            batch = events.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "inbox batch committed"
        );
        if outcomes
            .iter()
            .any(|o| matches!(o, Ok(InsertOutcome::Stored)))
        {
            wake.notify_waiters();
        }
        for (reply, outcome) in replies.drain(..).zip(outcomes) {
            // The handler may have gone (client hung up); the event is stored anyway.
            let _ = reply.send(outcome);
        }
        events.clear();
    }
}

/// One transaction for the batch; if it fails, each event gets its own so a
/// single bad row cannot fail its neighbours.
async fn commit(store: &Store, events: &[NewEvent]) -> Vec<Result<InsertOutcome, Arc<StoreError>>> {
    match store.insert_events(events).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(err) if events.len() == 1 => {
            tracing::error!(error = %err, "inbox write failed");
            vec![Err(Arc::new(err))]
        }
        Err(err) => {
            tracing::warn!(error = %err, batch = events.len(), "batched inbox write failed; writing one by one");
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                out.push(
                    store
                        .insert_events(std::slice::from_ref(event))
                        .await
                        .map(|mut o| o.remove(0))
                        .map_err(Arc::new),
                );
            }
            out
        }
    }
}
