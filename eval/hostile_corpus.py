"""Write the hostile and broken inputs of eval/RELIABILITY.md into a folder, one file per case, beside
one good article, so that `rag index` over that folder reproduces each outcome:

    python eval/hostile_corpus.py /tmp/hostile
    rag --corpus-dir /tmp/hostile --index-dir /tmp/hostile-idx index --max-embed 0

Files: alias-bomb.md, self-loop.md, deep.jsonl (a row nested 200,000 levels), nul.txt (NUL bytes),
escape-title.md (terminal escape sequences in the title), huge.txt (a 50 MB "article"), good.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

GOOD = "Giá vàng miếng hôm nay tăng 1 triệu đồng mỗi lượng.\nNhà đầu tư lo ngại lạm phát kéo dài.\n"
CASES = {
    "alias-bomb.md": "---\ntitle: Bom\na0: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 10)}]\n" for n in range(1, 6)) + "---\nNội dung.\n",
    "self-loop.md": "---\ntitle: Vòng lặp\nloop: &a [*a]\n---\nNội dung bài.\n",
    "deep.jsonl": '{"title": "Sâu", "text": "x", "m": ' + "[" * 200_000 + "]" * 200_000 + "}\n",
    "nul.txt": "\x00" * 4096,
    "escape-title.md": "---\ntitle: \"Tin \\e[2J\\e[31mđỏ\\e]0;pwned\\a\"\n---\nBài có chuỗi điều khiển trong tiêu đề.\n",
    "huge.txt": "Bài rất dài\n" + ("Giá vàng tăng mạnh trong phiên sáng nay. " * 50 + "\n") * 25_000,
    "good.md": "---\ntitle: Giá vàng tăng mạnh\ndate: 2025-11-27\n---\n" + GOOD,
}


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in CASES.items():
        (out / name).write_text(content, encoding="utf-8")
        print(f"{out / name}: {len(content.encode('utf-8')):,} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hostile")
