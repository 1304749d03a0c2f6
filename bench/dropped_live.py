"""Dropped streams against a running `rag serve` with its real model (issue 22): what the server does after
a client goes away, read from the server's own CPU time (/proc/PID/stat), and how long the next question
waits. bench/dropped_stream.py measures the same with a fake model; this one is for the real llama.cpp one.

    rag serve --port 7861 &                       # in a data folder with an index (rag index)
    python bench/dropped_live.py v1 http://127.0.0.1:7861 PID [--watch 3]
    python bench/dropped_live.py chat http://127.0.0.1:7861 PID [--after 5] [--question "..."]

v1:   question A streamed over a bare socket and dropped 2 s after it was sent; the server's CPU in each of
      the --watch seconds after (3); question B at once (seconds to its first content chunk, and its answer); B
      again on the idle server as the baseline (its stream closed at the first content chunk).
chat: what a browser tab does (start_turn, then respond through Gradio's queue, read on the tab's event
      stream), the tab closed --after seconds after the question whatever had come; the server's CPU in
      each half second for 8 s after. Nothing but the answers it prints is checked: read the CPU figures.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx

TICK = os.sysconf("SC_CLK_TCK")
A = "Diễn đàn Cộng đồng thông minh 2025 diễn ra ở đâu và khi nào?"
B = "Ai phát biểu khai mạc hội nghị ngày 27/11?"
LONG = "Hãy kể chi tiết những nội dung chính của hội nghị NextGen và những ai đã phát biểu."


def cpu(pid: int) -> float:
    """The process's user + system CPU time, seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stamp(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def watch_cpu(pid: int, step: float, steps: int) -> None:
    last = cpu(pid)
    for i in range(steps):
        time.sleep(step)
        now = cpu(pid)
        stamp(f"  {step * (i + 1):.1f} s after: server used {now - last:.2f} s of CPU in the last {step:g} s")
        last = now


def send_and_drop(url: str, request: bytes, seconds: float) -> bytes:
    """`request` over a bare socket, closed `seconds` after it was sent whatever came back (what came is returned)."""
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port))
    t0 = time.monotonic()
    sock.sendall(request)
    got = b""
    while (left := seconds - (time.monotonic() - t0)) > 0:
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except socket.timeout:
            break
        if not piece:
            break
        got += piece
    sock.close()
    return got


def v1(url: str, pid: int, watch: int = 3) -> None:
    def body(q: str) -> dict:
        return {"model": "rag", "stream": True, "messages": [{"role": "user", "content": q}]}

    def first_content(q: str, read_all: bool = True) -> tuple[float, str | None]:
        t0 = time.monotonic()
        with httpx.Client(timeout=600) as c, c.stream("POST", url + "/v1/chat/completions", json=body(q)) as r:
            assert r.status_code == 200, (r.status_code, r.read())
            first, text = None, ""
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                if delta and first is None:
                    first = time.monotonic() - t0
                    if not read_all:
                        return first, None
                text += delta
            return first, text

    data = json.dumps(body(A)).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(data) + data)
    before = cpu(pid)
    got = send_and_drop(url, request, 2.0)
    stamp(f"A sent and dropped after 2 s ({len(got)} bytes of reply had come; "
          f"the server used {cpu(pid) - before:.2f} s of CPU meanwhile)")
    watch_cpu(pid, 1.0, watch)
    t, text = first_content(B)
    stamp(f"B after the drop: first content chunk after {t:.2f} s")
    print("B's answer:", text.replace("\n", " / "), flush=True)
    t_idle, _ = first_content(B, read_all=False)
    stamp(f"B on the idle server (baseline): first content chunk after {t_idle:.2f} s; ratio {t / t_idle:.2f}")
    time.sleep(1.0)
    watch_cpu(pid, 1.0, 1)


def chat(url: str, pid: int, after: float, question: str) -> None:
    deps = {d.get("api_name"): d["id"] for d in httpx.get(url + "/config").json()["dependencies"]}
    session = uuid.uuid4().hex
    with httpx.Client(timeout=60) as c:
        r = c.post(url + "/gradio_api/run/predict",
                   json={"data": [question, []], "fn_index": deps["start_turn"], "session_hash": session})
        assert r.status_code == 200, r.text
        shown = [{"role": "user", "content": [{"type": "text", "text": question}]}]
        # question and turns are states (the server holds them); top_k, retriever, model (None: the server's),
        # since, until, sources, collection
        join = c.post(url + "/gradio_api/queue/join", json={
            "data": [None, shown, None, 4, "hybrid", None, "", "", [], "default"], "fn_index": deps["respond"],
            "session_hash": session, "event_data": None, "trigger_id": None})
    stamp(f"question sent through the queue: {join.status_code} {join.text}")
    got = send_and_drop(url, f"GET /gradio_api/queue/data?session_hash={session} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                        after)
    messages = [json.loads(line[6:]) for line in got.decode("utf-8", "replace").split("\n") if line.startswith("data: {")]
    stamp(f"tab closed {after:g} s after the question; {len(messages)} messages had come "
          f"({sum(m.get('msg') == 'process_generating' for m in messages)} process_generating)")
    watch_cpu(pid, 0.5, 16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["v1", "chat"])
    ap.add_argument("url")
    ap.add_argument("pid", type=int, help="the server's process id")
    ap.add_argument("--after", type=float, default=5.0, help="chat: seconds before the tab closes")
    ap.add_argument("--watch", type=int, default=3, help="v1: seconds of server CPU shown after the drop")
    ap.add_argument("--question", default=LONG, help="chat: the question")
    args = ap.parse_args()
    stamp(f"server CPU so far: {cpu(args.pid):.1f} s")
    if args.mode == "v1":
        v1(args.url, args.pid, args.watch)
    else:
        chat(args.url, args.pid, args.after, args.question)


if __name__ == "__main__":
    main()
