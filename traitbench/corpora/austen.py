"""Offline human prose: Jane Austen's six novels from Debian's `r-cran-janeaustenr` (no R needed).

`fetch_austen()` runs `apt-get download r-cran-janeaustenr=1.0.0-1` in a temp folder, unpacks the .deb
with `dpkg-deb -x`, reads `janeaustenr/data/Rdata.rdb` with a small pure-Python reader of R's lazy-load
database (each object: 4-byte big-endian uncompressed length + zlib stream of an XDR `serialize()`), and
caches, under `cache_dir()/corpora/austen/` (a Hugging Face dataset folder, the Hub way):

    novels.jsonl                          one row per novel: title, object, lines (the package's text lines)
    data/train-00000-of-00001.parquet     one row per chapter: novel, chapter, heading, text
    data/heldout-00000-of-00001.parquet
    README.md                             dataset card; its YAML `configs` lists both splits
    source.json                           package, version, .deb sha256, text sha256, counts, file sha256s

Split rule: chapters are counted 1, 2, 3, ... within each novel (across volumes: Emma's "VOLUME II,
CHAPTER I" is chapter 19); every 10th chapter (10, 20, 30, ...) of each novel is held out, the rest is
train. Front matter before the first chapter heading and back matter from "FINIS" / "THE END" /
"A NOTE ON THE TEXT" on are dropped. A chapter's text is its paragraphs (runs of non-blank lines, each
line stripped and joined with one space) joined by a blank line; the heading is its own column.

Texts are public domain; the Debian packaging is MIT. `source.json` is written last, so a half-finished
fetch never looks finished; every file is written atomically.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from traitbench.errors import TraitbenchError
from traitbench.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, sha256_file
from traitbench.lm.models import cache_dir

DEB_PACKAGE = "r-cran-janeaustenr"
DEB_VERSION = "1.0.0-1"
HELDOUT_EVERY = 10
SPLITS = ("train", "heldout")
SPLIT_FILES = {s: f"data/{s}-00000-of-00001.parquet" for s in SPLITS}
LICENSE_DETAILS = "texts public domain; Debian packaging MIT"

# publication order; object name in the package -> title; first text line (upper-cased) -> title
NOVELS = ("Sense & Sensibility", "Pride & Prejudice", "Mansfield Park", "Emma", "Northanger Abbey", "Persuasion")
_OBJECT_TITLES = {"sensesensibility": NOVELS[0], "prideprejudice": NOVELS[1], "mansfieldpark": NOVELS[2],
                  "emma": NOVELS[3], "northangerabbey": NOVELS[4], "persuasion": NOVELS[5]}
_LINE_TITLES = {"SENSE AND SENSIBILITY": NOVELS[0], "PRIDE AND PREJUDICE": NOVELS[1], "MANSFIELD PARK": NOVELS[2],
                "EMMA": NOVELS[3], "NORTHANGER ABBEY": NOVELS[4], "PERSUASION": NOVELS[5]}

_CHAPTER_RE = re.compile(r"^\s*chapter\s+([0-9]+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
_VOLUME_RE = re.compile(r"^\s*volume\s+([0-9]+|[ivxlc]+)\.?\s*$", re.IGNORECASE)
_END_RE = re.compile(r"^\s*(finis|the end|a note on the text)\.?\s*$", re.IGNORECASE)


def corpus_dir(cache: Path | None = None) -> Path:
    """`<cache>/corpora/austen`, where `cache` defaults to `traitbench.lm.models.cache_dir()`."""
    return Path(cache if cache is not None else cache_dir()) / "corpora" / "austen"


# ------------------------------------------------------------------------------------ R serialization
class _Malformed(Exception):
    pass


class _Unsupported(Exception):
    pass


class _Symbol(str):
    pass


_NIL_LIKE = {254, 253, 252, 251, 250, 242, 241}  # NILVALUE, GLOBALENV, UNBOUNDVALUE, MISSINGARG, BASENAMESPACE, ...
_PAIRLISTS = {2, 6, 17, 239, 240}  # LISTSXP, LANGSXP, DOTSXP, ATTRLISTSXP, ATTRLANGSXP
_NA_INT = -(2**31)


class _XdrReader:
    """Just enough of R's `unserialize()` (XDR, versions 2 and 3) for data objects: vectors, lists,
    pairlists, symbols, attributes, references and the common ALTREP forms. A list with names becomes a
    dict; a character vector a list of str (None for NA); closures and environments are unsupported."""

    def __init__(self, data: bytes):
        self.buf, self.pos, self.refs, self.native = data, 0, [], "utf-8"

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise _Malformed(f"truncated at byte {self.pos} (wanted {n} more)")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self, min_item_bytes: int) -> int:
        n = self.int()
        if n == -1:
            n = (self.int() << 32) | (self.int() & 0xFFFFFFFF)
        if n < 0 or n * min_item_bytes > len(self.buf) - self.pos:
            raise _Malformed(f"vector length {n} does not fit the remaining {len(self.buf) - self.pos} bytes")
        return n

    def unserialize(self) -> tuple[int, Any]:
        """(SEXP type of the top object, its value)."""
        if self.take(2) != b"X\n":
            raise _Malformed("not an XDR serialization (no 'X\\n' header)")
        version, _writer, _reader = self.int(), self.int(), self.int()
        if version == 3:
            enc = self.take(self.length(1)).decode("ascii", "replace").lower()
            self.native = "latin-1" if enc in ("latin1", "iso-8859-1", "cp1252") else "utf-8"
        elif version != 2:
            raise _Malformed(f"unknown serialization version {version}")
        flags = self.int()
        return flags & 0xFF, self.item(flags)

    def attributes(self) -> dict:
        out = self.item()
        return {str(k): v for k, v in out} if isinstance(out, list) else {}

    def item(self, flags: int | None = None) -> Any:
        flags = self.int() if flags is None else flags
        t, levels, has_attr, has_tag = flags & 0xFF, flags >> 12, flags & 0x200, flags & 0x400
        if t in _NIL_LIKE:
            return None
        if t == 255:  # REFSXP
            i = (flags >> 8) or self.int()
            if not 1 <= i <= len(self.refs):
                raise _Malformed(f"reference {i} out of range")
            return self.refs[i - 1]
        if t == 1:  # SYMSXP
            sym = _Symbol(self.item() or "")
            self.refs.append(sym)
            return sym
        if t in _PAIRLISTS:
            out = []
            while True:
                if has_attr:
                    self.attributes()
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                flags = self.int()
                t, has_attr, has_tag = flags & 0xFF, flags & 0x200, flags & 0x400
                if t in _NIL_LIKE:
                    return out
                if t not in _PAIRLISTS:
                    out.append((None, self.item(flags)))
                    return out
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            raw = self.take(n)
            enc = "latin-1" if levels & 0b110 else "utf-8" if levels & 0b1001000 else self.native
            try:
                return raw.decode(enc)
            except UnicodeDecodeError:
                raise _Malformed(f"a string at byte {self.pos - n} is not valid {enc}") from None
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length(4)
            val: Any = [None if v == _NA_INT else v for v in struct.unpack(f">{n}i", self.take(4 * n))]
        elif t == 14:  # REALSXP
            n = self.length(8)
            val = list(struct.unpack(f">{n}d", self.take(8 * n)))
        elif t == 15:  # CPLXSXP
            n = self.length(16)
            v = struct.unpack(f">{2 * n}d", self.take(16 * n))
            val = [complex(v[2 * i], v[2 * i + 1]) for i in range(n)]
        elif t == 24:  # RAWSXP
            val = self.take(self.length(1))
        elif t == 16:  # STRSXP
            val = []
            for _ in range(self.length(8)):
                f = self.int()
                if f & 0xFF != 9:
                    raise _Malformed(f"character vector element with type {f & 0xFF}, not 9 (CHARSXP)")
                val.append(self.item(f))
        elif t in (19, 20):  # VECSXP, EXPRSXP
            val = [self.item() for _ in range(self.length(4))]
        elif t == 238:  # ALTREP_SXP: class info, state, attributes
            info, state, _attrs = self.item(), self.item(), self.item()
            cls = str(info[0][1]) if isinstance(info, list) and info else "?"
            if cls in ("compact_intseq", "compact_realseq") and isinstance(state, list) and len(state) == 3:
                n, start, step = state
                val = [start + i * step for i in range(int(n))]
                return [int(x) for x in val] if cls == "compact_intseq" else val
            if cls.startswith("wrap_") and isinstance(state, list) and state:
                return state[0]
            raise _Unsupported(f"ALTREP class {cls}")
        elif t == 25:  # S4SXP
            val = None
        else:
            raise _Unsupported(f"SEXP type {t}")
        if has_attr:
            attrs = self.attributes()
            names = attrs.get("names")
            if t == 19 and isinstance(names, list) and len(names) == len(val):
                return dict(zip((str(k) for k in names), val))
        return val


def _blobs(data: bytes, where: str) -> Iterator[tuple[int, bytes]]:
    """(offset, decompressed bytes) of each object of an R lazy-load .rdb, walked without its .rdx."""
    pos, view = 0, memoryview(data)
    while pos < len(data):
        begin = pos
        if pos + 5 > len(data):
            raise TraitbenchError(f"{where}: truncated object header at byte {pos}")
        (outlen,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4:pos + 5]
        start = pos + 5 if kind in (b"Z", b"2", b"X", b"0") else pos + 4
        if kind == b"0":
            out, pos = bytes(view[start:start + outlen]), start + outlen
            if len(out) != outlen:
                raise TraitbenchError(f"{where}: object at byte {begin} is truncated")
        else:
            d: Any = (bz2.BZ2Decompressor() if kind == b"2" else lzma.LZMADecompressor() if kind == b"X"
                      else zlib.decompressobj())
            try:
                out = d.decompress(view[start:])
            except (zlib.error, OSError, lzma.LZMAError, EOFError) as e:
                raise TraitbenchError(f"{where}: object at byte {pos} does not decompress ({e})") from None
            if not d.eof:
                raise TraitbenchError(f"{where}: object at byte {pos} is truncated")
            if len(out) != outlen:
                raise TraitbenchError(f"{where}: object at byte {pos} is {len(out)} bytes, its header says {outlen}")
            pos = len(data) - len(d.unused_data)
        yield begin, out


def _rdx_names(rdx: Path) -> dict[int, str]:
    """Offset -> object name from the .rdx index beside an .rdb ({} when absent or unreadable)."""
    try:
        raw = rdx.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif raw[:3] == b"BZh":
            raw = bz2.decompress(raw)
        elif raw[:6] == b"\xfd7zXZ\x00":
            raw = lzma.decompress(raw)
        elif raw[:2] != b"X\n":
            raw = zlib.decompress(raw[4:])
        _, index = _XdrReader(raw).unserialize()
        variables = index["variables"]
        return {int(v[0]): name for name, v in variables.items()}
    except Exception:  # the index is optional: names then come from the novels' title lines
        return {}


def extract_rdb(path: str | Path) -> dict[str, list[str]]:
    """The character vectors of an R lazy-load database (.rdb): object name -> lines (NA -> "").

    The .rdb is walked object by object (4-byte length + zlib stream each), so the .rdx index is not
    needed; when one lies beside the .rdb it only supplies names, else objects are `object1`, `object2`,
    ... Objects that are not character vectors (data frames, lists, numbers, closures) are skipped, so
    a data frame that repeats the novels' text is never counted twice. A malformed file raises
    TraitbenchError.
    """
    path = Path(path)
    if not path.is_file():
        raise TraitbenchError(f"R database not found: {path}")
    data = path.read_bytes()
    if not data:
        raise TraitbenchError(f"{path}: empty file, not an R lazy-load database")
    names = _rdx_names(path.with_suffix(".rdx"))
    out: dict[str, list[str]] = {}
    for i, (offset, raw) in enumerate(_blobs(data, str(path)), 1):
        try:
            sexp_type, value = _XdrReader(raw).unserialize()
        except _Unsupported:
            continue
        except (_Malformed, RecursionError) as e:
            raise TraitbenchError(f"{path}: object at byte {offset}: {e or 'nested too deeply'}") from None
        if sexp_type == 16:
            out[names.get(offset, f"object{i}")] = ["" if s is None else s for s in value]
    return out


# ------------------------------------------------------------------------------------------- novels
@dataclass
class Novel:
    title: str
    object: str
    lines: list[str]


@dataclass
class Chapter:
    number: int  # 1, 2, 3, ... within the novel, across volumes
    heading: str  # as printed, prefixed by the volume where there is one: "VOLUME II, CHAPTER I"
    paragraphs: list[str]

    @property
    def heldout(self) -> bool:
        return self.number % HELDOUT_EVERY == 0

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


def identify_novels(objects: dict[str, list[str]]) -> tuple[list[Novel], dict[str, str]]:
    """Name each character vector by its object name or its title line; (novels in publication order,
    {object: why skipped}). A second object with the same novel (a duplicate) is skipped."""
    found: dict[str, Novel] = {}
    skipped: dict[str, str] = {}
    for name, lines in objects.items():
        first = next((ln.strip() for ln in lines if ln.strip()), "")
        title = _OBJECT_TITLES.get(name.lower()) or _LINE_TITLES.get(first.upper())
        if title is None:
            skipped[name] = f"not one of the six novels (first line {first[:40]!r})"
        elif title in found:
            skipped[name] = f"duplicate of {found[title].object} ({title})"
        else:
            found[title] = Novel(title, name, lines)
    return [found[t] for t in NOVELS if t in found], skipped


def _paragraphs(lines: list[str]) -> list[str]:
    paras, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def split_chapters(lines: list[str]) -> list[Chapter]:
    """Chapters of one novel's lines: headings "CHAPTER 1", "CHAPTER I", "Chapter 1" (whole line),
    numbered 1, 2, 3, ... within the novel; "VOLUME I" lines only prefix the following headings. Text
    before the first heading is dropped, and so is everything from "FINIS" / "THE END" /
    "A NOTE ON THE TEXT" on."""
    chapters: list[tuple[str, list[str]]] = []
    volume = None
    for line in lines:
        if _END_RE.match(line):
            break
        if _VOLUME_RE.match(line):
            volume = line.strip()
        elif _CHAPTER_RE.match(line):
            chapters.append((f"{volume}, {line.strip()}" if volume else line.strip(), []))
        elif chapters:
            chapters[-1][1].append(line)
    return [Chapter(i, heading, _paragraphs(body)) for i, (heading, body) in enumerate(chapters, 1)]


def text_sha256(novels: list[Novel]) -> str:
    """sha256 of the novels' lines, in publication order, joined by newlines (UTF-8)."""
    return hashlib.sha256("\n".join(ln for n in novels for ln in n.lines).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ writing
def _write_parquet(path: Path, rows: list[dict]) -> None:
    # heavy (pyarrow): only when the corpus is built; the CLI imports this module
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "novel": pa.array([r["novel"] for r in rows], pa.string()),
        "chapter": pa.array([r["chapter"] for r in rows], pa.int32()),
        "heading": pa.array([r["heading"] for r in rows], pa.string()),
        "text": pa.array([r["text"] for r in rows], pa.string()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _card(source: dict) -> str:
    header = {
        "license": "other",
        "license_name": "public-domain-texts-mit-packaging",
        "license_details": f"{LICENSE_DETAILS} (Debian package {DEB_PACKAGE} {DEB_VERSION})",
        "pretty_name": "Jane Austen's six novels, by chapter",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "size_categories": ["n<1K"],
        "source": {"package": DEB_PACKAGE, "version": DEB_VERSION, "deb_sha256": source["deb_sha256"],
                   "text_sha256": source["text_sha256"]},
        "configs": [{"config_name": "default", "data_files": [
            {"split": s, "path": f"data/{s}-*"} for s in SPLITS]}],
    }
    rows = [f"| {n['title']} | {n['characters']:,} | {n['chapters']} | {n['heldout_chapters']} |"
            for n in source["novels"]]
    sp = source["splits"]
    return "\n".join([
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# {header['pretty_name']}", "",
        f"The six novels of Jane Austen as packaged in Debian's `{DEB_PACKAGE}` {DEB_VERSION} (the R package",
        "`janeaustenr`), extracted without R by traitbench (`traitbench corpus fetch`).", "",
        "One row per chapter: `novel`, `chapter` (1, 2, 3, ... within the novel, across volumes), `heading`",
        "(as printed, with the volume where there is one) and `text` (paragraphs joined by a blank line; the",
        "lines of a paragraph joined by one space). Front matter before the first chapter and back matter",
        "from FINIS / THE END / A NOTE ON THE TEXT on are dropped.", "",
        f"Split: every {HELDOUT_EVERY}th chapter of each novel (chapters {HELDOUT_EVERY}, {2 * HELDOUT_EVERY}, ...) is "
        "`heldout`; the rest is `train`.", "",
        "| novel | characters (package text) | chapters | held out |", "|---|---:|---:|---:|", *rows, "",
        f"- train: {sp['train']['chapters']} chapters, {sp['train']['characters']:,} characters, "
        f"{sp['train']['words']:,} words",
        f"- heldout: {sp['heldout']['chapters']} chapters, {sp['heldout']['characters']:,} characters, "
        f"{sp['heldout']['words']:,} words",
        f"- .deb sha256: `{source['deb_sha256']}`",
        f"- text sha256 (all package lines, publication order, newline-joined): `{source['text_sha256']}`", "",
        f"License: {LICENSE_DETAILS}.", "",
    ])


def build_corpus(rdb: str | Path, out: str | Path, deb_sha256: str, deb_name: str = "") -> Path:
    """Extract the six novels from `rdb` and write novels.jsonl, the parquet splits, README.md and, last,
    source.json into `out`; returns `out`."""
    out = Path(out)
    objects = extract_rdb(rdb)
    novels, skipped = identify_novels(objects)
    missing = [t for t in NOVELS if t not in {n.title for n in novels}]
    if missing:
        raise TraitbenchError(f"{rdb}: no character vector for {', '.join(missing)} (found: {', '.join(objects) or 'none'})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "source.json").unlink(missing_ok=True)  # from here on the folder does not look finished
    for stale in (out / "data").glob("*") if (out / "data").is_dir() else ():
        if stale.is_file() and str(stale.relative_to(out)) not in SPLIT_FILES.values():
            stale.unlink()

    split_rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    novel_stats = []
    for n in novels:
        chapters = split_chapters(n.lines)
        if not chapters:
            raise TraitbenchError(f"{rdb}: no chapter headings found in {n.title} (object {n.object})")
        for c in chapters:
            split_rows["heldout" if c.heldout else "train"].append(
                {"novel": n.title, "chapter": c.number, "heading": c.heading, "text": c.text})
        novel_stats.append({"title": n.title, "object": n.object, "lines": len(n.lines),
                            "characters": sum(map(len, n.lines)), "chapters": len(chapters),
                            "heldout_chapters": sum(c.heldout for c in chapters)})

    atomic_write_jsonl(out / "novels.jsonl", ({"title": n.title, "object": n.object, "lines": n.lines} for n in novels))
    for s in SPLITS:
        _write_parquet(out / SPLIT_FILES[s], split_rows[s])
    source = {
        "package": DEB_PACKAGE, "version": DEB_VERSION, "deb": deb_name, "deb_sha256": deb_sha256,
        "text_sha256": text_sha256(novels), "license": LICENSE_DETAILS,
        "heldout_rule": f"chapter % {HELDOUT_EVERY} == 0, chapters counted within each novel",
        "novels": novel_stats,
        "characters": sum(s["characters"] for s in novel_stats),
        "splits": {s: {"chapters": len(r), "characters": sum(len(x["text"]) for x in r),
                       "words": sum(len(x["text"].split()) for x in r)} for s, r in split_rows.items()},
        "skipped_objects": skipped,
    }
    atomic_write_text(out / "README.md", _card(source))
    source["files"] = {f: sha256_file(out / f) for f in ("novels.jsonl", "README.md", *SPLIT_FILES.values())}
    atomic_write_json(out / "source.json", source)
    return out


def is_complete(out: str | Path) -> bool:
    """True when `out/source.json` exists and every file it lists has its recorded sha256."""
    out = Path(out)
    try:
        files = json.loads((out / "source.json").read_text())["files"]
        return bool(files) and all((out / f).is_file() and sha256_file(out / f) == h for f, h in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ------------------------------------------------------------------------------------------ fetching
def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> str | None:
    """None on success, else the last line of its output."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    except OSError as e:
        return str(e)
    if proc.returncode == 0:
        return None
    return ((proc.stderr.strip() or proc.stdout.strip()).splitlines() or [f"exit status {proc.returncode}"])[-1]


def _download_deb(dest: Path) -> Path:
    spec = f"{DEB_PACKAGE}={DEB_VERSION}"
    if shutil.which("apt-get") is None:
        raise TraitbenchError(f"apt-get not found: the Austen corpus comes from Debian's {DEB_PACKAGE}; run "
                              f"`traitbench corpus fetch` on a Debian/Ubuntu machine (it runs `apt-get download {spec}`)")
    err = _run(["apt-get", "download", spec], dest)
    debs = sorted(dest.glob(f"{DEB_PACKAGE}_*.deb"))
    if err is not None or not debs:
        raise TraitbenchError(f"`apt-get download {spec}` failed ({err or 'no .deb written'}); run "
                              f"`apt-get update` (as root) and then `traitbench corpus fetch` again")
    return debs[0]


def _unpack_rdb(deb: Path, dest: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise TraitbenchError(f"dpkg-deb not found: install dpkg (`apt-get install dpkg`) and run `traitbench corpus fetch` again")
    err = _run(["dpkg-deb", "-x", str(deb), str(dest)], deb.parent)
    if err is not None:
        raise TraitbenchError(f"`dpkg-deb -x {deb.name}` failed ({err}); delete it and run `traitbench corpus fetch` again")
    found = sorted(dest.rglob("janeaustenr/data/Rdata.rdb"))
    if not found:
        raise TraitbenchError(f"{deb.name} has no janeaustenr/data/Rdata.rdb (is it {DEB_PACKAGE} {DEB_VERSION}?)")
    return found[0]


def fetch_austen(cache: Path | None = None, force: bool = False) -> Path:
    """Download, extract and cache the corpus (idempotent); returns `<cache>/corpora/austen`.

    `cache` defaults to `traitbench.lm.models.cache_dir()` (`TRAITBENCH_CACHE`). A finished corpus (all files
    matching source.json) is returned as is unless `force`.
    """
    out = corpus_dir(cache)
    if not force and is_complete(out):
        return out
    with tempfile.TemporaryDirectory(prefix="traitbench-austen-") as tmp:
        deb = _download_deb(Path(tmp))
        rdb = _unpack_rdb(deb, Path(tmp) / "x")
        return build_corpus(rdb, out, sha256_file(deb), deb.name)


# ------------------------------------------------------------------------------------------ reading
def corpus_source(cache: Path | None = None) -> dict:
    """source.json of the cached corpus; TraitbenchError (run `traitbench corpus fetch`) when absent."""
    out = corpus_dir(cache)
    if not is_complete(out):
        raise TraitbenchError(f"Austen corpus not cached (or incomplete) in {out}; run `traitbench corpus fetch` "
                              f"(or `make corpus`)")
    return json.loads((out / "source.json").read_text())


def austen_chapters(split: str, cache: Path | None = None) -> list[dict]:
    """Rows (novel, chapter, heading, text) of one split, "train" or "heldout"."""
    if split not in SPLITS:
        raise TraitbenchError(f"unknown Austen split {split!r} (choose from {', '.join(SPLITS)})")
    corpus_source(cache)
    import pyarrow.parquet as pq  # heavy: only when the corpus is read; the CLI imports this module

    return pq.read_table(corpus_dir(cache) / SPLIT_FILES[split]).to_pylist()


def austen_text(split: str, cache: Path | None = None) -> str:
    """The split's chapter texts, in publication and chapter order, joined by a blank line."""
    return "\n\n".join(r["text"] for r in austen_chapters(split, cache))
