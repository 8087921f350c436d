//! Test helpers: signed Debian repositories served over HTTP on 127.0.0.1.
//!
//! [`DebRepo::build`] runs the Python builder `python/os_image_composer/testing/debrepo.py`,
//! which needs `python3`, `dpkg-deb` and `gpg` on the host. [`HttpServer::serve`] serves a
//! directory with the same fault hooks as the Python test server. [`RpmRepo::build`] runs
//! `python/os_image_composer/testing/rpmrepo.py`, which also needs `rpmbuild`, `rpmsign` and
//! `createrepo_c`.

mod builder;
mod debrepo;
mod glob;
mod http;
mod rpmrepo;
mod server;

pub use builder::BuilderError;
pub use debrepo::{BuiltPackage, BuiltRepo, DebRepo, DebRepoError, DEBREPO_SCRIPT};
pub use glob::glob_match;
pub use rpmrepo::{BuiltRpm, BuiltRpmRepo, RpmRepo, RpmRepoError, RPMREPO_SCRIPT};
pub use server::{Fault, HttpServer, Request};
