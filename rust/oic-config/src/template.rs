//! The image template model and its reader.
//!
//! Every field is optional at this level so that a user template can be merged over a
//! provider's default template; [`crate::validate`] then checks the merged result as a whole.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::diag::{Diagnostics, Loc};
use crate::read::{MapReader, Spanned};
use crate::yaml::{self, Node};

type Text = Option<Spanned<String>>;

/// An image template, as read from one file or merged from several.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageTemplate {
    /// The folder relative paths in the template are resolved against.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    #[serde(skip)]
    pub loc: Option<Loc>,
    pub image: Image,
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    pub system_config: SystemConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub package_repositories: Vec<PackageRepository>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Image {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Text,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dist: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_type: Text,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Text,
    pub artifacts: Vec<Artifact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_table_type: Text,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Text,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Partition {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Text,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Text,
    #[serde(rename = "typeUUID", skip_serializing_if = "Option::is_none")]
    pub type_uuid: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_label: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_point: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_options: Text,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Text,
    pub packages: Vec<Spanned<String>>,
    pub kernel: Kernel,
    pub bootloader: Bootloader,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<AdditionalFile>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<Configuration>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Kernel {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootloader {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_type: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Text,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Spanned<i64>>,
    /// A crypt(3) hash, or plain text when `hash_algo` names the algorithm to hash it with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_algo: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Spanned<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo: Option<Spanned<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Text,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdditionalFile {
    #[serde(skip)]
    pub loc: Loc,
    /// The folder `local` is relative to: that of the template that named the file.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Text,
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub destination: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Text,
}

#[derive(Debug, Clone, Serialize)]
pub struct Configuration {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Text,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRepository {
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codename: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Text,
    /// A key reference (path, `file://` or URL), or `[trusted=yes]` to skip signature checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkey: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Spanned<i64>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_packages: Vec<Spanned<String>>,
}

const TOP_KEYS: &[&str] = &[
    "image",
    "target",
    "disk",
    "systemConfig",
    "packageRepositories",
    "metadata",
];

/// Reads a template from bytes. `source` labels the file in messages; `base_dir` is where
/// relative paths in it point.
pub fn read_template(
    bytes: &[u8],
    source: &Arc<str>,
    base_dir: Option<PathBuf>,
) -> Result<ImageTemplate, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let Some(root) = yaml::parse_bytes(bytes, source)? else {
        let message = "Template is empty: it needs at least `target` to choose a provider";
        diagnostics.push(&Loc::new(source, 1, 1), "", message);
        return Err(diagnostics);
    };

    let template = template_from_node(&root, base_dir, &mut diagnostics);
    if diagnostics.is_empty() {
        Ok(template)
    } else {
        Err(diagnostics)
    }
}

/// Reads a template as far as possible: what could be read, and the problems found on the way.
/// Returns `None` only when the file is not YAML at all or contains no document.
pub fn read_template_partial(
    bytes: &[u8],
    source: &Arc<str>,
    base_dir: Option<PathBuf>,
) -> (Option<ImageTemplate>, Diagnostics) {
    let root = match yaml::parse_bytes(bytes, source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            let mut diagnostics = Diagnostics::default();
            let message = "Template is empty: it needs at least `target` to choose a provider";
            diagnostics.push(&Loc::new(source, 1, 1), "", message);
            return (None, diagnostics);
        }
        Err(diagnostics) => return (None, diagnostics),
    };
    let mut diagnostics = Diagnostics::default();
    let template = template_from_node(&root, base_dir, &mut diagnostics);
    (Some(template), diagnostics)
}

fn template_from_node(
    root: &Node,
    base_dir: Option<PathBuf>,
    diagnostics: &mut Diagnostics,
) -> ImageTemplate {
    let mut template = ImageTemplate {
        base_dir,
        loc: Some(root.loc.clone()),
        ..Default::default()
    };
    let Some(map) = MapReader::open(root, "", TOP_KEYS, diagnostics) else {
        return template;
    };

    if let Some(node) = map.get("image") {
        template.image = read_image(node, diagnostics);
    }
    if let Some(node) = map.get("target") {
        template.target = read_target(node, diagnostics);
    }
    template.disk = map
        .get("disk")
        .and_then(|node| read_disk(node, diagnostics));
    if let Some(node) = map.get("systemConfig") {
        template.system_config = read_system_config(node, template.base_dir.as_ref(), diagnostics);
    }
    let base_dir = template.base_dir.clone();
    template.package_repositories =
        map.list("packageRepositories", diagnostics, |node, path, d| {
            read_repository(node, path, base_dir.clone(), d)
        });
    if let Some(node) = map.get("metadata") {
        MapReader::open(
            node,
            "metadata",
            &["description", "use_cases", "keywords"],
            diagnostics,
        );
    }
    template
}

fn read_image(node: &Node, diagnostics: &mut Diagnostics) -> Image {
    let Some(map) = MapReader::open(node, "image", &["name", "version"], diagnostics) else {
        return Image::default();
    };
    Image {
        name: map.string("name", diagnostics),
        version: map.string("version", diagnostics),
    }
}

fn read_target(node: &Node, diagnostics: &mut Diagnostics) -> Target {
    let keys = ["os", "dist", "arch", "imageType"];
    let Some(map) = MapReader::open(node, "target", &keys, diagnostics) else {
        return Target::default();
    };
    Target {
        os: map.string("os", diagnostics),
        dist: map.string("dist", diagnostics),
        arch: map.string("arch", diagnostics),
        image_type: map.string("imageType", diagnostics),
    }
}

fn read_disk(node: &Node, diagnostics: &mut Diagnostics) -> Option<Disk> {
    let keys = [
        "name",
        "artifacts",
        "size",
        "partitionTableType",
        "partitions",
    ];
    let map = MapReader::open(node, "disk", &keys, diagnostics)?;
    Some(Disk {
        loc: node.loc.clone(),
        name: map.string("name", diagnostics),
        artifacts: map.list("artifacts", diagnostics, read_artifact),
        size: map.string("size", diagnostics),
        partition_table_type: map.string("partitionTableType", diagnostics),
        partitions: map.list("partitions", diagnostics, read_partition),
    })
}

fn read_artifact(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<Artifact> {
    let map = MapReader::open(node, path, &["type", "compression", "name"], diagnostics)?;
    Some(Artifact {
        loc: node.loc.clone(),
        kind: map.string("type", diagnostics),
        compression: map.string("compression", diagnostics),
    })
}

fn read_partition(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<Partition> {
    let keys = [
        "id",
        "type",
        "typeUUID",
        "flags",
        "start",
        "end",
        "fsType",
        "fsLabel",
        "mountPoint",
        "mountOptions",
    ];
    let map = MapReader::open(node, path, &keys, diagnostics)?;
    Some(Partition {
        loc: node.loc.clone(),
        id: map.string("id", diagnostics),
        kind: map.string("type", diagnostics),
        type_uuid: map.string("typeUUID", diagnostics),
        flags: map.strings("flags", diagnostics),
        start: map.string("start", diagnostics),
        end: map.string("end", diagnostics),
        fs_type: map.string("fsType", diagnostics),
        fs_label: map.string("fsLabel", diagnostics),
        mount_point: map.string("mountPoint", diagnostics),
        mount_options: map.string("mountOptions", diagnostics),
    })
}

fn read_system_config(
    node: &Node,
    base_dir: Option<&PathBuf>,
    diagnostics: &mut Diagnostics,
) -> SystemConfig {
    let keys = [
        "name",
        "description",
        "hostname",
        "packages",
        "kernel",
        "bootloader",
        "users",
        "additionalFiles",
        "configurations",
    ];
    let Some(map) = MapReader::open(node, "systemConfig", &keys, diagnostics) else {
        return SystemConfig::default();
    };
    SystemConfig {
        name: map.string("name", diagnostics),
        description: map.string("description", diagnostics),
        hostname: map.string("hostname", diagnostics),
        packages: map.strings("packages", diagnostics),
        kernel: map
            .get("kernel")
            .map(|n| read_kernel(n, diagnostics))
            .unwrap_or_default(),
        bootloader: map
            .get("bootloader")
            .map(|n| read_bootloader(n, diagnostics))
            .unwrap_or_default(),
        users: map.list("users", diagnostics, read_user),
        additional_files: map.list("additionalFiles", diagnostics, |node, path, d| {
            read_additional_file(node, path, base_dir.cloned(), d)
        }),
        configurations: map.list("configurations", diagnostics, read_configuration),
    }
}

fn read_kernel(node: &Node, diagnostics: &mut Diagnostics) -> Kernel {
    let path = "systemConfig.kernel";
    let Some(map) = MapReader::open(node, path, &["version", "cmdline", "packages"], diagnostics)
    else {
        return Kernel::default();
    };
    Kernel {
        version: map.string("version", diagnostics),
        cmdline: map.string("cmdline", diagnostics),
        packages: map.strings("packages", diagnostics),
    }
}

fn read_bootloader(node: &Node, diagnostics: &mut Diagnostics) -> Bootloader {
    let path = "systemConfig.bootloader";
    let Some(map) = MapReader::open(node, path, &["bootType", "provider"], diagnostics) else {
        return Bootloader::default();
    };
    Bootloader {
        boot_type: map.string("bootType", diagnostics),
        provider: map.string("provider", diagnostics),
    }
}

fn read_user(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<User> {
    let keys = [
        "name", "uid", "password", "hashAlgo", "groups", "sudo", "shell", "home",
    ];
    let map = MapReader::open(node, path, &keys, diagnostics)?;
    Some(User {
        loc: node.loc.clone(),
        name: map.string("name", diagnostics),
        uid: map.integer("uid", diagnostics),
        password: map.string("password", diagnostics),
        hash_algo: map.string("hashAlgo", diagnostics),
        groups: map.strings("groups", diagnostics),
        sudo: map.boolean("sudo", diagnostics),
        shell: map.string("shell", diagnostics),
        home: map.string("home", diagnostics),
    })
}

fn read_additional_file(
    node: &Node,
    path: &str,
    base_dir: Option<PathBuf>,
    diagnostics: &mut Diagnostics,
) -> Option<AdditionalFile> {
    let map = MapReader::open(node, path, &["local", "final", "permissions"], diagnostics)?;
    Some(AdditionalFile {
        loc: node.loc.clone(),
        base_dir,
        local: map.string("local", diagnostics),
        destination: map.string("final", diagnostics),
        permissions: map.string("permissions", diagnostics),
    })
}

fn read_configuration(
    node: &Node,
    path: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Configuration> {
    let map = MapReader::open(node, path, &["cmd"], diagnostics)?;
    Some(Configuration {
        loc: node.loc.clone(),
        cmd: map.string("cmd", diagnostics),
    })
}

fn read_repository(
    node: &Node,
    path: &str,
    base_dir: Option<PathBuf>,
    diagnostics: &mut Diagnostics,
) -> Option<PackageRepository> {
    let keys = [
        "codename",
        "url",
        "path",
        "pkey",
        "component",
        "priority",
        "allowPackages",
    ];
    let map = MapReader::open(node, path, &keys, diagnostics)?;
    Some(PackageRepository {
        loc: node.loc.clone(),
        base_dir,
        codename: map.string("codename", diagnostics),
        url: map.string("url", diagnostics),
        path: map.string("path", diagnostics),
        pkey: map.string("pkey", diagnostics),
        component: map.string("component", diagnostics),
        priority: map.integer("priority", diagnostics),
        allow_packages: map.strings("allowPackages", diagnostics),
    })
}

impl PackageRepository {
    /// Converts the template entry into a repository definition. `codename` names the suite,
    /// `component` defaults to `main`, and `pkey: "[trusted=yes]"` turns signature checks off.
    pub fn to_repository(&self) -> crate::provider::Repository {
        let text = |value: &Text| value.as_ref().map(|v| v.value.clone());
        let codename = text(&self.codename).unwrap_or_default();
        let trusted = self
            .pkey
            .as_ref()
            .is_some_and(|key| key.value.trim() == "[trusted=yes]");
        let keys = match (&self.pkey, trusted) {
            (Some(key), false) => vec![crate::provider::key_ref(
                &key.value,
                self.base_dir.as_deref(),
            )],
            _ => Vec::new(),
        };
        crate::provider::Repository {
            name: codename.clone(),
            url: text(&self.url).map(|url| url.trim_end_matches('/').to_owned()),
            path: text(&self.path)
                .map(|path| crate::provider::resolve(self.base_dir.as_deref(), &path)),
            suite: Some(codename),
            components: vec![text(&self.component).unwrap_or_else(|| "main".to_owned())],
            keys,
            priority: self.priority.as_ref().map_or(500, |p| p.value),
            gpg_check: !trusted,
            allow_packages: self
                .allow_packages
                .iter()
                .map(|p| p.value.clone())
                .collect(),
        }
    }
}
