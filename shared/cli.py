"""The `cqo` command (console script `cqo = "shared.cli:main"`).

Each area lives in its own module as a typer sub-app and is registered below
with one `app.add_typer(...)` line, so adding a command group touches this file
only there.
"""
from __future__ import annotations

import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
if sys.argv[1:2] == ["serve"]:
    # a service process: eventlet must patch the standard library before anything
    # else (typer, rich, pydantic...) is imported, as `nameko run` does
    import eventlet

    eventlet.monkey_patch()

import typer  # noqa: E402

from shared.cli_check import check_app  # noqa: E402
from shared.cli_dead import dead_app  # noqa: E402
from shared.cli_demo import demo  # noqa: E402
from shared.cli_report import report_app  # noqa: E402
from shared.cli_roster import roster_app  # noqa: E402
from shared.cli_serve import serve  # noqa: E402
from shared.cli_stack import stack_app  # noqa: E402
from shared.cli_token import token  # noqa: E402

app = typer.Typer(help="沧州市企业首席质量官（CQO）备案管理系统命令行工具。", no_args_is_help=True)

# --- sub-apps: one line each ---
app.add_typer(check_app, name="check")
app.command("token")(token)
app.command("serve")(serve)
app.add_typer(stack_app, name="stack")
app.add_typer(dead_app, name="dead")
app.add_typer(roster_app, name="roster")
app.add_typer(report_app, name="report")
app.command("demo")(demo)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m shared.cli
    main()
