//! Errors of the metadata stage.

use oic_signature::SignatureError;

/// A failure to fetch, verify or read repository metadata. Every variant names the repository or
/// the URL it concerns; URLs never carry credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    #[error("Failed to fetch `{url}`: {message}")]
    Fetch { url: String, message: String },

    #[error(
        "Repository `{repository}` publishes neither InRelease nor Release under `{url}`: \
         check its URL and suite"
    )]
    NoRelease { repository: String, url: String },

    #[error(
        "Repository `{repository}` publishes Release without Release.gpg under `{url}`: the \
         metadata cannot be verified (set `gpgCheck: false` only for a repository you trust)"
    )]
    MissingSignature { repository: String, url: String },

    #[error("Repository `{repository}`: {source}")]
    Signature {
        repository: String,
        #[source]
        source: Box<SignatureError>,
    },

    #[error("Repository `{repository}`: failed to load signing keys: {source}")]
    Key {
        repository: String,
        #[source]
        source: Box<SignatureError>,
    },

    #[error(
        "Repository `{repository}`: its Release file expired on {valid_until} (Valid-Until): \
         the mirror is stale or replayed; update the mirror or check the machine's clock"
    )]
    Expired {
        repository: String,
        valid_until: String,
    },

    #[error("Repository `{repository}`: invalid Release file: {source}")]
    Release {
        repository: String,
        #[source]
        source: Box<oic_deb::ReleaseError>,
    },

    #[error(
        "Repository `{repository}`: Release lists no `{path}` (nor .xz or .gz): check the \
         component `{component}` and architecture"
    )]
    IndexNotListed {
        repository: String,
        path: String,
        component: String,
    },

    #[error(
        "Checksum mismatch for `{url}`: Release promises SHA256 {expected} and {expected_size} \
         bytes, the file has SHA256 {actual} and {actual_size} bytes"
    )]
    Checksum {
        url: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },

    #[error("Failed to decompress `{url}`: {message}")]
    Decompress { url: String, message: String },

    #[error("Invalid index `{url}`: {source}")]
    Index {
        url: String,
        #[source]
        source: Box<oic_deb::IndexError>,
    },

    #[error(
        "Offline, and the cache holds no verified metadata for repository `{repository}` \
         (`{what}`): run one build with the network first"
    )]
    OfflineMiss { repository: String, what: String },

    #[error("Repository `{repository}` has neither `url` nor `path`")]
    NoLocation { repository: String },

    #[error("Cache error at `{path}`: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}
