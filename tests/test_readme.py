"""The README's code runs as written.

Which blocks run: every fenced block whose info string is exactly
``python`` is executed, in the order it appears, in one namespace (so a
later block may use names an earlier one defined), in a fresh temporary
working directory, with ``MPLBACKEND=Agg``.  A block fenced as
```` ```python skip ```` is illustrative and is not run (there are none at
the moment; prefer a runnable block).  Blocks of any other language
(console output, the layout) are not Python and are left alone.

A failure names the README line where the failing block starts, and the
traceback points at the README's own line numbers.

Also checked here, cheaply: the README's code uses only public names, its
links to files and to headings of docs/design.md resolve, docs/design.md
keeps the headings the code cites (``docs/design.md, "<heading>"``), and the
API reference page documents every public name.
"""

from __future__ import annotations

import re
import sys
import time
import traceback
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DESIGN = ROOT / "docs" / "design.md"
#: The sections of docs/design.md, in order: the code cites them by these headings.
DESIGN_HEADINGS = [
    "Unbounded flows in the high stage",
    "Low-stage live points",
    "PolyChord repeats",
    "dynesty low-stage bounds",
    "Base broadening",
    "Growing the low stage",
    "Widening a failing flow",
    "Rebasing a widened flow",
    "Early bounds in the high stage",
    "High-stage stopping rules",
    "High-stage prior draws",
    "The high stage's own live points",
    "Piece masses from the check",
    "Defensive mixture",
    "Fault handling",
]
FENCE = re.compile(r"^(`{3,})(.*)$")
RUN, SKIP = "python", "python skip"


def blocks(path: Path = README) -> list[tuple[int, str, str]]:
    """``(first code line number, info string, code)`` of every fenced block in ``path``."""
    out, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i + 2  # 1-based line of the first code line
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != fence:
            j += 1
        if j == len(lines):
            raise AssertionError(f"README.md:{i + 1}: code block never closed")
        out.append((start, info, "\n".join(lines[i + 1:j])))
        i = j + 1
    return out


def runnable() -> list[tuple[int, str]]:
    return [(line, code) for line, info, code in blocks() if info == RUN]


def test_python_blocks_are_marked():
    """Every Python-looking block says whether it runs: ``python`` or ``python skip``, nothing else."""
    for line, info, _ in blocks():
        if info.split()[:1] in (["python"], ["py"], ["python3"]):
            assert info in (RUN, SKIP), f"README.md:{line - 1}: unknown code-block marker {info!r}; use {RUN!r} or {SKIP!r}"
    assert len(runnable()) >= 5, "the README should keep its runnable examples"


def test_readme_uses_public_names_only():
    """``fp.X`` in the README's code is part of flowprior's public API (``flowprior.__all__``)."""
    import flowprior as fp

    for line, info, code in blocks():
        if not info.startswith("python"):
            continue
        for name in re.findall(r"\bfp\.([A-Za-z_]\w*)", code):
            assert name in fp.__all__, f"README.md block at line {line}: fp.{name} is not in flowprior.__all__"


@pytest.mark.slow
def test_readme_code_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # A real module, so that functions defined in the README pickle (dynesty's
    # checkpoints in an outdir pickle the likelihood) as they do in a script.
    module = types.ModuleType("readme_code")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    times = []
    for line, code in runnable():
        # Leading newlines keep the README's line numbers in tracebacks.
        compiled = compile("\n" * (line - 1) + code, str(README), "exec")
        t0 = time.perf_counter()
        try:
            exec(compiled, module.__dict__)
        except Exception as err:  # any failure of the README's code is this test's failure
            pytest.fail(f"README.md code block at line {line} failed: {type(err).__name__}: {err}\n\n"
                        f"{traceback.format_exc()}", pytrace=False)
        times.append((line, time.perf_counter() - t0))
    print("README blocks (line: seconds):", ", ".join(f"{line}: {t:.1f}" for line, t in times))


def slug(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"\s+", "-", text)


def headings(path: Path, level: int) -> list[str]:
    """The headings of one level in a Markdown file, outside code blocks."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#" * level + " "):
            out.append(line[level + 1:].strip())
    return out


def test_design_page_keeps_the_cited_headings():
    assert headings(DESIGN, 2) == DESIGN_HEADINGS


def test_readme_links_resolve():
    text = README.read_text(encoding="utf-8")
    anchors = {slug(h) for level in (1, 2, 3) for h in headings(DESIGN, level)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        assert (ROOT / path).exists(), f"README.md links to {path}, which does not exist"
        if anchor and path == "docs/design.md":
            assert anchor in anchors, f"README.md links to {target}: no such heading in docs/design.md"


def test_api_page_documents_every_public_name():
    import flowprior as fp

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: flowprior\.(\w+)\s*$", page, re.M))
    assert documented == set(fp.__all__), (f"docs/api.md: missing {sorted(set(fp.__all__) - documented)}, "
                                           f"not public {sorted(documented - set(fp.__all__))}")
