//! Solver behaviour on small universes built in code.

use oic_deb::{parse_relation_list, parse_relations, MultiArch, Package, Version};
use oic_solve::{
    solve, DependencyKind, Request, Resolution, SolveError, SolveOptions, SolveRequest, Universe,
    UniversePackage,
};

/// Builds a package stanza field by field.
struct Stanza(Package);

impl Stanza {
    fn new(name: &str, version: &str) -> Self {
        Self(Package::new(
            name,
            Version::parse(version).unwrap(),
            "amd64",
        ))
    }

    fn arch(mut self, arch: &str) -> Self {
        self.0.architecture = arch.into();
        self
    }

    fn multi_arch(mut self, multi_arch: MultiArch) -> Self {
        self.0.multi_arch = multi_arch;
        self
    }

    fn depends(mut self, text: &str) -> Self {
        self.0.depends = parse_relations(text).unwrap();
        self
    }

    fn pre_depends(mut self, text: &str) -> Self {
        self.0.pre_depends = parse_relations(text).unwrap();
        self
    }

    fn recommends(mut self, text: &str) -> Self {
        self.0.recommends = parse_relations(text).unwrap();
        self
    }

    fn conflicts(mut self, text: &str) -> Self {
        self.0.conflicts = parse_relation_list(text).unwrap();
        self
    }

    fn breaks(mut self, text: &str) -> Self {
        self.0.breaks = parse_relation_list(text).unwrap();
        self
    }

    fn provides(mut self, text: &str) -> Self {
        self.0.provides = parse_relation_list(text).unwrap();
        self
    }

    fn replaces(mut self, text: &str) -> Self {
        self.0.replaces = parse_relation_list(text).unwrap();
        self
    }

    /// Places the package in the base repository at the default pin priority.
    fn base(self) -> UniversePackage {
        UniversePackage::new(self.0, "base", 500)
    }

    fn repo(self, repository: &str, pin_priority: i32) -> UniversePackage {
        UniversePackage::new(self.0, repository, pin_priority)
    }
}

fn universe(packages: Vec<UniversePackage>) -> Universe {
    Universe::new(packages, "amd64")
}

fn request(names: &[&str]) -> SolveRequest {
    SolveRequest {
        requests: names
            .iter()
            .map(|name| Request::parse(name).unwrap())
            .collect(),
        ..SolveRequest::default()
    }
}

fn version_of(resolution: &Resolution<'_>, name: &str) -> String {
    resolution
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in {:?}", resolution.names()))
        .package
        .version
        .to_string()
}

fn unsatisfiable(result: Result<Resolution<'_>, SolveError>) -> String {
    match result {
        Err(SolveError::Unsatisfiable { explanation }) => explanation,
        Err(other) => panic!("expected an unsatisfiable request, got {other}"),
        Ok(resolution) => panic!("expected an error, got {:?}", resolution.names()),
    }
}

#[test]
fn installed_alternative_satisfies_group() {
    let universe = universe(vec![
        Stanza::new("app-x", "1.0").depends("lib-a | lib-b").base(),
        Stanza::new("lib-a", "1.0").base(),
        Stanza::new("lib-b", "1.0").base(),
    ]);
    let resolution = solve(&universe, &request(&["lib-b", "app-x"])).unwrap();
    assert_eq!(resolution.names(), ["app-x", "lib-b"]);
}

#[test]
fn first_alternative_preferred() {
    let universe = universe(vec![
        Stanza::new("app-x", "1.0").depends("lib-a | lib-b").base(),
        Stanza::new("lib-a", "1.0").base(),
        Stanza::new("lib-b", "1.0").base(),
    ]);
    let resolution = solve(&universe, &request(&["app-x"])).unwrap();
    assert_eq!(resolution.names(), ["app-x", "lib-a"]);
}

#[test]
fn breaks_selects_newer_alternative() {
    let universe = universe(vec![
        Stanza::new("newlib", "2.0").breaks("oldlib (<< 2)").base(),
        Stanza::new("app", "1.0")
            .depends("oldlib | oldlib-compat")
            .base(),
        Stanza::new("oldlib", "1.5").base(),
        Stanza::new("oldlib", "2.1").base(),
    ]);
    let resolution = solve(&universe, &request(&["newlib", "app"])).unwrap();
    assert_eq!(version_of(&resolution, "oldlib"), "2.1");
    assert_eq!(resolution.names(), ["app", "newlib", "oldlib"]);
}

#[test]
fn breaks_avoids_newest_when_needed() {
    // The newest oldlib is the one that newlib breaks, so the solver falls back to 1.5.
    let universe = universe(vec![
        Stanza::new("newlib", "2.0").breaks("oldlib (>= 2)").base(),
        Stanza::new("app", "1.0").depends("oldlib").base(),
        Stanza::new("oldlib", "1.5").base(),
        Stanza::new("oldlib", "2.1").base(),
    ]);
    let resolution = solve(&universe, &request(&["newlib", "app"])).unwrap();
    assert_eq!(version_of(&resolution, "oldlib"), "1.5");
}

#[test]
fn local_pin_beats_newer_base() {
    let universe = universe(vec![
        Stanza::new("foo", "1.2").base(),
        Stanza::new("foo", "1.0").repo("local", 1001),
    ]);
    let resolution = solve(&universe, &request(&["foo"])).unwrap();
    let foo = resolution.get("foo").unwrap();
    assert_eq!(foo.package.version.to_string(), "1.0");
    assert_eq!(&*foo.repository, "local");
}

#[test]
fn negative_pin_never_installed() {
    let universe = universe(vec![
        Stanza::new("foo", "2.0").repo("blocked", -1),
        Stanza::new("foo", "1.0").base(),
    ]);
    let resolution = solve(&universe, &request(&["foo"])).unwrap();
    assert_eq!(version_of(&resolution, "foo"), "1.0");

    let only_blocked = self::universe(vec![Stanza::new("foo", "2.0").repo("blocked", -1)]);
    let explanation = unsatisfiable(solve(&only_blocked, &request(&["foo"])));
    assert_eq!(
        explanation,
        "foo is requested\n  foo 2.0 is never installed, because the pin priority of repository \
         blocked is -1"
    );
}

#[test]
fn glob_picks_newest_kernel_revision() {
    let universe = universe(vec![
        Stanza::new("linux-image-6.1.0-47-amd64", "6.1.170-1").base(),
        Stanza::new("linux-image-6.1.0-48-amd64", "6.1.171-1").base(),
        Stanza::new("linux-image-amd64", "6.1.171-1").base(),
    ]);
    let resolution = solve(&universe, &request(&["linux-image-*-amd64"])).unwrap();
    assert_eq!(resolution.names(), ["linux-image-6.1.0-48-amd64"]);
}

#[test]
fn glob_rejects_several_flavours() {
    let universe = universe(vec![
        Stanza::new("linux-image-6.1.0-48-amd64", "6.1.171-1").base(),
        Stanza::new("linux-image-6.1.0-48-cloud-amd64", "6.1.171-1").base(),
        Stanza::new("linux-image-6.1.0-47-rt-amd64", "6.1.170-1").base(),
        Stanza::new("linux-image-6.1.0-48-rt-amd64", "6.1.171-1").base(),
    ]);
    let error = solve(&universe, &request(&["linux-image-*-amd64"])).unwrap_err();
    assert_eq!(
        error,
        SolveError::SeveralFlavours {
            pattern: "linux-image-*-amd64".to_owned(),
            flavours: vec![
                "linux-image-amd64".to_owned(),
                "linux-image-cloud-amd64".to_owned(),
                "linux-image-rt-amd64".to_owned(),
            ],
        }
    );

    let mut allowed = request(&["linux-image-*-amd64"]);
    allowed.options.allow_multiple_kernel_flavours = true;
    let resolution = solve(&universe, &allowed).unwrap();
    assert_eq!(
        resolution.names(),
        [
            "linux-image-6.1.0-48-amd64",
            "linux-image-6.1.0-48-cloud-amd64",
            "linux-image-6.1.0-48-rt-amd64",
        ]
    );
}

#[test]
fn glob_without_match_fails() {
    let universe = universe(vec![Stanza::new("foo", "1.0").base()]);
    let error = solve(&universe, &request(&["linux-image-*"])).unwrap_err();
    assert_eq!(
        error,
        SolveError::NoMatch {
            pattern: "linux-image-*".to_owned()
        }
    );
}

#[test]
fn unknown_request_fails() {
    let universe = universe(vec![Stanza::new("foo", "1.0").base()]);
    let error = solve(&universe, &request(&["bar"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Package `bar` was requested but no repository has it or a package providing it"
    );
}

#[test]
fn versioned_provides_satisfy() {
    let universe = universe(vec![
        Stanza::new("app", "1.0").depends("foo (>= 1)").base(),
        Stanza::new("foo-impl", "3.0")
            .provides("foo (= 1.2)")
            .base(),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.names(), ["app", "foo-impl"]);
    let edge = &resolution.edges[0];
    assert_eq!(edge.provided.as_deref(), Some("foo"));
    assert_eq!(edge.relation, "foo (>= 1)");
}

#[test]
fn unversioned_provides_never_satisfy_versioned() {
    let universe = universe(vec![
        Stanza::new("app", "1.0").depends("foo (>= 1)").base(),
        Stanza::new("foo-impl", "3.0").provides("foo").base(),
    ]);
    let explanation = unsatisfiable(solve(&universe, &request(&["app"])));
    assert_eq!(
        explanation,
        "app is requested\n  app 1.0 depends on foo (>= 1), but foo is a virtual package, and no \
         provider satisfies foo (>= 1): foo-impl 3.0 provide it"
    );

    let unversioned = self::universe(vec![
        Stanza::new("app", "1.0").depends("foo").base(),
        Stanza::new("foo-impl", "3.0").provides("foo").base(),
    ]);
    let resolution = solve(&unversioned, &request(&["app"])).unwrap();
    assert_eq!(resolution.names(), ["app", "foo-impl"]);
}

#[test]
fn virtual_providers_coexist() {
    // Two providers of one virtual name may both be installed: the one-version-per-name rule
    // applies to real names only.
    let universe = universe(vec![
        Stanza::new("a", "1.0").depends("editor").base(),
        Stanza::new("vim", "9.0").provides("editor").base(),
        Stanza::new("nano", "7.2").provides("editor").base(),
    ]);
    let resolution = solve(&universe, &request(&["a", "vim", "nano"])).unwrap();
    assert_eq!(resolution.names(), ["a", "nano", "vim"]);
}

#[test]
fn conflicting_mta_installs_alone() {
    let mta = |name: &str| {
        Stanza::new(name, "1.0")
            .provides("mail-transport-agent")
            .conflicts("mail-transport-agent")
            .replaces("mail-transport-agent")
    };
    let universe = universe(vec![
        Stanza::new("mailer", "1.0")
            .depends("exim4 | mail-transport-agent")
            .base(),
        mta("postfix").base(),
        mta("exim4").base(),
    ]);

    let resolution = solve(&universe, &request(&["postfix", "mailer"])).unwrap();
    assert_eq!(resolution.names(), ["mailer", "postfix"]);
    let edge = &resolution.edges[0];
    assert_eq!(resolution.packages[edge.to].package.name, "postfix");
    assert_eq!(edge.provided.as_deref(), Some("mail-transport-agent"));

    let explanation = unsatisfiable(solve(&universe, &request(&["postfix", "exim4"])));
    assert!(
        explanation
            .contains("postfix 1.0 conflicts with exim4 1.0 (Conflicts: mail-transport-agent)")
            || explanation
                .contains("exim4 1.0 conflicts with postfix 1.0 (Conflicts: mail-transport-agent)"),
        "{explanation}"
    );
}

#[test]
fn pre_depends_are_required() {
    let universe = universe(vec![
        Stanza::new("app", "1.0")
            .pre_depends("libc6 (>= 2.36)")
            .base(),
        Stanza::new("libc6", "2.36-9").base(),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.names(), ["app", "libc6"]);
    assert_eq!(resolution.edges[0].kind, DependencyKind::PreDepends);
}

#[test]
fn any_needs_multi_arch_allowed() {
    let allowed = universe(vec![
        Stanza::new("script", "1.0")
            .arch("all")
            .depends("perl:any")
            .base(),
        Stanza::new("perl", "5.36")
            .multi_arch(MultiArch::Allowed)
            .base(),
    ]);
    let resolution = solve(&allowed, &request(&["script"])).unwrap();
    assert_eq!(resolution.names(), ["perl", "script"]);

    let not_allowed = universe(vec![
        Stanza::new("script", "1.0")
            .arch("all")
            .depends("perl:any")
            .base(),
        Stanza::new("perl", "5.36")
            .multi_arch(MultiArch::Foreign)
            .base(),
    ]);
    let explanation = unsatisfiable(solve(&not_allowed, &request(&["script"])));
    assert_eq!(
        explanation,
        "script is requested\n  script 1.0 depends on perl:any, but only perl 5.36 is available, \
         and `:any` needs Multi-Arch: allowed"
    );
}

#[test]
fn native_and_named_arch_qualifiers() {
    let universe = universe(vec![
        Stanza::new("app", "1.0")
            .depends("libfoo:native, data:amd64")
            .base(),
        Stanza::new("libfoo", "1.0").base(),
        Stanza::new("data", "1.0").arch("all").base(),
        Stanza::new("libfoo", "2.0").arch("arm64").base(),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.names(), ["app", "data", "libfoo"]);
    assert_eq!(version_of(&resolution, "libfoo"), "1.0");

    let foreign = self::universe(vec![
        Stanza::new("app", "1.0").depends("libfoo:arm64").base(),
        Stanza::new("libfoo", "1.0").base(),
    ]);
    assert!(solve(&foreign, &request(&["app"])).is_err());
}

#[test]
fn foreign_architectures_ignored() {
    let universe = universe(vec![Stanza::new("foo", "1.0").arch("i386").base()]);
    assert_eq!(
        solve(&universe, &request(&["foo"])).unwrap_err(),
        SolveError::NotFound {
            name: "foo".to_owned()
        }
    );
}

#[test]
fn dependency_cycle_resolves() {
    let universe = universe(vec![
        Stanza::new("cyc-a", "1.0").depends("cyc-b").base(),
        Stanza::new("cyc-b", "1.0").pre_depends("cyc-c").base(),
        Stanza::new("cyc-c", "1.0").depends("cyc-a (= 1.0)").base(),
    ]);
    let resolution = solve(&universe, &request(&["cyc-a"])).unwrap();
    assert_eq!(resolution.names(), ["cyc-a", "cyc-b", "cyc-c"]);
    assert_eq!(resolution.edges.len(), 3);
}

#[test]
fn essential_always_installed() {
    let universe = universe(vec![
        Stanza::new("base-files", "12.4").base(),
        Stanza::new("foo", "1.0").base(),
    ]);
    let mut solve_request = request(&["foo"]);
    solve_request.essential = vec!["base-files".to_owned()];
    let resolution = solve(&universe, &solve_request).unwrap();
    assert_eq!(resolution.names(), ["base-files", "foo"]);
}

#[test]
fn recommends_only_when_enabled() {
    let universe = universe(vec![
        Stanza::new("app", "1.0")
            .recommends("docs, broken-extra")
            .base(),
        Stanza::new("docs", "1.0").recommends("more-docs").base(),
        Stanza::new("more-docs", "1.0").base(),
        Stanza::new("broken-extra", "1.0").depends("missing").base(),
    ]);
    let resolution = solve(&universe, &request(&["app"])).unwrap();
    assert_eq!(resolution.names(), ["app"]);

    let mut with_recommends = request(&["app"]);
    with_recommends.options = SolveOptions {
        with_recommends: true,
        ..SolveOptions::default()
    };
    let resolution = solve(&universe, &with_recommends).unwrap();
    assert_eq!(resolution.names(), ["app", "docs", "more-docs"]);
    assert!(resolution
        .edges
        .iter()
        .all(|edge| edge.kind == DependencyKind::Recommends));
}

#[test]
fn missing_version_message() {
    let universe = universe(vec![
        Stanza::new("openssh-server", "1:9.2p1-2")
            .depends("libssl3 (>= 3.0.9)")
            .base(),
        Stanza::new("libssl3", "3.0.2-1").base(),
    ]);
    let explanation = unsatisfiable(solve(&universe, &request(&["openssh-server"])));
    assert_eq!(
        explanation,
        "openssh-server is requested\n  openssh-server 1:9.2p1-2 depends on libssl3 (>= 3.0.9), \
         but only libssl3 3.0.2-1 is available"
    );
}

#[test]
fn broken_alternative_message() {
    let universe = universe(vec![
        Stanza::new("newlib", "2.0").breaks("oldlib (<< 2)").base(),
        Stanza::new("app", "1.0")
            .depends("oldlib | oldlib-compat")
            .base(),
        Stanza::new("oldlib", "1.5").base(),
    ]);
    let explanation = unsatisfiable(solve(&universe, &request(&["newlib", "app"])));
    assert!(
        explanation.contains("app 1.0 depends on oldlib | oldlib-compat"),
        "{explanation}"
    );
    assert!(
        explanation.contains("oldlib 1.5 is broken by newlib 2.0 (Breaks: oldlib (<< 2))"),
        "{explanation}"
    );
    assert!(
        explanation.contains("no package called or providing oldlib-compat is available"),
        "{explanation}"
    );
}

#[test]
fn deep_chain_message() {
    let universe = universe(vec![
        Stanza::new("top", "1.0").depends("middle").base(),
        Stanza::new("middle", "2.0").depends("bottom (>= 3)").base(),
        Stanza::new("bottom", "2.5").base(),
    ]);
    let explanation = unsatisfiable(solve(&universe, &request(&["top"])));
    assert_eq!(
        explanation,
        "top is requested\n  top 1.0 depends on middle\n    middle 2.0 depends on bottom (>= 3), \
         but only bottom 2.5 is available"
    );
}

#[test]
fn dot_output_is_stable() {
    let universe = universe(vec![
        Stanza::new("app-x", "1.0")
            .depends("lib-a | lib-b, mta")
            .base(),
        Stanza::new("lib-a", "1.0").base(),
        Stanza::new("lib-b", "1.0").base(),
        Stanza::new("postfix", "3.7").provides("mta").base(),
    ]);
    let resolution = solve(&universe, &request(&["app-x"])).unwrap();
    assert_eq!(
        resolution.to_dot(),
        "digraph packages {\n  \"app-x\" [label=\"app-x\\n1.0\"];\n  \"lib-a\" [label=\"lib-a\\n1.0\"];\n  \
         \"postfix\" [label=\"postfix\\n3.7\"];\n  \"app-x\" -> \"lib-a\" [label=\"lib-a | lib-b\", style=solid];\n  \
         \"app-x\" -> \"postfix\" [label=\"mta [via mta]\", style=solid];\n}\n"
    );
}
