"""The ``os-image-composer`` command line.

Exit codes: 0 success, 1 an error in the input or the work (such as an invalid template),
2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from os_image_composer import _native
from os_image_composer.cache import PackageCache
from os_image_composer.config import Config
from os_image_composer.errors import ComposerError, ConfigError, TemplateError, TemplateIssue
from os_image_composer.template import ImageTemplate

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Options are accepted before and after the command. Below the top level their default is
    # SUPPRESS, so a value given before the command is not reset by the command's parser.
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument("--config", metavar="FILE", default=default, help="configuration file")
    group.add_argument(
        "-d", "--cache-dir", metavar="DIR", default=default, help="package and metadata cache"
    )
    group.add_argument(
        "--work-dir", metavar="DIR", default=default, help="chroot environments and image builds"
    )
    group.add_argument(
        "-w",
        "--workers",
        metavar="N",
        type=int,
        default=default,
        help="concurrent downloads and checks, 1 to 100",
    )
    group.add_argument(
        "--log-level",
        choices=["error", "warn", "info", "debug", "trace"],
        default=default,
        help="log detail (default: info)",
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="same as --log-level debug"
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the command line."""
    parser = argparse.ArgumentParser(
        prog="os-image-composer",
        description="Compose bootable Linux OS images from YAML templates.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_native.__version__}")
    _add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate", help="check a template", description="Check a template and its disk layout."
    )
    validate.add_argument("template", metavar="TEMPLATE", help="image template file")
    validate.add_argument(
        "--merged", action="store_true", help="print the template merged with provider defaults"
    )
    _add_global_options(validate, top=False)

    resolve = commands.add_parser(
        "resolve",
        help="resolve the packages of a template",
        description="Fetch and verify repository metadata, then list the packages the image "
        "installs.",
    )
    resolve.add_argument("template", metavar="TEMPLATE", help="image template file")
    resolve.add_argument("--offline", action="store_true", help="use only cached metadata")
    resolve.add_argument("--with-recommends", action="store_true", help="install Recommends too")
    resolve.add_argument(
        "-f", "--dotfile", metavar="FILE", help="write the dependency graph as Graphviz DOT"
    )
    resolve.add_argument("--json", action="store_true", help="print JSON")
    _add_global_options(resolve, top=False)

    fetch = commands.add_parser(
        "fetch",
        help="resolve and download a template's packages",
        description="Resolve the packages of a template and put every package file, verified, "
        "in the package cache.",
    )
    fetch.add_argument("template", metavar="TEMPLATE", help="image template file")
    fetch.add_argument("--offline", action="store_true", help="use only cached metadata")
    fetch.add_argument("--with-recommends", action="store_true", help="install Recommends too")
    fetch.add_argument(
        "-f", "--dotfile", metavar="FILE", help="also write the dependency graph here"
    )
    _add_global_options(fetch, top=False)

    build = commands.add_parser(
        "build",
        help="build the image of a template (needs root)",
        description="Build the image of a template: load template, init provider, validate, "
        "packages, compose and finalize. The artifacts, the SBOM and build-report.json land in "
        "{work_dir}/{provider-id}/imagebuild/{systemConfig.name}/.",
    )
    build.add_argument("template", metavar="TEMPLATE", help="image template file")
    build.add_argument("--offline", action="store_true", help="use only cached metadata")
    build.add_argument("--with-recommends", action="store_true", help="install Recommends too")
    build.add_argument(
        "-f", "--dotfile", metavar="FILE", help="also write the dependency graph (Graphviz DOT)"
    )
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    _add_global_options(build, top=False)

    chroot = commands.add_parser(
        "chroot",
        help="prepare the provider's chroot environment",
        description="Resolve and fetch the provider's essential set and build tools, then "
        "create, restore or reuse {work_dir}/{provider-id}/chrootenv. Needs root.",
    )
    chroot.add_argument("template", metavar="TEMPLATE", help="image template file")
    chroot.add_argument("--offline", action="store_true", help="use only cached metadata")
    _add_global_options(chroot, top=False)

    cache = commands.add_parser("cache", help="inspect and manage the caches")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    info = cache_commands.add_parser("info", help="sizes and counts per provider")
    info.add_argument("--json", action="store_true", help="print JSON")
    _add_global_options(info, top=False)
    clean = cache_commands.add_parser("clean", help="delete cached trees")
    scope = clean.add_mutually_exclusive_group()
    scope.add_argument(
        "--packages", dest="scope", action="store_const", const="packages", help="package files"
    )
    scope.add_argument(
        "--workspace",
        dest="scope",
        action="store_const",
        const="workspace",
        help="chroot environments, snapshots, image roots and image builds",
    )
    scope.add_argument(
        "--all", dest="scope", action="store_const", const="all", help="everything, metadata too"
    )
    clean.add_argument("--provider-id", metavar="ID", help="one provider only")
    clean.add_argument("--dry-run", action="store_true", help="only list what would go")
    _add_global_options(clean, top=False)
    prune = cache_commands.add_parser("prune", help="delete least recently used package files")
    prune.add_argument("--older-than", metavar="DAYS", type=int, help="last used before this")
    prune.add_argument("--max-size", metavar="SIZE", help="keep at most this much, e.g. 10GiB")
    prune.add_argument("--provider-id", metavar="ID", help="one provider only")
    prune.add_argument("--dry-run", action="store_true", help="only list what would go")
    _add_global_options(prune, top=False)
    verify = cache_commands.add_parser(
        "verify", help="check cached package files against cached metadata"
    )
    verify.add_argument(
        "--provider-id", metavar="ID", default="debian-debian12-x86_64", help="provider to check"
    )
    verify.add_argument("--delete", action="store_true", help="delete files that do not match")
    _add_global_options(verify, top=False)

    config = commands.add_parser("config", help="show or create the configuration")
    _add_global_options(config, top=False)
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    init = config_commands.add_parser("init", help="write a commented default configuration")
    init.add_argument(
        "output", nargs="?", default="-", metavar="FILE", help="file to write (default: stdout)"
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    show = config_commands.add_parser("show", help="print the effective configuration")
    show.add_argument("--json", action="store_true", help="print JSON")
    _add_global_options(show, top=False)

    providers = commands.add_parser("providers", help="list the embedded providers")
    providers.add_argument("--json", action="store_true", help="print JSON")
    _add_global_options(providers, top=False)
    return parser


def _load_config(args: argparse.Namespace) -> Config:
    log_level = "debug" if getattr(args, "verbose", False) else args.log_level
    config = Config.load(
        args.config,
        cache_dir=args.cache_dir,
        work_dir=args.work_dir,
        workers=args.workers,
        log_level=log_level,
    )
    _configure_logging(config)
    return config


_LOG_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def _configure_logging(config: Config) -> None:
    """Send the product's log records and warnings to stderr, and to `logging.file` if set."""
    level = _LOG_LEVELS[config.log_level]
    _native.set_log_level(config.log_level)
    logger = logging.getLogger("os_image_composer")
    logger.setLevel(level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(handler)
    if config.log_file is not None:
        try:
            file_handler = logging.FileHandler(config.log_file, encoding="utf-8")
        except OSError as error:
            message = (
                f"cannot open the log file {config.log_file} ({error.strerror}): "
                "fix logging.file in the configuration or pass another --config"
            )
            raise ConfigError(message) from error
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
        )
        logger.addHandler(file_handler)
    # Core warnings arrive through `warnings` as ComposerWarning: show each as one line.
    warnings.showwarning = _show_warning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    logging.getLogger("os_image_composer").warning("%s", message)


def _print_issues(issues: Sequence[TemplateIssue], message: str, what: str) -> None:
    """Print each issue on its own line and a count, or the message when there are none."""
    if not issues:
        print(f"error: {message}", file=sys.stderr)
        return
    for issue in issues:
        print(issue, file=sys.stderr)
    count = len(issues)
    print(f"{what}: invalid, {count} error{'s' if count > 1 else ''}", file=sys.stderr)


def _run_validate(args: argparse.Namespace) -> int:
    config = _load_config(args)
    try:
        template = ImageTemplate.from_file(args.template, config)
    except TemplateError as error:
        _print_issues(error.errors, str(error), args.template)
        return EXIT_ERROR

    if args.merged:
        sys.stdout.write(template.merged_yaml())
    else:
        print(f"{args.template}: valid ({template.provider_id})")
    return EXIT_OK


_REASONS = {
    "truncated": "truncated",
    "upstream_changed": "upstream file changed",
    "size_differs": "size differs",
}


def _run_fetch(args: argparse.Namespace) -> int:
    config = _load_config(args)
    try:
        template = ImageTemplate.from_file(args.template, config)
    except TemplateError as error:
        _print_issues(error.errors, str(error), args.template)
        return EXIT_ERROR
    _, report = template.fetch(
        offline=args.offline,
        with_recommends=args.with_recommends,
        progress="text" if sys.stderr.isatty() else None,
    )
    print(report["summary"])
    for cached in report["files"]:
        reason = cached["redownload_reason"]
        if reason:
            print(f"  {cached['file_name']}: fetched again ({_REASONS.get(reason, reason)})")
    return EXIT_OK


def _run_build(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            "error: building an image needs root for mounts and chroot: run as root "
            "(for example with sudo)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    config = _load_config(args)
    try:
        template = ImageTemplate.from_file(args.template, config)
    except TemplateError as error:
        _print_issues(error.errors, str(error), args.template)
        return EXIT_ERROR
    result = template.build(
        offline=args.offline,
        with_recommends=args.with_recommends,
        dotfile=args.dotfile,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        print(result.table())
    return EXIT_OK


def _run_chroot(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("error: the chroot environment needs root for mounts: run as root", file=sys.stderr)
        return EXIT_ERROR
    config = _load_config(args)
    try:
        template = ImageTemplate.from_file(args.template, config)
    except TemplateError as error:
        _print_issues(error.errors, str(error), args.template)
        return EXIT_ERROR
    report = template.prepare_chroot(offline=args.offline, progress=sys.stderr.isatty())
    print(f"{report['outcome']} {report['root']} ({report['packages']} packages)")
    return EXIT_OK


def _cache(args: argparse.Namespace) -> PackageCache:
    return PackageCache(_load_config(args))


def _run_cache_info(args: argparse.Namespace) -> int:
    info = _cache(args).info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"cache_dir {info['cache_dir']}, work_dir {info['work_dir']}")
    kinds = ["packages", "metadata", "chroot_env", "snapshots", "image_builds"]
    for provider in info["providers"]:
        print(provider["provider_id"])
        for kind in kinds:
            usage = provider[kind]
            megabytes = usage["bytes"] / 1e6
            print(f"  {kind:<13} {usage['files']:>7} files {megabytes:>10.1f} MB")
    return EXIT_OK


def _run_cache_clean(args: argparse.Namespace) -> int:
    report = _cache(args).clean(args.scope or "packages", args.provider_id, args.dry_run)
    print(json.dumps(report, indent=2))
    return EXIT_OK


def _run_cache_prune(args: argparse.Namespace) -> int:
    if args.older_than is None and args.max_size is None:
        print("error: give --older-than DAYS or --max-size SIZE", file=sys.stderr)
        return EXIT_USAGE
    max_size = None if args.max_size is None else _parse_size(args.max_size)
    report = _cache(args).prune(args.older_than, max_size, args.provider_id, args.dry_run)
    print(json.dumps(report, indent=2))
    return EXIT_OK


def _run_cache_verify(args: argparse.Namespace) -> int:
    report = _cache(args).verify(args.provider_id, args.delete)
    print(json.dumps(report, indent=2))
    return EXIT_OK


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _parse_size(text: str) -> int:
    """Parse `10GiB`, `10G` or `500M` into bytes; binary units."""
    number = text.rstrip("BbiI")
    unit = number[-1:].upper() if number[-1:].isalpha() else ""
    digits = number[:-1] if unit else number
    if not digits.isdigit() or unit not in _SIZE_UNITS:
        raise ComposerError(f"Invalid size `{text}`: write a number with K, M, G or T, like 10GiB")
    return int(digits) * _SIZE_UNITS[unit]


_SOURCE_WORDS = {
    "network": "downloaded",
    "revalidated": "unchanged upstream (HTTP 304)",
    "cache": "from the cache",
    "local": "read from a local folder",
}


def _run_resolve(args: argparse.Namespace) -> int:
    config = _load_config(args)
    try:
        template = ImageTemplate.from_file(args.template, config)
    except TemplateError as error:
        _print_issues(error.errors, str(error), args.template)
        return EXIT_ERROR
    resolution = template.resolve(
        offline=args.offline, with_recommends=args.with_recommends, dotfile=args.dotfile
    )
    if args.json:
        print(json.dumps(resolution._data, indent=2))
        return EXIT_OK

    name_width = max(len(package.name) for package in resolution.packages)
    version_width = max(len(package.version) for package in resolution.packages)
    arch_width = max(len(package.architecture) for package in resolution.packages)
    for package in resolution.packages:
        print(
            f"{package.name:<{name_width}}  {package.version:<{version_width}}  "
            f"{package.architecture:<{arch_width}}  {package.repository}"
        )
    megabytes = resolution.download_size / 1e6
    print(
        f"{len(resolution)} packages, {megabytes:.1f} MB to download, resolved in "
        f"{resolution.metadata_seconds + resolution.solve_seconds:.2f} s",
        file=sys.stderr,
    )
    for repository in resolution.repositories:
        signature = repository.signature
        checked = (
            f"verified by {signature['fingerprint'][-16:]}"
            if signature["status"] == "verified"
            else "signature check skipped (gpgCheck: false)"
        )
        source = _SOURCE_WORDS.get(repository.source, repository.source)
        print(
            f"  {repository.id}: {repository.packages} packages, metadata {source}, {checked}",
            file=sys.stderr,
        )
    if args.dotfile:
        print(f"wrote {args.dotfile}", file=sys.stderr)
    return EXIT_OK


def _run_config_init(args: argparse.Namespace) -> int:
    text = _native.default_config_text()
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    output = Path(args.output)
    if output.is_dir():
        print(f"error: `{output}` is a directory: give a file name", file=sys.stderr)
        return EXIT_ERROR
    if output.exists() and not args.force:
        print(f"error: `{output}` already exists: pass --force to overwrite it", file=sys.stderr)
        return EXIT_ERROR
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        print(f"error: failed to write `{output}`: {error.strerror or error}", file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote {output}")
    return EXIT_OK


def _run_config_show(args: argparse.Namespace) -> int:
    config = _load_config(args)
    if args.json:
        print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    settings = config.settings()
    width = max(len(setting.key) for setting in settings)
    source = config.file if config.file else "none (built-in defaults)"
    print(f"# configuration file: {source}")
    for setting in settings:
        print(f"{setting.key:<{width}}  {setting.value}  # {setting.origin}")
    return EXIT_OK


def _run_providers(args: argparse.Namespace) -> int:
    providers = json.loads(_native.providers(args.config))
    if args.json:
        print(json.dumps(providers, indent=2))
        return EXIT_OK
    for provider in providers:
        names = ", ".join(repository["name"] for repository in provider["repositories"])
        print(f"{provider['id']:<28} {provider['packageFormat']:<4} {names}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers is not None and not 1 <= args.workers <= 100:
        parser.error(f"argument -w/--workers: invalid value {args.workers}: use 1 to 100")

    handlers = {
        "validate": _run_validate,
        "resolve": _run_resolve,
        "fetch": _run_fetch,
        "build": _run_build,
        "chroot": _run_chroot,
        ("cache", "info"): _run_cache_info,
        ("cache", "clean"): _run_cache_clean,
        ("cache", "prune"): _run_cache_prune,
        ("cache", "verify"): _run_cache_verify,
        "providers": _run_providers,
        ("config", "init"): _run_config_init,
        ("config", "show"): _run_config_show,
    }
    subcommand = {"config": "config_command", "cache": "cache_command"}.get(args.command)
    key = (args.command, getattr(args, subcommand)) if subcommand else args.command
    try:
        return handlers[key](args)
    except ConfigError as error:
        _print_issues(error.errors, str(error), "configuration")
        return EXIT_ERROR
    except ComposerError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away, as with `| head`: nothing more can be written.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
