//! Cancellation of running work, one token per interruptible call.
//!
//! A caller that can be interrupted (the Python binding, on `KeyboardInterrupt` or a cancelled
//! task) runs each call on a thread that entered a [`Scope`] with a fresh [`Token`], and cancels
//! the token to stop that call. Long loops call [`check`] between steps and return [`Cancelled`]
//! through their own error type. Work that moves to other threads (a thread pool, an async
//! runtime) takes the token along with [`current`] and enters it there. Code that waits on a child
//! process learns of it from the child's end, because the canceller also stops the children the
//! call started (see `oic_chroot::signals`).
//!
//! Threads without a token are never cancelled, so calls from plain Rust programs behave as
//! before.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The error of work stopped through its [`Token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Cancelled: the build was interrupted")]
pub struct Cancelled;

/// The cancellation state of one call, shared by every thread that works for it.
#[derive(Debug, Clone, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests that the work of this token stops at its next check.
    pub fn cancel(&self) {
        if !self.0.swap(true, Ordering::SeqCst) {
            tracing::info!("cancelling: stopping child processes and releasing mounts");
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Returns whether `self` and `other` are the same token.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// Returns the token of the calling thread, if it entered one.
pub fn current() -> Option<Token> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Returns whether the calling thread's token is cancelled.
pub fn is_cancelled() -> bool {
    CURRENT.with(|current| current.borrow().as_ref().is_some_and(Token::is_cancelled))
}

/// Fails with [`Cancelled`] once the calling thread's token is cancelled.
pub fn check() -> Result<(), Cancelled> {
    if is_cancelled() {
        return Err(Cancelled);
    }
    Ok(())
}

/// How often waits look at the token.
const POLL: Duration = Duration::from_millis(50);

/// Sleeps for `duration` in short steps and fails as soon as the calling thread's token is
/// cancelled.
pub fn sleep(duration: Duration) -> Result<(), Cancelled> {
    let mut left = duration;
    while !left.is_zero() {
        check()?;
        let step = left.min(POLL);
        std::thread::sleep(step);
        left -= step;
    }
    check()
}

/// Runs `work` until it finishes or the calling thread's token is cancelled. On cancellation
/// `work` is dropped, which ends its requests and runs the drop guards of its temporary files.
pub fn or_cancelled<T, E: From<Cancelled>>(
    work: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    let token = current();
    async move {
        let Some(token) = token else {
            return work.await;
        };
        tokio::select! {
            result = work => result,
            () = cancelled(&token) => Err(Cancelled.into()),
        }
    }
}

/// Completes once `token` is cancelled.
async fn cancelled(token: &Token) {
    while !token.is_cancelled() {
        tokio::time::sleep(POLL).await;
    }
}

/// The calling thread works for a token until the scope is dropped.
#[derive(Debug)]
pub struct Scope {
    previous: Option<Token>,
}

impl Scope {
    /// Makes `token` the calling thread's token; `None` leaves the thread without one.
    pub fn enter(token: Option<Token>) -> Self {
        let previous = CURRENT.with(|current| current.replace(token));
        Self { previous }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_without_token_never_fails() {
        assert_eq!(check(), Ok(()));
        assert!(current().is_none());
        assert_eq!(sleep(Duration::from_millis(1)), Ok(()));
    }

    #[test]
    fn token_cancel_stops_checks_sleeps_and_futures() {
        let token = Token::new();
        let scope = Scope::enter(Some(token.clone()));
        assert_eq!(check(), Ok(()));

        token.cancel();
        assert_eq!(check(), Err(Cancelled));
        assert_eq!(sleep(Duration::from_secs(60)), Err(Cancelled));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let never = std::future::pending::<Result<(), Cancelled>>();
        assert_eq!(runtime.block_on(or_cancelled(never)), Err(Cancelled));

        drop(scope);
        assert_eq!(
            check(),
            Ok(()),
            "the scope's end restores the thread's earlier state"
        );
    }

    #[test]
    fn token_cancel_reaches_only_its_own_threads() {
        let first = Token::new();
        let second = Token::new();
        first.cancel();
        let _scope = Scope::enter(Some(second.clone()));
        assert_eq!(check(), Ok(()));
        assert!(first.same(&first.clone()));
        assert!(!first.same(&second));

        let moved = current();
        let cancelled_elsewhere = std::thread::spawn(move || {
            let _scope = Scope::enter(moved);
            second.cancel();
            check()
        });
        assert_eq!(cancelled_elsewhere.join().unwrap(), Err(Cancelled));
        assert_eq!(
            check(),
            Err(Cancelled),
            "threads that share a token see one state"
        );
    }
}
