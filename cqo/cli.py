"""The `cqo` command (console script `cqo = "cqo.cli:main"`).

Each area lives in its own module (a typer sub-app or one command function) and is
listed below in COMMANDS with one line. Modules are imported only when their command
runs (or for `cqo --help`): `cqo token` and `cqo check` must not pay for the service
stack (nameko, eventlet, SQLAlchemy, services.*) that `serve` or `dead` import.
"""
from __future__ import annotations

import importlib
import sys
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
if sys.argv[1:2] == ["serve"]:
    # a service process: eventlet must patch the standard library before anything
    # else (typer, rich, pydantic...) is imported, as `nameko run` does
    import eventlet

    eventlet.monkey_patch()

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

# --- commands: one line each, "module:attribute" (a typer.Typer or a command function) ---
COMMANDS = {
    "check": "cqo.cli_check:check_app",
    "token": "cqo.cli_token:token",
    "keys": "cqo.cli_keys:keys_app",
    "serve": "cqo.cli_serve:serve",
    "stack": "cqo.cli_stack:stack_app",
    "dead": "cqo.cli_dead:dead_app",
    "roster": "cqo.cli_roster:roster_app",
    "training": "cqo.cli_training:training_app",
    "report": "cqo.cli_report:report_app",
    "draw": "cqo.cli_draw:draw_app",
    "notify": "cqo.cli_notify:notify_app",
    "contacts": "cqo.cli_contacts:contacts_app",
    "topology": "cqo.cli_topology:topology_app",
    "trace": "cqo.cli_trace:trace",
    "demo": "cqo.cli_demo:demo",
}


def _load(name: str):
    module, _, attribute = COMMANDS[name].partition(":")
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, typer.Typer):  # a command function: a one-command app
        single = typer.Typer()
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    # shell completion is the root's option, as with app.add_typer
    command.params = [p for p in command.params
                      if p.name not in ("install_completion", "show_completion")]
    return command


class LazyGroup(TyperGroup):
    """Resolves a sub-command from COMMANDS the first time it is asked for."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = _load(cmd_name)
        return self.commands.get(cmd_name)


app = typer.Typer(cls=LazyGroup, help="沧州市企业首席质量官（CQO）备案管理系统命令行工具。",
                  no_args_is_help=True)


@app.callback()
def _root() -> None:
    """沧州市企业首席质量官（CQO）备案管理系统命令行工具。"""


def main() -> None:
    app()


if __name__ == "__main__":  # python -m cqo.cli
    main()
