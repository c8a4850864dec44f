'use strict';
/*
 * The SMSC side of tests/peers/smsc.js (see its header for the protocol): the
 * sessions the gateway binds, the PDUs it sends us (binds, submit_sm, enquire_link,
 * unbind) and our answers, requests we send it (deliver_sm for customer messages
 * and receipts, unbind, enquire_link), and the listener.  smsc.js reads the
 * commands on stdin and changes `state`.
 */

const {
  emit, logger, traceWrites, loadSmpp, gsmDecode, ucs2Decode, decodeText, isInt,
} = require('./smpp_common');

const log = logger('smsc');
const { debug, warn } = log;
const smpp = loadSmpp({ event: 'error', error: 'internal' }, 1);

// decodeText, and the GSM 03.38 DCS groups too.
function decodeDcs(dc, data) {
  const text = decodeText(dc, data);
  if (text !== null) return text;
  if ((dc & 0xf0) === 0xf0) return (dc & 0x04) ? null : gsmDecode(data); // data coding/message class
  if ((dc & 0xc0) === 0x00 && dc >= 0x10) { // general data coding (with message class)
    const alphabet = (dc >> 2) & 0x03;
    if (alphabet === 0) return gsmDecode(data);
    if (alphabet === 2) return ucs2Decode(data);
  }
  return null;
}

function sleepUntil(due) {
  const wait = due - Date.now();
  return wait > 0 ? new Promise((r) => setTimeout(r, wait)) : Promise.resolve();
}

// ------------------------------------------------------------------ state
const STATS = { submit_sm: 0, accepted: 0, throttled: 0, failed: 0, enquire_link: 0,
  binds: 0, bind_attempts: 0, deliver_sm: 0 };

function defaultSettings() {
  return {
    reject_binds: 0,
    reject_status: 0x0d,   // ESME_RBINDFAIL
    throttle: 0,
    throttle_status: 0x58, // ESME_RTHROTTLED
    fail_next: 0,
    fail_status: 0x45,     // ESME_RSUBMITFAIL
    id_format: 'hex',
    auto_receipt: null,
    resp_delay_ms: 0,
    bind_delay_ms: 0,
    ignore_enquire_link: false,
    answer_only: null,
  };
}

const ID_FORMATS = ['hex', 'HEX', 'dec', 'dec_padded', 'empty'];
const RECEIPT_ID_FORMATS = ['same', 'hex', 'HEX', 'dec', 'dec_padded'];
const MESSAGE_STATES = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5,
  ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };
const DEFAULT_TIMEOUT_MS = 10000;

// What the commands change, and the listener's address.
const state = {
  settings: defaultSettings(),
  nextId: 0x100000,
  accounts: null,           // Map system_id -> password, or null = accept all
  host: '127.0.0.1',
  port: 0,
  server: null,             // listening server, or null when closed
  shuttingDown: false,
};
let sessionCounter = 0;
const sessions = new Map(); // id -> state, connected sessions only

function formatId(num, fmt) {
  switch (fmt) {
    case 'HEX': return num.toString(16).toUpperCase();
    case 'dec': return String(num);
    case 'dec_padded': return String(num).padStart(20, '0');
    case 'empty': return '';
    default: return num.toString(16);
  }
}

function canReceive(s) {
  return !s.closed && !s.unbinding && s.bound &&
    (s.bound.command === 'bind_transceiver' || s.bound.command === 'bind_receiver');
}

function firstReceiver(pred) {
  for (const s of sessions.values()) if (canReceive(s) && (!pred || pred(s))) return s;
  return null;
}

// ------------------------------------------------------------------ requests to the ESME
// Send request `pdu` on session s; exactly one of onResp(resp, ms) / onFail(kind, message)
// is called (no_session when not writable, timeout, session_closed).
function request(s, pdu, timeoutMs, onResp, onFail) {
  const started = Date.now();
  let ok;
  try {
    ok = !s.closed && s.session.send(pdu, (resp) => {
      const p = s.pending.get(pdu.sequence_number);
      if (!p) return;
      clearTimeout(p.timer);
      s.pending.delete(pdu.sequence_number);
      onResp(resp, Date.now() - started);
    });
  } catch (e) {
    onFail('internal', 'cannot encode ' + pdu.command + ': ' + e.message);
    return;
  }
  const seq = pdu.sequence_number;
  if (!ok) {
    if (seq) delete s.session._callbacks[seq];
    onFail('no_session', 'session ' + s.id + ' is not writable');
    return;
  }
  const timer = setTimeout(() => {
    if (!s.pending.has(seq)) return;
    s.pending.delete(seq);
    delete s.session._callbacks[seq];
    onFail('timeout', 'no ' + pdu.command + '_resp within ' + timeoutMs + ' ms');
  }, timeoutMs);
  s.pending.set(seq, { timer, fail: onFail });
}

function deliverSm(s, options, meta, timeoutMs) {
  let pdu;
  try {
    pdu = new smpp.PDU('deliver_sm', options);
  } catch (e) {
    emit(Object.assign({ event: 'error', error: 'internal', message: 'cannot build deliver_sm: ' + e.message }, meta));
    return;
  }
  STATS.deliver_sm++;
  debug('deliver_sm to session ' + s.id + ' ' + JSON.stringify(meta));
  request(s, pdu, timeoutMs, (resp, ms) => {
    emit(Object.assign({
      event: 'deliver_sm_resp',
      tag: meta.tag,
      status: resp.command_status,
      message_id: typeof resp.message_id === 'string' ? resp.message_id : null,
      session: s.id,
      ms,
    }, meta, { command: resp.command }));
  }, (kind, message) => {
    emit(Object.assign({ event: 'error', error: kind, tag: meta.tag, message, session: s.id }, meta));
  });
}

function buildReceipt(r) {
  const text = 'id:' + r.textId + ' sub:001 dlvrd:001 submit date:2611221200 done date:2611221200 stat:' +
    r.stat + ' err:' + r.err + ' text:';
  const opts = {
    service_type: '',
    source_addr_ton: r.srcTon, source_addr_npi: r.srcNpi, source_addr: r.from,
    dest_addr_ton: r.dstTon, dest_addr_npi: r.dstNpi, destination_addr: r.to,
    esm_class: 0x04, protocol_id: 0, priority_flag: 0, registered_delivery: 0,
    replace_if_present_flag: 0, data_coding: 0, sm_default_msg_id: 0,
    short_message: Buffer.from(text, 'latin1'),
  };
  if (r.tlv) {
    opts.receipted_message_id = r.tlvId;
    const state = r.messageState !== undefined ? r.messageState : MESSAGE_STATES[r.stat];
    if (state !== undefined) opts.message_state = state;
  }
  return opts;
}

// ------------------------------------------------------------------ incoming PDUs
function reply(s, pdu, after) {
  try {
    if (s.closed || !s.session.send(pdu, after ? () => safe(after) : undefined)) {
      debug('session ' + s.id + ': cannot send ' + pdu.command + ' (not writable)');
    }
  } catch (e) {
    warn('session ' + s.id + ': cannot send ' + pdu.command + ': ' + (e && e.stack || e));
  }
}

function safe(fn) {
  try {
    fn();
  } catch (e) {
    warn('internal error: ' + (e && e.stack || e));
  }
}

function onBind(s, pdu) {
  STATS.bind_attempts++;
  const systemId = typeof pdu.system_id === 'string' ? pdu.system_id : '';
  const password = typeof pdu.password === 'string' ? pdu.password : '';
  let status = 0;
  if (s.bound) {
    status = 0x05; // ESME_RALYBND
  } else if (state.settings.reject_binds > 0) {
    state.settings.reject_binds--;
    status = state.settings.reject_status;
  } else if (state.accounts) {
    if (!state.accounts.has(systemId)) status = 0x0f;                 // ESME_RINVSYSID
    else if (state.accounts.get(systemId) !== password) status = 0x0e; // ESME_RINVPASWD
  }
  if (status === 0) {
    s.bound = { command: pdu.command, system_id: systemId };
    STATS.binds++;
  }
  emit({ event: 'bind', session: s.id, command: pdu.command, system_id: systemId,
    system_type: typeof pdu.system_type === 'string' ? pdu.system_type : '',
    interface_version: isInt(pdu.interface_version) ? pdu.interface_version : null,
    addr_ton: isInt(pdu.addr_ton) ? pdu.addr_ton : null,
    addr_npi: isInt(pdu.addr_npi) ? pdu.addr_npi : null,
    address_range: typeof pdu.address_range === 'string' ? pdu.address_range : '',
    status });
  const answer = () => reply(s, status === 0
    ? pdu.response({ system_id: 'smsc', sc_interface_version: 0x34 })
    : pdu.response({ command_status: status }));
  const delay = state.settings.bind_delay_ms;
  if (delay > 0) setTimeout(answer, delay);
  else answer();
}

function parseMessage(pdu) {
  const sm = Buffer.isBuffer(pdu.short_message) ? pdu.short_message : Buffer.alloc(0);
  const mp = Buffer.isBuffer(pdu.message_payload) ? pdu.message_payload : null;
  const payload = sm.length === 0 && mp !== null;
  const body = payload ? mp : sm;
  const esm = isInt(pdu.esm_class) ? pdu.esm_class : 0;
  const dc = isInt(pdu.data_coding) ? pdu.data_coding : 0;
  let textBytes = body;
  let udh = null;
  let udhHex = null;
  if ((esm & 0x40) && body.length) {
    const hl = body[0];
    const hdr = body.slice(1, 1 + hl);
    udhHex = body.slice(0, 1 + hl).toString('hex');
    textBytes = body.slice(1 + hl);
    for (let i = 0; i + 2 <= hdr.length;) {
      const iei = hdr[i];
      const len = hdr[i + 1];
      const d = hdr.slice(i + 2, i + 2 + len);
      if (d.length < len) break;
      if (iei === 0x00 && len === 3) udh = { ref: d[0], total: d[1], seq: d[2] };
      else if (iei === 0x08 && len === 4) udh = { ref: d.readUInt16BE(0), total: d[2], seq: d[3] };
      i += 2 + len;
    }
  }
  let sar = null;
  if (isInt(pdu.sar_msg_ref_num) || isInt(pdu.sar_total_segments) || isInt(pdu.sar_segment_seqnum)) {
    sar = { ref: isInt(pdu.sar_msg_ref_num) ? pdu.sar_msg_ref_num : null,
      total: isInt(pdu.sar_total_segments) ? pdu.sar_total_segments : null,
      seq: isInt(pdu.sar_segment_seqnum) ? pdu.sar_segment_seqnum : null };
  }
  const ev = {
    text: decodeDcs(dc, textBytes),
    payload,
    udh,
    udh_hex: udhHex,
    sar,
    body_hex: textBytes.toString('hex'),
    ussd_service_op: null,
    its_session_info: Buffer.isBuffer(pdu.its_session_info) ? Array.from(pdu.its_session_info) : null,
  };
  if (isInt(pdu.ussd_service_op)) ev.ussd_service_op = pdu.ussd_service_op;
  else if (pdu.ussd_service_op && pdu.ussd_service_op.malformed) {
    ev.ussd_service_op_hex = pdu.ussd_service_op.malformed.toString('hex');
  }
  if (mp && sm.length) ev.message_payload_hex = mp.toString('hex'); // both present: text is short_message
  return ev;
}

function str(v) { return typeof v === 'string' ? v : (v === undefined || v === null ? null : String(v)); }
function int(v) { return isInt(v) ? v : null; }

function onSubmit(s, pdu) {
  STATS.submit_sm++;
  let msg;
  try {
    msg = parseMessage(pdu);
  } catch (e) {
    warn('session ' + s.id + ': cannot parse submit_sm body: ' + e.message);
    msg = { text: null, payload: false, udh: null, udh_hex: null, sar: null, body_hex: '',
      ussd_service_op: null, its_session_info: null };
  }
  let status = 0;
  let num = null;
  let id = null;
  if (state.settings.answer_only !== null && s.bound && s.bound.command !== 'bind_receiver') {
    if (state.settings.answer_only === 0) {
      // Taken in, never answered: as an SMSC that loses the link before its resp.
      emit(Object.assign({ event: 'submit_sm', session: s.id, seq: pdu.sequence_number,
        destination_addr: str(pdu.destination_addr) }, msg, { status: null, message_id: null }));
      return;
    }
    state.settings.answer_only--;
  }
  if (!s.bound || s.bound.command === 'bind_receiver') {
    status = 0x04; // ESME_RINVBNDSTS
  } else if (state.settings.throttle > 0) {
    state.settings.throttle--;
    status = state.settings.throttle_status;
    STATS.throttled++;
  } else if (state.settings.fail_next > 0) {
    state.settings.fail_next--;
    status = state.settings.fail_status;
    STATS.failed++;
  } else {
    num = state.nextId++;
    id = formatId(num, state.settings.id_format);
    STATS.accepted++;
  }
  const rd = int(pdu.registered_delivery) || 0;
  emit(Object.assign({
    event: 'submit_sm', session: s.id, seq: pdu.sequence_number,
    service_type: str(pdu.service_type),
    source_addr: str(pdu.source_addr), source_addr_ton: int(pdu.source_addr_ton),
    source_addr_npi: int(pdu.source_addr_npi),
    destination_addr: str(pdu.destination_addr), dest_addr_ton: int(pdu.dest_addr_ton),
    dest_addr_npi: int(pdu.dest_addr_npi),
    esm_class: int(pdu.esm_class), registered_delivery: int(pdu.registered_delivery),
    data_coding: int(pdu.data_coding), protocol_id: int(pdu.protocol_id),
    priority_flag: int(pdu.priority_flag),
    schedule_delivery_time: str(pdu.schedule_delivery_time),
    validity_period: str(pdu.validity_period),
  }, msg, { status, message_id: id }));

  const resp = status === 0 ? pdu.response({ message_id: id }) : pdu.response({ command_status: status });
  const ar = status === 0 && state.settings.auto_receipt && (rd & 0x03) ? Object.assign({}, state.settings.auto_receipt) : null;
  let delay = state.settings.resp_delay_ms;
  let after = null;
  if (ar) {
    const receipt = {
      textId: ar.id_format === 'same' ? id : formatId(num, ar.id_format),
      tlvId: id, stat: ar.stat, err: ar.err, tlv: ar.tlv,
      from: str(pdu.destination_addr) || '', to: str(pdu.source_addr) || '',
      srcTon: int(pdu.dest_addr_ton) || 0, srcNpi: int(pdu.dest_addr_npi) || 0,
      dstTon: int(pdu.source_addr_ton) || 0, dstNpi: int(pdu.source_addr_npi) || 0,
    };
    const systemId = s.bound.system_id;
    const send = () => {
      const target = canReceive(s) ? s
        : firstReceiver((r) => r.bound.system_id === systemId) || firstReceiver();
      const meta = { kind: 'auto_receipt', tag: null, receipt_for: id };
      if (!target) {
        emit(Object.assign({ event: 'error', error: 'no_session', message: 'no session bound to receive the receipt' }, meta));
        return;
      }
      deliverSm(target, buildReceipt(receipt), meta, DEFAULT_TIMEOUT_MS);
    };
    if (ar.before_resp) {
      send();
      delay += ar.delay_ms;
    } else {
      after = () => { setTimeout(() => safe(send), ar.delay_ms); };
    }
  }
  const due = Date.now() + delay;
  s.chain = s.chain.then(() => sleepUntil(due)).then(() => {
    debug('session ' + s.id + ': submit_sm_resp seq=' + pdu.sequence_number + ' status=' + status);
    reply(s, resp, after);
  }).catch((e) => warn('internal error: ' + (e && e.stack || e)));
}

function onPdu(s, pdu) {
  debug('session ' + s.id + ' << ' + pdu.command + ' status=' + pdu.command_status + ' seq=' + pdu.sequence_number);
  if (pdu.isResponse()) {
    if (pdu.command === 'generic_nack') {
      emit({ event: 'generic_nack', session: s.id, status: pdu.command_status, seq: pdu.sequence_number });
    } else if (!s.session._callbacks[pdu.sequence_number]) {
      emit({ event: 'pdu', session: s.id, command: pdu.command, command_id: pdu.command_id,
        seq: pdu.sequence_number, status: pdu.command_status });
    }
    return; // node-smpp calls the response callback registered by request()
  }
  switch (pdu.command) {
    case 'bind_transceiver':
    case 'bind_transmitter':
    case 'bind_receiver':
      onBind(s, pdu);
      return;
    case 'submit_sm':
      onSubmit(s, pdu);
      return;
    case 'enquire_link':
      STATS.enquire_link++;
      emit({ event: 'enquire_link', session: s.id });
      if (!state.settings.ignore_enquire_link) reply(s, pdu.response());
      return;
    case 'unbind':
      emit({ event: 'unbind', session: s.id });
      s.bound = null;
      s.unbinding = true;
      reply(s, pdu.response(), () => { if (!s.closed) s.session.close(); });
      return;
    default:
      emit({ event: 'pdu', session: s.id, command: pdu.command, command_id: pdu.command_id,
        seq: pdu.sequence_number, status: pdu.command_status });
      if (pdu.command !== 'alert_notification' && pdu.command !== 'outbind') {
        reply(s, new smpp.PDU('generic_nack', { sequence_number: pdu.sequence_number,
          command_status: 0x03 })); // ESME_RINVCMDID
      }
  }
}

function onSession(session) {
  const s = { id: ++sessionCounter, session, bound: null, unbinding: false, closed: false,
    pending: new Map(), chain: Promise.resolve() };
  sessions.set(s.id, s);
  if (state.shuttingDown) {
    session.destroy();
    return;
  }
  emit({ event: 'connect', session: s.id });
  try { session.socket.setNoDelay(true); } catch (e) { /* ignore */ }
  traceWrites(session.socket, log, 'session ' + s.id + ' ');
  session.on('pdu', (pdu) => safe(() => onPdu(s, pdu)));
  session.on('error', (e) => {
    // socket error, or a PDU node-smpp cannot parse (it stops reading then): drop it
    debug('session ' + s.id + ' error: ' + (e && e.message));
    if (!/ECONNRESET|EPIPE/.test(String(e && (e.code || e.message)))) {
      warn('session ' + s.id + ': ' + (e && e.message) + '; closing it');
    }
    try { session.destroy(); } catch (err) { /* ignore */ }
  });
  session.on('close', () => safe(() => {
    if (s.closed) return;
    s.closed = true;
    sessions.delete(s.id);
    const pend = Array.from(s.pending.values());
    s.pending.clear();
    for (const p of pend) {
      clearTimeout(p.timer);
      p.fail('session_closed', 'session ' + s.id + ' closed before the response');
    }
    if (!state.shuttingDown) emit({ event: 'close', session: s.id });
  }));
}

// ------------------------------------------------------------------ listener
function listen(onOk, onFail) {
  let srv;
  try {
    srv = smpp.createServer((session) => safe(() => onSession(session)));
  } catch (e) {
    onFail(e);
    return;
  }
  let up = false;
  srv.on('error', (e) => {
    if (!up) onFail(e);
    else warn('listener error: ' + e.message);
  });
  srv.listen(state.port, state.host, () => {
    up = true;
    state.port = srv.address().port;
    state.server = srv;
    onOk();
  });
}

module.exports = {
  log, smpp, state, STATS, sessions, defaultSettings, ID_FORMATS, RECEIPT_ID_FORMATS,
  DEFAULT_TIMEOUT_MS, canReceive, firstReceiver, request, deliverSm, buildReceipt, safe, listen,
};
