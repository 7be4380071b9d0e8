"""Copy the editable top-level folders into the package, where the wheel ships them.

The top-level `constitutions/*.toml` and `panels/*.py` are the source of truth (documented,
read and forked by users); `oversight/constitution/builtin/` and `oversight/panel/examples/`
are generated copies read with importlib.resources. tests/test_package_data.py fails when the
two differ. Run after editing either top-level folder:  python .ci/sync_package_data.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (  # (source of truth, generated copy in the package, file pattern)
    (ROOT / "constitutions", ROOT / "oversight" / "constitution" / "builtin", "*.toml"),
    (ROOT / "panels", ROOT / "oversight" / "panel" / "examples", "*.py"),
)


def main() -> int:
    for src, dst, pattern in PAIRS:
        dst.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in src.glob(pattern)}
        for stale in dst.glob(pattern):
            if stale.name not in wanted:
                stale.unlink()
                print(f"removed {stale.relative_to(ROOT)}")
        for name in sorted(wanted):
            if not (dst / name).exists() or (dst / name).read_bytes() != (src / name).read_bytes():
                shutil.copyfile(src / name, dst / name)
                print(f"copied {(src / name).relative_to(ROOT)} -> {dst.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
