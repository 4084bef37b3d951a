"""Command dispatcher: /usr/bin/python3 -m models COMMAND [ARGS...].

Each command lives in its own module exposing main(argv) -> int, imported lazily so
that a command's heavy dependencies (torch) load only when it runs.
"""
import importlib
import sys

# command name -> module (relative to the models package) with a main(argv) function.
COMMANDS = {
    "import-sdesr": "convert.import_sdesr",
    "import-srdg-classifiers": "convert.import_classifiers",
    "convert-face-embedder": "convert.convert_embedder",
    "convert-tfjs-embedders": "convert.convert_tfjs_embedders",
    "package-blazeface": "convert.package_blazeface",
    "package-demo-faces": "convert.package_demo_faces",
    "train-score": "train.score",
    "train-classifiers": "train.classifiers",
    "train-lr-attrs": "train.lr_attrs",
    "train-sr-adapter": "train.sr_adapter",
    "export": "train.export",
    "eval-srdg-classifiers": "convert.eval_classifiers",
}


class UserError(Exception):
    """An error the user can fix (bad file, bad flag): printed without a stack trace."""


def main(argv):
    if len(argv) < 1 or argv[0] in ("-h", "--help", "help"):
        print("usage: /usr/bin/python3 -m models COMMAND [ARGS...]\n\ncommands:")
        for name in sorted(COMMANDS):
            print("  " + name)
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        print(f"models: unknown command {name!r} (known: {', '.join(sorted(COMMANDS))})", file=sys.stderr)
        return 2
    try:
        mod = importlib.import_module("models." + COMMANDS[name])
    except ModuleNotFoundError as e:
        print(f"models: command {name!r} is not available: {e}", file=sys.stderr)
        return 2
    try:
        return int(mod.main(argv[1:]) or 0)
    except UserError as e:
        print(f"models {name}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Under `python -m models` this file runs as the module __main__, and the
    # commands import models.__main__: a second copy with its own UserError
    # class. Dispatch through that copy so that the class they raise is the
    # class caught here.
    from models.__main__ import main as _main

    sys.exit(_main(sys.argv[1:]))
