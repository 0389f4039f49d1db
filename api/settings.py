"""Server settings, from ``HPSEARCH_*`` environment variables (read when the app is built)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HPSEARCH_", extra="ignore")

    storage: str = "sqlite:///hpsearch.db"  # SQLAlchemy URL of the one database
    admin_token: str | None = None  # study management
    worker_token: str | None = None  # the trial protocol
    lease_seconds: float = Field(60.0, gt=0)  # a claimed item without news this long is reaped
    max_retries: int = Field(2, ge=0)  # re-enqueues of a reaped trial's parameters
    max_body_bytes: int = Field(1_048_576, gt=0)  # larger request bodies get 413
    # requests handled at once per server process (each holds a database connection or two)
    threads: int = Field(16, ge=1, le=256)
    # a study whose work item would need more memory than this (estimated from its spec: the
    # data set, the model's weights and a batch's activations) is refused at launch
    max_item_memory_gib: float = Field(16.0, gt=0, allow_inf_nan=False)
    # where uploaded datasets are kept (one file each, named by its sha256), and the largest
    data_dir: str = "hpsearch-datasets"
    max_upload_bytes: int = Field(2 * 2**30, gt=0)
    # where the studies' model files are kept (optuna.artifacts; default: beside a SQLite
    # database, else ./hpsearch-artifacts), and the largest one a worker may upload
    artifact_dir: str | None = None
    max_artifact_bytes: int = Field(2 * 2**30, gt=0)
    # the directories (os.pathsep between them) under which a spec may name the server's own
    # files as its data or its init model; empty: only uploaded ones (sha256:<hex>)
    data_roots: str = ""

    @property
    def roots(self) -> list[Path]:
        """``data_roots`` as real paths (symlinks followed, as the paths checked against them)."""
        listed = [r for r in self.data_roots.split(os.pathsep) if r]
        return [Path(os.path.realpath(Path(r).expanduser())) for r in listed]

    @property
    def datasets(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def open(self) -> bool:
        """No tokens configured: every route is open (allowed on a loopback host only)."""
        return self.admin_token is None and self.worker_token is None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_can_serve(settings: Settings, host: str, processes: int = 1) -> str | None:
    """Why the server must not start on ``host`` (with ``processes`` server processes) with these
    settings, or None if it may."""
    if processes > 1 and not settings.storage.startswith(("postgresql", "postgres:")):
        return (
            "several server processes need PostgreSQL (their claims take its advisory locks): "
            "a SQLite file or a MySQL/MariaDB database is served by one process"
        )
    if settings.open and not is_loopback(host):
        return (
            f"refusing to serve on {host} without tokens: set HPSEARCH_ADMIN_TOKEN and "
            "HPSEARCH_WORKER_TOKEN, or serve on a loopback address such as 127.0.0.1"
        )
    if settings.admin_token is not None and settings.admin_token == settings.worker_token:
        return "HPSEARCH_ADMIN_TOKEN and HPSEARCH_WORKER_TOKEN must differ"
    return None
