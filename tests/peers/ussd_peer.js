#!/usr/bin/env node
'use strict';
/*
 * USSD test peer for otpgw's SMPP server, built on the npm package `smpp`
 * (node-smpp, version pinned in tests/peers/package.json; `npm ci` in tests/peers).
 *
 * Binds as transceiver (interface_version 0x34) and runs a chain of commands in
 * one session.  Every result is one JSON object per line on stdout (non-ASCII
 * escaped as \uXXXX, so the locale never matters); diagnostics go to stderr.
 * On failure the last stdout line is
 *   {"event":"error","error":KIND,"message":S,"command":S|null}
 * and the exit code is non-zero (see EXIT_CODES).  Every wait is bounded.
 *
 * Usage:
 *   node tests/peers/ussd_peer.js --host 127.0.0.1 --port PORT --system-id ID --password PW
 *        [--timeout 10] [--system-type S] [--verbose]
 *        COMMAND [ARGS] [COMMAND [ARGS] ...]
 *
 * Commands (a new command starts at each command word; option values are always
 * taken verbatim, so `--text unbind` is text, not a command):
 *   ussd --from MSISDN --to DEST (--op N | --no-ussd-op) (--session S --seq Q | --no-session-info)
 *        --text TEXT [--coding gsm|ucs2] [--service-type USSD] [--pdu submit_sm|deliver_sm]
 *        [--no-reply] [--quiet-wait 1] [--timeout S]
 *   wait-deliver [--timeout S]
 *   sleep SECONDS
 *   enquire-link [--timeout S]
 *   unbind [--timeout S]
 *
 * Output lines (extra keys may be added; existing ones are stable):
 *   {"event":"bind","status":N}                                   (always first)
 *   {"event":"submit_sm_resp","status":N,"command_id":N,"message_id":S}
 *     (or "deliver_sm_resp" with --pdu deliver_sm; command_id 0x80000000 = generic_nack)
 *   {"event":"deliver_sm","text":S|null,"data_coding":N,"service_type":S,"source_addr":S,
 *    "destination_addr":S,"ussd_service_op":N|null,"its_session_info":[a,b]|null,"esm_class":N,
 *    "source_addr_ton":N,"source_addr_npi":N,"dest_addr_ton":N,"dest_addr_npi":N,
 *    "payload_hex":S,"sequence_number":N}
 *     ("event" is "submit_sm" if the server sent a submit_sm instead, e.g. after --pdu deliver_sm;
 *      text: short_message, or message_payload when short_message is empty; data_coding 0 =
 *      GSM 03.38 unpacked incl. escape table, 1 and 3 = latin1, 8 = UTF-16BE, others = null;
 *      its_session_info lists every octet of the TLV, so a wrong length is visible;
 *      ussd_service_op is null when absent or not exactly 1 octet, see ussd_service_op_hex)
 *   {"event":"no_reply"}       {"event":"slept","seconds":F}
 *   {"event":"enquire_link_resp","status":N}      {"event":"unbind_resp","status":N}
 *   {"event":"error","error":KIND,"message":S,"command":S|null}
 * Exit codes: 0 ok, 1 internal, 2 usage, 3 bind_rejected, 4 connect, 5 timeout,
 *   6 connection_closed, 7 protocol, 8 server_unbind.
 *
 * The peer answers, at any time: enquire_link (enquire_link_resp), deliver_sm and
 * submit_sm (status 0; queued and reported by the next command that waits for one),
 * unbind (unbind_resp; then waits fail with server_unbind once the queue is empty),
 * and any other request with generic_nack ESME_RINVCMDID.
 */

const {
  emit, logger, traceWrites, loadSmpp, describeChar, gsmEncode, ucs2Encode, decodeText,
} = require('./smpp_common');

const EXIT_CODES = {
  internal: 1,
  usage: 2,
  bind_rejected: 3,
  connect: 4,
  timeout: 5,
  connection_closed: 6,
  protocol: 7,
  server_unbind: 8,
};

const log = logger('ussd_peer');
const { debug } = log;

class PeerError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const smpp = loadSmpp({ event: 'error', error: 'internal', command: null }, EXIT_CODES.internal);

// ------------------------------------------------------------------ arguments
const COMMANDS = new Set(['ussd', 'wait-deliver', 'sleep', 'enquire-link', 'unbind']);

// option name -> kind ('value' takes the next token, 'flag' takes none)
const GLOBAL_OPTS = { host: 'value', port: 'value', 'system-id': 'value', password: 'value',
  timeout: 'value', 'system-type': 'value', verbose: 'flag', help: 'flag' };
const CMD_OPTS = {
  ussd: { from: 'value', to: 'value', op: 'value', session: 'value', seq: 'value',
    text: 'value', coding: 'value', 'service-type': 'value', 'no-reply': 'flag',
    'quiet-wait': 'value', pdu: 'value', 'no-session-info': 'flag', 'no-ussd-op': 'flag',
    timeout: 'value' },
  'wait-deliver': { timeout: 'value' },
  sleep: {},
  'enquire-link': { timeout: 'value' },
  unbind: { timeout: 'value' },
};

function usage(msg) {
  return new PeerError('usage', msg);
}

// Parse "--name value", "--name=value" and flags from tokens[i..]; stops at the
// first token that is not an option of `spec`.  Returns [opts, nextIndex].
function parseOpts(tokens, i, spec, where) {
  const opts = {};
  while (i < tokens.length) {
    const tok = tokens[i];
    if (!tok.startsWith('--')) break;
    let name = tok.slice(2);
    let inline = null;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      inline = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = spec[name];
    if (!kind) throw usage('unknown option --' + name + ' for ' + where);
    if (kind === 'flag') {
      if (inline !== null) throw usage('--' + name + ' takes no value');
      opts[name] = true;
      i++;
    } else if (inline !== null) {
      opts[name] = inline;
      i++;
    } else {
      if (i + 1 >= tokens.length) throw usage('--' + name + ' needs a value (' + where + ')');
      opts[name] = tokens[i + 1];
      i += 2;
    }
  }
  return [opts, i];
}

function parseInt0(value, name, min, max) {
  const s = String(value).trim();
  let n;
  if (/^0x[0-9a-f]+$/i.test(s)) n = parseInt(s.slice(2), 16);
  else if (/^[0-9]+$/.test(s)) n = parseInt(s, 10);
  else throw usage(name + ' must be an integer, got ' + JSON.stringify(value));
  if (n < min || n > max) throw usage(name + ' must be in ' + min + '..' + max + ', got ' + n);
  return n;
}

function parseSeconds(value, name) {
  const s = String(value).trim();
  const n = Number(s);
  if (s === '' || !Number.isFinite(n) || n < 0 || n > 3600) {
    throw usage(name + ' must be a number of seconds in 0..3600, got ' + JSON.stringify(value));
  }
  return n;
}

function parseArgs(argv) {
  let [g, i] = parseOpts(argv, 0, GLOBAL_OPTS, 'the global options');
  if (g.help) {
    throw usage('see the header of tests/peers/ussd_peer.js for usage');
  }
  for (const req of ['port', 'system-id', 'password']) {
    if (g[req] === undefined) throw usage('--' + req + ' is required');
  }
  const cfg = {
    host: g.host || '127.0.0.1',
    port: parseInt0(g.port, '--port', 1, 65535),
    systemId: g['system-id'],
    password: g.password,
    systemType: g['system-type'] || '',
    timeout: g.timeout !== undefined ? parseSeconds(g.timeout, '--timeout') : 10,
    verbose: !!g.verbose,
    commands: [],
  };
  if (i >= argv.length) throw usage('no command given');
  while (i < argv.length) {
    const word = argv[i];
    if (!COMMANDS.has(word)) throw usage('unknown command ' + JSON.stringify(word));
    i++;
    const cmd = { name: word };
    if (word === 'sleep') {
      if (i >= argv.length) throw usage('sleep needs SECONDS');
      cmd.seconds = parseSeconds(argv[i], 'sleep SECONDS');
      i++;
    }
    let opts;
    [opts, i] = parseOpts(argv, i, CMD_OPTS[word], word);
    cmd.timeout = opts.timeout !== undefined ? parseSeconds(opts.timeout, word + ' --timeout') : cfg.timeout;
    if (word === 'ussd') buildUssd(cmd, opts);
    cfg.commands.push(cmd);
  }
  return cfg;
}

function buildUssd(cmd, o) {
  for (const req of ['from', 'to', 'text']) {
    if (o[req] === undefined) throw usage('ussd: --' + req + ' is required');
  }
  if (o.op === undefined && !o['no-ussd-op']) throw usage('ussd: --op is required (or --no-ussd-op)');
  if (o.op !== undefined && o['no-ussd-op']) throw usage('ussd: --op and --no-ussd-op exclude each other');
  if (!o['no-session-info'] && (o.session === undefined || o.seq === undefined)) {
    throw usage('ussd: --session and --seq are required (or --no-session-info)');
  }
  const coding = o.coding || 'gsm';
  let dataCoding, body;
  if (coding === 'gsm') {
    dataCoding = 0x00;
    body = gsmEncode(o.text, (ch, i) => usage(describeChar(ch, i) +
      ' is not in the GSM 03.38 default alphabet (use --coding ucs2)'));
  } else if (coding === 'ucs2') {
    dataCoding = 0x08;
    body = ucs2Encode(o.text);
  } else {
    throw usage('ussd: --coding must be gsm or ucs2, got ' + JSON.stringify(coding));
  }
  if (body.length > 254) throw usage('ussd: encoded text is ' + body.length + ' octets (max 254)');
  const pdu = o.pdu || 'submit_sm';
  if (pdu !== 'submit_sm' && pdu !== 'deliver_sm') {
    throw usage('ussd: --pdu must be submit_sm or deliver_sm, got ' + JSON.stringify(pdu));
  }
  const serviceType = o['service-type'] !== undefined ? o['service-type'] : 'USSD';
  for (const [name, v] of [['--from', o.from], ['--to', o.to], ['--service-type', serviceType]]) {
    if (!/^[\x01-\x7f]*$/.test(v)) throw usage('ussd: ' + name + ' must be ASCII without NUL');
  }
  const options = {
    service_type: serviceType,
    source_addr_ton: 1,
    source_addr_npi: 1,
    source_addr: o.from,
    dest_addr_ton: 0,
    dest_addr_npi: 1,
    destination_addr: o.to,
    esm_class: 0,
    protocol_id: 0,
    priority_flag: 0,
    registered_delivery: 0,
    replace_if_present_flag: 0,
    data_coding: dataCoding,
    sm_default_msg_id: 0,
    // a Buffer: node-smpp sends it as-is and leaves data_coding alone
    short_message: body,
  };
  if (o.op !== undefined) options.ussd_service_op = parseInt0(o.op, 'ussd --op', 0, 255);
  if (!o['no-session-info']) {
    // its_session_info: octet 1 = session number, octet 2 = sequence number (bit 0 = end of session)
    options.its_session_info = Buffer.from([
      parseInt0(o.session, 'ussd --session', 0, 255),
      parseInt0(o.seq, 'ussd --seq', 0, 255),
    ]);
  }
  cmd.pdu = pdu;
  cmd.options = options;
  cmd.noReply = !!o['no-reply'];
  cmd.quietWait = o['quiet-wait'] !== undefined ? parseSeconds(o['quiet-wait'], 'ussd --quiet-wait') : 1;
}

// ------------------------------------------------------------------ session
class Peer {
  constructor(cfg) {
    this.cfg = cfg;
    this.session = null;
    this.inbox = [];          // deliver_sm / submit_sm received (already answered), not yet reported
    this.waiter = null;       // {resolve} of a pending nextIncoming()
    this.pending = new Map(); // sequence_number -> {reject}
    this.closed = false;
    this.closeError = null;
    this.serverUnbound = false;
    this.unbound = false;     // we unbound
  }

  connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        if (this.session) this.session.destroy();
        reject(new PeerError('connect', 'no TCP connection to ' + this.cfg.host + ':' +
          this.cfg.port + ' within ' + timeoutMs / 1000 + 's'));
      }, timeoutMs);
      const s = smpp.connect({ host: this.cfg.host, port: this.cfg.port });
      this.session = s;
      s.on('connect', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve();
      });
      s.on('error', (e) => {
        if (!done) {
          done = true;
          clearTimeout(timer);
          reject(new PeerError('connect', 'cannot connect to ' + this.cfg.host + ':' + this.cfg.port +
            ': ' + e.message));
          return;
        }
        debug('session error: ' + e.message);
        // node-smpp stops reading after a parse error: treat as fatal
        const kind = /PDU length|out of range|RangeError/i.test(e.message) ? 'protocol' : 'connection_closed';
        this.onClosed(new PeerError(kind, 'connection error: ' + e.message));
        s.destroy();
      });
      s.on('close', () => {
        this.onClosed(new PeerError('connection_closed', 'server closed the connection'));
      });
      s.on('pdu', (pdu) => this.onPdu(pdu));
      traceWrites(s.socket, log, '');
    });
  }

  onClosed(err) {
    if (this.closed) return;
    this.closed = true;
    this.closeError = err;
    for (const [, p] of this.pending) p.reject(err);
    this.pending.clear();
    this.wake();
  }

  wake() {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve();
    }
  }

  onPdu(pdu) {
    debug('<< ' + pdu.command + ' status=' + pdu.command_status + ' seq=' + pdu.sequence_number);
    if (pdu.isResponse()) {
      // node-smpp calls the response callback itself (registered in request())
      if (!this.session._callbacks[pdu.sequence_number]) {
        debug('unexpected response ' + pdu.command + ' seq=' + pdu.sequence_number + ' (ignored)');
      }
      return;
    }
    switch (pdu.command) {
      case 'enquire_link':
        this.session.send(pdu.response());
        break;
      case 'deliver_sm':
      case 'submit_sm':
        this.session.send(pdu.response({ message_id: pdu.command === 'submit_sm' ? 'peer-' + pdu.sequence_number : '' }));
        this.inbox.push(pdu);
        this.wake();
        break;
      case 'unbind':
        this.session.send(pdu.response());
        this.serverUnbound = true;
        this.wake();
        break;
      case 'alert_notification':
        break; // no response defined
      default: {
        // unknown command ids come as command 'unknown' and get generic_nack from response()
        const resp = pdu.command === 'unknown' ? pdu.response()
          : new smpp.PDU('generic_nack', { sequence_number: pdu.sequence_number,
            command_status: smpp.ESME_RINVCMDID });
        this.session.send(resp);
      }
    }
  }

  // Send a request; resolve with its response PDU (or generic_nack), bounded by timeoutMs.
  request(command, options, timeoutMs, what) {
    if (this.serverUnbound) {
      return Promise.reject(new PeerError('server_unbind', 'server sent unbind; cannot send ' + command));
    }
    if (this.closed) return Promise.reject(this.closeError);
    return new Promise((resolve, reject) => {
      let pdu;
      try {
        pdu = new smpp.PDU(command, options);
      } catch (e) {
        reject(new PeerError('internal', 'cannot build ' + command + ': ' + e.message));
        return;
      }
      let seq = null;
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new PeerError('timeout', 'no ' + what + ' within ' + timeoutMs / 1000 + 's'));
      }, timeoutMs);
      let ok;
      try {
        ok = this.session.send(pdu, (resp) => {
          clearTimeout(timer);
          this.pending.delete(seq);
          resolve(resp);
        });
      } catch (e) {
        clearTimeout(timer);
        reject(new PeerError('internal', 'cannot encode ' + command + ': ' + e.message));
        return;
      }
      seq = pdu.sequence_number;
      if (!ok) {
        clearTimeout(timer);
        reject(new PeerError('connection_closed', 'connection not writable; cannot send ' + command));
        return;
      }
      this.pending.set(seq, { reject: (err) => { clearTimeout(timer); reject(err); } });
    });
  }

  // Next deliver_sm/submit_sm from the server within timeoutMs; null on timeout when
  // quiet is set, else a timeout error.
  async nextIncoming(timeoutMs, quiet) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.inbox.length) return this.inbox.shift();
      if (this.serverUnbound) throw new PeerError('server_unbind', 'server sent unbind while waiting for deliver_sm');
      if (this.closed) throw this.closeError;
      const left = deadline - Date.now();
      if (left <= 0) {
        if (quiet) return null;
        throw new PeerError('timeout', 'no deliver_sm within ' + timeoutMs / 1000 + 's');
      }
      await new Promise((resolve) => {
        const timer = setTimeout(() => { this.waiter = null; resolve(); }, left);
        this.waiter = { resolve: () => { clearTimeout(timer); resolve(); } };
      });
    }
  }
}

function deliverEvent(pdu) {
  const sm = Buffer.isBuffer(pdu.short_message) ? pdu.short_message : Buffer.alloc(0);
  const mp = Buffer.isBuffer(pdu.message_payload) ? pdu.message_payload : null;
  const payload = sm.length === 0 && mp ? mp : sm;
  const dc = pdu.data_coding || 0;
  const esm = pdu.esm_class || 0;
  let textBytes = payload;
  let udh = null;
  if ((esm & 0x40) && payload.length) {
    udh = payload.slice(0, 1 + payload[0]);
    textBytes = payload.slice(1 + payload[0]);
  }
  const ev = {
    event: pdu.command,
    text: decodeText(dc, textBytes),
    data_coding: dc,
    service_type: pdu.service_type === undefined ? null : pdu.service_type,
    source_addr: pdu.source_addr === undefined ? null : pdu.source_addr,
    destination_addr: pdu.destination_addr === undefined ? null : pdu.destination_addr,
    ussd_service_op: null,
    its_session_info: null,
    esm_class: esm,
    source_addr_ton: pdu.source_addr_ton,
    source_addr_npi: pdu.source_addr_npi,
    dest_addr_ton: pdu.dest_addr_ton,
    dest_addr_npi: pdu.dest_addr_npi,
    payload_hex: payload.toString('hex'),
    sequence_number: pdu.sequence_number,
  };
  if (typeof pdu.ussd_service_op === 'number') {
    ev.ussd_service_op = pdu.ussd_service_op;
  } else if (pdu.ussd_service_op && pdu.ussd_service_op.malformed) {
    ev.ussd_service_op_hex = pdu.ussd_service_op.malformed.toString('hex');
  }
  if (Buffer.isBuffer(pdu.its_session_info)) ev.its_session_info = Array.from(pdu.its_session_info);
  if (mp && sm.length) ev.short_message_hex = sm.toString('hex'); // both present: text is short_message
  if (udh) ev.udh_hex = udh.toString('hex');
  return ev;
}

async function runCommand(peer, cmd) {
  const tmo = Math.round(cmd.timeout * 1000);
  switch (cmd.name) {
    case 'ussd': {
      const respName = cmd.pdu + '_resp';
      const resp = await peer.request(cmd.pdu, Object.assign({}, cmd.options), tmo, respName);
      const status = resp.command_status;
      emit({ event: respName, status, command_id: resp.command_id,
        message_id: typeof resp.message_id === 'string' ? resp.message_id : null });
      if (status !== 0 || resp.command === 'generic_nack') return;
      if (cmd.noReply) {
        const got = await peer.nextIncoming(Math.round(cmd.quietWait * 1000), true);
        emit(got ? deliverEvent(got) : { event: 'no_reply' });
      } else {
        emit(deliverEvent(await peer.nextIncoming(tmo, false)));
      }
      return;
    }
    case 'wait-deliver':
      emit(deliverEvent(await peer.nextIncoming(tmo, false)));
      return;
    case 'sleep':
      await new Promise((r) => setTimeout(r, Math.round(cmd.seconds * 1000)));
      emit({ event: 'slept', seconds: cmd.seconds });
      return;
    case 'enquire-link': {
      const resp = await peer.request('enquire_link', {}, tmo, 'enquire_link_resp');
      emit({ event: 'enquire_link_resp', status: resp.command_status, command_id: resp.command_id });
      return;
    }
    case 'unbind': {
      const resp = await peer.request('unbind', {}, tmo, 'unbind_resp');
      peer.unbound = true;
      emit({ event: 'unbind_resp', status: resp.command_status, command_id: resp.command_id });
      return;
    }
    default:
      throw new PeerError('internal', 'unhandled command ' + cmd.name);
  }
}

function finish(peer, code) {
  try {
    if (peer && peer.session) peer.session.destroy();
  } catch (e) { /* ignore */ }
  process.exit(code);
}

async function main() {
  let cfg;
  try {
    cfg = parseArgs(process.argv.slice(2));
  } catch (e) {
    const kind = e instanceof PeerError ? e.kind : 'internal';
    emit({ event: 'error', error: kind, message: e.message, command: null });
    process.exit(EXIT_CODES[kind] || 1);
  }
  log.verbose(cfg.verbose);
  const peer = new Peer(cfg);
  let current = null;
  try {
    const tmo = Math.round(cfg.timeout * 1000);
    await peer.connect(tmo);
    current = 'bind';
    const resp = await peer.request('bind_transceiver', {
      system_id: cfg.systemId,
      password: cfg.password,
      system_type: cfg.systemType,
      interface_version: 0x34, // node-smpp's default is 0x50
      addr_ton: 0,
      addr_npi: 0,
      address_range: '',
    }, tmo, 'bind_transceiver_resp');
    emit({ event: 'bind', status: resp.command_status, command_id: resp.command_id,
      system_id: typeof resp.system_id === 'string' ? resp.system_id : null });
    if (resp.command_status !== 0 || resp.command !== 'bind_transceiver_resp') {
      throw new PeerError('bind_rejected', 'bind_transceiver refused with status ' + resp.command_status);
    }
    for (const cmd of cfg.commands) {
      current = cmd.name;
      await runCommand(peer, cmd);
    }
  } catch (e) {
    const kind = e instanceof PeerError ? e.kind : 'internal';
    emit({ event: 'error', error: kind, message: e instanceof PeerError ? e.message : String(e && e.stack || e),
      command: current });
    finish(peer, EXIT_CODES[kind] || 1);
    return;
  }
  finish(peer, 0);
}

process.on('uncaughtException', (e) => {
  emit({ event: 'error', error: 'internal', message: String(e && e.stack || e), command: null });
  process.exit(EXIT_CODES.internal);
});

main();
