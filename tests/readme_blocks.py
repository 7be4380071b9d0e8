"""The README's code blocks, and a runner that executes them as a new user would.

Used by tests/test_readme.py (every block, small mode) and by .ci/wheel_check.sh (the first
Python block, the ten-line example, against the installed wheel and the real default model).

Rules the README follows (checked here):
* every fenced block names its language: `python` and `bash` blocks run, `text` does not;
* a block that cannot run on a CPU machine (a GPU, a cluster, a remote server, an install)
  has `<!-- skip: reason -->` on the line before its fence;
* Python blocks share one namespace, in order, like a notebook's cells; shell blocks run with
  bash -euo pipefail; all of them in one working folder outside the checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RUNNABLE = ("python", "bash")
INERT = ("text", "toml", "json")
_FENCE = re.compile(r"^```(\S*)\s*$")
_SKIP = re.compile(r"^<!--\s*skip:\s*(.+?)\s*-->\s*$")


@dataclass
class Block:
    lang: str
    code: str
    line: int          # the README line of the opening fence
    skip: str | None   # the reason, if marked


def blocks(readme: str | Path) -> list[Block]:
    lines = Path(readme).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"README line {start + 1}: code block never closed")
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        skip = _SKIP.match(lines[k]) if k >= 0 else None
        out.append(Block(lang, "\n".join(lines[start + 1:j]) + "\n", start + 1,
                         skip.group(1) if skip else None))
        i = j + 1
    return out


def run(selected: list[Block], cwd: Path, log=print) -> None:
    """Run the blocks in order in `cwd`; raise AssertionError naming the README line."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    for b in selected:
        t0 = time.perf_counter()
        if b.lang == "python":
            try:
                exec(compile(b.code, f"README.md:{b.line}", "exec"), namespace)
            except BaseException as exc:
                raise AssertionError(f"README.md line {b.line} (python) failed: "
                                     f"{type(exc).__name__}: {exc}") from exc
        else:
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", b.code], cwd=cwd,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise AssertionError(f"README.md line {b.line} (bash) exited "
                                     f"{proc.returncode}:\n{proc.stdout[-3000:]}\n"
                                     f"{proc.stderr[-3000:]}")
        log(f"README.md line {b.line} ({b.lang}): ok in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str]) -> int:
    """`python readme_blocks.py README.md first-python`: print the ten-line example."""
    readme, what = Path(argv[0]), argv[1]
    found = [b for b in blocks(readme) if b.lang == "python"]
    if what != "first-python" or not found:
        print(f"usage: readme_blocks.py README.md first-python ({len(found)} python blocks)",
              file=sys.stderr)
        return 2
    sys.stdout.write(found[0].code)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
