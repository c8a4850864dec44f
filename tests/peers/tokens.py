#!/usr/bin/env python3
"""Token codes for the gateway tests, from implementations independent of otpgw:
PyPI `pyotp` (RFC 6238) and PyPI `oath` (RFC 6287). Prints one JSON object.

  tokens.py totp URI UNIX_SECS OFFSET...   codes of the steps OFFSET away from UNIX_SECS's
  tokens.py ocra SUITE SECRET_HEX CHALLENGE [TIME_STEP]
  tokens.py challenge CANONICAL             otpgw's documented payment challenge
"""
import hashlib
import json
import sys

import oath
import pyotp


def main():
    cmd = sys.argv[1]
    if cmd == "totp":
        totp = pyotp.parse_uri(sys.argv[2])
        now = int(sys.argv[3])
        step = now // totp.interval
        codes = {o: totp.at((step + int(o)) * totp.interval) for o in sys.argv[4:]}
        print(json.dumps({"step": step, "interval": totp.interval, "codes": codes}))
    elif cmd == "ocra":
        suite = oath.str2ocrasuite(sys.argv[2])
        kwargs = {"Q": sys.argv[4]}
        if len(sys.argv) > 5:
            kwargs["T_precomputed"] = int(sys.argv[5])
        print(json.dumps({"response": suite(bytes.fromhex(sys.argv[3]), **kwargs)}))
    elif cmd == "challenge":
        digest = hashlib.sha256(b"otpgw-ocra|v1|" + sys.argv[2].encode()).digest()
        print(json.dumps({"challenge": "%08d" % (int.from_bytes(digest[:8], "big") % 10**8)}))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
