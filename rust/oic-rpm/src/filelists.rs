//! `filelists.xml`: every file of every package, read only for the file dependencies that
//! primary.xml cannot satisfy.
//!
//! `createrepo_c` lists in primary.xml only the files under `/etc/`, in `*bin/` folders and
//! `/usr/lib/sendmail`. A `Requires` on another path needs filelists.xml, which is much larger,
//! so it is loaded only when a package that the request may reach requires a path that no
//! package provides through primary.xml. dnf defers filelists.xml the same way. The file is
//! checked against the size and checksum in the verified repomd.xml before it is parsed, and
//! cached beside primary.xml, named by its checksum, so `--offline` builds can use it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::io::BufRead;
use std::path::PathBuf;

use oic_config::Repository;
use oic_repo::fetch::redact;
use oic_repo::Fetcher;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::RpmError;
use crate::metadata::{read_checked, repodata_bytes, RepodataRequest, RpmMetadataOptions};
use crate::provider::clauses_of;
use crate::repomd::RepomdData;
use crate::solve::{parse_request, RpmSolveRequest};
use crate::universe::RpmUniverse;
use crate::xml::{attribute, text_of};
use crate::RpmRepoMetadata;

/// The location and repomd.xml entry of one repository's filelists.xml.
#[derive(Debug, Clone)]
pub struct FilelistsSource {
    pub repository: Repository,
    /// The repository id that the universe's candidates carry.
    pub id: String,
    pub base_url: String,
    /// The `filelists` entry of the verified repomd.xml, `None` when the repository has none.
    pub data: Option<RepomdData>,
    pub cached_dir: Option<PathBuf>,
}

impl RpmRepoMetadata {
    /// Returns the location and repomd.xml entry of this repository's filelists.xml.
    pub fn filelists_source(&self) -> FilelistsSource {
        FilelistsSource {
            repository: self.repository.clone(),
            id: self.id.clone(),
            base_url: self.base_url.clone(),
            data: self.filelists.clone(),
            cached_dir: self.cached_dir.clone(),
        }
    }
}

/// One file that filelists.xml lists for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// The package's checksum in primary.xml (`pkgid`).
    pub pkgid: String,
    pub path: String,
}

/// Parses a decompressed filelists.xml and returns the entries whose path is in `wanted`.
/// `url` names the document in errors.
pub fn parse_filelists<R: BufRead, S: std::hash::BuildHasher>(
    input: R,
    url: &str,
    wanted: &HashSet<String, S>,
) -> Result<Vec<ListedFile>, RpmError> {
    let mut reader = Reader::from_reader(input);
    let mut buffer = Vec::new();
    let mut pkgid: Option<String> = None;
    let mut found = Vec::new();
    let mut closed = false;
    loop {
        let event = reader.read_event_into(&mut buffer);
        let position = reader.buffer_position();
        let invalid = |message: String| RpmError::InvalidFilelists {
            url: url.to_owned(),
            position,
            message,
        };
        match event.map_err(|error| invalid(error.to_string()))? {
            Event::Start(start) if start.local_name().as_ref() == "package" => {
                pkgid = attribute(&start, "pkgid").map_err(invalid)?;
            }
            Event::Start(start) if start.local_name().as_ref() == "file" => {
                let path = text_of(&mut reader).map_err(invalid)?;
                if let (Some(pkgid), true) = (&pkgid, wanted.contains(path.as_str())) {
                    found.push(ListedFile {
                        pkgid: pkgid.to_ascii_lowercase(),
                        path,
                    });
                }
            }
            Event::End(end) if end.local_name().as_ref() == "filelists" => closed = true,
            Event::Eof if closed => break,
            Event::Eof => {
                return Err(invalid("the document ends before </filelists>".to_owned()));
            }
            _ => {}
        }
        buffer.clear();
    }
    Ok(found)
}

/// Returns the file paths that packages reachable from `request` require and that no package
/// of `universe` provides. Reachable means through any candidate of any alternative, so the
/// set covers every choice the solver can make.
pub fn unknown_file_requirements(
    universe: &RpmUniverse,
    request: &RpmSolveRequest,
) -> BTreeSet<String> {
    let mut unknown = BTreeSet::new();
    let mut queue = VecDeque::new();
    let mut seen = HashSet::new();
    let mut visit = |dependency: &crate::Dependency, queue: &mut VecDeque<usize>| {
        if dependency.is_file() && !universe.knows(&dependency.name) {
            unknown.insert(dependency.name.clone());
            return;
        }
        for index in universe.matching(dependency) {
            if seen.insert(index) {
                queue.push_back(index);
            }
        }
    };
    for text in &request.requests {
        let text = text.trim();
        if oic_repo::glob::is_glob(text) {
            let names = universe
                .names()
                .filter(|name| oic_repo::glob::glob_match(text, name));
            for name in names {
                visit(&crate::Dependency::unversioned(name), &mut queue);
            }
        } else {
            visit(&parse_request(text), &mut queue);
        }
    }
    for name in &request.essential {
        visit(&crate::Dependency::unversioned(name), &mut queue);
    }
    while let Some(index) = queue.pop_front() {
        for requirement in &universe.get(index).package.requires {
            let Ok(clauses) = clauses_of(&requirement.expression) else {
                continue;
            };
            for dependency in clauses.iter().flatten() {
                visit(dependency, &mut queue);
            }
        }
    }
    unknown
}

/// Reads filelists.xml of every repository that has one, for the file requirements that
/// primary.xml leaves unknown, and adds the files found to the packages of `universe`. Repeats
/// while the packages found that way require further unknown paths. Returns the number of
/// files added. Does nothing, and reads nothing, when no reachable requirement is unknown.
pub async fn add_file_provides(
    universe: &mut RpmUniverse,
    request: &RpmSolveRequest,
    sources: &[FilelistsSource],
    fetcher: &Fetcher,
    options: &RpmMetadataOptions,
) -> Result<usize, RpmError> {
    let mut searched = HashSet::new();
    let mut added = 0;
    loop {
        let wanted: HashSet<String> = unknown_file_requirements(universe, request)
            .into_iter()
            .filter(|path| !searched.contains(path))
            .collect();
        if wanted.is_empty() {
            return Ok(added);
        }
        tracing::info!(
            paths = wanted.len(),
            "reading filelists.xml for file dependencies that primary.xml does not list"
        );
        for source in sources {
            let found = search_filelists(source, &wanted, fetcher, options).await?;
            added += add_found(universe, &source.id, &found);
        }
        searched.extend(wanted);
    }
}

/// Runs [`add_file_provides`] on a runtime of its own.
pub fn add_file_provides_blocking(
    universe: &mut RpmUniverse,
    request: &RpmSolveRequest,
    sources: &[FilelistsSource],
    options: &RpmMetadataOptions,
) -> Result<usize, RpmError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RpmError::Read {
            path: PathBuf::from("tokio runtime"),
            source,
        })?;
    let fetcher = Fetcher::new()?;
    runtime.block_on(oic_cancel::or_cancelled(add_file_provides(
        universe, request, sources, &fetcher, options,
    )))
}

async fn search_filelists(
    source: &FilelistsSource,
    wanted: &HashSet<String>,
    fetcher: &Fetcher,
    options: &RpmMetadataOptions,
) -> Result<Vec<ListedFile>, RpmError> {
    let Some(data) = &source.data else {
        tracing::debug!(repository = %source.id, "repomd.xml lists no filelists");
        return Ok(Vec::new());
    };
    let request = RepodataRequest {
        repository: &source.repository,
        base_url: &source.base_url,
        data,
        cached_dir: source.cached_dir.as_deref(),
    };
    let bytes = repodata_bytes(&request, fetcher, options).await?;
    let url = format!("{}/{}", redact(&source.base_url), data.location);
    let data = data.clone();
    let wanted = wanted.clone();
    tokio::task::spawn_blocking(move || {
        read_checked(&bytes, &data, &url, |reader| {
            parse_filelists(reader, &url, &wanted)
        })
    })
    .await
    .expect("the filelists parser does not panic")
}

/// Adds each found file to the candidates of repository `id` whose checksum is its pkgid.
fn add_found(universe: &mut RpmUniverse, id: &str, found: &[ListedFile]) -> usize {
    let mut by_pkgid: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, candidate) in universe.candidates().iter().enumerate() {
        if candidate.repository == id {
            let pkgid = candidate.package.checksum.value.clone();
            by_pkgid.entry(pkgid).or_default().push(index);
        }
    }
    let mut added = 0;
    for file in found {
        for &index in by_pkgid.get(&file.pkgid).map_or(&[][..], Vec::as_slice) {
            if universe.add_file(index, &file.path) {
                tracing::debug!(
                    package = %universe.get(index).label(),
                    path = %file.path,
                    "file provide from filelists.xml"
                );
                added += 1;
            }
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILELISTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="ABC" name="foo-data" arch="noarch">
  <version epoch="0" ver="1.0" rel="1"/>
  <file type="dir">/usr/share/foo</file>
  <file>/usr/share/foo/data.txt</file>
</package>
<package pkgid="def" name="other" arch="noarch">
  <version epoch="0" ver="1.0" rel="1"/>
  <file>/usr/share/other &amp; more.txt</file>
</package>
</filelists>"#;

    fn wanted(paths: &[&str]) -> HashSet<String> {
        paths.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn wanted_paths_are_found_with_pkgid() {
        let paths = wanted(&["/usr/share/foo/data.txt", "/usr/share/other & more.txt"]);
        let found = parse_filelists(FILELISTS.as_bytes(), "u", &paths).unwrap();
        assert_eq!(
            found,
            [
                ListedFile {
                    pkgid: "abc".to_owned(),
                    path: "/usr/share/foo/data.txt".to_owned()
                },
                ListedFile {
                    pkgid: "def".to_owned(),
                    path: "/usr/share/other & more.txt".to_owned()
                },
            ]
        );
    }

    #[test]
    fn directories_count_as_files() {
        let found = parse_filelists(FILELISTS.as_bytes(), "u", &wanted(&["/usr/share/foo"]));
        assert_eq!(found.unwrap().len(), 1);
    }

    #[test]
    fn truncated_filelists_is_an_error() {
        let cut = &FILELISTS[..FILELISTS.len() / 2];
        let error = parse_filelists(cut.as_bytes(), "u", &wanted(&[])).unwrap_err();
        assert!(
            matches!(error, RpmError::InvalidFilelists { .. }),
            "{error}"
        );
    }
}
