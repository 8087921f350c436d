//! Merging a user template over a provider's default template.
//!
//! Scalars set by the user win. `systemConfig.packages` and `configurations` are combined,
//! defaults first. `users` merge by name, `additionalFiles` by destination and
//! `packageRepositories` by codename, with the user's entry replacing the default's.
//! `kernel.packages` and `disk` are replaced whole when the user sets them, because two kernels or
//! two partition layouts cannot be combined.

use crate::read::Spanned;
use crate::template::{
    AdditionalFile, Bootloader, Image, ImageTemplate, Kernel, PackageRepository, SystemConfig,
    Target, User,
};

/// Merges `user` over `default`.
pub fn merge(default: ImageTemplate, user: ImageTemplate) -> ImageTemplate {
    ImageTemplate {
        base_dir: user.base_dir,
        loc: user.loc,
        image: Image {
            name: user.image.name.or(default.image.name),
            version: user.image.version.or(default.image.version),
        },
        target: Target {
            os: user.target.os.or(default.target.os),
            dist: user.target.dist.or(default.target.dist),
            arch: user.target.arch.or(default.target.arch),
            image_type: user.target.image_type.or(default.target.image_type),
        },
        disk: user.disk.or(default.disk),
        system_config: merge_system_config(default.system_config, user.system_config),
        package_repositories: merge_by_key(
            default.package_repositories,
            user.package_repositories,
            |repository: &PackageRepository| text_key(repository.codename.as_ref()),
        ),
    }
}

fn merge_system_config(default: SystemConfig, user: SystemConfig) -> SystemConfig {
    let mut configurations = default.configurations;
    configurations.extend(user.configurations);
    SystemConfig {
        name: user.name.or(default.name),
        description: user.description.or(default.description),
        hostname: user.hostname.or(default.hostname),
        packages: combine_unique(default.packages, user.packages),
        kernel: Kernel {
            version: user.kernel.version.or(default.kernel.version),
            cmdline: user.kernel.cmdline.or(default.kernel.cmdline),
            packages: if user.kernel.packages.is_empty() {
                default.kernel.packages
            } else {
                user.kernel.packages
            },
        },
        bootloader: Bootloader {
            boot_type: user.bootloader.boot_type.or(default.bootloader.boot_type),
            provider: user.bootloader.provider.or(default.bootloader.provider),
        },
        users: merge_by_key(default.users, user.users, |u: &User| {
            text_key(u.name.as_ref())
        }),
        additional_files: merge_by_key(
            default.additional_files,
            user.additional_files,
            |file: &AdditionalFile| text_key(file.destination.as_ref()),
        ),
        configurations,
    }
}

fn text_key(value: Option<&Spanned<String>>) -> Option<String> {
    value.map(|spanned| spanned.value.clone())
}

/// Appends the user's packages to the defaults, dropping repeats.
fn combine_unique(
    default: Vec<Spanned<String>>,
    user: Vec<Spanned<String>>,
) -> Vec<Spanned<String>> {
    let mut combined: Vec<Spanned<String>> = Vec::with_capacity(default.len() + user.len());
    for package in default.into_iter().chain(user) {
        if !combined
            .iter()
            .any(|existing| existing.value == package.value)
        {
            combined.push(package);
        }
    }
    combined
}

/// Merges two lists by a key: a user entry replaces the default entry with the same key in place,
/// other user entries are appended. Entries without a key are kept as they are, and so are two
/// user entries with one key, so that validation reports the repeat.
fn merge_by_key<T>(default: Vec<T>, user: Vec<T>, key: impl Fn(&T) -> Option<String>) -> Vec<T> {
    let mut replaced = vec![false; default.len()];
    let mut merged = default;
    for entry in user {
        let position = key(&entry).and_then(|wanted| {
            (0..replaced.len())
                .find(|&index| !replaced[index] && key(&merged[index]).as_ref() == Some(&wanted))
        });
        match position {
            Some(index) => {
                merged[index] = entry;
                replaced[index] = true;
            }
            None => merged.push(entry),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::read_template;
    use std::sync::Arc;

    fn template(text: &str) -> ImageTemplate {
        read_template(text.as_bytes(), &Arc::from("t.yml"), None).unwrap()
    }

    #[test]
    fn packages_combine_without_repeats() {
        let default = template("systemConfig:\n  packages: [a, b]\n");
        let user = template("systemConfig:\n  packages: [b, c]\n");
        let merged = merge(default, user);
        let names: Vec<_> = merged
            .system_config
            .packages
            .iter()
            .map(|p| p.value.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn users_merge_by_name() {
        let default =
            template("systemConfig:\n  users:\n    - {name: a, shell: /bin/sh}\n    - {name: b}\n");
        let user = template(
            "systemConfig:\n  users:\n    - {name: a, shell: /bin/bash}\n    - {name: c}\n",
        );
        let merged = merge(default, user);
        let users = &merged.system_config.users;
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].shell.as_ref().unwrap().value, "/bin/bash");
        assert_eq!(users[2].name.as_ref().unwrap().value, "c");
    }

    #[test]
    fn disk_is_replaced_whole() {
        let default =
            template("disk:\n  size: 4GiB\n  partitions:\n    - {id: a}\n    - {id: b}\n");
        let user = template("disk:\n  size: 8GiB\n  partitions:\n    - {id: c}\n");
        let disk = merge(default, user).disk.unwrap();
        assert_eq!(disk.size.unwrap().value, "8GiB");
        assert_eq!(disk.partitions.len(), 1);
    }

    #[test]
    fn files_merge_by_destination() {
        let default =
            template("systemConfig:\n  additionalFiles:\n    - {local: a, final: /etc/x}\n");
        let user = template("systemConfig:\n  additionalFiles:\n    - {local: b, final: /etc/x}\n");
        let files = merge(default, user).system_config.additional_files;
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].local.as_ref().unwrap().value, "b");
    }

    #[test]
    fn repositories_merge_by_codename() {
        let default = template("packageRepositories:\n  - {codename: a, url: http://x/1}\n");
        let user = template(
            "packageRepositories:
  - {codename: a, url: http://x/2}
  - {codename: b, url: http://x/3}
",
        );
        let repositories = merge(default, user).package_repositories;
        assert_eq!(repositories.len(), 2);
        assert_eq!(repositories[0].url.as_ref().unwrap().value, "http://x/2");
    }

    #[test]
    fn user_duplicates_are_kept_for_validation() {
        let default = template("packageRepositories:\n  - {codename: a, url: http://x/1}\n");
        let user = template(
            "packageRepositories:
  - {codename: a, url: http://x/2}
  - {codename: a, url: http://x/3}
",
        );
        let repositories = merge(default, user).package_repositories;
        let urls: Vec<_> = repositories
            .iter()
            .map(|r| r.url.as_ref().unwrap().value.as_str())
            .collect();
        assert_eq!(urls, ["http://x/2", "http://x/3"]);
    }

    #[test]
    fn kernel_packages_replace_defaults() {
        let default = template(
            "systemConfig:\n  kernel:\n    packages: [linux-image-amd64]\n    cmdline: quiet\n",
        );
        let user = template("systemConfig:\n  kernel:\n    packages: [linux-image-rt-amd64]\n");
        let kernel = merge(default, user).system_config.kernel;
        assert_eq!(kernel.packages.len(), 1);
        assert_eq!(kernel.packages[0].value, "linux-image-rt-amd64");
        assert_eq!(kernel.cmdline.unwrap().value, "quiet");
    }
}
