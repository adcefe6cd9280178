//! Shutting down without failing a request.
//!
//! On SIGTERM or SIGINT: `/readyz` answers 503 for `drain_seconds` while every other request is
//! still served, so the orchestrator stops routing here; then the listener closes and requests
//! already accepted get up to 30 s to finish; then background tasks are cancelled and awaited,
//! and what is buffered is written out (token last-use times, spans). See
//! docs/observability.md.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long background tasks get to finish once cancelled, before shutdown goes on without them.
pub const BACKGROUND_GRACE: Duration = Duration::from_secs(10);

/// Whether the gateway is draining: `/readyz` then answers 503.
#[derive(Debug, Default)]
pub struct Draining(AtomicBool);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Tasks that run beside the server and must finish their work before the process exits (the
/// webhook deliverer). Each gets a [`CancellationToken`] that is cancelled once the server has
/// stopped serving; the task should then finish or put back what it has in hand and return.
/// Shutdown waits up to [`BACKGROUND_GRACE`] for all of them.
#[derive(Debug, Clone, Default)]
pub struct Background {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Spawn `task(cancelled)` on the current runtime.
    pub fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.cancel.child_token()));
    }

    /// Cancel every task and wait for them, at most `grace`; whether they all finished.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

/// Resolves at the first SIGTERM or SIGINT.
pub async fn signal() {
    let name = received_signal().await;
    tracing::info!(signal = name, "shutting down");
}

#[cfg(unix)]
async fn received_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut terminate, mut interrupt) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot listen for signals; stopping only on Ctrl-C");
            return match tokio::signal::ctrl_c().await {
                Ok(()) => "SIGINT",
                Err(_) => std::future::pending().await,
            };
        }
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn received_signal() -> &'static str {
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(_) => std::future::pending().await,
    }
}

/// Run `task` every `period` until `cancelled`; a failure is logged and the next turn tries again.
/// Cancellation is heeded between turns only, so a turn that took work out (a batch of token
/// uses) always writes it or puts it back.
pub async fn every<F, Fut>(period: Duration, cancelled: CancellationToken, what: &'static str, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), domain::DomainError>>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancelled.cancelled() => return,
        }
        if let Err(e) = task().await {
            tracing::warn!(error = %e, what, "background work failed; will retry");
        }
    }
}
