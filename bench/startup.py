"""Benchmark 4, app start-up: from `python app.py --port N` to the first answered question, models
already provisioned, through the app's Gradio API endpoint "ask" (gradio_client, as a browser-less user).
Compared with the cold ask() of benchmark 3 (a fresh process with no web server): the difference is
what the web app adds. Skipped, with a note, when app.py is absent.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench.measure import ROOT

APP = ROOT / "app.py"
TIMEOUT_S = 300
QUESTION = "Ai phát biểu khai mạc hội nghị ngày 27/11?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with code {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"app.py did not serve {url} within {TIMEOUT_S} s")


def run(quick: bool, log) -> dict:
    if not APP.exists():
        return {"skipped": "app.py not found: benchmark written against `python app.py --port N` and the "
                           "Gradio endpoint \"ask\"; it runs once app.py exists"}
    from gradio_client import Client

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log(f"startup: python app.py --port {port}")
    t0 = time.time()
    deadline = t0 + TIMEOUT_S
    # own session: the app and any children it starts are stopped together, by this group's id only
    logs = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty app never blocks on it
    proc = subprocess.Popen([sys.executable, str(APP), "--port", str(port)], cwd=ROOT, start_new_session=True,
                            stdout=logs, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(url, proc, deadline)
        listening = time.time() - t0
        answer = Client(url, verbose=False, download_files=False).predict(QUESTION, api_name="/ask")
        answered = time.time() - t0
        return {"listening_s": round(listening, 2), "first_answer_s": round(answered, 2),
                "question": QUESTION, "answer": str(answer)[:200]}
    except Exception as e:  # report it in the summary rather than losing the other benchmarks
        logs.seek(0)
        return {"error": f"{type(e).__name__}: {e}", "app_output_tail": logs.read()[-2000:]}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        logs.close()
