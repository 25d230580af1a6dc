"""`pricer data --engine dask`: curation on a Dask cluster (a LocalCluster of 2 worker processes
here) gives the local engine's output row for row; a killed run leaves nothing taken as done and
no worker alive; bad options are one line."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from clirun import assert_bad_input, assert_ok, pricer
from conftest import ROOT
from pricer.data import pipeline, store
from pricer.data import balance as balancing
from test_data_streaming import rows, write_raw

pytest.importorskip("distributed")
from pricer.data import distributed  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from pricer.models.load import load_tokenizer

    return load_tokenizer(str(default_model_dir))


def test_dask_output_is_the_local_output(tmp_path, tokenizer):
    from distributed import get_task_stream

    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 3000)  # a fifth unpriced, every listing several times
    settings = balancing.BalanceSettings(train_size=1200, test_size=150)  # cap 4: real sampling
    runs = {}
    for name in ("processes", "dask"):
        calls = []

        def progress(done, total, **fields):
            calls.append((done, total, fields))

        kwargs = dict(tokenizer=tokenizer, inputs=[raw], balance=settings, workers=2,
                      chunk_size=250, progress=progress)
        if name == "dask":
            with distributed.DaskEngine(None, workers=2) as engine:
                with get_task_stream(client=engine.client) as stream:
                    report = pipeline.build_dataset(tmp_path / name, engine=engine, **kwargs)
                assert len(engine.client.nthreads()) == 2
                ran = [t for t in stream.data if str(t["key"]).startswith("curate_chunk")]
                assert len(ran) == 12 and len({t["worker"] for t in ran}) == 2  # both workers
        else:
            report = pipeline.build_dataset(tmp_path / name, **kwargs)
        runs[name] = report, rows(store.load(tmp_path / name)), calls

    (local, local_rows, local_calls), (dask, dask_rows, dask_calls) = runs.values()
    assert dask_rows == local_rows
    assert local["read"] == 3000 and local["dropped"]["no_price"] == 600
    assert {k: v for k, v in dask.items() if k != "out"} == \
        {k: v for k, v in local.items() if k != "out"}
    assert dask_calls == local_calls and len(local_calls) == 12  # progress: chunk by chunk


def descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_a_killed_dask_run_leaves_nothing_and_no_worker(tmp_path):
    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 6000, listings=2000)
    out = tmp_path / "data"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]))
    args = ["--input", raw, "--out", out, "--train-size", "2000", "--test-size", "100",
            "--chunk-size", "250"]  # 24 chunks: the file stays open while they are curated
    driver = subprocess.Popen([sys.executable, "-m", "pricer", "data", "--engine", "dask",
                               *map(str, args)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        process, workers, deadline = psutil.Process(driver.pid), [], time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            reading = [f for f in process.open_files() if f.path == str(raw) and f.position > 0]
            workers = [p for p in descendants(driver.pid)
                       if "spawn_main" in " ".join(p.cmdline())]
            if reading and len(workers) >= 2:
                break  # curating: chunks are read and on their way to the 2 workers
            time.sleep(0.1)
        assert driver.poll() is None, driver.stderr.read().decode()
        assert len(workers) >= 2, "the local Dask cluster did not start its 2 workers"
        left = descendants(driver.pid)
        driver.send_signal(signal.SIGKILL)
        assert driver.wait(30) == -signal.SIGKILL
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    gone, alive = psutil.wait_procs(left, timeout=15)
    assert not alive, [p.cmdline() for p in alive]  # no worker outlives the killed driver
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == [raw.name]

    again = subprocess.run([sys.executable, "-m", "pricer", "data", *map(str, args)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # no --overwrite needed: nothing was done
    assert store.is_saved_dataset(out)
    assert store.read_report(out)["read"] == 6000


def test_pricer_data_on_a_running_cluster(tmp_path, tokenizer):
    """--scheduler ADDRESS: the CLI (and `dask_map`) connect to a running cluster (here a
    LocalCluster started by the test) and give the local engine's results."""
    from distributed import LocalCluster

    from pricer.data import read

    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 800, listings=400)
    args = ["--input", raw, "--train-size", "300", "--test-size", "40", "--chunk-size", "100"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as cluster:
        assert_ok(pricer("data", *args, "--out", tmp_path / "dask", "--engine", "dask",
                         "--scheduler", cluster.scheduler_address))
        spec = pipeline.Spec("amazon", pipeline.settings_for("amazon-raw"), category="Bench")
        chunks = list(read.chunks(raw, "amazon-raw", chunk_size=50))[:6]
        assert list(distributed.dask_map(chunks, spec, tokenizer, workers=1, window=2,
                                         scheduler=cluster.scheduler_address)) == \
            list(pipeline.ordered_map(chunks, spec, tokenizer, workers=1))
    assert_ok(pricer("data", *args, "--out", tmp_path / "local"))
    assert rows(store.load(tmp_path / "dask")) == rows(store.load(tmp_path / "local"))
    dask, local = (store.read_report(tmp_path / name) for name in ("dask", "local"))
    assert dask.pop("out") != local.pop("out") and dask == local and dask["read"] == 800


def test_bad_engine_options_are_one_line(tmp_path, monkeypatch):
    raw = tmp_path / "raw_meta_Bench.jsonl"
    write_raw(raw, 10)
    base = ["data", "--input", raw, "--out", tmp_path / "out"]
    assert_bad_input(pricer(*base, "--scheduler", "tcp://127.0.0.1:1"),
                     "--scheduler", "--engine dask")
    assert_bad_input(pricer(*base, "--engine", "spark"), "unknown engine", "spark")
    assert_bad_input(pricer("data", "--demo", "--out", tmp_path / "out", "--engine", "dask"),
                     "--demo", "--engine")
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "2s")
    started = time.monotonic()
    assert_bad_input(pricer(*base, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:1"),
                     "cannot reach the Dask scheduler", "tcp://127.0.0.1:1")
    assert time.monotonic() - started < 30
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    assert_bad_input(pricer(*base, "--engine", "dask"), "pip install 'pricer[distributed]'")
    assert not (tmp_path / "out").exists()
    assert_ok(pricer(*base))  # the default engine needs no Dask
