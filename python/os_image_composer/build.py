"""The result of a build: the artifacts, the SBOM, and how each stage and cache went."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Artifact", "BuildResult", "CacheUse", "StageTime"]


@dataclass(frozen=True)
class Artifact:
    """One output file: the raw disk or a converted, possibly compressed, copy."""

    path: Path
    kind: str
    """``raw``, ``qcow2``, ``vhd``, ``vhdx``, ``vmdk`` or ``vdi``."""
    compression: str
    """``none``, ``gz``, ``xz`` or ``zst``."""
    bytes: int
    sha256: str


@dataclass(frozen=True)
class StageTime:
    """How long one stage took."""

    stage: str
    seconds: float


@dataclass(frozen=True)
class CacheUse:
    """Whether a cache was used (``hit``) or not (``miss``), and why."""

    cache: str
    outcome: str
    detail: str


@dataclass(frozen=True)
class BuildResult:
    """The result of a build: what it made, where, and how each stage and cache went."""

    output_dir: Path
    """``{work_dir}/{provider-id}/imagebuild/{systemConfig.name}/``."""
    artifacts: tuple[Artifact, ...]
    sbom: tuple[Path, ...]
    """The SPDX 2.3 document beside the image and in ``temp_dir``; the image contains a third copy
    in ``/usr/share/sbom/``."""
    kernel: str
    """The release of the kernel the image boots, empty for an image without a boot loader."""
    packages: int
    bytes_downloaded: int
    stages: tuple[StageTime, ...]
    caches: tuple[CacheUse, ...]
    total_seconds: float
    report: dict[str, Any]
    """The build report as written to ``build-report.json``."""

    @property
    def image(self) -> Path:
        """The first artifact, normally the raw disk image."""
        return self.artifacts[0].path

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> BuildResult:
        """Read the JSON build report that the core returns."""
        return cls(
            output_dir=Path(report["outputDir"]),
            artifacts=tuple(
                Artifact(
                    path=Path(item["path"]),
                    kind=str(item["kind"]),
                    compression=str(item["compression"]),
                    bytes=int(item["bytes"]),
                    sha256=str(item["sha256"]),
                )
                for item in report["artifacts"]
            ),
            sbom=tuple(Path(path) for path in report["sbom"]),
            kernel=str(report["kernel"]),
            packages=int(report["packages"]),
            bytes_downloaded=int(report["bytesDownloaded"]),
            stages=tuple(StageTime(str(s["stage"]), float(s["seconds"])) for s in report["stages"]),
            caches=tuple(
                CacheUse(str(c["cache"]), str(c["outcome"]), str(c["detail"]))
                for c in report["caches"]
            ),
            total_seconds=float(report["totalSeconds"]),
            report=report,
        )

    def table(self) -> str:
        """Return a short summary for a terminal: stage times, cache use, then the artifacts."""
        lines = [f"{'stage':<16}{'seconds':>9}"]
        lines += [f"{stage.stage:<16}{stage.seconds:>9.2f}" for stage in self.stages]
        lines.append(f"{'total':<16}{self.total_seconds:>9.2f}")
        lines.append("")
        lines += [f"{use.cache:<12}{use.outcome:<8}{use.detail}" for use in self.caches]
        lines.append("")
        lines += [f"{artifact.path}  ({artifact.bytes} bytes)" for artifact in self.artifacts]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Return an HTML summary for notebooks: stage times, cache use and artifacts."""
        stages = "".join(
            f"<tr><td>{html.escape(stage.stage)}</td><td>{stage.seconds:.2f}</td></tr>"
            for stage in self.stages
        )
        caches = "".join(
            f"<tr><td>{html.escape(use.cache)}</td><td>{html.escape(use.outcome)}</td>"
            f"<td>{html.escape(use.detail)}</td></tr>"
            for use in self.caches
        )
        artifacts = "".join(
            f"<tr><td>{html.escape(str(artifact.path))}</td><td>{html.escape(artifact.kind)}</td>"
            f"<td>{html.escape(artifact.compression)}</td><td>{artifact.bytes}</td></tr>"
            for artifact in self.artifacts
        )
        return (
            f"<p>kernel {html.escape(self.kernel)}, {self.packages} packages, "
            f"{self.total_seconds:.2f} s</p>"
            "<table><tr><th>stage</th><th>seconds</th></tr>"
            f"{stages}<tr><td>total</td><td>{self.total_seconds:.2f}</td></tr></table>"
            "<table><tr><th>cache</th><th>outcome</th><th>detail</th></tr>"
            f"{caches}</table>"
            "<table><tr><th>artifact</th><th>format</th><th>compression</th><th>bytes</th></tr>"
            f"{artifacts}</table>"
        )

    def __repr__(self) -> str:
        return f"BuildResult(output_dir={str(self.output_dir)!r}, kernel={self.kernel!r})"
