#!/usr/bin/env python3
"""Token codes for the gateway tests, from implementations independent of otpgw:
PyPI `pyotp` (RFC 6238) and PyPI `oath` (RFC 6287). Prints one JSON object.

  tokens.py totp URI UNIX_SECS OFFSET...   codes of the steps OFFSET away from UNIX_SECS's
  tokens.py ocra SUITE SECRET_HEX CHALLENGE [TIME_STEP]
  tokens.py collision TYPE CURRENCY PAYEE   two amounts whose 8-digit challenges, as
                                           otpgw once derived them from the payment, collide
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
    elif cmd == "collision":
        # A birthday search (about 10^4 hashes): the attack a derived challenge
        # allowed, and the case otpgw's issued challenges must refuse.
        kind, currency, payee = sys.argv[2:5]
        seen = {}
        for amount in range(1, 10**6):
            canonical = "v1|%s|%d|%s|%s" % (kind, amount, currency, payee)
            digest = hashlib.sha256(b"otpgw-ocra|v1|" + canonical.encode()).digest()
            old = "%08d" % (int.from_bytes(digest[:8], "big") % 10**8)
            if old in seen:
                print(json.dumps({"a": seen[old], "b": amount, "old_challenge": old}))
                return
            seen[old] = amount
        raise SystemExit("no collision found")
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
