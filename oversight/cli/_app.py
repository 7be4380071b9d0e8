"""The `oversight` command line: a thin assembly of the command groups, one module each."""

from __future__ import annotations

import os
import sys

import typer

from oversight.cli._aggregate import aggregate_cmd
from oversight.cli._constitution import constitution_app
from oversight.cli._demo import demo_cmd
from oversight.cli._draft import draft_app, inverse_cmd
from oversight.cli._evaluate import evaluate_cmd
from oversight.cli._export import export_cmd
from oversight.cli._judge import judge_cmd
from oversight.cli._model import model_app
from oversight.cli._overopt import overopt_cmd
from oversight.cli._report import report_cmd, review_app
from oversight.cli._serve import serve_cmd
from oversight.cli._train import revise_cmd, serve_reward_cmd, train_app
from oversight.errors import OversightError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Multi-critic oversight of language models.")
app.add_typer(model_app, name="model")
app.add_typer(constitution_app, name="constitution")
app.command("demo")(demo_cmd)
app.command("judge")(judge_cmd)
app.command("aggregate")(aggregate_cmd)
app.command("report")(report_cmd)
app.add_typer(review_app, name="review")
app.command("serve")(serve_cmd)
app.command("export")(export_cmd)
app.command("revise")(revise_cmd)
app.command("serve-reward")(serve_reward_cmd)
app.add_typer(train_app, name="train")
app.command("overopt")(overopt_cmd)
app.add_typer(draft_app, name="draft")
app.command("inverse")(inverse_cmd)
app.command("evaluate")(evaluate_cmd)


def main() -> None:
    try:
        app()
    except OversightError as exc:  # a last guard: never a traceback for bad input
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("OVERSIGHT_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        print(f"internal error: {type(exc).__name__}: {text} (set OVERSIGHT_DEBUG=1 to see "
              "the traceback)", file=sys.stderr)
        sys.exit(1)
