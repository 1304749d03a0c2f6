"""The result document -> bench/results/SUMMARY.md. Every figure printed comes from the document;
a figure derived from a measured rate rather than run is marked "(computed)"."""
from __future__ import annotations

TARGETS = {
    "reindex": 5.0,  # s, re-index after one article changed, default corpus
    "hybrid_p95": 50.0,  # ms at 22,643 articles
    "first_token_p50": 3.0,  # s, warm
    "total_p50": 10.0,  # s, warm
    "startup": 20.0,  # s, launch to first answer
}
BIG = 22643
LATENCY_COLUMNS = ("bm25", "dense_flat", "hybrid_flat", "dense_flat_omp1", "hybrid_flat_omp1", "dense_hnsw", "hybrid_hnsw")


def num(x, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, (int, float)) and abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}" if isinstance(x, float) else f"{x}{unit}"


def pq(d: dict | None, scale: float = 1.0, digits: int = 1) -> str:
    """'p50 / p95' of a percentiles dict (scale 0.001 turns ms into s)."""
    if not d or not d.get("n"):
        return "–"
    return f"{d['p50'] * scale:.{digits}f} / {d['p95'] * scale:.{digits}f}"


def ratio(ours, base) -> str:
    if ours is None or not base:
        return "–"
    r = ours / base
    return f"{r:.2g}" if r < 1 else f"{r:.3g}"


def status(value, target: float) -> str:
    if value is None:
        return "not measured"
    return "✅ met" if value <= target else "❌ not met"


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_problem(result: dict | None) -> str | None:
    """A line saying why a benchmark has no figures, or None when it has them."""
    if result is None:
        return "not run (see --only)"
    if "error" in result:
        return f"**failed**: `{result['error']}` (traceback in the JSON)"
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    return None


# ------------------------------------------------------------------ header and targets


def header(doc: dict) -> str:
    m = doc["machine"]
    took = sum(doc.get("seconds", {}).values()) / 60
    return "\n".join([
        "# Benchmarks — summary",
        "",
        f"- Command: `{doc['command']}`",
        f"- Date: {doc['date']}; revision {doc['revision']}; took {took:.1f} min",
        f"- Machine: nproc {m['nproc']}, {m['cpu_model']}, {m['mem_gb']} GB RAM, Python {m['python']}; "
        f"load average at start {m['loadavg_at_start'][0]}, 5-minute load average after each benchmark: "
        + ", ".join(f"{k} {v}" for k, v in doc.get("loadavg_after", {}).items())
        + " (above 2, other work shared the 2 cores and the timings are pessimistic)",
        f"- Every figure below comes from this run: `{doc['result_file']}` holds them all. OURS and BASELINE ran "
        "side by side; \"(computed)\" marks a figure derived from a measured rate instead of run.",
    ])


def targets(doc: dict) -> str:
    r = doc["results"]
    rows = []
    ing = r.get("ingest") or {}
    if "default_corpus" in ing:
        d = ing["default_corpus"]
        ours, base = d["one_change"]["seconds"], d["baseline_full_rebuild"]["seconds"]
        rows.append(["re-index after one article changed (default corpus, in process) ≤ 5 s", num(ours, 2, " s"),
                     status(ours, TARGETS["reindex"]), num(base, 2, " s"), ratio(ours, base)])
        cli = d.get("one_change_cli", {})
        if cli.get("searchable_s") is not None:
            rows.append(["same, `rag index` in a fresh process: changed article searchable (lexical) ≤ 5 s",
                         num(cli["searchable_s"], 2, " s"), status(cli["searchable_s"], TARGETS["reindex"]), "–", "–"])
        rows.append(["same, `rag index` in a fresh process, until embedded (model load included) ≤ 5 s",
                     num(cli.get("seconds"), 2, " s"), status(cli.get("seconds"), TARGETS["reindex"]), "–", "–"])
    sizes = (r.get("retrieval") or {}).get("sizes", {})
    if sizes:
        size = str(BIG) if str(BIG) in sizes else max(sizes, key=int)
        lat = sizes[size]["latency_ms"]
        base = lat["baseline_flat"]["p95"]
        note = "" if int(size) == BIG else f" (largest size run: {int(size):,})"
        for key, label in (("hybrid_flat", ""), ("hybrid_flat_omp1", ", lever: FAISS on 1 thread"),
                           ("hybrid_hnsw", ", lever: HNSW")):
            ours = (lat.get(key) or {}).get("p95")
            rows.append([f"hybrid retrieval p95 ≤ 50 ms at {BIG:,} articles{label}{note}", num(ours, 1, " ms"),
                         status(ours, TARGETS["hybrid_p95"]) if int(size) == BIG else "size not run",
                         num(base, 2, " ms") + " (bare flat, dense only)", ratio(ours, base)])
    a = r.get("ask") or {}
    if "warm_summary" in a:
        ws, bs = a["warm_summary"], a["baseline_summary"]
        for key, target, label in (("first_token", "first_token_p50", "first token"), ("total", "total_p50", "total")):
            ours = ws[key]["p50"] / 1000 if ws[key].get("n") else None
            base = bs[key]["p50"] / 1000 if bs[key].get("n") else None
            rows.append([f"warm ask(): {label} p50 ≤ {TARGETS[target]:.0f} s", num(ours, 2, " s"),
                         status(ours, TARGETS[target]), num(base, 2, " s") + " (full chunks)", ratio(ours, base)])
    s = r.get("startup") or {}
    if "first_answer_s" in s:
        cold = cold_total_s(r)
        rows.append(["app start-up to first answer ≤ 20 s", num(s["first_answer_s"], 1, " s"),
                     status(s["first_answer_s"], TARGETS["startup"]),
                     f"{num(cold, 1, ' s')} (reference: cold ask(), no web server)" if cold else "–",
                     ratio(s["first_answer_s"], cold)])
    elif s:
        rows.append(["app start-up to first answer ≤ 20 s", "–", section_problem(s), "–", "–"])
    return "## Targets\n\n" + table(["target", "OURS", "where we stand", "BASELINE", "ours/baseline"], rows)


# ------------------------------------------------------------------ 1. ingestion


def ingestion(res: dict | None) -> str:
    out = ["## 1. Ingestion"]
    problem = section_problem(res)
    if problem:
        return "\n\n".join(out + [problem])
    lex = res["lexical"]
    out.append("### OURS, lexical first (`update(..., max_embed=0)`): searchable by BM25 as soon as this ends\n\n" + table(
        ["articles", "chunks", "read + clean", "chunk + BM25 + publish", "articles/s", "chunks/s",
         "on disk (BM25 / chunks / articles)", "peak RSS"],
        [[f"{int(n):,}", f"{v['chunks']:,}", num(v["read_s"], 1, " s"), num(v["index_s"], 1, " s"),
          num(v["articles_per_s"], 0), num(v["chunks_per_s"], 0),
          f"{num(v['disk_mb'], 1)} MB ({num(v['disk_mb_by_file']['bm25'], 1)} / {num(v['disk_mb_by_file']['chunks.jsonl'], 1)}"
          f" / {num(v['disk_mb_by_file']['articles.jsonl'], 1)})", num(v["peak_rss_mb"], 0, " MB")]
         for n, v in sorted(lex.items(), key=lambda kv: int(kv[0]))]))
    out.append(dense(res))
    out.append(reindex(res))
    out.append(fill_in(res))
    return "\n\n".join(out)


def dense(res: dict) -> str:
    d, c = res["dense_rate"], res["computed"]
    ours, base = d["ours"], d["baseline"]
    rates = table(
        ["", "passages/s", "imports + model load", "peak RSS"],
        [[f"OURS: `rag.index.embed` (batch {ours['batch_size']}, sqlite cache, {ours['threads']} threads)", num(ours["passages_per_s"], 2),
          num(ours["model_load_s"], 1, " s"), num(ours["peak_rss_mb"], 0, " MB")],
         [f"BASELINE: `SentenceTransformer.encode_document` (batch {base['batch_size']}) + flat FAISS",
          num(base["passages_per_s"], 2), num(base["model_load_s"], 1, " s"), num(base["peak_rss_mb"], 0, " MB")],
         ["ours/baseline (rate)", ratio(ours["passages_per_s"], base["passages_per_s"]), "", ""],
         ["OURS with one thread (per-core rate, for scale-out)", num(d["ours_one_thread"]["passages_per_s"], 2),
          num(d["ours_one_thread"]["model_load_s"], 1, " s"), num(d["ours_one_thread"]["peak_rss_mb"], 0, " MB")]])
    lex = res["lexical"]
    full = table(
        ["articles", "chunks", "OURS: BM25 usable after (measured)", "OURS: all dense (computed)",
         "BASELINE: all dense (computed)"],
        [[f"{int(n):,}", f"{v['chunks']:,}", num(lex[n]["read_s"] + lex[n]["index_s"], 1, " s"),
          num(v["ours_full_dense_h"], 2, " h"), num(v["baseline_full_dense_h"], 2, " h")]
         for n, v in sorted(c["per_size"].items(), key=lambda kv: int(kv[0]))])
    return "\n\n".join([
        f"### Dense embedding (EmbeddingGemma-300M), measured on a sample of {ours['passages']} vietnews chunks "
        f"(mean {d['sample_mean_chars']} characters)", rates,
        f"A second pass over the same sample, served by the embedding cache: {num(ours['cached_passages_per_s'], 0)} passages/s.",
        "Full-corpus dense embedding, from the measured rates:", full,
        f"Cost per 1,000 articles ({c['chunks_per_article']} chunks each) (computed): OURS "
        f"{num(c['ours_s_per_1000_articles'] / 60, 1)} min of this machine ({num(c['ours_core_h_per_1000_articles'], 2)} core-hours), "
        f"BASELINE {num(c['baseline_s_per_1000_articles'] / 60, 1)} min. The embedding cache makes this a one-off cost "
        "for OURS; the BASELINE pays it again at every rebuild.",
        f"Scale-out (computed from the one-thread rate; `rag index --ray`, Ray overhead ignored): "
        f"{num(c['one_core_h_per_1000_articles'], 2)} core-hours per 1,000 articles, {num(c['one_core_h_full_corpus'], 1)} "
        f"core-hours for the {int(max(lex, key=int)):,} articles here: ≈ {num(c['one_core_h_full_corpus'] / 16, 1)} h on "
        f"16 one-core workers, ≈ {num(c['one_core_h_full_corpus'] / 64, 2)} h on 64."])


def reindex(res: dict) -> str:
    d, c, scale = res["default_corpus"], res["computed"], res["change_one_at_scale"]
    base = d["baseline_full_rebuild"]
    big = c["per_size"].get(str(scale["articles"]), {})
    rows = [
        [f"default corpus, first build ({d['build']['chunks']} chunks, model loaded)",
         f"{num(d['build']['seconds'], 2, ' s')} ({d['build']['embedded_by_model']} embedded)",
         num(base["seconds"], 2, " s"), ratio(d["build"]["seconds"], base["seconds"])],
        ["default corpus, nothing changed", f"{num(d['no_change']['seconds'], 2, ' s')} ({d['no_change']['embedded_by_model']} embedded)",
         f"{num(base['seconds'], 2, ' s')} (rebuilds anyway)", ratio(d["no_change"]["seconds"], base["seconds"])],
        ["default corpus, one article changed (in process, model loaded)",
         f"{num(d['one_change']['seconds'], 2, ' s')} ({d['one_change']['embedded_by_model']} of {d['one_change']['chunks']} chunks embedded)",
         f"{num(base['seconds'], 2, ' s')} (all {base['chunks']} re-embedded)", ratio(d["one_change"]["seconds"], base["seconds"])],
        ["default corpus, one article changed, `rag index` in a fresh process",
         num(d["one_change_cli"]["seconds"], 2, " s")
         + (f" (lexically searchable after {num(d['one_change_cli']['searchable_s'], 2, ' s')})"
            if d["one_change_cli"].get("searchable_s") is not None else ""),
         f"{num(base['seconds'] + d['model_load_s'], 2, ' s')} (computed: rebuild + model load {num(d['model_load_s'], 1, ' s')})",
         ratio(d["one_change_cli"]["seconds"], base["seconds"] + d["model_load_s"])],
        [f"{scale['articles']:,} articles, one article changed",
         f"{num(scale['read_s'] + scale['update_s'], 1, ' s')} lexical (measured: read {num(scale['read_s'], 1, ' s')} + update "
         f"{num(scale['update_s'], 1, ' s')}) → {num(c['ours_reindex_one_change_at_scale_s'], 1, ' s')} with its "
         f"{scale['changed_article_chunks']} chunks embedded (computed)",
         f"{num(big.get('baseline_reindex_one_change_s', 0) / 3600, 2, ' h')} (computed)",
         ratio(c["ours_reindex_one_change_at_scale_s"], big.get("baseline_reindex_one_change_s"))],
    ]
    return "### Re-index after one article changed (OURS incremental vs BASELINE full re-embed + flat rebuild)\n\n" + table(
        ["case", "OURS", "BASELINE", "ours/baseline"], rows) + (
        f"\n\nThe edit appends one sentence to a middle paragraph. Peak RSS of the default-corpus process "
        f"(model loaded): {num(d['peak_rss_mb'], 0, ' MB')}.")


def fill_in(res: dict) -> str:
    f = res["fill_in"]
    if section_problem(f):
        return f"### Lexical first, then resumable dense fill-in\n\n{section_problem(f)}"
    lex = res["lexical"][str(f["articles"])]
    rate = res["dense_rate"]["ours"]["passages_per_s"]
    embed_s = f["step"] / rate
    rows = [["`max_embed=0` (lexical first)", num(lex["read_s"] + lex["index_s"], 1, " s"), 0, 0, f"{lex['chunks']:,}"]]
    rows += [[f"`max_embed={f['step']}` run {i}", num(r["seconds"], 1, " s"), r["embedded"], f"{r['vectors']:,}",
              f"{r['without_vector']:,}"] for i, r in enumerate(f["runs"], 1)]
    return (f"### Lexical first, then resumable dense fill-in, {f['articles']:,} articles (OURS)\n\n"
            + table(["run", "seconds", "newly embedded", "vectors", "lexical-only chunks"], rows)
            + f"\n\nEach fill-in run also loads the embedder ({num(f['model_load_s'], 1, ' s')}, not in the seconds above). "
              f"Beyond its embedding ({f['step']} chunks at the measured {num(rate, 2)} passages/s ≈ {num(embed_s, 1, ' s')}), "
              f"the last run spent {num(f['runs'][-1]['seconds'] - embed_s, 1, ' s')} publishing the new version (BM25 "
              "hard-linked from the previous version since the chunks did not change; chunks, articles and vectors "
              "rewritten). A fill-in step should embed thousands of chunks, not tens.")


# ------------------------------------------------------------------ 2. retrieval


def retrieval_section(res: dict | None) -> str:
    out = ["## 2. Retrieval"]
    problem = section_problem(res)
    if problem:
        return "\n\n".join(out + [problem])
    sizes = sorted(res["sizes"].items(), key=lambda kv: int(kv[0]))
    first = sizes[0][1]
    out.append(
        f"`Retriever.search(k=10)` latency in ms, **p50 / p95** over {first['queries']} queries (titles of sampled "
        "articles). Dense vectors are **random unit vectors** (768-d) of the right count: embedding 22k articles "
        "for real takes hours, and search latency does not depend on the values. Query vectors are given, so "
        "query embedding is not in these figures (see below). BASELINE = a bare `IndexFlatIP.search` (dense "
        "only, no fusion), the baseline system's whole search.")
    out.append(table(
        ["articles", "chunks", "bm25", "dense (flat)", "hybrid (flat)", "dense (flat, 1 thread)",
         "hybrid (flat, 1 thread)", "dense (HNSW)", "hybrid (HNSW)", "BASELINE bare flat", "hybrid flat ours/baseline (p50)"],
        [[f"{int(n):,}", f"{v['chunks']:,}"] + [pq(v["latency_ms"].get(name)) for name in LATENCY_COLUMNS]
         + [pq(v["latency_ms"]["baseline_flat"], digits=2),
            ratio(v["latency_ms"]["hybrid_flat"]["p50"], v["latency_ms"]["baseline_flat"]["p50"])] for n, v in sizes]))
    h = sizes[-1][1].get("hnsw", {})
    out.append(
        f"\"1 thread\": FAISS limited to one OpenMP thread (`faiss.omp_set_num_threads(1)`) — a single query gains little "
        "from threads, and on a busy machine each parallel region waits for a core. HNSW: `IndexHNSWFlat(768, "
        f"M={h.get('M')})` in `IndexIDMap2`, efSearch {h.get('efSearch')}; its recall is the share of the exact top-50 "
        "it returns, on random vectors (HNSW's worst case: real embeddings cluster and do better). \"Hybrid as served "
        "now\": the lexical-first index as built (no random vectors), a new `Retriever` per query as `Pipeline.search` "
        "does.\n\n" + table(
            ["articles", "hybrid as served now (vectors in index)", "recall@10 bm25 (title → article)", "index load",
             "index RSS", "peak RSS", "HNSW build", "HNSW recall@50 vs exact"],
            [[f"{int(n):,}", f"{pq(v['latency_ms'].get('hybrid_as_loaded'))} ({v.get('vectors_as_loaded', '–')})",
              num(v["recall10_bm25"], 3), num(v["index_load_s"], 2, " s"), num(v["rss_index_mb"], 0, " MB"),
              num(v["peak_rss_mb"], 0, " MB"), num(v.get("hnsw", {}).get("build_s"), 2, " s"),
              num(v.get("hnsw", {}).get("recall50_vs_exact_random_vectors"), 3)] for n, v in sizes]))
    mm = res.get("bm25_mmap", {})
    if mm:
        out.append(f"BM25 load lever, {int(sizes[-1][0]):,} articles (`bm25s.BM25.load(mmap=...)`):\n\n" + table(
            ["mode", "load", "RSS after load", "bm25 query p50 / p95 (top-50)", "peak RSS"],
            [["in RAM (now)" if k == "false" else "memory-mapped", num(v["load_s"], 3, " s"), num(v["rss_after_load_mb"], 1, " MB"),
              pq(v["latency_ms"], digits=2) + " ms", num(v["peak_rss_mb"], 0, " MB")] for k, v in mm.items()]))
    q = res.get("query_encode")
    if q:
        big = sizes[-1][1]["latency_ms"]["hybrid_flat"]
        out.append(f"Query embedding (EmbeddingGemma `encode_query`, one query at a time; OURS and BASELINE both pay it): "
                   f"p50 / p95 **{pq(q['latency_ms'])} ms** (model load {num(q['model_load_s'], 1, ' s')}, peak RSS "
                   f"{num(q['peak_rss_mb'], 0, ' MB')}). A real hybrid query at {int(sizes[-1][0]):,} articles: ≈ "
                   f"{num(big['p50'] + q['latency_ms']['p50'], 0, ' ms')} p50 (computed: sum of the two p50s).")
    return "\n\n".join(out)


# ------------------------------------------------------------------ 3. ask


def ask_section(res: dict | None) -> str:
    out = ["## 3. End-to-end `ask()` (default corpus, live index)"]
    problem = section_problem(res)
    if problem:
        return "\n\n".join(out + [problem])
    ws, bs, cold = res["warm_summary"], res["baseline_summary"], res["cold"]
    s = 0.001

    def row(label: str, summ: dict) -> list:
        return [label, pq(summ["first_token"], s, 2), pq(summ["first_output"], s, 2), pq(summ["total"], s, 2),
                pq(summ["tokens_per_s"]), pq(summ["prompt_tokens"], digits=0), f"{summ['abstained']} of {summ['questions']}"]

    def p50(summ: dict, key: str):
        return summ[key]["p50"] if summ[key].get("n") else None

    out.append(
        f"Model `{res['model']}`; questions from `{res['questions_from']}`. Times in s, **p50 / p95**, from the "
        "question to the first generated token, to the first *verified* sentence shown, and to the end. "
        "BASELINE A = the full top-k chunks in the prompt (no sentence selection, no verification), same model, same "
        "process.\n\n" + table(
            ["", "first token", "first verified output", "total", "tokens/s", "prompt tokens (text, no template)", "abstained"],
            [row(f"OURS, warm ({ws['questions']} questions)", ws),
             row(f"BASELINE A, warm ({bs['questions']} questions)", bs),
             ["ours/baseline (p50)", ratio(p50(ws, "first_token"), p50(bs, "first_token")), "–",
              ratio(p50(ws, "total"), p50(bs, "total")), ratio(p50(ws, "tokens_per_s"), p50(bs, "tokens_per_s")),
              ratio(p50(ws, "prompt_tokens"), p50(bs, "prompt_tokens")), ""]]))
    since = cold.get("since_launch", {})
    out.append(
        f"Cold (the first question in a fresh process, counted from the process launch: interpreter, imports, "
        f"index, embedder and LLM loads included): first token {num(since.get('first_token', 0) / 1000, 2, ' s')}, "
        f"first verified output {num(since.get('first_output', 0) / 1000, 2, ' s') if 'first_output' in since else '–'}, "
        f"total {num(since.get('total', 0) / 1000, 2, ' s')}; peak RSS of that process {num(res['peak_rss_mb'], 0, ' MB')}.")
    out.append(warmup(res.get("warmed"), since))
    out.append("Per question (OURS warm, then the cold one):\n\n" + table(
        ["question", "first token", "first output", "total", "new tokens", "abstained", "answer"],
        [[r["question"], num(_s(r.get("first_token")), 2), num(_s(r.get("first_output")), 2), num(_s(r.get("total")), 2),
          r.get("new_tokens", "–"), "yes" if r["abstained"] else "", r["answer"].replace("|", "/")[:90]]
         for r in res["warm"] + [cold]]))
    out.append(backends(res.get("backends")))
    return "\n\n".join(out)


def warmup(res: dict | None, cold_since: dict) -> str:
    problem = section_problem(res)
    if problem:
        return f"Warm-up at start-up: {problem}"
    cold_total = cold_since.get("total")
    return (
        "Warm-up at start-up, as the app does it (`Pipeline.warm_up()`: the index, both models, and the fixed "
        "system prompt evaluated once), in a fresh process before its first question. "
        f"Ready {num(res['ready_since_launch_s'], 1, ' s')} after launch (warm-up itself {num(res['warmup_s'], 1, ' s')}); "
        f"then the first question: first token {num(_s(res.get('first_token')), 2, ' s')}, first verified output "
        f"{num(_s(res.get('first_output')), 2, ' s')}, total {num(_s(res.get('total')), 2, ' s')} — against "
        f"{num(_s(cold_total), 2, ' s')} from launch for the cold question above. The app runs it in the "
        "background while the page loads and the user types.")


def _s(ms):
    return ms / 1000 if ms is not None else None


def backends(res: dict | None) -> str:
    title = "### Generation backend: llama.cpp (OURS) vs transformers (BASELINE B)"
    if not res or "skipped" in res or "error" in res:
        return f"{title}\n\n{section_problem(res)}"
    rows, stats = [], {}
    for name in ("llama", "transformers"):
        b = res[name]
        if "error" in b:
            rows.append([name, "failed: " + b["error"], "", "", "", ""])
            continue
        stats[name] = {k: b["summary"][k].get("p50") for k in ("first_token", "tokens_per_s", "total")}
        rows.append([name, num(b["load_s"], 1, " s"), num(_s(stats[name]["first_token"]), 2, " s"),
                     num(stats[name]["tokens_per_s"], 1), num(_s(stats[name]["total"]), 2, " s"), num(b["peak_rss_mb"], 0, " MB")])
    if len(stats) == 2:
        o, t = stats["llama"], stats["transformers"]
        rows.append(["ours/baseline", ratio(res["llama"]["load_s"], res["transformers"]["load_s"]),
                     ratio(o["first_token"], t["first_token"]), ratio(o["tokens_per_s"], t["tokens_per_s"]),
                     ratio(o["total"], t["total"]), ratio(res["llama"]["peak_rss_mb"], res["transformers"]["peak_rss_mb"])])
    n = len(res.get("llama", {}).get("runs", []))
    return (f"{title}\n\nThe same {n} OURS prompts, model `{res['model']}` (GGUF Q4_K_M; transformers dequantises it), "
            f"at most {res['max_tokens']} new tokens, p50 over the prompts.\n\n"
            + table(["backend", "load", "first token", "tokens/s", "total", "peak RSS"], rows))


# ------------------------------------------------------------------ 4. start-up


def cold_total_s(results: dict) -> float | None:
    """Launch-to-answer of the cold ask() in benchmark 3: what start-up costs without a web server."""
    total = ((results.get("ask") or {}).get("cold") or {}).get("since_launch", {}).get("total")
    return total / 1000 if total else None


def startup_section(results: dict) -> str:
    res = results.get("startup")
    out = ["## 4. App start-up (`python app.py --port N` → first answered question)"]
    problem = section_problem(res)
    if problem:
        return "\n\n".join(out + [problem])
    cold = cold_total_s(results)
    reference = f" For reference, the cold `ask()` of section 3 (no web server) answered {num(cold, 1, ' s')} after its launch." if cold else ""
    return "\n\n".join(out + [
        f"Serving after {num(res['listening_s'], 1, ' s')}; first answer (Gradio API `/ask`, via gradio_client) after "
        f"**{num(res['first_answer_s'], 1, ' s')}** (target ≤ 20 s). Question: “{res['question']}”.{reference}"])


def render(doc: dict) -> str:
    r = doc["results"]
    parts = [header(doc), targets(doc), ingestion(r.get("ingest")), retrieval_section(r.get("retrieval")),
             ask_section(r.get("ask")), startup_section(r)]
    return "\n\n".join(parts) + "\n"
