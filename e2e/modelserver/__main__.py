"""python -m e2e.modelserver --port P --log FILE --control-dir DIR"""
import argparse
import sys

from .core import load_providers, make_server


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m e2e.modelserver")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--log", default=None, help="JSONL request log")
    ap.add_argument("--control-dir", default=None, help="dir with a 'mode' file")
    ap.add_argument("--mode", default=None, help="initial mode (writes control-dir/mode)")
    a = ap.parse_args(argv)
    srv = make_server(a.port, a.log, a.control_dir)
    if a.mode:
        from .core import set_mode
        set_mode(a.mode)
    print(f"modelserver on 127.0.0.1:{srv.server_address[1]} providers={load_providers()}",
          file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
