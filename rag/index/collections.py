"""Collections: several corpora side by side, each with its own index (issue 24).

A collection is a name and a folder; everything else is unchanged, because a collection is just a
Settings whose folders point into it (`settings_for`):

    HOME/corpus, HOME/embeddings                         the collection "default" (today's layout, as it is)
    HOME/collections/NAME/corpus, .../NAME/embeddings    every other collection

"default" resolves to the folders it always had, so an existing data folder (a checkout's git-tracked
corpus/ included) needs no migration: nothing is moved or re-embedded. With RAG_STORE=milvus each
collection gets its own prefix: `<RAG_MILVUS_COLLECTION>_<NAME>` (default keeps the bare prefix).

Names are safe slugs (`NAME_RULE`): they become folder names, Milvus collection names and the
`rag:NAME` model ids of the OpenAI-compatible API. An answer reads one collection's index only, unless
asked for several (`--collection a,b`, `rag:a,b`): then each collection's index is searched and the hits
merged (rag.index.store.Merged), every citation naming its collection.

Whatever writes a named collection (articles or index) holds its folder locked, shared (`writing`); delete
and rename lock it exclusively and refuse while a writer holds it, and a writer whose collection was
deleted (or renamed) fails rather than make its folders again with the index of the deleted articles.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from rag.config import Settings
from rag.errors import RagError

DEFAULT = "default"
NAME_RULE = "1-32 characters: lowercase letters a-z, digits and _, starting with a letter"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
FOLDER = "collections"


class CollectionError(RagError, ValueError):
    """A bad collection name, or one that is missing (or already there) when it must not be."""

    exit_code = 2


def check_name(name) -> str:
    """The name if it is a valid collection name; CollectionError saying what is allowed otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CollectionError(f"invalid collection name {name!r}: {NAME_RULE}")
    return name


def root(settings: Settings) -> Path:
    """Where the non-default collections live: HOME/collections (HOME of the base settings)."""
    return Path(settings.home) / FOLDER


def folder(settings: Settings, name: str) -> Path:
    return root(settings) / check_name(name)


def names(settings: Settings) -> list[str]:
    """"default" first, then every collection folder under HOME/collections, sorted."""
    base = root(settings)
    found = sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.fullmatch(p.name) and p.name != DEFAULT) \
        if base.is_dir() else []
    return [DEFAULT] + found


def exists(settings: Settings, name: str) -> bool:
    return check_name(name) == DEFAULT or folder(settings, name).is_dir()


def settings_for(settings: Settings, name: str | None) -> Settings:
    """The settings of collection `name` (None or "default": `settings` itself). CollectionError when
    it does not exist: `rag collections create NAME` first."""
    name = check_name(name or DEFAULT)
    if name == DEFAULT:
        return settings
    where = folder(settings, name)
    if not where.is_dir():
        raise CollectionError(f"no collection {name!r} in {root(settings)}: create it with "
                              f"`rag collections create {name}` (existing: {', '.join(names(settings))})")
    return settings.replace(home=where, corpus_dir=where / "corpus", index_dir=where / "embeddings",
                            milvus_collection=f"{settings.milvus_collection}_{name}")


def create(settings: Settings, name: str) -> Path:
    """An empty collection (its corpus folder; the index comes with the first `rag add`/`rag index`)."""
    if check_name(name) == DEFAULT or folder(settings, name).exists():
        raise CollectionError(f"the collection {name!r} already exists")
    where = folder(settings, name)
    (where / "corpus").mkdir(parents=True)
    return where


def delete(settings: Settings, name: str) -> None:
    """Remove a collection's folder (articles and index). Renamed aside first, so a crash midway never
    leaves a half-deleted collection under its name; the others are not touched. Refused while something
    writes to it (`writing`)."""
    where = _existing(settings, name, "delete")
    with _claimed(where, name):
        if settings.store == "milvus":
            _drop_milvus(settings_for(settings, name))
        trash = where.with_name(f".{name}.deleting-{os.getpid()}")
        where.rename(trash)
    shutil.rmtree(trash)


def rename(settings: Settings, old: str, new: str) -> Path:
    where = _existing(settings, old, "rename")
    if check_name(new) == DEFAULT or folder(settings, new).exists():
        raise CollectionError(f"the collection {new!r} already exists")
    if settings.store == "milvus":
        raise CollectionError("with RAG_STORE=milvus a collection's Milvus prefix is its name: create the new "
                              "collection, copy the corpus folder and `rag index --collection NEW` instead")
    target = folder(settings, new)
    with _claimed(where, old):
        where.rename(target)  # atomic on one file system; the index holds no absolute paths of its own folder
    return target


def _existing(settings: Settings, name: str, verb: str) -> Path:
    if check_name(name) == DEFAULT:
        raise CollectionError(f"the collection {DEFAULT!r} cannot be {verb}d: it is HOME/corpus and HOME/embeddings")
    where = folder(settings, name)
    if not where.is_dir():
        raise CollectionError(f"no collection {name!r} in {root(settings)}")
    return where


@contextmanager
def writing(settings: Settings):
    """Held while writing a collection's articles or index (rag.index.store.update, rag.ingest.manage, rag.ingest.watch): its
    folder locked shared (writers do not wait for each other), so `delete` and `rename` refuse meanwhile.
    CollectionError if the folder is gone (deleted or renamed since `settings_for`); nothing is made again.
    "default" is never deleted or renamed: nothing to hold."""
    where = Path(settings.home)
    if where.parent.name != FOLDER or not _NAME.fullmatch(where.name) or where.name == DEFAULT:
        yield
        return
    gone = CollectionError(f"the collection {where.name!r} was deleted or renamed ({where} is gone): nothing more "
                           "is written to it")
    try:
        fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise gone from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.stat(where).st_ino != os.fstat(fd).st_ino:  # renamed away while we waited for the lock
                raise gone
        except FileNotFoundError:
            raise gone from None
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def _claimed(where: Path, name: str):
    """The collection's folder locked exclusively, or CollectionError at once if a writer holds it."""
    try:
        fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise CollectionError(f"no collection {name!r} in {where.parent}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CollectionError(f"the collection {name!r} is being written to (a `rag add`, `rag watch` poll, "
                                  "`rag index` or the chat's upload is running): try again when it has finished") \
                from None
        if not where.is_dir() or os.stat(where).st_ino != os.fstat(fd).st_ino:  # deleted or renamed meanwhile
            raise CollectionError(f"no collection {name!r} in {where.parent}")
        yield
    finally:
        os.close(fd)


def _drop_milvus(settings: Settings) -> None:  # pragma: no cover - needs a Milvus server (slow tests)
    from rag.index import store_milvus

    client = store_milvus.connect(settings)
    for name in store_milvus.names(settings).values():
        if client.has_collection(name):
            client.drop_collection(name)


def split(value) -> list[str]:
    """The names in "a,b" (`--collection`, a model id) or a list, each once, in order, not yet checked; [] for none."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    names = [n.strip() if isinstance(n, str) else n for n in items]
    return list(dict.fromkeys(n for n in names if n != ""))


def parse(value) -> list[str]:
    """`--collection a,b` (or a list) as names, checked; [] when not given."""
    return [check_name(n) for n in split(value)]
