"""Compile the Vyper sources in contracts/ in-process, cached in memory and on disk.

The cache key is the SHA-256 of the compiler version, the EVM version, the contract
name and the exact source text, so an edited source (or another vyper) is recompiled and
a stale artefact is never used. Artefacts are JSON files written atomically; a cache
directory that cannot be written, or a corrupt file in it, only costs a recompilation.

The EVM version defaults to Shanghai, the fork node_config's Besu genesis enables by
default (no Cancun opcodes such as MCOPY or TSTORE); every newer chain runs it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
EVM_VERSION = "shanghai"
CONTRACT_NAMES = ("Consortium", "AnchorRegistry", "IdentityRegistry")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Compiled:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed deployment bytecode
    source_hash: str  # the cache key (see the module docstring)


_memory: dict[str, Compiled] = {}
_lock = threading.Lock()


def default_cache_dir() -> Path:
    """EDULEDGER_CONTRACT_CACHE_DIR, else $XDG_CACHE_HOME/eduledger/contracts, else
    ~/.cache/eduledger/contracts."""
    from ledger.settings import Settings

    return Settings().contract_cache_dir


def _vyper_version() -> str:
    import vyper

    return str(vyper.__version__)


def cache_key(name: str, source: str, evm_version: str = EVM_VERSION) -> str:
    blob = json.dumps([_vyper_version(), evm_version, name, source], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def compile_source(source: str, name: str, *, evm_version: str = EVM_VERSION) -> Compiled:
    """Compile one Vyper source now, with no caching."""
    import vyper
    from vyper.compiler.settings import Settings
    from vyper.exceptions import VyperException

    try:
        out = vyper.compile_code(
            source,
            contract_path=f"{name}.vy",
            output_formats=["abi", "bytecode"],
            settings=Settings(evm_version=evm_version),
        )
    except VyperException as exc:
        raise ConfigError(f"contract {name} does not compile: {exc}",
                          code="contract_compile_error") from None
    bytecode = str(out["bytecode"])
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return Compiled(name=name, abi=list(out["abi"]), bytecode=bytecode,
                    source_hash=cache_key(name, source, evm_version))


def read_source(name: str, contracts_dir: Path | None = None) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"not a contract name: {name!r}", code="unknown_contract")
    path = (contracts_dir or CONTRACTS_DIR) / f"{name}.vy"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no contract source {path}", code="unknown_contract") from None
    except OSError as exc:
        raise ConfigError(f"cannot read contract source {path}: {exc.strerror}",
                          code="unknown_contract") from None


def compiled(name: str, *, cache_dir: Path | str | None = None,
             contracts_dir: Path | None = None,
             evm_version: str = EVM_VERSION) -> Compiled:
    """The ABI and bytecode of contracts/<name>.vy, compiled at most once per source."""
    source = read_source(name, contracts_dir)
    key = cache_key(name, source, evm_version)
    with _lock:
        hit = _memory.get(key)
        if hit is not None:
            return hit
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = directory / f"{name}-{key[:40]}.json"
        result = _load(path, name, key)
        if result is None:
            result = compile_source(source, name, evm_version=evm_version)
            _store(path, result)
        _memory[key] = result
        return result


def clear_memory_cache() -> None:
    with _lock:
        _memory.clear()


def _load(path: Path, name: str, key: str) -> Compiled | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["source_hash"] != key or data["name"] != name:
            return None
        abi, bytecode = data["abi"], data["bytecode"]
        if not isinstance(abi, list) or not isinstance(bytecode, str) or len(bytecode) < 4:
            return None
        return Compiled(name=name, abi=abi, bytecode=bytecode, source_hash=key)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path: Path, result: Compiled) -> None:
    data = {"name": result.name, "source_hash": result.source_hash,
            "abi": result.abi, "bytecode": result.bytecode}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # an unwritable cache only costs a recompilation next time
