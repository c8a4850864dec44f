//! Delivery states, written in batches. Every reply a peer
//! acknowledges (or refuses) changes its code's delivery state and, with several
//! nodes, deletes its outbox row: one write per code, as many as the codes
//! themselves. They are not on anyone's critical path, so one task takes whatever
//! has queued up (like the SQLite writer does) and writes it as a few statements in
//! one transaction. A state may land a few milliseconds after the acknowledgement;
//! if the process dies in between, the state stays `NULL` and, with several nodes,
//! the reply may be sent again (at least once, as documented for the outbox).

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};

use crate::core::ports::CodeStore;
use crate::core::Clock;
use otpgw_rules::vocab::Delivery;
use std::sync::Arc;

/// States waiting to be written; past this, `record` writes its own (no loss).
const QUEUE: usize = 100_000;
/// States per transaction.
const BATCH: usize = 1_000;

enum Msg {
    State(i64, Delivery),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
pub(crate) struct Batch {
    /// Started on first use, inside the runtime.
    tx: OnceLock<mpsc::Sender<Msg>>,
}

impl Batch {
    fn sender(&self, store: &Arc<dyn CodeStore>, clock: &Arc<dyn Clock>) -> &mpsc::Sender<Msg> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(Arc::clone(store), Arc::clone(clock), rx));
            tx
        })
    }

    /// Queues a state; `false` when the queue is full and the caller must write it.
    pub(super) fn record(
        &self,
        store: &Arc<dyn CodeStore>,
        clock: &Arc<dyn Clock>,
        code_id: i64,
        state: Delivery,
    ) -> bool {
        self.sender(store, clock)
            .try_send(Msg::State(code_id, state))
            .is_ok()
    }

    /// Waits until every state queued so far is written (shutdown).
    pub(super) async fn flush(&self) {
        let Some(tx) = self.tx.get() else { return };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn CodeStore>, clock: Arc<dyn Clock>, mut rx: mpsc::Receiver<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::State(id, state) => batch.push((id, state)),
                Msg::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            metrics::histogram!("otpgw_delivery_batch_size").record(batch.len() as f64);
            if let Err(e) = store.set_deliveries(&batch, clock.now_ms()).await {
                metrics::counter!("otpgw_delivery_writes_failed_total")
                    .increment(batch.len() as u64);
                tracing::warn!(error = %e, states = batch.len(), "could not record delivery states");
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
