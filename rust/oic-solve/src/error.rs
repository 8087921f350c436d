//! Errors of the solver.

/// Why no set of packages could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SolveError {
    #[error("Invalid package request `{text}`: {reason}")]
    InvalidRequest { text: String, reason: String },
    #[error("Package `{name}` was requested but no repository has it or a package providing it")]
    NotFound { name: String },
    #[error("No installable package matches the glob `{pattern}`")]
    NoMatch { pattern: String },
    #[error(
        "The glob `{pattern}` matches several kernel flavours: {}. Request one of them, or allow \
         several kernel flavours",
        flavours.join(", ")
    )]
    SeveralFlavours {
        pattern: String,
        flavours: Vec<String>,
    },
    /// The explanation lists, indented by depth, the chain from each request to the package
    /// that is missing or conflicts.
    #[error("The requested packages cannot be installed:\n{explanation}")]
    Unsatisfiable { explanation: String },
}
