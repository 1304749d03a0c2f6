"""Typed errors: every bad input gets a specific class and a message a person can act on."""


class RagError(Exception):
    """Base class; the CLI prints the message and exits non-zero."""

    exit_code = 1


class InvalidQuestion(RagError, ValueError):
    """Empty, too long, or otherwise unusable question."""

    exit_code = 2


class ArticleError(RagError):
    """One article file could not be read or parsed (the rest are still indexed)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


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
