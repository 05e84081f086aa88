"""The reference an organiser would script: smtplib, one connection (STARTTLS, AUTH) per message."""

from __future__ import annotations

import argparse
import smtplib
import ssl
import sys
import time
from email.message import EmailMessage

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, default=8000, help="approximate message size in bytes")
    p.add_argument("--cafile")
    p.add_argument("--user", default="")
    p.add_argument("--password", default="")
    args = p.parse_args(argv)
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    t0 = time.perf_counter()
    for i in range(args.count):
        msg = EmailMessage()
        msg["From"] = "gcro@example.org"
        msg["To"] = f"head@school-{i + 1:04d}.example.org"
        msg["Subject"] = "Приглашение на встречу"
        msg.set_content("Уважаемые коллеги! " * max(1, args.size // 40))
        with smtplib.SMTP(args.host, args.port, timeout=30) as s:
            if ctx is not None:
                s.starttls(context=ctx)
            if args.user:
                s.login(args.user, args.password)
            s.send_message(msg)
    print(f"{args.count} {time.perf_counter() - t0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
