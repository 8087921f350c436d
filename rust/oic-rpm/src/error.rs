//! The error type of the RPM repository code.

use std::path::PathBuf;

use oic_repo::RepoError;
use oic_signature::SignatureError;

/// A failure to read, verify or resolve RPM repository data. Every variant names the
/// repository, URL, package or file it concerns; URLs never carry credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpmError {
    /// A fetch, key or cache failure from the shared repository code.
    #[error(transparent)]
    Repo(#[from] RepoError),

    #[error(
        "Repository `{repository}` has no `{url}`: check that the URL points at the folder \
         that contains repodata/"
    )]
    NoRepomd { repository: String, url: String },

    #[error(
        "Repository `{repository}` publishes no `{url}`, so its repomd.xml cannot be verified: \
         sign it with `gpg --detach-sign --armor`, or set `gpgCheck: false` only for a \
         repository you trust"
    )]
    MissingRepomdSignature { repository: String, url: String },

    #[error("Repository `{repository}`: repomd.xml: {source}")]
    Signature {
        repository: String,
        #[source]
        source: Box<SignatureError>,
    },

    #[error("Invalid repomd.xml `{url}`: {message}")]
    InvalidRepomd { url: String, message: String },

    #[error("Repository `{repository}`: repomd.xml `{url}` lists no `primary` data")]
    PrimaryNotListed { repository: String, url: String },

    #[error(
        "`{url}` uses the checksum type `{algorithm}`, which is rejected because collisions \
         are practical: regenerate the repository with `createrepo_c --checksum sha256`"
    )]
    WeakChecksum { url: String, algorithm: String },

    #[error("`{url}` uses the unknown checksum type `{algorithm}`: expected sha256 or sha512")]
    UnsupportedChecksum { url: String, algorithm: String },

    #[error(
        "Checksum mismatch for `{url}`: {source_name} promises {algorithm} {expected}, the \
         file has {actual}. The file was modified or damaged: fetch it again or check the mirror"
    )]
    Checksum {
        url: String,
        source_name: String,
        algorithm: String,
        expected: String,
        actual: String,
    },

    #[error(
        "Size mismatch for `{url}`: {source_name} promises {expected} bytes, the file has \
         {actual} bytes"
    )]
    Size {
        url: String,
        source_name: String,
        expected: u64,
        actual: u64,
    },

    #[error("Failed to decompress `{url}`: {message}")]
    Decompress { url: String, message: String },

    #[error("Invalid primary metadata `{url}` at byte {position}: {message}")]
    InvalidPrimary {
        url: String,
        position: u64,
        message: String,
    },

    #[error("Invalid filelists metadata `{url}` at byte {position}: {message}")]
    InvalidFilelists {
        url: String,
        position: u64,
        message: String,
    },

    #[error(
        "Package `{package}` has the dependency `{expression}`, which is not supported: {reason}"
    )]
    RichDependency {
        package: String,
        expression: String,
        reason: String,
    },

    #[error(
        "Offline, and the cache holds no verified metadata for repository `{repository}` \
         (`{what}`): run one build with the network first"
    )]
    OfflineMiss { repository: String, what: String },

    #[error("Repository `{repository}` has neither `url` nor `path`")]
    NoLocation { repository: String },

    #[error("Cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("Invalid RPM file `{}`: {message}", path.display())]
    InvalidRpm { path: PathBuf, message: String },

    #[error(
        "Package `{}` has no OpenPGP header signature (no RSAHEADER, DSAHEADER or OPENPGP \
         tag): sign it with `rpmsign --addsign`, or set `gpgCheck: false` only for a \
         repository you trust",
        path.display()
    )]
    Unsigned { path: PathBuf },

    #[error(
        "Package `{}`: the header signature by {signer} is not accepted: {source}",
        path.display()
    )]
    PackageSignature {
        path: PathBuf,
        /// The issuer key IDs that the signatures name, uppercase hex.
        signer: String,
        #[source]
        source: Box<SignatureError>,
    },

    #[error(
        "Package `{}`: the {what} digest does not match: the file promises {expected}, the \
         content has {actual}. The file is damaged or was modified after it was signed",
        path.display()
    )]
    PackageDigest {
        path: PathBuf,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("The requested packages cannot be installed:\n{message}")]
    Unsolvable { message: String },

    #[error(
        "The requested packages cannot be installed: nothing provides `{dependency}`, which \
         `{package}` requires{hint}. Chain: {chain}"
    )]
    MissingDependency {
        /// The package with the unsatisfied requirement, as `name-evr.arch`.
        package: String,
        dependency: String,
        /// The packages from the requested one to `package`, then the dependency, joined by
        /// ` -> `.
        chain: String,
        /// Further detail, empty or starting with `; `.
        hint: String,
    },

    #[error("No package or capability `{name}` is available in the configured repositories")]
    NotFound { name: String },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}
