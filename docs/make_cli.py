"""Write docs/cli.md from the installed commands' --help texts (at 100 columns, as tests/test_cli.py
checks them): run `python docs/make_cli.py` after changing a command or a system's config."""
import os
import sys
from pathlib import Path

os.environ["COLUMNS"] = "100"

from glassjax import cli  # noqa: E402

HEADER = """# Command line

Every sub-command of `glassjax`, with its `--help` text as the installed version prints it.
Bad input prints one line to stderr and exits with status 2. The system settings of `fit`,
`equivariance` and `compare` come from the config fields of every registered system: each
applies to the chosen systems that have that field, and an option that fits none of them is
refused before any work starts.
"""


def main() -> None:
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    parts = [HEADER, "## glassjax\n", "```text\n" + parser.format_help().strip() + "\n```\n"]
    for name, sub in subparsers.choices.items():
        parts += [f"## glassjax {name}\n", "```text\n" + sub.format_help().strip() + "\n```\n"]
    out = Path(__file__).with_name("cli.md")
    out.write_text("\n".join(parts))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
