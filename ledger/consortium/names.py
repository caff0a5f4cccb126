"""A member's name in Chinese and English.

On chain a member has one name, written by the consortium as "中文名 (English name)" or in
Chinese alone; the consortium definition may give the English name on its own
(``name_en``), kept in the deployment record. Pages show both.
"""

from __future__ import annotations

__all__ = ["bilingual_name", "split_name"]


def split_name(name: str) -> tuple[str, str | None]:
    """A member's name as the consortium writes it, "中文名 (English name)", in its two parts."""
    text = name.strip()
    if text.endswith(")") and " (" in text:
        zh, en = text[:-1].split(" (", 1)
        return zh.strip(), en.strip() or None
    return text, None


def bilingual_name(name: str, name_en: str | None = None) -> tuple[str, str]:
    """(Chinese, English) for a name read from the chain and the English name the deployment
    knows for it, if any; the English is empty when neither gives one."""
    zh, en = split_name(name)
    return zh, (name_en or "").strip() or en or ""
