//! Leases kept alive while their work runs: a claimed work item, a run being
//! probed, a scan. The holder renews every third of the lease; a renewal
//! that finds the lease gone (another holder took it over) marks it lost,
//! and the holder's settle — conditioned on holding the lease — then
//! changes nothing.

use std::{future::Future, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::StoreError;

/// Renews a lease in the background until dropped.
pub struct LeaseKeeper {
    lost: CancellationToken,
    task: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Calls `renew` every `lease / 3` (it returns whether the lease is still
    /// held). A database error is retried at the next tick: the lease may
    /// still be held, and the settle decides.
    pub fn start<F, Fut>(lease: Duration, renew: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<bool, StoreError>> + Send,
    {
        let lost = CancellationToken::new();
        let every = (lease / 3).max(Duration::from_millis(10));
        let task = tokio::spawn({
            let lost = lost.clone();
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    match renew().await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "lease renewal failed; retrying"),
                    }
                }
            }
        });
        Self { lost, task }
    }

    /// Whether a renewal found the lease taken over.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Resolves once the lease is found lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn renews_until_dropped_and_notices_a_lost_lease() {
        let calls = Arc::new(AtomicU32::new(0));
        let keeper = LeaseKeeper::start(Duration::from_secs(3), {
            let calls = calls.clone();
            move || {
                let calls = calls.clone();
                async move { Ok(calls.fetch_add(1, Ordering::SeqCst) < 2) }
            }
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(!keeper.is_lost());
        keeper.lost().await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the third renewal found it gone"
        );
        drop(keeper);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
