"""Loading a panel defined in a Python file. This runs the file: only load files you trust."""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path

from oversight.errors import OversightError, PanelFileError
from oversight.panel import Panel


def load_panel(path: str | Path) -> Panel:
    """Run `path` and return its `panel` (a Panel) or the result of its `build_panel()`."""
    p = Path(path)
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
