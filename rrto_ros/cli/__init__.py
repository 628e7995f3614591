# Copyright 2026 rrto_ros authors. Apache-2.0.
"""The command-line entry points (rrto-server, rrto-client, rrto-trace, rrto-lib, ...)."""

import argparse
import logging


def add_log_level(ap: argparse.ArgumentParser) -> None:
    """The --log-level option every long-running CLI takes."""
    ap.add_argument('--log-level', default='INFO',
                    choices=('DEBUG', 'INFO', 'WARNING', 'ERROR'), type=str.upper,
                    help='how much to log')


def setup_logging(prog: str, level: str) -> None:
    logging.basicConfig(level=level, format=f'[{prog}] %(message)s')
