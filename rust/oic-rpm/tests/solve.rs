//! The solver's rules on small universes written as primary.xml.

use std::fmt::Write as _;

use oic_rpm::{parse_primary, solve, RpmCandidate, RpmError, RpmSolveRequest, RpmUniverse};

/// One package of a test universe, in primary.xml syntax.
struct Spec {
    name: &'static str,
    evr: &'static str,
    arch: &'static str,
    requires: Vec<&'static str>,
    provides: Vec<&'static str>,
    conflicts: Vec<&'static str>,
    obsoletes: Vec<&'static str>,
    files: Vec<&'static str>,
}

fn package(name: &'static str, evr: &'static str) -> Spec {
    Spec {
        name,
        evr,
        arch: "noarch",
        requires: Vec::new(),
        provides: Vec::new(),
        conflicts: Vec::new(),
        obsoletes: Vec::new(),
        files: Vec::new(),
    }
}

impl Spec {
    fn requires(mut self, entry: &'static str) -> Self {
        self.requires.push(entry);
        self
    }

    fn provides(mut self, entry: &'static str) -> Self {
        self.provides.push(entry);
        self
    }

    fn conflicts(mut self, entry: &'static str) -> Self {
        self.conflicts.push(entry);
        self
    }

    fn obsoletes(mut self, entry: &'static str) -> Self {
        self.obsoletes.push(entry);
        self
    }

    fn file(mut self, path: &'static str) -> Self {
        self.files.push(path);
        self
    }
}

/// Returns `<rpm:entry>` for `name [op [epoch:]version[-release]]`, or a rich dependency.
fn entry(text: &str) -> String {
    let escape = |text: &str| text.replace('<', "&lt;").replace('>', "&gt;");
    let parts: Vec<&str> = text.split_whitespace().collect();
    if text.starts_with('(') || parts.len() != 3 {
        return format!(r#"<rpm:entry name="{}"/>"#, escape(text));
    }
    let flags = match parts[1] {
        "<" => "LT",
        "<=" => "LE",
        "=" => "EQ",
        ">=" => "GE",
        _ => "GT",
    };
    format!(
        r#"<rpm:entry name="{}" flags="{flags}" {}/>"#,
        parts[0],
        evr_attributes(parts[2])
    )
}

fn evr_attributes(text: &str) -> String {
    let evr = oic_rpm::Evr::parse(text);
    let mut attributes = format!(
        r#"epoch="{}" ver="{}""#,
        evr.epoch.as_deref().unwrap_or("0"),
        evr.version
    );
    if let Some(release) = &evr.release {
        let _ = write!(attributes, r#" rel="{release}""#);
    }
    attributes
}

fn list(tag: &str, entries: &[&str]) -> String {
    let entries: String = entries.iter().map(|text| entry(text)).collect();
    format!("<rpm:{tag}>{entries}</rpm:{tag}>")
}

fn primary(specs: &[Spec]) -> String {
    let mut xml = format!(r#"<metadata packages="{}">"#, specs.len());
    for spec in specs {
        let mut files = String::new();
        for path in &spec.files {
            let _ = write!(files, "<file>{path}</file>");
        }
        let _ = write!(
            xml,
            r#"<package type="rpm"><name>{name}</name><arch>{arch}</arch><version {evr}/>
<checksum type="sha256" pkgid="YES">{sum}</checksum><size package="10" installed="20"/>
<location href="Packages/{name}-{ver}.{arch}.rpm"/><format>{}{}{}{}{files}</format></package>"#,
            list("provides", &spec.provides),
            list("requires", &spec.requires),
            list("conflicts", &spec.conflicts),
            list("obsoletes", &spec.obsoletes),
            name = spec.name,
            arch = spec.arch,
            evr = evr_attributes(spec.evr),
            ver = spec.evr.replace(':', "_"),
            sum = "ab".repeat(32),
        );
    }
    xml.push_str("</metadata>");
    xml
}

/// Builds a universe of one repository with priority 500.
fn universe(specs: &[Spec]) -> RpmUniverse {
    universe_of(&[(specs, 500)])
}

fn universe_of(repositories: &[(&[Spec], i32)]) -> RpmUniverse {
    let mut candidates = Vec::new();
    for (number, (specs, priority)) in repositories.iter().enumerate() {
        let packages = parse_primary(primary(specs).as_bytes(), "primary.xml").unwrap();
        candidates.extend(packages.into_iter().map(|package| RpmCandidate {
            package,
            repository: format!("repo{number}"),
            priority: *priority,
        }));
    }
    RpmUniverse::new(candidates)
}

fn request(names: &[&str]) -> RpmSolveRequest {
    RpmSolveRequest {
        requests: names.iter().map(|&name| name.to_owned()).collect(),
        essential: Vec::new(),
    }
}

/// Returns the chosen packages as `name-evr.arch`.
fn solved(universe: &RpmUniverse, names: &[&str]) -> Vec<String> {
    let resolution = solve(universe, &request(names)).unwrap();
    resolution
        .packages
        .iter()
        .map(|candidate| candidate.label())
        .collect()
}

fn failure(universe: &RpmUniverse, names: &[&str]) -> RpmError {
    solve(universe, &request(names)).unwrap_err()
}

#[test]
fn newest_evr_wins() {
    let universe = universe(&[
        package("tool", "1.0-1"),
        package("tool", "1.0-10"),
        package("tool", "1.0-2"),
    ]);
    assert_eq!(solved(&universe, &["tool"]), ["tool-1.0-10.noarch"]);
}

#[test]
fn epoch_beats_version() {
    let universe = universe(&[
        package("app", "1.0-1").requires("tool >= 1:0.5"),
        package("tool", "9.0-1"),
        package("tool", "1:1.0-1"),
    ]);
    let chosen = solved(&universe, &["app"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "tool-1:1.0-1.noarch"]);
}

#[test]
fn epoch_requirement_rejects_epochless() {
    let universe = universe(&[
        package("app", "1.0-1").requires("tool >= 1:0.5"),
        package("tool", "9.0-1"),
    ]);
    let error = failure(&universe, &["app"]);
    assert!(
        matches!(error, RpmError::MissingDependency { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("tool >= 1:0.5"), "{message}");
    assert!(
        message.contains("provided only by tool-9.0-1.noarch"),
        "{message}"
    );
}

#[test]
fn tilde_sorts_before_release() {
    let prerelease = universe(&[
        package("app", "1.0-1").requires("lib >= 1.0"),
        package("lib", "1.0~rc1-1"),
    ]);
    let error = failure(&prerelease, &["app"]);
    assert!(error.to_string().contains("lib >= 0:1.0"), "{error}");

    let released = universe(&[
        package("app", "1.0-1").requires("lib >= 1.0~rc2"),
        package("lib", "1.0~rc1-1"),
        package("lib", "1.0-1"),
    ]);
    assert_eq!(
        solved(&released, &["app"]),
        ["app-1.0-1.noarch", "lib-1.0-1.noarch"]
    );
}

#[test]
fn versioned_require_picks_older() {
    let universe = universe(&[
        package("app", "1.0-1").requires("lib < 2"),
        package("lib", "2.1-1"),
        package("lib", "1.9-1"),
    ]);
    let chosen = solved(&universe, &["app"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "lib-1.9-1.noarch"]);
}

#[test]
fn unversioned_provide_satisfies_versioned() {
    let universe = universe(&[
        package("app", "1.0-1").requires("webserver >= 2"),
        package("httpd", "1.0-1").provides("webserver"),
    ]);
    let chosen = solved(&universe, &["app"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "httpd-1.0-1.noarch"]);
}

#[test]
fn versioned_provide_is_compared() {
    let universe = universe(&[
        package("app", "1.0-1").requires("api >= 3"),
        package("old-impl", "5.0-1").provides("api = 2"),
        package("new-impl", "1.0-1").provides("api = 3"),
    ]);
    let chosen = solved(&universe, &["app"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "new-impl-1.0-1.noarch"]);
}

#[test]
fn rich_or_takes_available() {
    let universe = universe(&[
        package("app", "1.0-1").requires("(a or b)"),
        package("b", "1.0-1"),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    let names: Vec<&str> = resolution
        .packages
        .iter()
        .map(|candidate| candidate.package.name.as_str())
        .collect();
    assert_eq!(names, ["app", "b"]);
    assert_eq!(resolution.edges.len(), 1);
    assert_eq!(resolution.edges[0].requirement, "(a or b)");
}

#[test]
fn rich_or_prefers_first() {
    let universe = universe(&[
        package("app", "1.0-1").requires("(a or b)"),
        package("a", "1.0-1"),
        package("b", "1.0-1"),
    ]);
    assert_eq!(
        solved(&universe, &["app"]),
        ["a-1.0-1.noarch", "app-1.0-1.noarch"]
    );
}

#[test]
fn nested_rich_and_inside_or() {
    let universe = universe(&[
        package("app", "1.0-1").requires("(a or (b and c >= 2))"),
        package("b", "1.0-1"),
        package("c", "2.0-1"),
    ]);
    assert_eq!(
        solved(&universe, &["app"]),
        ["app-1.0-1.noarch", "b-1.0-1.noarch", "c-2.0-1.noarch"]
    );
}

#[test]
fn rich_or_with_nothing_fails() {
    let universe = universe(&[package("app", "1.0-1").requires("(a or b)")]);
    let message = failure(&universe, &["app"]).to_string();
    assert!(message.contains("nothing provides `(a or b)`"), "{message}");
}

#[test]
fn unsupported_rich_is_reported() {
    let universe = universe(&[
        package("app", "1.0-1").requires("(a if b)"),
        package("a", "1.0-1"),
    ]);
    let message = failure(&universe, &["app"]).to_string();
    assert!(message.contains("(a if b)"), "{message}");
    assert!(message.contains("`if`"), "{message}");
}

#[test]
fn file_dependency_uses_primary_files() {
    let universe = universe(&[
        package("app", "1.0-1").requires("/usr/bin/foo"),
        package("foo-tools", "1.0-1").file("/usr/bin/foo"),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.packages.len(), 2);
    let edge = &resolution.edges[0];
    assert_eq!(edge.provided.as_deref(), Some("/usr/bin/foo"));
    assert!(resolution.to_dot().contains("[via /usr/bin/foo]"));
}

#[test]
fn missing_file_names_file_lists() {
    let universe = universe(&[package("app", "1.0-1").requires("/usr/lib/libx.so.1")]);
    let message = failure(&universe, &["app"]).to_string();
    assert!(message.contains("/usr/lib/libx.so.1"), "{message}");
    assert!(
        message.contains("in primary.xml or filelists.xml"),
        "{message}"
    );
}

#[test]
fn unknown_files_follow_reachable_packages() {
    let universe = universe(&[
        package("app", "1.0-1").requires("(lib or /opt/alt/lib.so)"),
        package("lib", "1.0-1").requires("/usr/share/lib/data"),
        package("unrelated", "1.0-1").requires("/usr/share/other/data"),
        package("tools", "1.0-1").file("/usr/bin/tool"),
        package("user", "1.0-1").requires("/usr/bin/tool"),
    ]);
    let unknown = oic_rpm::unknown_file_requirements(&universe, &request(&["app", "user"]));
    let unknown: Vec<&str> = unknown.iter().map(String::as_str).collect();
    assert_eq!(unknown, ["/opt/alt/lib.so", "/usr/share/lib/data"]);
}

#[test]
fn added_file_satisfies_requirement() {
    let mut universe = universe(&[
        package("app", "1.0-1").requires("/usr/share/foo/data.txt"),
        package("foo-data", "1.0-1"),
    ]);
    assert!(universe.add_file(1, "/usr/share/foo/data.txt"));
    assert!(!universe.add_file(1, "/usr/share/foo/data.txt"));
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.packages.len(), 2);
    let edge = &resolution.edges[0];
    assert_eq!(edge.provided.as_deref(), Some("/usr/share/foo/data.txt"));
}

#[test]
fn requested_file_path_resolves() {
    let universe = universe(&[package("foo-tools", "1.0-1").file("/usr/bin/foo")]);
    assert_eq!(
        solved(&universe, &["/usr/bin/foo"]),
        ["foo-tools-1.0-1.noarch"]
    );
}

#[test]
fn conflict_picks_other_provider() {
    let universe = universe(&[
        package("app", "1.0-1")
            .requires("mta")
            .conflicts("sendmail"),
        package("sendmail", "8.0-1").provides("mta"),
        package("postfix", "3.0-1").provides("mta"),
    ]);
    let chosen = solved(&universe, &["app"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "postfix-3.0-1.noarch"]);
}

#[test]
fn conflict_with_request_fails() {
    let universe = universe(&[
        package("app", "1.0-1").conflicts("other < 2"),
        package("other", "1.5-1"),
    ]);
    let error = failure(&universe, &["app", "other"]);
    assert!(matches!(error, RpmError::Unsolvable { .. }), "{error}");
    assert!(error.to_string().contains("other"), "{error}");
}

#[test]
fn conflict_version_range_applies() {
    let universe = universe(&[
        package("app", "1.0-1").conflicts("other < 2"),
        package("other", "1.5-1"),
        package("other", "2.0-1"),
    ]);
    let chosen = solved(&universe, &["app", "other"]);
    assert_eq!(chosen, ["app-1.0-1.noarch", "other-2.0-1.noarch"]);
}

#[test]
fn self_conflict_is_ignored() {
    let universe = universe(&[package("mta-a", "1.0-1").provides("mta").conflicts("mta")]);
    assert_eq!(solved(&universe, &["mta-a"]), ["mta-a-1.0-1.noarch"]);
}

#[test]
fn obsoleted_package_is_excluded() {
    let universe = universe(&[
        package("new", "2.0-1").obsoletes("old < 2"),
        package("old", "1.0-1"),
    ]);
    let error = failure(&universe, &["new", "old"]);
    assert!(matches!(error, RpmError::Unsolvable { .. }), "{error}");
}

#[test]
fn obsoleter_replaces_requested_name() {
    let universe = universe(&[
        package("app", "1.0-1").requires("old"),
        package("new", "2.0-1")
            .obsoletes("old < 2")
            .provides("old = 2.0"),
        package("old", "1.0-1"),
    ]);
    assert_eq!(
        solved(&universe, &["app"]),
        ["app-1.0-1.noarch", "new-2.0-1.noarch"]
    );
}

#[test]
fn obsoletes_ignore_provides() {
    // rpm matches Obsoletes against package names: `other` provides `old` but is not hit.
    let universe = universe(&[
        package("new", "2.0-1").obsoletes("old"),
        package("other", "1.0-1").provides("old"),
    ]);
    let chosen = solved(&universe, &["new", "other"]);
    assert_eq!(chosen, ["new-2.0-1.noarch", "other-1.0-1.noarch"]);
}

#[test]
fn priority_beats_version() {
    let low = [package("tool", "9.0-1")];
    let high = [package("tool", "1.0-1")];
    let universe = universe_of(&[(&low, 100), (&high, 900)]);
    assert_eq!(solved(&universe, &["tool"]), ["tool-1.0-1.noarch"]);
}

#[test]
fn negative_priority_is_never_installed() {
    let never = [package("tool", "9.0-1")];
    let universe = universe_of(&[(&never, -1)]);
    let error = failure(&universe, &["tool"]);
    assert!(matches!(error, RpmError::NotFound { .. }), "{error}");
}

#[test]
fn missing_dependency_names_chain() {
    let universe = universe(&[
        package("app", "1.0-1").requires("libmid"),
        package("libmid", "2.0-1").requires("libbottom >= 3"),
        package("libbottom", "1.0-1"),
    ]);
    let error = failure(&universe, &["app"]);
    let RpmError::MissingDependency {
        package,
        dependency,
        chain,
        ..
    } = &error
    else {
        panic!("expected a missing dependency: {error}");
    };
    assert_eq!(package, "libmid-2.0-1.noarch");
    // primary.xml gives every entry an epoch, so the entry prints with `0:`.
    assert_eq!(dependency, "libbottom >= 0:3");
    assert_eq!(
        chain,
        "app-1.0-1.noarch -> libmid-2.0-1.noarch -> libbottom >= 0:3"
    );
}

#[test]
fn unknown_request_is_not_found() {
    let universe = universe(&[package("app", "1.0-1")]);
    let error = failure(&universe, &["nope"]);
    assert!(error.to_string().contains("`nope`"), "{error}");
}

#[test]
fn versioned_request_and_glob() {
    let universe = universe(&[
        package("kernel-core", "6.6-1"),
        package("kernel-core", "6.1-1"),
        package("kernel-tools", "6.6-1"),
    ]);
    assert_eq!(
        solved(&universe, &["kernel-core < 6.5"]),
        ["kernel-core-6.1-1.noarch"]
    );
    assert_eq!(
        solved(&universe, &["kernel-c*"]),
        ["kernel-core-6.6-1.noarch"]
    );
}

#[test]
fn essential_unknown_names_skipped() {
    let universe = universe(&[package("bash", "5.2-1")]);
    let request = RpmSolveRequest {
        requests: Vec::new(),
        essential: vec!["bash".to_owned(), "filesystem".to_owned()],
    };
    let resolution = solve(&universe, &request).unwrap();
    assert_eq!(resolution.packages.len(), 1);
}

#[test]
fn dot_labels_provided_edges() {
    let mut app = package("app", "1.0-1");
    app.requires.push("shell");
    let universe = universe(&[app, package("bash", "5.2-1").provides("shell")]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    let dot = resolution.to_dot();
    assert!(dot.starts_with("digraph packages {"), "{dot}");
    assert!(
        dot.contains(r#""app" -> "bash" [label="shell [via shell]", style=solid];"#),
        "{dot}"
    );
}
