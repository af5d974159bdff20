"""python -m bench quality [--quick] [--only NAME ...]"""

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    commands = parser.add_subparsers(dest="command", required=True)
    quality = commands.add_parser("quality", help="train every model to its published result")
    quality.add_argument("--quick", action="store_true", help="one epoch a row: checks the harness, not the models")
    quality.add_argument("--only", nargs="*", help="run only these rows (by row id)")
    quality.add_argument("--out", default="docs", help="where QUALITY.md and quality.json go")
    quality.add_argument("--readme", default="README.md", help="the README whose quality table is replaced")
    quality.add_argument("--render", action="store_true", help="rewrite the tables from quality.json, no training")
    args = parser.parse_args(argv)

    from zoo.tensorflow_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    from bench.quality import render, run

    if args.render:
        render(out_dir=args.out, readme=args.readme)
    else:
        run(quick=args.quick, only=args.only, out_dir=args.out, readme=args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
