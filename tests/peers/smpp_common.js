'use strict';
/*
 * What the two test peers on the npm package `smpp` (node-smpp, version pinned in
 * tests/peers/package.json) share: JSON-line output, node-smpp loaded and set up
 * to hand over message octets and USSD TLVs exactly as they are on the wire, and
 * the text codings (GSM 03.38 unpacked with its escape table, latin1, UCS-2).
 * Used by smsc.js (an operator SMSC) and ussd_peer.js (an ESME sending USSD).
 */

const fs = require('fs');

// --------------------------------------------------------------------- output
const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd, str) {
  const buf = Buffer.from(str, 'utf8');
  let off = 0;
  const deadline = Date.now() + 10000;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      // fd 1 may share a non-blocking file description with stdin (a tty): retry
      if (e.code === 'EAGAIN' && Date.now() < deadline) {
        Atomics.wait(SLEEP_CELL, 0, 0, 1);
        continue;
      }
      return; // EPIPE etc.: nothing left to report to
    }
  }
}

/** One JSON object per stdout line, non-ASCII escaped as \uXXXX (so the locale never matters). */
function emit(obj) {
  const line = JSON.stringify(obj).replace(/[\u007f-\uffff]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  writeAll(1, line + '\n');
}

/** Diagnostics on stderr under `prefix`: `debug` only once `verbose(true)` was called. */
function logger(prefix) {
  let verbose = false;
  return {
    verbose(on) { verbose = on; },
    isVerbose() { return verbose; },
    debug(msg) { if (verbose) writeAll(2, '[' + prefix + '] ' + msg + '\n'); },
    warn(msg) { writeAll(2, '[' + prefix + '] ' + msg + '\n'); },
  };
}

/** With verbose logging, every octet written to `socket` as hex (`label` >> hex). */
function traceWrites(socket, log, label) {
  if (!log.isVerbose()) return;
  const origWrite = socket.write.bind(socket);
  socket.write = (data, ...rest) => {
    if (Buffer.isBuffer(data)) log.debug(label + '>> ' + data.toString('hex'));
    return origWrite(data, ...rest);
  };
}

// ------------------------------------------------------------- node-smpp setup
/**
 * node-smpp, set up for exact tests; when it cannot be loaded, `fail` (a JSON
 * error object) is emitted with the reason and the process exits with `exitCode`.
 *
 * node-smpp 0.5.1 (lib/defs.js) types ussd_service_op (0x0501) as tlv.int8, whose
 * read ignores the TLV length, so a malformed one would be read silently:
 * re-register it length-aware.  Pin its_session_info (0x1383) to a plain buffer so
 * its octets go on the wire as given and come back all of them.  (smpp.addTLV is
 * node-smpp's public API for this.)  node-smpp also decodes received
 * short_message / message_payload itself (data_coding 0 and 1 both as GSM 03.38,
 * bytes >= 0x80 become ' ', a UDH is split off into an object): keep the raw octets
 * instead, to be decoded here exactly.  Outgoing messages are always Buffers, which
 * the encode filter passes through untouched (no data_coding auto-detection).
 * schedule_delivery_time / validity_period of a received submit_sm are reported as
 * sent (not as Date).
 */
function loadSmpp(fail, exitCode) {
  let smpp;
  try {
    smpp = require('smpp');
  } catch (e) {
    emit(Object.assign({}, fail, {
      message: 'cannot load the npm package smpp (' + e.message + '); run `npm ci` in tests/peers' }));
    process.exit(exitCode);
  }
  const strictInt8 = {
    read(buffer, offset, length) {
      if (length === 1) return buffer.readUInt8(offset);
      return { malformed: Buffer.from(buffer.slice(offset, offset + length)) };
    },
    write(value, buffer, offset) { buffer.writeUInt8(value, offset); },
    size() { return 1; },
    default: 0,
  };
  const rawBuffer = {
    read(buffer, offset, length) { return Buffer.from(buffer.slice(offset, offset + length)); },
    write(value, buffer, offset) { value.copy(buffer, offset); },
    size(value) { return value.length; },
    default: null,
  };
  smpp.addTLV('ussd_service_op', { id: 0x0501, type: strictInt8 });
  smpp.addTLV('its_session_info', { id: 0x1383, type: rawBuffer });

  const rawMessageFilter = { encode: smpp.filters.message.encode, decode: (v) => v };
  for (const cmd of ['deliver_sm', 'submit_sm', 'data_sm', 'submit_multi', 'replace_sm']) {
    const p = smpp.commands[cmd] && smpp.commands[cmd].params && smpp.commands[cmd].params.short_message;
    if (p) p.filter = rawMessageFilter;
  }
  smpp.tlvs.message_payload.filter = rawMessageFilter;
  const rawTimeFilter = { encode: smpp.filters.time.encode, decode: (v) => v };
  for (const p of ['schedule_delivery_time', 'validity_period']) {
    smpp.commands.submit_sm.params[p].filter = rawTimeFilter;
  }
  return smpp;
}

// ------------------------------------------------------------------ GSM 03.38
const GSM_BASIC = (
  '@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5' +
  '\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\x1b\u00c6\u00e6\u00df\u00c9' +
  ' !"#\u00a4%&\'()*+,-./' +
  '0123456789:;<=>?' +
  '\u00a1ABCDEFGHIJKLMNO' +
  'PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7' +
  '\u00bfabcdefghijklmno' +
  'pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0'
);
if (GSM_BASIC.length !== 128) throw new Error('GSM table');
const GSM_EXT = { 0x0a: '\x0c', 0x14: '^', 0x28: '{', 0x29: '}', 0x2f: '\\',
  0x3c: '[', 0x3d: '~', 0x3e: ']', 0x40: '|', 0x65: '\u20ac' };
const GSM_ENC = new Map();
for (let i = 0; i < 128; i++) if (i !== 0x1b) GSM_ENC.set(GSM_BASIC[i], [i]);
for (const [code, ch] of Object.entries(GSM_EXT)) GSM_ENC.set(ch, [0x1b, Number(code)]);

/** "character "x" (U+0078) at index N": the start of every coding error. */
function describeChar(ch, i) {
  return 'character ' + JSON.stringify(ch) + ' (U+' +
    ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0') + ') at index ' + i;
}

/** GSM 03.38 unpacked septets; `badChar(ch, i)` makes the error for a character outside it. */
function gsmEncode(text, badChar) {
  const out = [];
  let i = 0;
  for (const ch of text) {
    const enc = GSM_ENC.get(ch);
    if (!enc) throw badChar(ch, i);
    out.push(...enc);
    i++;
  }
  return Buffer.from(out);
}

function gsmDecode(data) {
  let out = '';
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x1b) {
      if (i + 1 < data.length) {
        const nxt = data[i + 1];
        // Unknown escape: GSM 03.38 says show the basic-table character.
        if (nxt in GSM_EXT) out += GSM_EXT[nxt];
        else out += (nxt < 0x80 && nxt !== 0x1b) ? GSM_BASIC[nxt] : '\ufffd';
        i++;
        continue;
      }
      out += ' '; // dangling escape
    } else if (b < 0x80) {
      out += GSM_BASIC[b];
    } else {
      out += '\ufffd';
    }
  }
  return out;
}

/** One octet per character up to `max`; `badChar(ch, i)` makes the error for one above. */
function singleByteEncode(text, max, badChar) {
  const out = [];
  let i = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c > max) throw badChar(ch, i);
    out.push(c);
    i++;
  }
  return Buffer.from(out);
}

function ucs2Encode(text) {
  return Buffer.from(text, 'utf16le').swap16();
}

function ucs2Decode(data) {
  const even = Buffer.from(data.slice(0, data.length - (data.length % 2)));
  let s = even.swap16().toString('utf16le');
  if (data.length % 2) s += '\ufffd';
  return s;
}

/** Text of a message body for data_coding 0 (GSM 03.38), 1 and 3 (latin1), 8 (UTF-16BE); else null. */
function decodeText(dataCoding, data) {
  switch (dataCoding) {
    case 0x00: return gsmDecode(data);
    case 0x01:
    case 0x03: return data.toString('latin1');
    case 0x08: return ucs2Decode(data);
    default: return null;
  }
}

function isInt(v) { return typeof v === 'number' && Number.isInteger(v); }

module.exports = {
  writeAll, emit, logger, traceWrites, loadSmpp,
  describeChar, gsmEncode, gsmDecode, singleByteEncode, ucs2Encode, ucs2Decode, decodeText,
  isInt,
};
