#!/usr/bin/env node
'use strict';
/*
 * Scriptable test SMSC (an SMPP 3.4 server playing a mobile operator's SMSC) for
 * otpgw's outbound SMPP client, built on the npm package `smpp` (node-smpp,
 * version pinned in tests/peers/package.json; `npm ci` in tests/peers).
 *
 * The gateway binds to us as an ESME: we hand it customer messages (MO) as
 * deliver_sm, it answers with submit_sm, and we send it delivery receipts.
 * A test drives us through stdin (one JSON command per line) and reads one JSON
 * event per line on stdout (non-ASCII escaped as \uXXXX, so the locale never
 * matters); diagnostics go to stderr (more of them with --verbose).  Every wait is
 * bounded, and nothing either side sends can crash the process.
 *
 * Usage:
 *   node tests/peers/smsc.js [--port 0] [--host 127.0.0.1] [--account SYSTEM_ID:PASSWORD ...]
 *        [--verbose]
 * Listens on 127.0.0.1 (port 0 = any free port); the first stdout line is
 *   {"event":"listening","port":N}
 * (or {"event":"error","error":"listen"|"usage",...} and exit code 1 / 2).  With
 * --account (repeatable; the password is everything after the first ':'), a bind
 * with an unknown system_id gets ESME_RINVSYSID (0x0F), a wrong password
 * ESME_RINVPASWD (0x0E); without, any bind is accepted.  A second bind on a bound
 * session gets ESME_RALYBND (0x05).  A refused bind leaves the connection open.
 * Exits (closing every socket) when stdin closes, on SIGTERM and on SIGINT.
 *
 * Commands (stdin; every command answers with at least one event; bad JSON, an
 * unknown command, an unknown key or a bad value gives
 *   {"event":"error","error":"usage","message":S,"cmd":S|null}):
 *   {"cmd":"set", FLAG: VALUE, ...}  -> {"event":"set","settings":{...all flags...}}
 *     Flags persist until changed:
 *       reject_binds N       the next N bind attempts get reject_status (default 0x0D
 *                            ESME_RBINDFAIL), even with the right password
 *       throttle N           the next N submit_sm get throttle_status (default 0x58
 *                            ESME_RTHROTTLED) and are not accepted (no message id)
 *       fail_next N          the next N submit_sm get fail_status (default 0x45) and
 *                            are not accepted (throttle is consumed first)
 *       id_format F          message_id in submit_sm_resp, from a counter starting at
 *                            0x100000: "hex" (lowercase, default) | "HEX" | "dec" |
 *                            "dec_padded" (decimal, zero-padded to 20 digits) |
 *                            "empty" (no id at all, as some SMSCs answer)
 *       auto_receipt R       null (default: no receipts) or {"stat":"DELIVRD",
 *                            "id_format":"same"|"dec"|"hex"|"HEX"|"dec_padded",
 *                            "tlv":false, "before_resp":false, "delay_ms":0|300,
 *                            "err":"000"} (defaults shown; `true` = {}): for every
 *                            ACCEPTED submit_sm with registered_delivery & 0x03, a
 *                            receipt deliver_sm (see below) on a receiving session --
 *                            the submit's own session if it is a transceiver, else a
 *                            receiver with the same system_id, else any receiver.
 *                            Sent delay_ms after the submit_sm_resp is written; with
 *                            before_resp, sent at once and the submit_sm_resp follows
 *                            delay_ms (default 300) later.  The receipt text carries
 *                            the id re-formatted per id_format ("same" = as in the
 *                            submit_sm_resp, others from the counter value); the
 *                            receipted_message_id TLV is always the id as in the
 *                            submit_sm_resp.  The settings are taken when the
 *                            submit_sm arrives.
 *       resp_delay_ms N      delay every submit_sm_resp by N ms (per session, order kept)
 *       bind_delay_ms N      delay every bind response by N ms (the bind event comes at once)
       answer_only N        null (default: answer all) or N: answer the next N submit_sm,
                            then take every further one without answering it (its
                            submit_sm event has status null), as an SMSC that loses the
                            link before it answers
 *       ignore_enquire_link B  true: do not answer enquire_link
 *       reject_status S, throttle_status S, fail_status S   (nonzero; persist)
 *     Integers may be JSON numbers or strings "0x58" / "88".
 *   {"cmd":"reset"} -> {"event":"reset","settings":{...}}   (all flags back to defaults;
 *     the message id counter and the stats are kept)
 *   {"cmd":"mo","from":S,"to":S,"text":S,"coding":"ascii"|"gsm"|"ucs2"|"latin1","tag":ANY,
 *    "session":K?,"service_type":"","ussd_service_op":N?,"its_session_info":[a,b]?,
 *    "hex":S?,"payload":false,"data_coding":N?,"esm_class":0,"source_addr_ton":1,
 *    "source_addr_npi":1,"dest_addr_ton":0,"dest_addr_npi":1,"timeout_ms":10000}
 *     deliver_sm on session K or the first bound receiving session (transceiver or
 *     receiver, lowest id).  coding (default "ascii"): ascii -> data_coding 1 (ASCII
 *     octets), gsm -> 0 (GSM 03.38 unpacked, incl. escape table), latin1 -> 3,
 *     ucs2 -> 8 (UTF-16BE); a character the coding cannot carry is a usage error.
 *     hex: raw octets instead of text (data_coding still from coding/data_coding).
 *     payload: true sends the octets in message_payload with an empty short_message
 *     (needed above 254 octets).  Answer, when the response comes:
 *       {"event":"deliver_sm_resp","tag":T,"status":N,"message_id":S|null,"session":K,
 *        "ms":N,"kind":"mo","command":"deliver_sm_resp"|"generic_nack"}
 *     or {"event":"error","error":"no_session"|"timeout"|"session_closed","tag":T,...}
 *     (timeout after timeout_ms without response; session_closed when the
 *     connection goes before the response).
 *   {"cmd":"receipt","message_id":S,"receipted_message_id":S|null,"stat":"DELIVRD",
 *    "tlv":false,"err":"000","message_state":N?,"from":"","to":"","session":K?,"tag":ANY,
 *    "timeout_ms":10000}
 *     a receipt deliver_sm with message_id in the text; with tlv true also the TLVs
 *     receipted_message_id (default: message_id) and message_state (from stat, or as
 *     given).  Answer as for mo, with "kind":"receipt".
 *   {"cmd":"drop"}            -> {"event":"dropped","count":N}  (every socket destroyed)
 *   {"cmd":"close_listener"}  -> {"event":"listener_closed"}  (new connects refused;
 *                                 established sessions stay)
 *   {"cmd":"reopen_listener"} -> {"event":"listening","port":N}  (same port)
 *   {"cmd":"unbind"}          -> {"event":"unbind_sent","count":N}  (to every connected
 *     session); then per session {"event":"unbind_resp","session":K,"status":N} and we
 *     close that socket, or {"event":"error","error":"timeout","command":"unbind",
 *     "session":K} after 10 s and we destroy it.
 *   {"cmd":"enquire_link"}    -> {"event":"enquire_link_sent","count":N}  (to every
 *     bound session); then {"event":"enquire_link_resp","session":K,"status":N} each.
 *   {"cmd":"sessions"} -> {"event":"sessions","bound":[{"session":K,"command":S,
 *                          "system_id":S}...],"connected":[K...]}
 *   {"cmd":"stats"}    -> {"event":"stats","submit_sm":N,"accepted":N,"throttled":N,
 *                          "failed":N,"enquire_link":N,"binds":N,"bind_attempts":N,
 *                          "deliver_sm":N,"sessions":N,"next_id":N}
 *     (binds counts successful binds; submit_sm counts every submit_sm received)
 *
 * Receipt deliver_sm: esm_class 0x04, data_coding 0, short_message
 *   id:<ID> sub:001 dlvrd:001 submit date:2611221200 done date:2611221200 stat:<STAT> err:<ERR> text:
 * source_addr = the submit's destination_addr, destination_addr = its source_addr
 * (ton/npi likewise swapped); message_state TLV: ENROUTE 1, DELIVRD 2, EXPIRED 3,
 * DELETED 4, UNDELIV 5, ACCEPTD 6, UNKNOWN 7, REJECTD 8 (other stat: TLV left out).
 * Auto receipts answer {"event":"deliver_sm_resp",...,"kind":"auto_receipt",
 * "tag":null,"receipt_for":ID} (or an error event with "receipt_for").
 *
 * Events on their own:
 *   {"event":"connect","session":K}   {"event":"close","session":K}
 *   {"event":"bind","session":K,"command":"bind_transceiver"|"bind_transmitter"|
 *    "bind_receiver","system_id":S,"system_type":S,"interface_version":N,"addr_ton":N,
 *    "addr_npi":N,"address_range":S,"status":N}
 *     (bind_*_resp carries system_id "smsc" and sc_interface_version 0x34 on success,
 *      header only on error)
 *   {"event":"submit_sm","session":K,"seq":N,"service_type":S,"source_addr":S,
 *    "source_addr_ton":N,"source_addr_npi":N,"destination_addr":S,"dest_addr_ton":N,
 *    "dest_addr_npi":N,"esm_class":N,"registered_delivery":N,"data_coding":N,
 *    "protocol_id":N,"priority_flag":N,"schedule_delivery_time":S,"validity_period":S,
 *    "text":S|null,"payload":B,"udh":{"ref":N,"total":N,"seq":N}|null,"udh_hex":S|null,
 *    "sar":{"ref":N,"total":N,"seq":N}|null,"body_hex":S,"ussd_service_op":N|null,
 *    "its_session_info":[..]|null,"status":N,"message_id":S|null}
 *     text: short_message, or message_payload when short_message is empty (payload
 *     true), after the UDH when esm_class has 0x40 (udh from concatenation IE 0x00 or
 *     0x08); decoded for data_coding 0 (GSM 03.38), 1 and 3 (latin1), 8 (UTF-16BE) and
 *     the GSM 03.38 DCS groups 0x10-0x3F / 0xF0-0xFF; else null (see body_hex =
 *     the octets after the UDH).  status/message_id: what we answered (ESME_RINVBNDSTS
 *     0x04 when the session is not bound as transmitter/transceiver).
 *   {"event":"enquire_link","session":K}  (answered unless ignore_enquire_link)
 *   {"event":"unbind","session":K}        (answered; the socket closes after the resp)
 *   {"event":"generic_nack","session":K,"status":N,"seq":N}
 *   {"event":"pdu","session":K,"command":S,"command_id":N,"seq":N,"status":N}  for any
 *     other PDU (incl. responses nobody waits for); requests get generic_nack
 *     ESME_RINVCMDID (0x03).
 * A PDU node-smpp cannot parse, or a socket error, is logged to stderr and the
 * connection is destroyed ({"event":"close"} follows).
 *
 * This file reads the commands and runs them; smsc_sessions.js holds the sessions
 * and the PDUs, smpp_common.js what we share with ussd_peer.js.
 */

const readline = require('readline');

const {
  emit, describeChar, gsmEncode, singleByteEncode, ucs2Encode, isInt,
} = require('./smpp_common');
const {
  log, smpp, state, STATS, sessions, defaultSettings, ID_FORMATS, RECEIPT_ID_FORMATS,
  DEFAULT_TIMEOUT_MS, canReceive, firstReceiver, request, deliverSm, buildReceipt, safe, listen,
} = require('./smsc_sessions');

const { debug, warn } = log;

class UsageError extends Error {}

function charError(coding) {
  return (ch, i) => new UsageError(describeChar(ch, i) + ' cannot be sent with coding ' + coding);
}

function listenFailed(e) {
  emit({ event: 'error', error: 'listen',
    message: 'cannot listen on ' + state.host + ':' + state.port + ': ' + e.message });
}

// ------------------------------------------------------------------ helpers
function toInt(value, name, min, max) {
  let n;
  if (isInt(value)) n = value;
  else if (typeof value === 'string' && /^\s*0x[0-9a-f]+\s*$/i.test(value)) n = parseInt(value.trim().slice(2), 16);
  else if (typeof value === 'string' && /^\s*[0-9]+\s*$/.test(value)) n = parseInt(value.trim(), 10);
  else throw new UsageError(name + ' must be an integer, got ' + JSON.stringify(value));
  if (n < min || n > max) throw new UsageError(name + ' must be in ' + min + '..' + max + ', got ' + n);
  return n;
}

function toBool(value, name) {
  if (typeof value !== 'boolean') throw new UsageError(name + ' must be true or false, got ' + JSON.stringify(value));
  return value;
}

function toAscii(value, name, maxLen) {
  if (typeof value !== 'string' || !/^[\x01-\x7f]*$/.test(value)) {
    throw new UsageError(name + ' must be an ASCII string without NUL, got ' + JSON.stringify(value));
  }
  if (maxLen !== undefined && value.length > maxLen) {
    throw new UsageError(name + ' is longer than ' + maxLen + ' characters');
  }
  return value;
}

function checkKeys(cmd, allowed) {
  for (const k of Object.keys(cmd)) {
    if (k !== 'cmd' && !allowed.includes(k)) {
      throw new UsageError('unknown key ' + JSON.stringify(k) + ' for ' + cmd.cmd +
        ' (known: ' + allowed.join(', ') + ')');
    }
  }
}

// ------------------------------------------------------------------ commands
function setSettings(cmd) {
  const next = Object.assign({}, state.settings);
  for (const [k, v] of Object.entries(cmd)) {
    switch (k) {
      case 'cmd': break;
      case 'reject_binds':
      case 'throttle':
      case 'fail_next':
      case 'resp_delay_ms':
      case 'bind_delay_ms':
        next[k] = toInt(v, k, 0, 0x7fffffff);
        break;
      case 'answer_only':
        next[k] = v === null ? null : toInt(v, k, 0, 0x7fffffff);
        break;
      case 'reject_status':
      case 'throttle_status':
      case 'fail_status':
        next[k] = toInt(v, k, 1, 0xffffffff);
        break;
      case 'id_format':
        if (!ID_FORMATS.includes(v)) throw new UsageError('id_format must be one of ' + ID_FORMATS.join(', '));
        next[k] = v;
        break;
      case 'ignore_enquire_link':
        next[k] = toBool(v, k);
        break;
      case 'auto_receipt': {
        if (v === null || v === false) {
          next[k] = null;
          break;
        }
        const o = v === true ? {} : v;
        if (typeof o !== 'object' || Array.isArray(o)) throw new UsageError('auto_receipt must be null or an object');
        const allowed = ['stat', 'id_format', 'tlv', 'before_resp', 'delay_ms', 'err'];
        for (const key of Object.keys(o)) {
          if (!allowed.includes(key)) throw new UsageError('unknown auto_receipt key ' + JSON.stringify(key));
        }
        const ar = {
          stat: o.stat === undefined ? 'DELIVRD' : toAscii(o.stat, 'auto_receipt.stat', 20),
          id_format: o.id_format === undefined ? 'same' : o.id_format,
          tlv: o.tlv === undefined ? false : toBool(o.tlv, 'auto_receipt.tlv'),
          before_resp: o.before_resp === undefined ? false : toBool(o.before_resp, 'auto_receipt.before_resp'),
          err: o.err === undefined ? '000' : toAscii(o.err, 'auto_receipt.err', 20),
        };
        if (!RECEIPT_ID_FORMATS.includes(ar.id_format)) {
          throw new UsageError('auto_receipt.id_format must be one of ' + RECEIPT_ID_FORMATS.join(', '));
        }
        ar.delay_ms = o.delay_ms === undefined ? (ar.before_resp ? 300 : 0)
          : toInt(o.delay_ms, 'auto_receipt.delay_ms', 0, 0x7fffffff);
        next[k] = ar;
        break;
      }
      default:
        throw new UsageError('unknown flag ' + JSON.stringify(k) + ' for set');
    }
  }
  state.settings = next;
  emit({ event: 'set', settings: state.settings });
}

function cmdMo(cmd) {
  checkKeys(cmd, ['from', 'to', 'text', 'hex', 'coding', 'tag', 'session', 'service_type',
    'ussd_service_op', 'its_session_info', 'payload', 'data_coding', 'esm_class',
    'source_addr_ton', 'source_addr_npi', 'dest_addr_ton', 'dest_addr_npi', 'timeout_ms']);
  const tag = cmd.tag === undefined ? null : cmd.tag;
  if (cmd.from === undefined || cmd.to === undefined) throw new UsageError('mo: from and to are required');
  const from = toAscii(cmd.from, 'from', 20);
  const to = toAscii(cmd.to, 'to', 20);
  const coding = cmd.coding === undefined ? 'ascii' : cmd.coding;
  const codings = { ascii: 0x01, gsm: 0x00, latin1: 0x03, ucs2: 0x08 };
  if (!(coding in codings)) throw new UsageError('mo: coding must be ascii, gsm, latin1 or ucs2');
  let body;
  if (cmd.hex !== undefined) {
    if (cmd.text !== undefined) throw new UsageError('mo: text and hex exclude each other');
    if (typeof cmd.hex !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(cmd.hex)) throw new UsageError('mo: hex must be pairs of hex digits');
    body = Buffer.from(cmd.hex, 'hex');
  } else {
    if (typeof cmd.text !== 'string') throw new UsageError('mo: text (a string) is required');
    if (coding === 'ascii') body = singleByteEncode(cmd.text, 0x7f, charError('ascii'));
    else if (coding === 'latin1') body = singleByteEncode(cmd.text, 0xff, charError('latin1'));
    else if (coding === 'gsm') body = gsmEncode(cmd.text, charError('gsm'));
    else body = ucs2Encode(cmd.text);
  }
  const payload = cmd.payload === undefined ? false : toBool(cmd.payload, 'payload');
  if (!payload && body.length > 254) {
    throw new UsageError('mo: ' + body.length + ' octets do not fit short_message (max 254); use "payload":true');
  }
  if (payload && body.length > 0xffff) throw new UsageError('mo: message_payload too long');
  const opts = {
    service_type: cmd.service_type === undefined ? '' : toAscii(cmd.service_type, 'service_type', 5),
    source_addr_ton: cmd.source_addr_ton === undefined ? 1 : toInt(cmd.source_addr_ton, 'source_addr_ton', 0, 255),
    source_addr_npi: cmd.source_addr_npi === undefined ? 1 : toInt(cmd.source_addr_npi, 'source_addr_npi', 0, 255),
    source_addr: from,
    dest_addr_ton: cmd.dest_addr_ton === undefined ? 0 : toInt(cmd.dest_addr_ton, 'dest_addr_ton', 0, 255),
    dest_addr_npi: cmd.dest_addr_npi === undefined ? 1 : toInt(cmd.dest_addr_npi, 'dest_addr_npi', 0, 255),
    destination_addr: to,
    esm_class: cmd.esm_class === undefined ? 0 : toInt(cmd.esm_class, 'esm_class', 0, 255),
    protocol_id: 0,
    priority_flag: 0,
    registered_delivery: 0,
    replace_if_present_flag: 0,
    data_coding: cmd.data_coding === undefined ? codings[coding] : toInt(cmd.data_coding, 'data_coding', 0, 255),
    sm_default_msg_id: 0,
    short_message: payload ? Buffer.alloc(0) : body,
  };
  if (payload) opts.message_payload = body;
  if (cmd.ussd_service_op !== undefined && cmd.ussd_service_op !== null) {
    opts.ussd_service_op = toInt(cmd.ussd_service_op, 'ussd_service_op', 0, 255);
  }
  if (cmd.its_session_info !== undefined && cmd.its_session_info !== null) {
    if (!Array.isArray(cmd.its_session_info)) throw new UsageError('its_session_info must be an array of octets');
    opts.its_session_info = Buffer.from(cmd.its_session_info.map((b, i) => toInt(b, 'its_session_info[' + i + ']', 0, 255)));
  }
  const timeoutMs = cmd.timeout_ms === undefined ? DEFAULT_TIMEOUT_MS : toInt(cmd.timeout_ms, 'timeout_ms', 1, 3600000);
  sendToEsme(cmd, tag, opts, { kind: 'mo' }, timeoutMs);
}

function pickSession(cmd) {
  if (cmd.session === undefined || cmd.session === null) return firstReceiver();
  const k = toInt(cmd.session, 'session', 0, 0x7fffffff);
  const s = sessions.get(k);
  return s && canReceive(s) ? s : null;
}

function sendToEsme(cmd, tag, opts, extra, timeoutMs) {
  const s = pickSession(cmd);
  const meta = Object.assign({ tag }, extra);
  if (!s) {
    emit(Object.assign({ event: 'error', error: 'no_session',
      message: cmd.session !== undefined && cmd.session !== null
        ? 'session ' + cmd.session + ' is not bound to receive' : 'no session is bound to receive' }, meta));
    return;
  }
  deliverSm(s, opts, meta, timeoutMs);
}

function cmdReceipt(cmd) {
  checkKeys(cmd, ['message_id', 'receipted_message_id', 'stat', 'tlv', 'err', 'message_state',
    'from', 'to', 'session', 'tag', 'timeout_ms']);
  const tag = cmd.tag === undefined ? null : cmd.tag;
  if (cmd.message_id === undefined) throw new UsageError('receipt: message_id is required');
  const textId = toAscii(String(cmd.message_id), 'message_id', 200);
  const tlvId = cmd.receipted_message_id === undefined || cmd.receipted_message_id === null
    ? textId : toAscii(String(cmd.receipted_message_id), 'receipted_message_id', 200);
  const r = {
    textId, tlvId,
    stat: cmd.stat === undefined ? 'DELIVRD' : toAscii(cmd.stat, 'stat', 20),
    err: cmd.err === undefined ? '000' : toAscii(cmd.err, 'err', 20),
    tlv: cmd.tlv === undefined ? false : toBool(cmd.tlv, 'tlv'),
    messageState: cmd.message_state === undefined ? undefined : toInt(cmd.message_state, 'message_state', 0, 255),
    from: cmd.from === undefined ? '' : toAscii(cmd.from, 'from', 20),
    to: cmd.to === undefined ? '' : toAscii(cmd.to, 'to', 20),
    srcTon: 1, srcNpi: 1, dstTon: 0, dstNpi: 1,
  };
  let opts;
  try {
    opts = buildReceipt(r);
  } catch (e) {
    throw new UsageError('receipt: ' + e.message);
  }
  if (Buffer.byteLength(opts.short_message) > 254) throw new UsageError('receipt: text longer than 254 octets');
  const timeoutMs = cmd.timeout_ms === undefined ? DEFAULT_TIMEOUT_MS : toInt(cmd.timeout_ms, 'timeout_ms', 1, 3600000);
  sendToEsme(cmd, tag, opts, { kind: 'receipt' }, timeoutMs);
}

function cmdUnbind() {
  let count = 0;
  for (const s of Array.from(sessions.values())) {
    if (s.closed) continue;
    s.unbinding = true;
    const pdu = new smpp.PDU('unbind', {});
    let sent = true;
    request(s, pdu, DEFAULT_TIMEOUT_MS, (resp) => {
      emit({ event: 'unbind_resp', session: s.id, status: resp.command_status, command: resp.command });
      s.bound = null;
      if (!s.closed) s.session.close();
    }, (kind, message) => {
      if (kind === 'no_session') { sent = false; return; }
      if (kind === 'session_closed') return; // {"event":"close"} tells
      emit({ event: 'error', error: kind, command: 'unbind', session: s.id, message });
      if (!s.closed) s.session.destroy();
    });
    if (sent) count++;
  }
  emit({ event: 'unbind_sent', count });
}

function cmdEnquireLink() {
  let count = 0;
  for (const s of Array.from(sessions.values())) {
    if (s.closed || !s.bound) continue;
    let sent = true;
    request(s, new smpp.PDU('enquire_link', {}), DEFAULT_TIMEOUT_MS, (resp, ms) => {
      emit({ event: 'enquire_link_resp', session: s.id, status: resp.command_status, command: resp.command, ms });
    }, (kind, message) => {
      if (kind === 'no_session') { sent = false; return; }
      emit({ event: 'error', error: kind, command: 'enquire_link', session: s.id, message });
    });
    if (sent) count++;
  }
  emit({ event: 'enquire_link_sent', count });
}

const COMMANDS = {
  set: setSettings,
  reset(cmd) {
    checkKeys(cmd, []);
    state.settings = defaultSettings();
    emit({ event: 'reset', settings: state.settings });
  },
  mo: cmdMo,
  receipt: cmdReceipt,
  drop(cmd) {
    checkKeys(cmd, []);
    let count = 0;
    for (const s of Array.from(sessions.values())) {
      if (s.closed) continue;
      s.session.destroy();
      count++;
    }
    emit({ event: 'dropped', count });
  },
  close_listener(cmd) {
    checkKeys(cmd, []);
    if (state.server) {
      const srv = state.server;
      state.server = null;
      srv.close(); // established connections stay; the listening socket goes now
    }
    emit({ event: 'listener_closed' });
  },
  reopen_listener(cmd) {
    checkKeys(cmd, []);
    if (state.server) {
      emit({ event: 'listening', port: state.port });
      return;
    }
    listen(() => emit({ event: 'listening', port: state.port }), listenFailed);
  },
  unbind(cmd) {
    checkKeys(cmd, []);
    cmdUnbind();
  },
  enquire_link(cmd) {
    checkKeys(cmd, []);
    cmdEnquireLink();
  },
  sessions(cmd) {
    checkKeys(cmd, []);
    const bound = [];
    const connected = [];
    for (const s of sessions.values()) {
      if (s.closed) continue;
      connected.push(s.id);
      if (s.bound) bound.push({ session: s.id, command: s.bound.command, system_id: s.bound.system_id });
    }
    emit({ event: 'sessions', bound, connected });
  },
  stats(cmd) {
    checkKeys(cmd, []);
    emit(Object.assign({ event: 'stats' }, STATS, { sessions: sessions.size, next_id: state.nextId }));
  },
};

function onLine(line) {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    emit({ event: 'error', error: 'usage', message: 'bad JSON: ' + e.message, cmd: null });
    return;
  }
  if (!cmd || typeof cmd !== 'object' || Array.isArray(cmd) || typeof cmd.cmd !== 'string') {
    emit({ event: 'error', error: 'usage', message: 'a command is a JSON object with a string "cmd"', cmd: null });
    return;
  }
  const handler = Object.prototype.hasOwnProperty.call(COMMANDS, cmd.cmd) ? COMMANDS[cmd.cmd] : null;
  if (!handler) {
    emit({ event: 'error', error: 'usage', message: 'unknown command ' + JSON.stringify(cmd.cmd) +
      ' (known: ' + Object.keys(COMMANDS).join(', ') + ')', cmd: cmd.cmd });
    return;
  }
  try {
    handler(cmd);
  } catch (e) {
    if (e instanceof UsageError) {
      emit({ event: 'error', error: 'usage', message: e.message, cmd: cmd.cmd, tag: cmd.tag === undefined ? null : cmd.tag });
    } else {
      warn('internal error in ' + cmd.cmd + ': ' + (e && e.stack || e));
      emit({ event: 'error', error: 'internal', message: String(e && e.message || e), cmd: cmd.cmd,
        tag: cmd.tag === undefined ? null : cmd.tag });
    }
  }
}

// ------------------------------------------------------------------ main
function shutdown(code) {
  if (state.shuttingDown) return;
  state.shuttingDown = true;
  debug('shutting down');
  for (const s of sessions.values()) {
    try { s.session.destroy(); } catch (e) { /* ignore */ }
  }
  try { if (state.server) state.server.close(); } catch (e) { /* ignore */ }
  process.exit(code);
}

function parseArgs(argv) {
  const cfg = { port: 0, host: '127.0.0.1', accounts: null, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    let tok = argv[i];
    let val = null;
    const eq = tok.indexOf('=');
    if (tok.startsWith('--') && eq > 0) {
      val = tok.slice(eq + 1);
      tok = tok.slice(0, eq);
    }
    const value = () => {
      if (val !== null) return val;
      if (i + 1 >= argv.length) throw new UsageError(tok + ' needs a value');
      return argv[++i];
    };
    switch (tok) {
      case '--port':
        cfg.port = toInt(value(), '--port', 0, 65535);
        break;
      case '--host':
        cfg.host = value();
        break;
      case '--account': {
        const a = value();
        const c = a.indexOf(':');
        if (c < 0) throw new UsageError('--account must be SYSTEM_ID:PASSWORD, got ' + JSON.stringify(a));
        if (!cfg.accounts) cfg.accounts = new Map();
        cfg.accounts.set(a.slice(0, c), a.slice(c + 1));
        break;
      }
      case '--verbose':
        if (val !== null) throw new UsageError('--verbose takes no value');
        cfg.verbose = true;
        break;
      case '--help':
        throw new UsageError('see the header of tests/peers/smsc.js for usage');
      default:
        throw new UsageError('unknown argument ' + JSON.stringify(argv[i]));
    }
  }
  return cfg;
}

function main() {
  let cfg;
  try {
    cfg = parseArgs(process.argv.slice(2));
  } catch (e) {
    emit({ event: 'error', error: 'usage', message: e.message });
    process.exit(2);
  }
  log.verbose(cfg.verbose);
  state.accounts = cfg.accounts;
  state.host = cfg.host;
  state.port = cfg.port;

  process.on('uncaughtException', (e) => warn('uncaught exception (ignored): ' + (e && e.stack || e)));
  process.on('unhandledRejection', (e) => warn('unhandled rejection (ignored): ' + (e && e.stack || e)));
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  listen(() => {
    emit({ event: 'listening', port: state.port });
    const rl = readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
    rl.on('line', (line) => safe(() => onLine(line)));
    rl.on('close', () => shutdown(0));
    process.stdin.on('error', (e) => { debug('stdin error: ' + e.message); shutdown(0); });
  }, (e) => {
    listenFailed(e);
    process.exit(1);
  });
}

main();
