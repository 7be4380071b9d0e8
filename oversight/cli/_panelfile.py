"""Loading a panel defined in a Python file. This runs the file: only load files you trust."""

from __future__ import annotations

import runpy
import traceback
from importlib import resources
from pathlib import Path

from oversight.errors import OversightError, PanelFileError
from oversight.panel import Panel


def example_panels() -> list[str]:
    """Names of the example panels shipped in the package (`oversight/panel/examples/`)."""
    folder = resources.files("oversight.panel").joinpath("examples")
    return sorted(e.name[:-3] for e in folder.iterdir()
                  if e.name.endswith(".py") and not e.name.startswith("_"))


def _example_path(name: str) -> Path:
    names = example_panels()
    if name not in names:
        raise PanelFileError(f"{name}: no such file, and no example panel of that name; "
                             f"example panels: {', '.join(names)} (or give a .py file)")
    return Path(str(resources.files("oversight.panel").joinpath("examples").joinpath(f"{name}.py")))


def load_panel(path: str | Path) -> Panel:
    """Run `path` and return its `panel` (a Panel) or the result of its `build_panel()`.

    A bare name ("checks_and_balances": no folder, no suffix) that is not an existing file
    names one of the example panels shipped in the package.
    """
    p = Path(path)
    if "/" not in str(path) and "\\" not in str(path) and not p.suffix and not p.exists():
        p = _example_path(str(path))
    if not p.exists():
        raise PanelFileError(f"{p}: file not found")
    if p.suffix != ".py":
        raise PanelFileError(f"{p}: a panel file is Python source ending in .py")
    try:
        namespace = runpy.run_path(str(p), run_name="oversight_panel")
    except OversightError as exc:
        raise PanelFileError(f"{p}: {exc}") from None
    except SyntaxError as exc:
        raise PanelFileError(f"{p}: line {exc.lineno}: syntax error: {exc.msg}") from None
    except (Exception, SystemExit) as exc:  # exit() in a panel file is an error, not an exit
        raise PanelFileError(f"{p}: {_line(exc, p)}{_describe(exc)}") from None
    if "build_panel" in namespace and callable(namespace["build_panel"]):
        try:
            panel = namespace["build_panel"]()
        except OversightError as exc:
            raise PanelFileError(f"{p}: build_panel(): {exc}") from None
        except (Exception, SystemExit) as exc:
            raise PanelFileError(f"{p}: {_line(exc, p)}build_panel() raised "
                                 f"{_describe(exc)}") from None
    elif "panel" in namespace:
        panel = namespace["panel"]
    else:
        raise PanelFileError(f"{p}: defines neither `panel` nor `build_panel()`")
    if not isinstance(panel, Panel):
        raise PanelFileError(f"{p}: `panel` must be an oversight.Panel, got {type(panel).__name__}")
    return panel


def _line(exc: BaseException, path: Path) -> str:
    """'line N: ' for the deepest frame of the panel file in the traceback, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f"line {frames[-1].lineno}: " if frames else ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the file called exit({exc.code!r})"
    text = " ".join(str(exc).split())  # one line, whatever the message held
    return f"{type(exc).__name__}: {text[:300]}"
