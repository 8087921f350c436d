"""Write a primary.xml of generated packages with a dependency structure like a distribution's.

Usage: python3 rpm_primary_gen.py OUT.xml [COUNT]

The packages form layers. The bottom layer is libraries that provide sonames
(`libN.so.1()(64bit)`). Higher layers require sonames and packages of lower layers, with
versioned `Requires` (some with epochs), `/bin/sh` and `/usr/bin/...` file dependencies that
primary.xml lists, `(a or b)` rich dependencies, and a few `Conflicts` and `Obsoletes`. One
package in ten has an older second version. The output is deterministic for a COUNT.
It also writes OUT.request, the request the benchmark resolves, one name a line: the first 20
packages of the top layer.
"""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

LAYERS = 6
REQUEST_SIZE = 20


def entry(name: str, flags: str | None = None, version: str | None = None) -> str:
    if flags is None or version is None:
        return f"<rpm:entry name={quoteattr(name)}/>"
    epoch, _, rest = version.rpartition(":")
    ver, _, rel = rest.partition("-")
    release = f' rel="{rel}"' if rel else ""
    return (
        f'<rpm:entry name={quoteattr(name)} flags="{flags}" epoch="{epoch or 0}" '
        f'ver="{ver}"{release}/>'
    )


def package_xml(
    name: str, epoch: int, version: str, arch: str, sections: dict[str, list[str]], files: list[str]
) -> str:
    lists = "".join(
        f"<rpm:{tag}>{''.join(entries)}</rpm:{tag}>" for tag, entries in sections.items() if entries
    )
    file_lines = "".join(f"<file>{path}</file>" for path in files)
    checksum = hashlib.sha256(f"{name}-{version}".encode()).hexdigest()
    return (
        f'<package type="rpm"><name>{name}</name><arch>{arch}</arch>'
        f'<version epoch="{epoch}" ver="{version}" rel="1.azl3"/>'
        f'<checksum type="sha256" pkgid="YES">{checksum}</checksum>'
        f"<summary>Generated package {name}</summary>"
        f"<description>Generated package {name} for the resolver benchmark.</description>"
        f'<size package="{len(name) * 1000}" installed="{len(name) * 4000}" archive="1"/>'
        f'<location href="Packages/{name[0]}/{name}-{version}-1.azl3.{arch}.rpm"/>'
        f"<format><rpm:sourcerpm>{name}-{version}-1.azl3.src.rpm</rpm:sourcerpm>"
        f"{lists}{file_lines}</format></package>\n"
    )


def generate(count: int, rng: random.Random) -> tuple[list[str], list[str]]:
    per_layer = count // LAYERS
    layers: list[list[str]] = [
        [f"l{layer}-pkg{i:05d}" for i in range(per_layer)] for layer in range(LAYERS)
    ]
    layers[-1] += [
        f"l{LAYERS - 1}-pkg{i:05d}" for i in range(per_layer, count - per_layer * (LAYERS - 1))
    ]
    epochs = {name: (1 if rng.random() < 0.05 else 0) for layer in layers for name in layer}
    packages = []
    for depth, layer in enumerate(layers):
        for name in layer:
            packages.extend(package_versions(name, depth, layers, epochs, rng))
    return packages, layers[-1][:REQUEST_SIZE]


def package_versions(
    name: str, depth: int, layers: list[list[str]], epochs: dict[str, int], rng: random.Random
) -> list[str]:
    arch = "noarch" if rng.random() < 0.3 else "x86_64"
    epoch = epochs[name]
    provides = [entry(name, "EQ", f"{epoch}:2.0-1.azl3")]
    files = [f"/usr/bin/{name}"] if rng.random() < 0.4 else []
    if depth == 0:
        provides.append(entry(f"{name}.so.1()(64bit)"))
    requires = dependencies(depth, layers, epochs, rng)
    sections = {
        "provides": provides,
        "requires": requires,
        "conflicts": [entry(f"{name}-legacy")] if rng.random() < 0.02 else [],
        "obsoletes": [entry(f"{name}-old", "LT", "2.0")] if rng.random() < 0.02 else [],
    }
    versions = [package_xml(name, epoch, "2.0", arch, sections, files)]
    if rng.random() < 0.1:
        versions.append(package_xml(name, epoch, "1.9", arch, sections, files))
    return versions


def dependencies(
    depth: int, layers: list[list[str]], epochs: dict[str, int], rng: random.Random
) -> list[str]:
    if depth == 0:
        return [entry("/bin/sh")] if rng.random() < 0.3 else []
    requires = []
    for _ in range(rng.randint(2, 8)):
        lower = rng.choice(layers[rng.randrange(depth)])
        kind = rng.random()
        if lower.startswith("l0-") and kind < 0.5:
            requires.append(entry(f"{lower}.so.1()(64bit)"))
        elif kind < 0.8:
            requires.append(entry(lower, "GE", f"{epochs[lower]}:1.5"))
        else:
            requires.append(entry(lower))
    if rng.random() < 0.1:
        first, second = rng.choice(layers[0]), rng.choice(layers[0])
        requires.append(entry(f"({first} or {second})"))
    if rng.random() < 0.2:
        requires.append(entry("/bin/sh"))
    return requires


def main() -> int:
    out = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    rng = random.Random(8)
    packages, request = generate(count, rng)
    # /bin/sh comes from a shell package, as in a real repository.
    shell = package_xml("bash", 0, "5.2", "x86_64", {"provides": [entry("bash")]}, ["/bin/sh"])
    packages.append(shell)
    with out.open("w", encoding="utf-8") as stream:
        stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        stream.write(
            '<metadata xmlns="http://linux.duke.edu/metadata/common" '
            f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(packages)}">\n'
        )
        stream.writelines(packages)
        stream.write("</metadata>\n")
    out.with_suffix(".request").write_text("".join(f"{name}\n" for name in request))
    print(f"{out}: {len(packages)} packages, request of {len(request)} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
