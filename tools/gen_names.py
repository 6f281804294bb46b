#!/usr/bin/env python3
"""Generate the name dictionary of the free-text cleaner (development time only).

Reads the per-locale person-name lists that ``faker`` ships (MIT licence, about
80 locales: first names, last names, Japanese kana and Chinese, Japanese and
Korean names in their own scripts) and Webster's Second International word
list as packaged by ``english-words`` (public domain), and writes
``privguard/text/_data/names.json.gz``:

* ``first`` / ``last``: Latin-script given names and surnames, folded to lower
  case without accents (``josé`` -> ``jose``), plus :data:`SUPPLEMENT_FIRST`;
* ``ambiguous``: those name words that Webster's lists as ordinary lower-case
  words but not as proper nouns (``rose``, ``brown``, ``hand``): never a name on
  their own (the cleaner adds common words that are also given names, such as
  ``will``, ``may``, ``mark``, by hand);
* ``english``: lower-case English words of 4+ letters (used to tell a reference
  code such as ``UXQTYG`` from a word such as ``ROUTINE`` after ``protocol``);
* ``zh_surnames`` / ``zh_given`` / ``ja_surnames`` / ``ja_given`` /
  ``ko_surnames`` / ``ko_given``: names in Han, kana and Hangul.

privguard never imports faker or english-words at run time: the output is
committed, so the cleaner loads one small file and its results do not change
when those packages do. Usage (with the ``dev`` extra installed)::

    python tools/gen_names.py
"""

from __future__ import annotations

import gzip
import importlib
import json
import pkgutil
import re
import unicodedata
from importlib import metadata
from pathlib import Path
from typing import Any

# Particles of compound surnames (connectors, never names on their own): the cleaner's own list.
from privguard.text.names import PARTICLES

OUT = Path(__file__).resolve().parents[1] / "privguard" / "text" / "_data" / "names.json.gz"
_LATIN_WORD = re.compile(r"^[a-z][a-z'\-]*[a-z]$")


def fold(word: str) -> str:
    """Lower case without accents (the cleaner folds text the same way)."""
    nfkd = unicodedata.normalize("NFKD", word)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).lower()


def _values(v: Any) -> list[str]:
    if isinstance(v, dict):
        return _values(list(v))
    if isinstance(v, list | tuple):
        out: list[str] = []
        for x in v:
            out += _values(x) if isinstance(x, list | tuple) else [str(x)]
        return out
    return []


def _script(word: str) -> str:
    for ch in word:
        name = unicodedata.name(ch, "")
        if name.startswith("HANGUL"):
            return "ko"
        if name.startswith(("HIRAGANA", "KATAKANA")):
            return "kana"
        if name.startswith("CJK"):
            return "han"
    return "latin"


def collect() -> dict[str, set[str]]:
    import faker.providers.person as person

    out: dict[str, set[str]] = {
        k: set()
        for k in (
            "first",
            "last",
            "zh_surnames",
            "zh_given",
            "ja_surnames",
            "ja_given",
            "ko_surnames",
            "ko_given",
        )
    }
    for mod in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{mod.name}").Provider
        locale = mod.name
        for attr in dir(provider):
            if attr.startswith("_") or not ("first_name" in attr or "last_name" in attr):
                continue
            value = getattr(provider, attr)
            if callable(value):
                continue
            kind = "first" if "first" in attr else "last"
            for full in _values(value):
                for word in re.split(r"[\s\-]+", full.strip()):
                    word = word.strip(".,")
                    if not word:
                        continue
                    script = _script(word)
                    if script == "latin":
                        f = fold(word)
                        if _LATIN_WORD.match(f) and f not in PARTICLES and len(f) >= 2:
                            out[kind].add(f)
                        continue
                    if locale.startswith("ko"):
                        if script == "ko":
                            out["ko_surnames" if kind == "last" else "ko_given"].add(word)
                    elif locale.startswith("ja"):
                        # kana in katakana form; hiragana text is folded to katakana at match time
                        out["ja_surnames" if kind == "last" else "ja_given"].add(word)
                    elif locale.startswith("zh") and script == "han":
                        out["zh_surnames" if kind == "last" else "zh_given"].add(word)
    return out


#: Given names faker's Latin-script lists lack: romanized Chinese (pinyin), Japanese and Korean
#: given names, and West African given names (hand-written, common names only; words of three
#: letters or fewer that are chemical symbols or abbreviations are left out).
SUPPLEMENT_FIRST = """
wei mei ming hong jing jun lei jie fang ying hui xin hao ling yan ping qiang yong gang tao bin
chao feng hua jian kai lan lian liang lin long qing rong rui shan sheng shu tian ting wen xia
xiang xiao xue yang yao yifan yue yun zhen zhi zhong zhiwei xiaoming xiaodong xiaoli xiaoyan
jianhua jianguo haiyan lihua guoqiang yuxuan zihan zixuan haoran yichen yutong jiayi xinyi
keiko yuki yoko akiko naoko kazuko tomoko yumiko hiroko michiko haruka yui aoi hina sakura rin
hiroshi takashi kenji makoto satoshi yuto haruto sota riku daiki kaito ren takumi shota
kazuki ryota yusuke daisuke kenta naoki hideo akira osamu
minjun seoyeon jiwoo jihoon seojun hayoon doyoon jiho eunji minji jiyeon hyunwoo jungwoo
sungmin youngho jaehyun dongwook
oluwaseun oluwadamilare olumide oluwatobi adebayo adewale ayodele babatunde chukwuemeka chidi
chinonso chiamaka ngozi nnamdi obinna ikechukwu emeka ifeoma uchenna kelechi folake funmilayo
yetunde temitope kehinde taiwo olamide tolulope kwabena kwaku kofi kojo kwadwo akosua abena
adwoa efua yaw ama esi fiifi nana afia
"""


def english_words() -> tuple[set[str], set[str]]:
    """Webster's lower-case words, and those of them it does not also list as a proper noun."""
    from english_words import get_english_words_set  # type: ignore[import-untyped]

    words = get_english_words_set(["web2"], lower=False, alpha=True)
    lower = {w for w in words if w.islower() and len(w) >= 2}
    proper = {w.lower() for w in words if w[:1].isupper()}
    return lower, lower - proper


def main() -> int:
    names = collect()
    names["first"] |= set(SUPPLEMENT_FIRST.split())
    english, common_only = english_words()
    latin = names["first"] | names["last"]
    data: dict[str, Any] = {
        "source": {
            "faker": metadata.version("faker"),
            "english-words": metadata.version("english-words"),
            "note": "generated by tools/gen_names.py; do not edit",
        },
        **{k: sorted(v) for k, v in names.items()},
        "ambiguous": sorted(w for w in latin if w in common_only),
        "english": sorted(w for w in english if len(w) >= 4),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    OUT.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
