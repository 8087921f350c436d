//! Forwards the core's `tracing` events to Python: warnings to `warnings.warn` with
//! `ComposerWarning`, everything else to the `logging` logger `os_image_composer.<crate>`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The most detailed level forwarded: 1 error, 2 warn, 3 info, 4 debug, 5 trace. Events below it
/// are dropped before the GIL is taken.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(3);

fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn python_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Sets the most detailed level forwarded to Python: `error`, `warn`, `info`, `debug` or `trace`.
#[pyfunction]
pub(crate) fn set_log_level(level: &str) -> PyResult<()> {
    let value = match level.to_ascii_lowercase().as_str() {
        "error" => 1,
        "warn" | "warning" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => {
            let message =
                format!("Invalid log level `{level}`: use error, warn, info, debug or trace");
            return Err(pyo3::exceptions::PyValueError::new_err(message));
        }
    };
    MAX_LEVEL.store(value, Ordering::Relaxed);
    Ok(())
}

/// Installs the forwarding layer as the process's `tracing` subscriber. A second call does
/// nothing, so the module can be imported more than once.
pub(crate) fn install() {
    let _ = tracing_subscriber::registry().with(PythonLayer).try_init();
}

struct PythonLayer;

impl<S: Subscriber> Layer<S> for PythonLayer {
    fn register_callsite(&self, _metadata: &'static tracing::Metadata<'static>) -> Interest {
        // The level can change at run time through `set_log_level`, so no callsite may cache a
        // decision: `enabled` is asked on every event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _context: Context<'_, S>) -> bool {
        // Libraries such as pgp and rustls log their internals at debug level: only their
        // warnings and errors are forwarded.
        let max = if metadata.target().starts_with("oic_") {
            MAX_LEVEL.load(Ordering::Relaxed)
        } else {
            MAX_LEVEL.load(Ordering::Relaxed).min(2)
        };
        rank(*metadata.level()) <= max
    }

    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let mut message = Message::default();
        event.record(&mut message);
        let text = message.render();
        let level = *event.metadata().level();
        let target = event.metadata().target();
        let crate_name = target
            .split("::")
            .next()
            .unwrap_or(target)
            .trim_start_matches("oic_");

        Python::attach(|py| {
            let result = if level == Level::WARN {
                warn(py, &text)
            } else {
                log(py, crate_name, python_level(level), &text)
            };
            // A handler that raises must not unwind into the core. The error is dropped here,
            // as `logging` itself does with failing handlers.
            drop(result);
        });
    }
}

fn warn(py: Python<'_>, text: &str) -> PyResult<()> {
    let category = py
        .import("os_image_composer.errors")?
        .getattr("ComposerWarning")?;
    py.import("warnings")?
        .call_method1("warn", (text, category, 2))?;
    Ok(())
}

fn log(py: Python<'_>, crate_name: &str, level: u8, text: &str) -> PyResult<()> {
    let name = format!("os_image_composer.{crate_name}");
    let logger = py.import("logging")?.call_method1("getLogger", (name,))?;
    if logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        logger.call_method1("log", (level, text))?;
    }
    Ok(())
}

/// The event's message followed by its other fields as `key=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Message {
    fn render(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else {
            format!("{} ({})", self.message, self.fields.trim_start())
        }
    }
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name().starts_with("log.") {
            return;
        }
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name().starts_with("log.") {
            return;
        }
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
