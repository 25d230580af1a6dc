"""Download a base model and an adapter (pinned revisions) into one local folder for offline use.

`huggingface_hub.snapshot_download` fetches into the standard Hub cache (or finds the files
there when offline), then the files are hard-linked (copied across disks) into
OUT/base and OUT/adapter, beside a `pricer-download.json` that records the repos and commits.
Afterwards `--model OUT/base --adapter OUT/adapter` work with HF_HUB_OFFLINE=1.

Access tokens come from HF_TOKEN or `hf auth login`, read by huggingface_hub itself; pricer
never sees, prints or stores them.
"""

import json
import os
import shutil
from pathlib import Path

SAFE_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.md"]
MANIFEST = "pricer-download.json"


def fetch(repo: str, target: Path, revision: str | None = None, allow_pickle: bool = False) -> dict:
    """Snapshot one Hub repo into `target`; returns what was fetched."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import filter_repo_objects

    from pricer.models.load import hub_errors

    patterns = SAFE_FILES + (["*.bin"] if allow_pickle else [])
    with hub_errors("model", repo, revision):
        snapshot = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns))
    # Offline, snapshot_download returns the whole cached snapshot: filter it the same way.
    files = sorted(filter_repo_objects(
        [str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()],
        allow_patterns=patterns))
    if target.exists():
        shutil.rmtree(target)
    for name in files:
        source, dest = (snapshot / name).resolve(), target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, dest)  # no second copy of a multi-GB file
        except OSError:
            shutil.copy2(source, dest)
    return {"repo": repo, "revision": revision or "main", "commit": snapshot.name, "files": files}


def download(base: str, out: str | Path, adapter: str | None = None, revision: str | None = None,
             adapter_revision: str | None = None, allow_pickle: bool = False) -> dict:
    """Fetch base (and adapter) into OUT/base (OUT/adapter), check they load, write the manifest."""
    from pricer.models.load import check_model_folder, resolve_adapter

    out = Path(out).expanduser()
    manifest = {"base": fetch(base, out / "base", revision, allow_pickle)}
    check_model_folder(out / "base", allow_pickle)
    if adapter:
        manifest["adapter"] = fetch(adapter, out / "adapter", adapter_revision, allow_pickle)
        resolve_adapter(str(out / "adapter"), allow_pickle=allow_pickle)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest
