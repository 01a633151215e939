"""Hugging Face Hub side of the datasets: push a written `hf/` folder, read parquet datasets back as rows."""

from __future__ import annotations

from pathlib import Path

from traitbench.errors import TraitbenchError


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def check_can_push(repo: str) -> None:
    """One-line TraitbenchError unless `repo` is a valid dataset repo id, the Hub is not in offline mode and
    credentials are there (HF_TOKEN or `hf auth login`). Makes no network request."""
    # heavy (huggingface_hub): only with --push-to-hub; the CLI imports this module
    from huggingface_hub import get_token, is_offline_mode
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as e:
        msg = f"--push-to-hub: {repo!r} is not a Hub repo id (owner/name): {_first_line(e)}"
        raise TraitbenchError(msg) from None
    if is_offline_mode():
        raise TraitbenchError(f"cannot push to {repo}: the Hugging Face Hub is in offline mode (HF_HUB_OFFLINE is set)")
    if not get_token():
        raise TraitbenchError(f"cannot push to {repo}: no Hugging Face credentials "
                              "(set HF_TOKEN or run `hf auth login`)")


def push_dataset(folder: str | Path, repo: str, private: bool = False) -> str:
    """Upload a written `hf/` folder (README.md card + data/) to the dataset repo `repo`, creating it when
    missing; returns the commit URL. Offline, without credentials or when the Hub cannot be reached: a
    one-line TraitbenchError (the local folder is untouched)."""
    # heavy (huggingface_hub and its HTTP client): only with --push-to-hub
    import httpx2
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise TraitbenchError(f"{folder}: not a written dataset folder (README.md and data/ expected)")
    check_can_push(repo)
    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                                 commit_message="traitbench dataset")
    except (OSError, ValueError, httpx2.HTTPError) as e:  # HTTP, connection, offline and validation errors
        raise TraitbenchError(f"cannot push {folder} to {repo}: {_first_line(e)}") from None
    return str(info.commit_url)


def parquet_files(folder: str | Path) -> list[Path]:
    """The parquet files of a dataset folder: its own *.parquet, else those under data/ (a Hub layout such as a
    traitbench `hf/` folder), keeping only the train split's files when the names mark splits."""
    folder = Path(folder)
    files = sorted(folder.glob("*.parquet")) or sorted((folder / "data").glob("*.parquet"))
    train = [f for f in files if f.name == "train.parquet" or f.name.startswith("train-")]
    return train or files


def read_parquet_rows(files: list[Path], required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of the parquet files, in order; a missing, unreadable or column-lacking file raises TraitbenchError."""
    # heavy (pyarrow): only for a parquet dataset
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        if not f.is_file():
            raise TraitbenchError(f"input file not found: {f}")
        try:
            table = pq.read_table(f)
        except (pa.ArrowException, OSError) as e:
            raise TraitbenchError(f"{f}: not a readable parquet file ({_first_line(e)})") from None
        missing = [c for c in required if c not in table.column_names]
        if missing:
            raise TraitbenchError(f"{f}: missing column(s) {', '.join(missing)} (has: {', '.join(table.column_names)})")
        rows += table.to_pylist()
    return rows
