//! Releases mounts when the process is stopped by SIGINT or SIGTERM, and stops child processes
//! when work is cancelled.
//!
//! Guards release mounts on return and on panic, but a signal's default action ends the process
//! without unwinding. So the first mount installs handlers (`signal-hook`, which writes to a
//! self-pipe from the handler) and starts a thread that waits on them. On a signal, that thread
//! takes the registry lock, sends SIGTERM to the process group of every running child command,
//! waits up to 3 s for them to end, unmounts the registered mounts in reverse order (lazily if
//! busy) and exits with 128 + the signal number. It keeps the lock until the process exits, so no new mount starts.
//! SIGKILL cannot be caught: the next run releases what such a run left (see
//! [`crate::mountinfo::release_stale_mounts`]).
//!
//! A caller that turns SIGINT into a cancellation of its own (the Python binding, where SIGINT
//! raises `KeyboardInterrupt`) calls [`leave_interrupt_to_caller`] first. Then only SIGTERM is
//! handled here. The caller stops a call with [`cancel`], which also stops the children that call
//! started, and the guards release its mounts as the work returns its error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Mounts and child process groups to release on a signal.
struct Registry {
    next_id: u64,
    mounts: Vec<(u64, PathBuf)>,
    /// Each child's process group and the cancellation token of the call that started it.
    children: Vec<(u32, Option<oic_cancel::Token>)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    mounts: Vec::new(),
    children: Vec::new(),
});
static INSTALL: Once = Once::new();
static HANDLE_INTERRUPT: AtomicBool = AtomicBool::new(true);

/// How long cancelled children have between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// How long the process waits for its children to end after SIGTERM before it exits.
const EXIT_GRACE: Duration = Duration::from_secs(3);

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while the lock is held leaves valid data, so a poisoned lock is still usable.
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Leaves SIGINT to the caller's own handler: [`install`] then handles SIGTERM only. Takes
/// effect only before the first [`install`].
pub fn leave_interrupt_to_caller() {
    HANDLE_INTERRUPT.store(false, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers (SIGTERM only after [`leave_interrupt_to_caller`])
/// and starts the thread that waits for them. Later calls do nothing.
pub fn install() {
    let handled: &[i32] = if HANDLE_INTERRUPT.load(Ordering::SeqCst) {
        &[SIGINT, SIGTERM]
    } else {
        &[SIGTERM]
    };
    INSTALL.call_once(|| match Signals::new(handled) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("oic-chroot-signals".to_owned())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        release_and_exit(signal);
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "failed to start the signal thread: a signal will leave mounts behind");
            }
        }
        Err(error) => {
            tracing::warn!(%error, "failed to install signal handlers: a signal will leave mounts behind");
        }
    });
}

fn release_and_exit(signal: i32) -> ! {
    let registry = registry();
    tracing::warn!(
        signal,
        mounts = registry.mounts.len(),
        "stopping on signal, releasing mounts"
    );
    let children: Vec<u32> = registry.children.iter().map(|(pid, _)| *pid).collect();
    signal_children(&children, Signal::SIGTERM);
    wait_for_children(&children, EXIT_GRACE);
    for (_, target) in registry.mounts.iter().rev() {
        if umount2(target, MntFlags::empty()).is_err() {
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
    }
    std::process::exit(128 + signal);
}

fn signal_children(children: &[u32], signal: Signal) {
    for &child in children {
        if let Ok(pid) = i32::try_from(child) {
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }
}

/// Waits until no process of the groups in `children` is left, or `grace` has passed. The
/// threads that started them reap them; the groups then no longer exist.
fn wait_for_children(children: &[u32], grace: Duration) {
    let deadline = std::time::Instant::now() + grace;
    let alive = |child: &u32| {
        i32::try_from(*child).is_ok_and(|pid| killpg(Pid::from_raw(pid), None).is_ok())
    };
    while children.iter().any(alive) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cancels the call of `token`: cancels the token, sends SIGTERM to the process group of every
/// running child command that call started, and SIGKILL to those still running after a grace
/// period. Mounts stay to their guards, which release them as the work returns its error.
pub fn cancel(token: &oic_cancel::Token) {
    token.cancel();
    let children = children_of(token);
    signal_children(&children, Signal::SIGTERM);
    if children.is_empty() {
        return;
    }
    let token = token.clone();
    let spawned = std::thread::Builder::new()
        .name("oic-chroot-cancel".to_owned())
        .spawn(move || {
            std::thread::sleep(KILL_GRACE);
            let left: Vec<u32> = children_of(&token)
                .into_iter()
                .filter(|child| children.contains(child))
                .collect();
            if !left.is_empty() {
                tracing::warn!(?left, "child processes ignored SIGTERM; sending SIGKILL");
                signal_children(&left, Signal::SIGKILL);
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "failed to start the thread that kills cancelled children");
    }
}

fn children_of(token: &oic_cancel::Token) -> Vec<u32> {
    registry()
        .children
        .iter()
        .filter(|(_, owner)| owner.as_ref().is_some_and(|owner| owner.same(token)))
        .map(|(pid, _)| *pid)
        .collect()
}

/// A mount known to the signal thread until the guard is dropped.
#[derive(Debug)]
pub struct MountRegistration(u64);

/// Registers `target` as mounted.
pub fn register_mount(target: PathBuf) -> MountRegistration {
    let mut registry = registry();
    let id = registry.next_id;
    registry.next_id += 1;
    registry.mounts.push((id, target));
    MountRegistration(id)
}

impl Drop for MountRegistration {
    fn drop(&mut self) {
        registry().mounts.retain(|(id, _)| *id != self.0);
    }
}

/// A running child process group known to the signal thread until the guard is dropped.
#[derive(Debug)]
pub struct ChildRegistration(u32);

/// Registers the process group led by `pid` with the calling thread's cancellation token. A
/// child that starts after its call was cancelled is stopped at once.
pub fn register_child(pid: u32) -> ChildRegistration {
    registry().children.push((pid, oic_cancel::current()));
    if oic_cancel::is_cancelled() {
        signal_children(&[pid], Signal::SIGTERM);
    }
    ChildRegistration(pid)
}

impl Drop for ChildRegistration {
    fn drop(&mut self) {
        registry().children.retain(|(pid, _)| *pid != self.0);
    }
}
