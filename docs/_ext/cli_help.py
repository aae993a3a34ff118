"""``.. dpsgd-cli::``: the command line reference, generated from dpsgd's own argument parser.

Every command and sub-command (``dpsgd``, ``dpsgd train``, ``dpsgd train lda``, ...) gets a
section holding its ``--help`` text, as ``dpsgd COMMAND --help`` prints it, so the page can
never drift from the program.
"""

import argparse
import os

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def commands(parser, prog="dpsgd"):
    """(full command, its parser) for ``parser`` and every sub-command under it, depth first."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{prog} {name}")


class CommandLineHelp(SphinxDirective):
    has_content = False

    def run(self):
        from dpsgd.cli import build_parser

        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width: fix it
        try:
            sections = []
            for prog, parser in commands(build_parser()):
                parser.prog = prog
                section = nodes.section(ids=[nodes.make_id(prog)], names=[nodes.fully_normalize_name(prog)])
                section += nodes.title(text=prog)
                text = parser.format_help()
                block = nodes.literal_block(text, text)
                block["language"] = "text"
                section += block
                self.state.document.note_implicit_target(section)
                sections.append(section)
        finally:
            if previous is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = previous
        return sections


def setup(app):
    app.add_directive("dpsgd-cli", CommandLineHelp)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
