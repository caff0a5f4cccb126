"""ledger.contracts.compiler: in-process compilation, memory and disk caches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.contracts import compiler
from ledger.errors import ConfigError

TINY = """# pragma version ~=0.4.3
value: public(uint256)

@external
def set(v: uint256):
    self.value = v
"""


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    d = tmp_path / "contracts"
    d.mkdir()
    (d / "Tiny.vy").write_text(TINY, encoding="utf-8")
    return d


@pytest.fixture
def counting(monkeypatch) -> list[str]:
    """Counts real compilations."""
    calls: list[str] = []
    real = compiler.compile_source

    def spy(source: str, name: str, **kw):
        calls.append(name)
        return real(source, name, **kw)

    monkeypatch.setattr(compiler, "compile_source", spy)
    compiler.clear_memory_cache()
    yield calls
    compiler.clear_memory_cache()


def test_compiles_once_then_hits_memory_and_disk(sources: Path, tmp_path: Path,
                                                 counting: list[str]) -> None:
    cache = tmp_path / "cache"
    first = compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources)
    assert first.bytecode.startswith("0x") and len(first.bytecode) > 10
    assert {e["name"] for e in first.abi} == {"value", "set"}
    assert counting == ["Tiny"]
    assert compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources) is first
    files = list(cache.glob("Tiny-*.json"))
    assert len(files) == 1
    compiler.clear_memory_cache()
    again = compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources)
    assert again == first and counting == ["Tiny"]  # from disk, not recompiled


def test_edited_source_recompiles(sources: Path, tmp_path: Path,
                                  counting: list[str]) -> None:
    cache = tmp_path / "cache"
    first = compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources)
    (sources / "Tiny.vy").write_text(TINY + "\n@external\ndef other():\n    pass\n")
    second = compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources)
    assert second.source_hash != first.source_hash
    assert "other" in {e["name"] for e in second.abi}
    assert counting == ["Tiny", "Tiny"]


def test_corrupt_cache_file_is_ignored(sources: Path, tmp_path: Path,
                                       counting: list[str]) -> None:
    cache = tmp_path / "cache"
    first = compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources)
    (path,) = cache.glob("Tiny-*.json")
    for junk in ("{not json", json.dumps({"name": "Tiny"}),
                 json.dumps({"name": "Tiny", "source_hash": "x", "abi": [], "bytecode": "0x"})):
        path.write_text(junk)
        compiler.clear_memory_cache()
        assert compiler.compiled("Tiny", cache_dir=cache, contracts_dir=sources) == first
    assert len(counting) == 4


def test_unwritable_cache_only_costs_time(sources: Path, tmp_path: Path,
                                          counting: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = compiler.compiled("Tiny", cache_dir=blocker / "cache", contracts_dir=sources)
    compiler.clear_memory_cache()
    normal = compiler.compiled("Tiny", cache_dir=tmp_path / "ok", contracts_dir=sources)
    assert (result.abi, result.bytecode) == (normal.abi, normal.bytecode) and normal.bytecode
    assert not (blocker / "cache").exists()


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDULEDGER_CONTRACT_CACHE_DIR", str(tmp_path / "x"))
    assert compiler.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("EDULEDGER_CONTRACT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compiler.default_cache_dir() == tmp_path / "eduledger" / "contracts"


@pytest.mark.parametrize("name", ["Missing", "../Consortium", "a/b", ""])
def test_unknown_contract(name: str, sources: Path) -> None:
    with pytest.raises(ConfigError) as err:
        compiler.compiled(name, contracts_dir=sources)
    assert err.value.code == "unknown_contract"


def test_compile_error_is_a_config_error(sources: Path, tmp_path: Path) -> None:
    (sources / "Broken.vy").write_text("# pragma version ~=0.4.3\n@external\ndef f(:\n")
    with pytest.raises(ConfigError) as err:
        compiler.compiled("Broken", cache_dir=tmp_path / "c", contracts_dir=sources)
    assert err.value.code == "contract_compile_error"


def test_project_contracts(counting: list[str]) -> None:
    assert compiler.CONTRACTS_DIR == Path(__file__).resolve().parents[1] / "contracts"
    assert compiler.EVM_VERSION == "shanghai"  # node_config's default Besu fork
    for name in compiler.CONTRACT_NAMES:
        art = compiler.compiled(name)
        assert art.source_hash == compiler.cache_key(name, compiler.read_source(name),
                                                     "shanghai")
        assert len(art.bytecode) // 2 - 1 <= 49_152  # EIP-3860 initcode limit
