//! A request's wait for its stop token (a shutdown cut, or eviction),
//! cheap to poll.
//!
//! The request's task polls its stop branch at every wake-up, and a
//! wake-up almost always comes from the socket. Polling the token's own
//! future takes two locks each time (the token's node, then its `Notify`'s
//! waiter list: 1 % of a 64-connection echo). [`StopWait`] polls it only
//! at the first poll and after the token itself woke the task, through a
//! waker of its own; every other poll is a flag load and a waker
//! comparison.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pin_project_lite::pin_project! {
    /// Resolves once the token is cancelled, and stays resolved.
    pub(super) struct StopWait {
        #[pin]
        cancelled: WaitForCancellationFutureOwned,
        signal: Arc<StopSignal>,
        // `signal` as a waker, given to `cancelled` at every poll of it.
        signal_waker: Waker,
        // The task's waker `signal` wakes; `None` before the first poll.
        task: Option<Waker>,
        done: bool,
    }
}

/// Set by the token's wake-up, which it passes on to the task.
#[derive(Default)]
struct StopSignal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for StopSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl StopWait {
    /// Waits for `token` to be cancelled.
    pub(super) fn new(token: CancellationToken) -> Self {
        let signal = Arc::new(StopSignal::default());
        Self {
            cancelled: token.cancelled_owned(),
            signal_waker: Waker::from(Arc::clone(&signal)),
            signal,
            task: None,
            done: false,
        }
    }
}

impl Future for StopWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(());
        }
        let task_changed = !this
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()));
        let woken = this.signal.woken.load(Ordering::Acquire)
            && this.signal.woken.swap(false, Ordering::AcqRel);
        if !task_changed && !woken {
            return Poll::Pending;
        }
        // The task's waker is registered before the token is looked at, so
        // a cancellation from now on wakes it.
        this.signal.task.register(cx.waker());
        if task_changed {
            *this.task = Some(cx.waker().clone());
        }
        let mut signal_cx = Context::from_waker(this.signal_waker);
        if this.cancelled.poll(&mut signal_cx).is_ready() {
            *this.done = true;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// One poll of `wait`, in the test's task.
    async fn poll_once(wait: &mut Pin<Box<StopWait>>) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await
    }

    #[tokio::test]
    async fn resolves_when_cancelled_after_polls_and_stays_resolved() {
        let token = CancellationToken::new();
        let mut wait = Box::pin(StopWait::new(token.clone()));
        // Polled while nothing is cancelled: pending, and cheap after the first.
        for _ in 0..3 {
            assert!(poll_once(&mut wait).await.is_pending());
        }
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        });
        tokio::time::timeout(Duration::from_secs(5), wait.as_mut())
            .await
            .expect("the cancellation woke the wait");
        assert!(poll_once(&mut wait).await.is_ready());
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_first_poll_resolves_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let wait = StopWait::new(token);
        tokio::time::timeout(Duration::from_secs(1), wait)
            .await
            .expect("already cancelled");
    }
}
