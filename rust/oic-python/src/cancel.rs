//! Interruptible native calls.
//!
//! Each long call runs on a worker thread with a cancellation token, while the calling thread
//! waits in short steps with the GIL released and runs Python's signal handlers between them.
//! When a handler raises (`KeyboardInterrupt` on Ctrl-C, or a Jupyter kernel interrupt), the
//! token is cancelled. The call's child processes then get SIGTERM, its loops stop at their next
//! check, and its guards release mounts and temporary files as the error returns. The call then
//! re-raises the handler's exception, so the process lives on. Only the main thread runs signal
//! handlers; a call from another thread is stopped through a [`CancelToken`], and then raises
//! `CancellationError`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use oic_cancel::{Scope, Token};
use pyo3::prelude::*;

/// How often the waiting thread runs Python's signal handlers.
const POLL: Duration = Duration::from_millis(100);

/// A handle that stops the native call it was passed to.
#[pyclass(module = "os_image_composer", frozen)]
pub(crate) struct CancelToken {
    token: Token,
}

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self {
            token: Token::new(),
        }
    }

    /// Stops the call: its child processes get SIGTERM (SIGKILL after a grace period) and the
    /// call raises `CancellationError` once its mounts and temporary files are released.
    fn cancel(&self) {
        oic_chroot::signals::cancel(&self.token);
    }

    /// Returns whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Runs `work` on a worker thread under a token (`caller_token`, or a new one) and waits for it as
/// described in the module documentation. An interrupt raises the signal handler's exception
/// (`KeyboardInterrupt`), a failure after `CancelToken.cancel()` raises `CancellationError`, and
/// other failures go through `map`.
pub(crate) fn run<T, E, W, M>(
    py: Python<'_>,
    caller_token: Option<&CancelToken>,
    work: W,
    map: M,
) -> PyResult<T>
where
    T: Send,
    E: Send,
    W: FnOnce() -> Result<T, E> + Send,
    M: FnOnce(Python<'_>, E) -> PyErr,
{
    let token = caller_token.map_or_else(Token::new, |caller| caller.token.clone());
    let (result, interrupt) = std::thread::scope(|threads| {
        let (done, finished) = mpsc::sync_channel::<()>(1);
        let worker_token = token.clone();
        let worker = threads.spawn(move || {
            let _scope = Scope::enter(Some(worker_token));
            let result = work();
            let _ = done.send(());
            result
        });
        let interrupt = wait(py, &Mutex::new(finished), &token);
        let joined = py.detach(|| worker.join());
        let result = joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (result, interrupt)
    });

    if let Some(interrupt) = interrupt {
        return Err(interrupt);
    }
    match result {
        Ok(value) => Ok(value),
        Err(_) if token.is_cancelled() => Err(crate::errors::python_error_with(
            py,
            "CancellationError",
            "The call was cancelled through its CancelToken",
            &[],
        )),
        Err(error) => Err(map(py, error)),
    }
}

/// Waits until the worker reports through `finished`. Returns the exception of the first
/// signal handler that raised, after cancelling `token`.
fn wait(py: Python<'_>, finished: &Mutex<mpsc::Receiver<()>>, token: &Token) -> Option<PyErr> {
    let mut interrupt = None;
    loop {
        let received = py.detach(|| {
            let finished = finished.lock().unwrap_or_else(PoisonError::into_inner);
            finished.recv_timeout(POLL)
        });
        match received {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return interrupt,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if interrupt.is_none() {
            if let Err(error) = py.check_signals() {
                tracing::info!("interrupted: cancelling the running call");
                oic_chroot::signals::cancel(token);
                interrupt = Some(error);
            }
        }
    }
}
