"""`pricer data --engine dask`: `pipeline.curate_chunk` runs on the workers of a Dask cluster (a
local one of `workers` processes, or a running one at `scheduler`); this process reads the input
(any format: the file is only needed here), balances, splits and saves, as with local processes.

Why Dask: pure Python and pip-installable (no JVM as Spark, no large native runtime as Ray), its
futures map one to one onto `pipeline.ordered_map`'s ordered, windowed map, and `LocalCluster` is
a real multi-process cluster for the tests.

The tokenizer is sent once to every worker (`scatter(..., broadcast=True)`); each chunk then goes
with `submit`, at most `workers * window` chunks in flight, and the results come back in input
order, so the output is the local engine's. The workers of a local cluster die with this process,
even when it is killed (SIGKILL): each holds the reading end of a pipe from it and exits when the
pipe closes (`distributed.process.AsyncProcess`; tests/test_data_engine_dask.py checks it).
"""

import logging
import signal
import threading
from collections import deque
from concurrent.futures import CancelledError
from contextlib import contextmanager

from pricer.data import pipeline
from pricer.errors import PricerError

CONNECT_TIMEOUT = "10s"  # to reach a scheduler, and for it to have a worker
NEEDS = "the dask engine needs: pip install 'pricer[distributed]'"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class DaskEngine:
    """One Dask client for a `pricer data` run, and a map with `pipeline.ordered_map`'s
    signature over it:

        with DaskEngine(scheduler=None, workers=2) as engine:
            for result, position in engine(chunks, spec, tokenizer, workers): ...

    `scheduler=None` starts a local cluster of `workers` single-threaded processes for the run
    and closes it at the end; an address (`tcp://host:8786`) connects to a running cluster."""

    def __init__(self, scheduler: str | None = None, workers: int = 2):
        self.scheduler, self.workers = scheduler, workers
        self.client = self.cluster = None

    def __enter__(self):
        try:
            from distributed import Client, LocalCluster
            from distributed.gc import disable_gc_diagnosis
        except ImportError:
            raise PricerError(NEEDS) from None
        if self.scheduler is None:
            # One process per core instead of Rust threads, as the local engine does; its
            # HTTP server on a free local port (two runs at once would clash on 8787).
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                        processes=True, dashboard_address="127.0.0.1:0",
                                        env={"TOKENIZERS_PARALLELISM": "false"},
                                        preload=[__name__],  # dask_setup, below
                                        silence_logs=logging.ERROR)
            try:
                self.client = Client(self.cluster)
                # The scheduler, here in-process, logs the driver's garbage collections through a
                # gc callback (INFO lines that silence_logs hides anyway); a Ctrl-C landing in that
                # callback would be printed and ignored, and the run would go on.
                disable_gc_diagnosis(force=True)
            except BaseException:
                self.close()
                raise
            return self
        try:
            self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise PricerError(f"cannot reach the Dask scheduler at {self.scheduler}: "
                              f"{_first_line(e)}") from None
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            self.close()
            raise PricerError(f"the Dask scheduler at {self.scheduler} has no worker (start "
                              f"some: dask worker {self.scheduler} --nthreads 1)") from None
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for part in (self.client, self.cluster):
            if part is not None:
                part.close()
        self.client = self.cluster = None

    def __call__(self, chunks, spec, tokenizer, workers: int | None = None, window: int = 4):
        """curate_chunk over (chunk, position) pairs on the cluster, in order, with at most
        `workers * window` chunks in flight (`workers`: this engine's, or the cluster's worker
        threads if it has more). Yields (result, position)."""
        client = self.client
        if client is None:
            raise RuntimeError("use DaskEngine in a with block")
        pending: deque = deque()
        shared = None
        with _Interrupts() as interrupts:
            try:
                workers = max(workers or self.workers, sum(client.nthreads().values()), 1)
                shared = client.scatter(tokenizer, broadcast=True, hash=False)
                for chunk, position in chunks:
                    interrupts.check()
                    pending.append((client.submit(pipeline.curate_chunk, chunk, spec, shared,
                                                  pure=False), position))
                    if len(pending) >= workers * window:
                        result = _result(*pending.popleft(), interrupts)
                        with interrupts.outside():
                            yield result
                while pending:
                    result = _result(*pending.popleft(), interrupts)
                    with interrupts.outside():
                        yield result
            finally:
                if pending:
                    client.cancel([future for future, _ in pending])
                if shared is not None:
                    client.cancel([shared])
                    shared.release()


def dask_setup(worker) -> None:
    """Run by each worker of a local cluster as it starts (`preload`). Ctrl-C in the terminal
    reaches the whole process group: the driver handles it (it stops and closes the cluster), so
    the workers ignore it instead of printing tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Interrupts:
    """Ctrl-C while the engine works in this process (submitting chunks, waiting for results)
    is raised at the next chunk, or within 0.2 s of waiting, and not wherever Python happens to
    be: inside Dask's client code, a `__del__` or a gc callback of Dask's, the interrupt would be
    printed and ignored (the run going on) or leave futures half-cancelled. While the caller
    has the chunk (between two results), Ctrl-C raises at once, as usual."""

    def __init__(self):
        self.hit, self.inside, self.installed = False, True, False

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            signal.signal(signal.SIGINT, self._handler)
            self.installed = True
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _handler(self, signum, frame):
        if not self.inside:
            signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt
        self.hit = True

    def check(self) -> None:
        if self.hit:
            self.hit = False
            raise KeyboardInterrupt

    @contextmanager
    def outside(self):
        self.inside = False
        try:
            yield
        finally:
            self.inside = True


def _result(future, position, interrupts: _Interrupts):
    """(future's result, position), waiting for it; Ctrl-C meanwhile raises within 0.2 s."""
    while True:
        try:
            result = future.result(timeout=0.2)
        except TimeoutError:
            interrupts.check()
            continue
        except ImportError as e:  # a worker without pricer (or another version of it)
            raise PricerError(f"a Dask worker cannot run pricer's curation ({_first_line(e)}): "
                              f"install the same pricer on every worker") from None
        except CancelledError:  # e.g. the scheduler was restarted
            interrupts.check()
            raise PricerError("the Dask cluster cancelled a chunk of this run (was its scheduler "
                              "restarted?)") from None
        future.release()  # here, not in its __del__ (see _Interrupts)
        interrupts.check()
        return result, position


def dask_map(chunks, spec, tokenizer, *, scheduler: str | None, workers: int, window: int = 4):
    """`pipeline.ordered_map` on a Dask cluster for one run: yields (curate_chunk's result,
    position) in input order. `scheduler=None`: a local cluster of `workers` processes, started
    here and closed at the end; else the address of a running one (`workers` sizes the window)."""
    with DaskEngine(scheduler, workers) as engine:
        yield from engine(chunks, spec, tokenizer, workers, window)
