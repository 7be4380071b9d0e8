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
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(p)]
        line = f"line {frames[-1].lineno}: " if frames else ""
        raise PanelFileError(f"{p}: {line}{type(exc).__name__}: {exc}") from None
    if "build_panel" in namespace and callable(namespace["build_panel"]):
        try:
            panel = namespace["build_panel"]()
        except OversightError as exc:
            raise PanelFileError(f"{p}: build_panel(): {exc}") from None
        except Exception as exc:
            raise PanelFileError(f"{p}: build_panel() raised {type(exc).__name__}: {exc}") from None
    elif "panel" in namespace:
        panel = namespace["panel"]
    else:
        raise PanelFileError(f"{p}: defines neither `panel` nor `build_panel()`")
    if not isinstance(panel, Panel):
        raise PanelFileError(f"{p}: `panel` must be an oversight.Panel, got {type(panel).__name__}")
    return panel
