//! The files a build needs, and how they follow from the solver's resolution.

use std::collections::HashMap;

use oic_solve::Resolution;

use crate::checksum::ChecksumType;
use crate::error::PkgCacheError;
use crate::layout::check_file_name;

/// A package file a build needs: where to get it and what its bytes must be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WantedFile {
    /// The name in the cache folder: the basename of the index's `Filename` field.
    pub file_name: String,
    /// An absolute `http://`, `https://` or `file://` URL. It may contain credentials, which
    /// never appear in logs or errors.
    pub url: String,
    pub size: u64,
    /// The algorithm of `checksum`: SHA-256 for Debian indexes, the type that primary.xml gives
    /// for RPM packages.
    #[serde(default)]
    pub checksum_type: ChecksumType,
    /// The lowercase hexadecimal digest the index promises.
    pub checksum: String,
    /// The id of the repository the package comes from, for messages.
    pub repository: String,
}

impl WantedFile {
    /// Checks the file name and the form of the checksum.
    pub fn check(&self) -> Result<(), PkgCacheError> {
        check_file_name(&self.file_name)?;
        let hex = self.checksum.len() == self.checksum_type.hex_len()
            && self
                .checksum
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !hex {
            return Err(PkgCacheError::InvalidChecksum {
                file_name: self.file_name.clone(),
                checksum_type: self.checksum_type,
                checksum: self.checksum.clone(),
            });
        }
        Ok(())
    }
}

/// Lists the files of the chosen packages, with URLs under each repository's base URL.
///
/// `base_urls` maps a repository id, as in [`oic_solve::UniversePackage::repository`], to the
/// URL that the index's `Filename` paths are relative to (`oic_repo::RepoMetadata::base_url`).
pub fn wanted_files<S: std::hash::BuildHasher>(
    resolution: &Resolution<'_>,
    base_urls: &HashMap<String, String, S>,
) -> Result<Vec<WantedFile>, PkgCacheError> {
    resolution
        .packages
        .iter()
        .map(|candidate| {
            let package = &candidate.package;
            let base = base_urls.get(&*candidate.repository).ok_or_else(|| {
                PkgCacheError::UnknownRepository {
                    package: candidate.label(),
                    repository: candidate.repository.to_string(),
                }
            })?;
            let file_name = package
                .filename
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let wanted = WantedFile {
                file_name,
                url: join_url(base, &package.filename),
                size: package.size,
                checksum_type: ChecksumType::Sha256,
                checksum: package.sha256.to_hex(),
                repository: candidate.repository.to_string(),
            };
            wanted.check()?;
            Ok(wanted)
        })
        .collect()
}

fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oic_deb::{Package, Version};
    use oic_solve::{SolveRequest, Universe, UniversePackage};

    fn package(name: &str) -> UniversePackage {
        let mut package = Package::new(name, Version::parse("1.0-1").unwrap(), "amd64");
        package.filename = format!("pool/main/{name}/{name}_1.0-1_amd64.deb");
        package.size = 10;
        package.sha256 = oic_deb::Sha256Digest::from_hex(&"AB".repeat(32)).unwrap();
        UniversePackage::new(package, "main-repo", 500)
    }

    #[test]
    fn resolution_maps_to_urls_and_basenames() {
        let universe = Universe::new([package("a")], "amd64");
        let request = SolveRequest {
            requests: vec![oic_solve::Request::parse("a").unwrap()],
            ..SolveRequest::default()
        };
        let resolution = oic_solve::solve(&universe, &request).unwrap();
        let urls = HashMap::from([("main-repo".to_owned(), "http://h/debian/".to_owned())]);

        let wanted = wanted_files(&resolution, &urls).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].file_name, "a_1.0-1_amd64.deb");
        assert_eq!(
            wanted[0].url,
            "http://h/debian/pool/main/a/a_1.0-1_amd64.deb"
        );
        assert_eq!(wanted[0].checksum, "ab".repeat(32));

        let missing = wanted_files(&resolution, &HashMap::new()).unwrap_err();
        assert!(missing.to_string().contains("main-repo"), "{missing}");
    }
}
