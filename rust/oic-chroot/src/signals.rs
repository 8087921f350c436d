//! Releases mounts when the process is stopped by SIGINT or SIGTERM.
//!
//! Guards release mounts on return and on panic, but a signal's default action ends the process
//! without unwinding. So the first mount installs handlers (`signal-hook`, which writes to a
//! self-pipe from the handler) and starts a thread that waits on them. On a signal, that thread
//! takes the registry lock, sends SIGTERM to the process group of every running child command,
//! unmounts the registered mounts in reverse order (lazily if busy) and exits with
//! 128 + the signal number. It keeps the lock until the process exits, so no new mount starts.
//! SIGKILL cannot be caught: the next run releases what such a run left (see
//! [`crate::mountinfo::release_stale_mounts`]).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Mounts and child process groups to release on a signal.
struct Registry {
    next_id: u64,
    mounts: Vec<(u64, PathBuf)>,
    children: Vec<u32>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 0,
    mounts: Vec::new(),
    children: Vec::new(),
});
static INSTALL: Once = Once::new();

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while the lock is held leaves valid data, so a poisoned lock is still usable.
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs the SIGINT and SIGTERM handlers and starts the thread that waits for them. Later
/// calls do nothing.
pub fn install() {
    INSTALL.call_once(|| match Signals::new([SIGINT, SIGTERM]) {
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
    for &child in &registry.children {
        if let Ok(pid) = i32::try_from(child) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    for (_, target) in registry.mounts.iter().rev() {
        if umount2(target, MntFlags::empty()).is_err() {
            let _ = umount2(target, MntFlags::MNT_DETACH);
        }
    }
    std::process::exit(128 + signal);
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

/// Registers the process group led by `pid`.
pub fn register_child(pid: u32) -> ChildRegistration {
    registry().children.push(pid);
    ChildRegistration(pid)
}

impl Drop for ChildRegistration {
    fn drop(&mut self) {
        registry().children.retain(|&pid| pid != self.0);
    }
}
