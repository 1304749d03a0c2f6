"""Articles -> chunks, with langchain's recursive splitter on Vietnamese paragraph and sentence boundaries."""
from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Article, Chunk

# Paragraphs first, then lines, then sentence ends, then clauses; words only as a last resort.
SEPARATORS = ["\n\n", "\n", ". ", "! ", "? ", "… ", "; ", ": ", ", ", " ", ""]
SPLITTER_ID = "recursive-vi-v1"  # recorded in the manifest: change it when SEPARATORS change


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        keep_separator="end",  # a sentence keeps its full stop
        add_start_index=True,
        strip_whitespace=True,
    )


def split(article: Article, chunk_size: int = 800, chunk_overlap: int = 120, splitter=None) -> list[Chunk]:
    splitter = splitter or make_splitter(chunk_size, chunk_overlap)
    chunks = []
    for doc in splitter.create_documents([article.text]):
        start = doc.metadata["start_index"]
        if start < 0:  # the splitter could not locate the piece (never expected): find it ourselves
            start = article.text.find(doc.page_content)
        text = doc.page_content
        chunks.append(
            Chunk(
                id=f"{article.id}#{len(chunks)}",
                article_id=article.id,
                position=len(chunks),
                start=start,
                end=start + len(text),
                text=text,
                title=article.title,
            )
        )
    return chunks
