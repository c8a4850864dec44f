#!/usr/bin/env python3
"""Send one SMS to otpgw over SMPP with PyPI smpplib and print the reply.

The README's five-minute tour runs this against `otpgw serve` on the embedded
default (SMPP peer test/test, short code 30003303). It uses only smpplib's own
high-level client API.

Usage: python3 tests/peers/tour_sms.py [HOST] [PORT] [MSISDN] [TEXT]
Defaults:                               127.0.0.1 2775 989121234567 4321
"""
import sys
import time

import smpplib.client

defaults = ["127.0.0.1", "2775", "989121234567", "4321"]
host, port, msisdn, text = sys.argv[1:5] + defaults[len(sys.argv[1:5]):]

replies = []


def received(pdu):
    # Short replies come in short_message, longer ones in the message_payload TLV.
    body = pdu.short_message or getattr(pdu, "message_payload", None) or b""
    # data_coding 8 is UCS-2 (UTF-16BE); 0 is GSM-7 unpacked, ASCII for these texts.
    replies.append(body.decode("utf-16-be" if pdu.data_coding == 8 else "ascii", "replace"))
    print(replies[-1])


client = smpplib.client.Client(host, int(port), timeout=5, allow_unknown_opt_params=True)
client.set_message_sent_handler(lambda pdu: print("submit_sm_resp message_id", pdu.message_id.decode()))
client.set_message_received_handler(received)
client.connect()
client.bind_transceiver(system_id="test", password="test")

if text.isascii():
    body, coding = text.encode("ascii"), 1  # IA5/ASCII
else:
    body, coding = text.encode("utf-16-be"), 8  # UCS-2, e.g. Persian digits
client.send_message(
    source_addr_ton=1,  # international
    source_addr=msisdn,
    dest_addr_ton=0,
    destination_addr="30003303",
    short_message=body,
    data_coding=coding,
)

deadline = time.monotonic() + 10
while not replies and time.monotonic() < deadline:
    client.read_once()  # submit_sm_resp, then the deliver_sm with the reply

client.unbind()
client.disconnect()
sys.exit(0 if replies else 1)
