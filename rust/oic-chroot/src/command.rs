//! External commands: run with a fixed environment, and on failure log the full argument list
//! once, quoted so that it can be pasted into a shell and rerun.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use crate::error::ChrootError;
use crate::signals;

/// Lines of output kept in the error of a failed command.
const OUTPUT_TAIL_LINES: usize = 40;

/// Quotes `word` for a POSIX shell, leaving words made of safe characters as they are.
pub fn shell_quote(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.into_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command line of `command` with its environment overrides, quoted for a shell.
pub fn command_line(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            value.map(|value| {
                let mut pair = key.to_os_string();
                pair.push("=");
                pair.push(value);
                shell_quote(&pair)
            })
        })
        .collect();
    if !words.is_empty() {
        words.insert(0, "env".to_owned());
    }
    words.push(shell_quote(command.get_program()));
    words.extend(command.get_args().map(shell_quote));
    words.join(" ")
}

/// Runs `command` to completion with its output captured. The child's process id is registered
/// with the signal thread, which stops the child before it releases the mounts, and with
/// [`signals::cancel`]. A command that ends after a cancellation fails with
/// [`ChrootError::Cancelled`] whatever its status.
pub fn run(command: &mut Command) -> Result<String, ChrootError> {
    oic_cancel::check()?;
    let line = command_line(command);
    tracing::debug!(command = %line, "running");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command.spawn().map_err(|error| {
        tracing::error!(command = %line, %error, "command failed to start");
        ChrootError::Command {
            command: line.clone(),
            status: "not started".to_owned(),
            output: error.to_string(),
        }
    })?;
    let child_guard = signals::register_child(child.id());
    let output = child.wait_with_output();
    drop(child_guard);
    let output = output?;
    oic_cancel::check()?;

    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        tracing::trace!(command = %line, output = %text, "command finished");
        return Ok(text);
    }
    let status = output.status.to_string();
    let tail = tail_lines(&text, OUTPUT_TAIL_LINES);
    tracing::error!(command = %line, %status, output = %tail, "command failed");
    Err(ChrootError::Command {
        command: line,
        status,
        output: tail,
    })
}

/// The last `count` lines of `text`.
fn tail_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_safe_words() {
        assert_eq!(
            shell_quote(OsStr::new("--force-depends")),
            "--force-depends"
        );
        assert_eq!(shell_quote(OsStr::new("/var/lib/x.deb")), "/var/lib/x.deb");
    }

    #[test]
    fn quote_wraps_unsafe_words() {
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn command_line_lists_environment() {
        let mut command = Command::new("dpkg");
        command.env("LC_ALL", "C").arg("--audit");
        assert_eq!(command_line(&command), "env LC_ALL=C dpkg --audit");
    }

    #[test]
    fn failed_command_names_arguments() {
        let error = run(Command::new("sh").args(["-c", "echo out; exit 3"])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("sh -c 'echo out; exit 3'"), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("out"), "{message}");
    }
}
