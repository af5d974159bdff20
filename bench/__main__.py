"""python -m bench quality [--quick] [--only NAME ...] | serving [--smoke] | edge [--smoke] [--before COMMIT]
| memory [--smoke] | training [--smoke] | beam [--smoke]"""

import argparse
import os
import sys


def main(argv=None) -> int:
    """Run one benchmark from the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    commands = parser.add_subparsers(dest="command", required=True)
    quality = commands.add_parser("quality", help="train every model to its published result")
    quality.add_argument("--quick", action="store_true", help="one epoch a row: checks the harness, not the models")
    quality.add_argument("--only", nargs="*", help="run only these rows (by row id)")
    quality.add_argument("--out", default="docs", help="where QUALITY.md and quality.json go")
    quality.add_argument("--readme", default="README.md", help="the README whose quality table is replaced")
    quality.add_argument("--render", action="store_true", help="rewrite the tables from quality.json, no training")
    quality.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                         help="training runs at a time, each in its own process (default: 2, or 1 on one core)")
    serving = commands.add_parser("serving", help="zoo serve against in-process TensorFlow")
    serving.add_argument("--smoke", action="store_true", help="a handful of requests a cell")
    serving.add_argument("--out", default="docs", help="where PERFORMANCE.md and performance.json go")
    training = commands.add_parser("training", help="zoo train's epoch time against a bare model.fit")
    training.add_argument("--smoke", action="store_true", help="two epochs")
    training.add_argument("--out", default="docs", help="where training.json goes")
    edge = commands.add_parser("edge", help="REST server libraries and floods (uvicorn, hypercorn, granian)")
    edge.add_argument("--smoke", action="store_true", help="a handful of requests, 50-connection floods")
    edge.add_argument("--before", help="also measure zoo serve as it was at this commit (a git worktree)")
    edge.add_argument("--out", default="docs", help="where EDGE.md and edge.json go")
    memory = commands.add_parser("memory", help="zoo serve's peak memory per request against its size")
    memory.add_argument("--smoke", action="store_true", help="small requests")
    memory.add_argument("--out", default="docs", help="where MEMORY.md and memory.json go")
    beam = commands.add_parser("beam", help="Beam batch predictions against zoo predict (needs keras-zoo[beam])")
    beam.add_argument("--smoke", action="store_true", help="a few thousand rows, one round")
    beam.add_argument("--out", default="docs", help="where beam.json goes")
    args = parser.parse_args(argv)

    from zoo.tensorflow_logs import import_tensorflow_quietly

    import_tensorflow_quietly()
    if args.command == "training":
        from bench.training import run as run_training

        run_training(smoke=args.smoke, out_dir=args.out)
        return 0
    if args.command == "beam":
        from bench.beam import run as run_beam

        run_beam(smoke=args.smoke, out_dir=args.out)
        return 0
    if args.command == "edge":
        from bench.edge import run as run_edge

        run_edge(smoke=args.smoke, before=args.before, out_dir=args.out)
        return 0
    if args.command == "memory":
        from bench.memory import run as run_memory

        run_memory(smoke=args.smoke, out_dir=args.out)
        return 0
    if args.command == "serving":
        from bench.serving import run as run_serving

        run_serving(smoke=args.smoke, out_dir=args.out)
        return 0
    from bench.quality import render, run

    if args.render:
        render(out_dir=args.out, readme=args.readme)
    else:
        run(quick=args.quick, only=args.only, out_dir=args.out, readme=args.readme, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
