//! Commands that need input on their standard input.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use oic_chroot::command::command_line;

use crate::error::ImageError;

/// Runs `command` with `input` on its standard input. The input is not logged, because it can
/// hold a password. Like `oic_chroot::command::run`, it fails with `Cancelled` when the work is
/// cancelled before or while the command runs.
pub fn run_with_input(command: &mut Command, input: &str) -> Result<(), ImageError> {
    oic_cancel::check()?;
    let line = command_line(command);
    tracing::debug!(command = %line, "running");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|error| ImageError::Command {
            command: line.clone(),
            status: "not started".to_owned(),
            output: error.to_string(),
        })?;
    let _registration = oic_chroot::signals::register_child(child.id());
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    oic_cancel::check()?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Err(ImageError::Command {
        command: line,
        status: output.status.to_string(),
        output: text,
    })
}
