"""What the command lines share: ``--debug`` / ``--verbose``, one-line user errors, quiet libraries.

    def main(argv=None) -> int:
        opts = parser.parse_args(argv)          # parser built with parents=[output_flags()]
        quiet_libraries(opts.verbose)
        return guarded(lambda: work(opts), opts.debug)

A ``UserError`` (a bad config, an unknown selection, a missing input, a corrupted artifact) is
printed as ``error: <message>`` with exit status 2; ``--debug`` adds its traceback. Ctrl-C
prints ``interrupted`` (with where, when the interrupt says) and exits 130, as a shell reports a
process that SIGINT ended. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable

from rlhf_core.errors import UserError

USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130  # 128 + SIGINT


def output_flags() -> argparse.ArgumentParser:
    """A parent parser with the two output flags, for every (sub)command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", help="show the traceback of any error")
    parent.add_argument(
        "--verbose", action="store_true", help="show library logs, warnings and progress bars (quiet by default)"
    )
    return parent


def quiet_libraries(verbose: bool) -> None:
    """Keep transformers' load bars and reports, Hub bars and Python warnings out of the output."""
    if verbose:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # read when transformers is imported
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its fork warning
    warnings.filterwarnings("ignore")
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # imported already: tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def guarded(work: Callable[[], int], debug: bool) -> int:
    """Run ``work``; a user error becomes one ``error:`` line on stderr and exit status 2, Ctrl-C
    one ``interrupted`` line and 130."""
    try:
        return work()
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        return USER_ERROR_STATUS
    except KeyboardInterrupt as err:
        if debug:
            traceback.print_exc()
        print("interrupted" + (f": {one_line(err)}" if str(err) else ""), file=sys.stderr, flush=True)
        return INTERRUPTED_STATUS
