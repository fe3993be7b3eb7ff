"""Regenerate the env-id table in README.md from the registry (the table must never drift)."""

from __future__ import annotations

import pathlib
import sys

BEGIN, END = "<!-- env-table:begin -->", "<!-- env-table:end -->"


def env_table() -> str:
    """Markdown table of every registered id, in registry order."""
    from gymgen.registry import ENVS

    rows = ["| id | family | API | papers | exact | extra | what it is |", "|---|---|---|---|---|---|---|"]
    for e in ENVS:
        rows.append(
            f"| `{e.id}` | {e.family} | {'Gymnasium' if e.api == 'gymnasium' else 'PettingZoo parallel'} | "
            f"{', '.join(e.papers)} | {'yes' if e.exact else 'no'} | {f'`[{e.extra}]`' if e.extra else ''} | {e.description} |"
        )
    return "\n".join(rows)


def render(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{env_table()}\n{END}{tail}"


if __name__ == "__main__":
    path = pathlib.Path(__file__).resolve().parents[1] / "README.md"
    new = render(path.read_text())
    if "--check" in sys.argv:
        sys.exit(0 if new == path.read_text() else "README env table is stale: run python scripts/update_readme.py")
    path.write_text(new)
