"""Typed errors: every bad input gets a specific class and a message a person can act on."""


class RagError(Exception):
    """Base class; the CLI prints the message and exits non-zero."""

    exit_code = 1


class InvalidQuestion(RagError, ValueError):
    """Empty, too long, or otherwise unusable question."""

    exit_code = 2


class InvalidSetting(RagError, ValueError):
    """A setting (RAG_* variable, CLI option, Settings field or per-call override) outside what it allows."""

    exit_code = 2

    def __init__(self, variable: str, value, allowed: str):
        self.variable, self.value, self.allowed = variable, value, allowed
        super().__init__(f"invalid setting {variable}={value}: expected {allowed}")


class ArticleError(RagError):
    """One article file could not be read or parsed (the rest are still indexed)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class FetchError(RagError):
    """One URL could not be fetched or used (robots.txt, HTTP status, timeout, size, type); the batch goes on.
    `refused`: the fetch policy (rag.ingest.netpolicy) refused it, or a redirect from it: no request was sent there."""

    def __init__(self, url: str, reason: str, *, refused: bool = False):
        self.url = url
        self.reason = reason
        self.refused = refused
        super().__init__(f"{url}: {reason}")


class CorpusEmpty(RagError):
    pass


class ArticleNotFound(RagError):
    """No article with the given id (e.g. asked to remove one that is not in the corpus)."""


class IndexMissing(RagError):
    pass


class IndexMismatch(RagError):
    """The index on disk was built with other models or settings than the configured ones."""


class IndexCorrupt(RagError):
    pass


class ModelMissing(RagError):
    pass


class ModelVerificationError(RagError):
    pass


class BackendError(RagError):
    """A generation backend failed (server unreachable, bad response...)."""


class SettingsError(RagError, ValueError):
    """A setting has a value the code cannot use (the message names the setting and the choices)."""
