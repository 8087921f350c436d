//! Debian formats: versions and their order, package relations, control files, and the
//! `Packages` and `Release` indexes of a repository.

pub mod control;
pub mod date;
pub mod glob;
pub mod package;
pub mod packages;
pub mod relation;
pub mod release;
pub mod version;

pub use control::{paragraphs, parse_paragraphs, ControlError, Field, Paragraph, Paragraphs};
pub use date::{parse_date, DateError};
pub use package::{MultiArch, Package, Sha256Digest};
pub use packages::{parse_package, parse_packages, read_packages, IndexError};
pub use relation::{
    parse_relation, parse_relation_list, parse_relation_list_with, parse_relations,
    parse_relations_with, Alternatives, Constraint, Name, NameInterner, Op, Relation,
};
pub use release::{FileEntry, Release, ReleaseError};
pub use version::Version;
