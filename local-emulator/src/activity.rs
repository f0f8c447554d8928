//! Work that shutdown must wait for, counted without polling: a watch
//! channel holds the count, each piece of work holds a guard, and the
//! waiter wakes when the count reaches zero. Guards drop on every path
//! (a panicking task included), so the count cannot leak.

use tokio::sync::watch;

/// A count of running work of one kind.
#[derive(Debug)]
pub(crate) struct Activity(watch::Sender<usize>);

/// One piece of running work; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Busy(watch::Sender<usize>);

impl Default for Activity {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl Activity {
    /// Counts one more piece of work until the guard drops.
    pub(crate) fn enter(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(self.0.clone())
    }

    /// Work running now.
    pub(crate) fn count(&self) -> usize {
        *self.0.borrow()
    }

    /// Resolves when no work is running.
    pub(crate) async fn idle(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_guard_without_polling() {
        let activity = std::sync::Arc::new(Activity::default());
        activity.idle().await; // nothing running: at once
        let a = activity.enter();
        let b = activity.enter();
        assert_eq!(activity.count(), 2);
        let waiter = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one is still running");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(activity.count(), 0);
    }
}
