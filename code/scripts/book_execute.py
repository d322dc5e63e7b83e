"""Execute the chapters two at a time before Sphinx reads them (a local extension).

myst-nb's ``execute_notebooks: cache`` runs each notebook that has no cache record when
Sphinx reads it, one after the other. Every chapter pins torch to one thread on the CPU
(its models are small), so on the 2-core machine one core idled through most of a clean
build. This extension runs first, at ``env-before-read-docs``: it reads each notebook
Sphinx is about to read exactly as myst-nb will (``create_nb_reader``, the same
configuration), looks it up in the same jupyter-cache, executes those without a record
in a pool of processes, and writes their records as myst-nb would (the same execution
function, working directory, timeout, and ``execution_seconds``). When Sphinx then
reads the chapters, myst-nb finds every record and uses it, so the pages are what a
serial build makes: the cache is keyed by the code cells, and each notebook's outputs
come from its own fresh kernel either way.

A notebook that fails here gets no record: myst-nb executes it again in the usual way
and fails the build with its own message (a failure costs its time twice).

Jobs: ``OPTBOOK_BUILD_JOBS`` (default: the CPUs this process may use, at most 2, since
the build report and the budget test read each chapter's own time; on a GPU machine
the chapters would share one device). ``OPTBOOK_BUILD_JOBS=1`` turns it off. Chapters
with a recorded time start longest first, so the workers finish together. (Tried first
while five chapters still used two threads each: they ran 4-5 times slower beside
another chapter, their idle threads spinning.)
"""

from __future__ import annotations

import fnmatch
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)


def jobs() -> int:
    value = os.environ.get("OPTBOOK_BUILD_JOBS")
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"OPTBOOK_BUILD_JOBS must be a positive integer, got {value!r}")
        return int(value)
    return max(1, min(2, len(os.sched_getaffinity(0))))


def _execute(nb: dict, cwd: str, timeout, allow_errors: bool):
    """One notebook in its own kernel, as myst-nb's cache client runs it. Idle OpenMP
    threads sleep rather than spin (the kernel inherits it; as in tests/conftest.py,
    it changes no number), in case a chapter uses more than one thread."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.from_dict(nb)
    result = single_nb_execution(nb, cwd=cwd, timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    error = None if result.err is None else type(result.err).__name__
    return nb, result.time, error


def pending(env, docnames):
    """The cache, and (docname, path, notebook, read_fmt) of each notebook without a
    record in it."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    nb_config = env.mystnb_config
    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    todo = []
    for docname in sorted(docnames):
        path = str(env.doc2path(docname))
        if any(fnmatch.fnmatch(path, p) for p in nb_config.execution_excludepatterns):
            continue
        try:
            content = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        reader = create_nb_reader(path, env.myst_config, nb_config, content)
        if reader is None:
            continue
        notebook = reader.read(content)
        if nb_config.metadata_key in notebook.metadata or nb_config.kernel_rgx_aliases:
            continue  # per-notebook settings: left to myst-nb itself
        try:
            cache.match_cache_notebook(notebook)
        except KeyError:
            todo.append((docname, path, notebook, reader.read_fmt))
    return cache, todo


def last_seconds(cache) -> dict[str, float]:
    """Each notebook's most recent recorded execution time, by absolute path."""
    seconds = {}
    for record in sorted(cache.list_cache_records(), key=lambda r: r.created):
        value = record.data.get("execution_seconds")
        if value is not None:
            seconds[record.uri] = float(value)
    return seconds


def execute_in_parallel(app, env, docnames):
    nb_config = env.mystnb_config
    if nb_config.execution_mode != "cache" or nb_config.execution_in_temp:
        return
    workers = jobs()
    if workers < 2:
        return
    from jupyter_cache.base import CacheBundleIn

    cache, todo = pending(env, docnames)
    if len(todo) < 2:
        return
    known = last_seconds(cache)
    todo.sort(key=lambda t: -known.get(str(Path(t[1]).absolute()), 0.0))
    logger.info(f"[book_execute] executing {len(todo)} notebooks, {workers} at a time")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                             mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(_execute, notebook, str(Path(path).parent),
                        nb_config.execution_timeout,
                        nb_config.execution_allow_errors): (docname, path, read_fmt)
            for docname, path, notebook, read_fmt in todo}
        for future in as_completed(futures):
            docname, path, read_fmt = futures[future]
            executed, seconds, error = future.result()
            if error is not None:
                logger.info(f"[book_execute] {docname}: {error}; myst-nb runs it again")
                continue
            stage = cache.add_nb_to_project(path, read_data=read_fmt)
            cache.cache_notebook_bundle(
                CacheBundleIn(executed, stage.uri, data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)
            logger.info(f"[book_execute] {docname}: executed in {seconds:.2f} s")
    logger.info(f"[book_execute] done in {time.perf_counter() - start:.1f} s")


def setup(app):
    # env-before-read-docs: after myst-nb's builder-inited set env.mystnb_config, and
    # before the first document is parsed
    app.connect("env-before-read-docs", execute_in_parallel, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
