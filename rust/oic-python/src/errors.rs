//! Conversion of core errors into the exception classes of `os_image_composer.errors`.

use oic_config::{ConfigError, Diagnostics, TemplateError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Builds an exception of `os_image_composer.errors` with its message and the listed problems.
pub(crate) fn python_error(
    py: Python<'_>,
    class: &str,
    message: &str,
    errors: Option<&Diagnostics>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("os_image_composer.errors")?;
        let class = module.getattr(class)?;
        let value = match errors {
            Some(diagnostics) => {
                let items = diagnostics.iter().map(|d| {
                    (
                        d.loc.source.to_string(),
                        d.loc.line,
                        d.loc.column,
                        d.path.clone(),
                        d.message.clone(),
                    )
                });
                class.call1((message, PyList::new(py, items)?))?
            }
            None => class.call1((message,))?,
        };
        Ok(PyErr::from_value(value))
    };
    build().unwrap_or_else(|error| error)
}

pub(crate) fn config_error(py: Python<'_>, error: &ConfigError) -> PyErr {
    match error {
        ConfigError::Invalid(diagnostics) => {
            python_error(py, "ConfigError", &error.to_string(), Some(diagnostics))
        }
        _ => python_error(py, "ConfigError", &error.to_string(), None),
    }
}

pub(crate) fn template_error(py: Python<'_>, error: &TemplateError) -> PyErr {
    match error {
        TemplateError::Invalid(diagnostics) => {
            python_error(py, "TemplateError", &error.to_string(), Some(diagnostics))
        }
        _ => python_error(
            py,
            "TemplateError",
            &error.to_string(),
            Some(&Diagnostics::default()),
        ),
    }
}

/// Builds an exception of `os_image_composer.errors` with its message and keyword attributes.
pub(crate) fn python_error_with(
    py: Python<'_>,
    class: &str,
    message: &str,
    attributes: &[(&str, Option<String>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let module = py.import("os_image_composer.errors")?;
        let class = module.getattr(class)?;
        let kwargs = PyDict::new(py);
        for (name, value) in attributes {
            kwargs.set_item(*name, value)?;
        }
        Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|error| error)
}
