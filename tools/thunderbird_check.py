"""Drive a real Thunderbird against a running Congvu and report what it saw.

Thunderbird runs headless with Marionette (its remote-control protocol); the
checks run inside it as chrome JavaScript through Thunderbird's own mail and
calendar code, so every IMAP command and CalDAV request on the wire is the one
Thunderbird itself sends. Then the script looks at the server side (IMAP with
imaplib, CalDAV with plain HTTP) to confirm what Thunderbird did landed.

Setup (Debian)::

    apt-get install thunderbird
    pip install marionette_driver
    # a server with the demo organisation and passwords allowed on loopback:
    CONGVU_ALLOW_PLAINTEXT_LOOPBACK=true congvu serve --demo --data-dir /tmp/tbcheck
    python tools/thunderbird_check.py    # --imap-port/--http-port/--smtp-port/--submission-port

``--tls CERT`` runs the same over implicit-TLS IMAP, submission with
STARTTLS and HTTPS CalDAV (give those ports), with the server's certificate
(``DATA_DIR/tls/cert.pem`` when self-signed) imported into Thunderbird's
certificate store, as a person accepting it would; without it, passwords
cross loopback in clear (``allow_plaintext_loopback``). Mail from outside is put in the leader's
INBOX over SMTP first. Checks, each printed as ok/FAIL:

- IMAP as the leader: folders with special-use, Vietnamese subjects decoded,
  a body streamed, \\Seen and \\Flagged stored, a Vietnamese folder created
  (modified UTF-7), a MOVE into it, a delete (MOVE to Trash).
- IMAP as the secretary (mail-read grant): the leader's folders appear under
  "Other Users" without subscribing by hand, and the leader's INBOX reads.
- SMTP: the leader sends a message through submission (AUTH PLAIN); the
  recipient has it and Thunderbird's copy is in the leader's Sent (APPEND).
- CalDAV: the leader creates a meeting with an internal attendee (Thunderbird
  sees server-side scheduling and leaves it to the server), the attendee
  accepts in Thunderbird, the organizer's copy shows ACCEPTED; the secretary
  opens the leader's calendar (calendar-write grant) and adds an event.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from email.message import EmailMessage

PASSWORD = "Congvu@2026"
LEADER, SECRETARY, DEPUTY = "an.nv@hanoi.gov.vn", "thu.lt@hanoi.gov.vn", "binh.tq@hanoi.gov.vn"
REALM = "Congvu CalDAV"

PREFS = """
user_pref("mail.shell.checkDefaultClient", false);
user_pref("mail.provider.suppress_dialog_on_startup", true);
user_pref("mailnews.start_page.enabled", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("mail.spotlight.firstRunDone", true);
user_pref("mailnews.auto_config_url", "");
user_pref("mail.setup.loggedIn", true);
"""

# Shared JavaScript: helpers available to every step.
JS_PRELUDE = """
const resolve = arguments[arguments.length - 1];
const [cfg] = arguments;
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const { cal } = ChromeUtils.importESModule("resource:///modules/calendar/calUtils.sys.mjs");
const { CalEvent } = ChromeUtils.importESModule("resource:///modules/CalEvent.sys.mjs");
const { CalAttendee } = ChromeUtils.importESModule("resource:///modules/CalAttendee.sys.mjs");
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function until(fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) { const v = await fn(); if (v || Date.now() > end) return v; await sleep(250); }
}
async function login(origin, realm, user) {
  const li = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
  li.init(origin, null, realm, user, cfg.password, "", "");
  try { await Services.logins.addLoginAsync(li); } catch (e) { /* already stored */ }
}
async function imapServer(user) {
  await login("imap://127.0.0.1", "imap://127.0.0.1", user);
  let server = MailServices.accounts.findServer(user, "127.0.0.1", "imap");
  if (!server) {
    server = MailServices.accounts.createIncomingServer(user, "127.0.0.1", "imap");
    server.port = cfg.imap;
    server.socketType = cfg.tls ? Ci.nsMsgSocketType.SSL : Ci.nsMsgSocketType.plain;
    server.authMethod = Ci.nsMsgAuthMethod.passwordCleartext;
    const acct = MailServices.accounts.createAccount();
    const id = MailServices.accounts.createIdentity();
    id.email = user; acct.addIdentity(id); acct.incomingServer = server;
  }
  server.QueryInterface(Ci.nsIImapIncomingServer);
  return server;
}
async function discover(server, pred, ms = 30000) {
  // A new account logs in on its first INBOX update; folder discovery follows.
  const root = server.rootFolder;
  let n = 0;
  return until(() => {
    if (n++ % 12 == 0) {
      root.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox)?.updateFolder(null);
      server.performExpand(null);
    }
    return pred(root);
  }, ms);
}
async function calendar(user, url) {
  await login(`${cfg.scheme}://127.0.0.1:${cfg.http}`, cfg.realm, user);
  let c = cal.manager.getCalendars().find(c => c.uri.spec == url && c.getProperty("username") == user);
  if (!c) {
    c = cal.manager.createCalendar("caldav", Services.io.newURI(url));
    c.name = user; c.setProperty("username", user); c.setProperty("cache.enabled", false);
    cal.manager.registerCalendar(c);
  }
  // Thunderbird fills organizerId from a mail identity at once and from the
  // principal's calendar-user-address-set once its discovery ran; wait for that.
  await until(() => c.getProperty("capabilities.autoschedule.supported") === true, 20000);
  return c;
}
const week = [cal.createDateTime("20261201T000000Z"), cal.createDateTime("20261208T000000Z")];
const calUrl = user => `${cfg.scheme}://127.0.0.1:${cfg.http}/dav/calendars/users/${user}/calendar/`;
const run = async (body) => { try { resolve(JSON.stringify(await body())); }
                              catch (e) { resolve(JSON.stringify({error: String(e), stack: e.stack})); } };
"""

JS_LEADER_MAIL = """
run(async () => {
  const server = await imapServer(cfg.leader);
  const root = server.rootFolder;
  await discover(server, r => r.getFolderWithFlags(Ci.nsMsgFolderFlags.Archive)
                              && r.getFolderWithFlags(Ci.nsMsgFolderFlags.Junk)
                              && r.getFolderWithFlags(Ci.nsMsgFolderFlags.SentMail));
  const inbox = root.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
  inbox.updateFolder(null);
  await until(() => inbox.getTotalMessages(false) >= 3);
  const hdrs = [...inbox.messages];
  const out = {
    folders: root.descendants.map(f => [f.name, f.flags]),
    subjects: hdrs.map(h => h.mime2DecodedSubject),
  };
  const uri = inbox.getUriForMsg(hdrs[0]);
  out.body = await new Promise(res => {
    let data = "";
    MailServices.messageServiceFromURI(uri).streamMessage(uri, {
      onStartRequest() {},
      onDataAvailable(req, stream, off, count) {
        const s = Cc["@mozilla.org/scriptableinputstream;1"].createInstance(Ci.nsIScriptableInputStream);
        s.init(stream); data += s.read(count);
      },
      onStopRequest() { res(data); },
      QueryInterface: ChromeUtils.generateQI(["nsIStreamListener"]),
    }, null, null, false, "", false);
  });
  inbox.markMessagesRead([hdrs[0]], true);
  inbox.markMessagesFlagged([hdrs[1]], true);
  root.createSubfolder(cfg.folder, null);
  const vf = await until(() => root.getChildNamed(cfg.folder));
  MailServices.copy.copyMessages(inbox, [hdrs[2]], vf, true, null, null, false);
  await until(() => inbox.getTotalMessages(false) == hdrs.length - 1);
  inbox.deleteMessages([hdrs[1]], null, false, false, null, false);
  await until(() => inbox.getTotalMessages(false) == hdrs.length - 2);
  await sleep(1500);  // let the last commands reach the server
  return out;
});
"""

JS_SECRETARY_MAIL = """
run(async () => {
  const server = await imapServer(cfg.secretary);
  const root = server.rootFolder;
  const prefix = `Other Users/${cfg.leader}/`;
  const inbox = await discover(server,
                               r => r.descendants.find(f => f.URI.endsWith(prefix + "INBOX")));
  const out = {folders: root.descendants.map(f => decodeURIComponent(f.URI.split("@127.0.0.1/")[1]))};
  if (inbox) {
    inbox.updateFolder(null);
    await until(() => inbox.getTotalMessages(false) > 0);
    out.leader_inbox = [...inbox.messages].map(h => h.mime2DecodedSubject);
  }
  return out;
});
"""

JS_CALENDAR = """
run(async () => {
  const out = {};
  const leader = await calendar(cfg.leader, calUrl(cfg.leader));
  out.autoschedule = leader.getProperty("capabilities.autoschedule.supported");
  const ev = new CalEvent();
  ev.id = cfg.uid; ev.title = "Họp giao ban Sở tuần 49";
  ev.startDate = cal.createDateTime("20261202T020000Z");
  ev.endDate = cal.createDateTime("20261202T030000Z");
  const org = new CalAttendee(); org.id = "mailto:" + cfg.leader; org.isOrganizer = true;
  ev.organizer = org;
  const att = new CalAttendee(); att.id = "mailto:" + cfg.deputy;
  att.participationStatus = "NEEDS-ACTION"; att.role = "REQ-PARTICIPANT"; att.rsvp = "TRUE";
  ev.addAttendee(att);
  await leader.addItem(ev);

  const deputy = await calendar(cfg.deputy, calUrl(cfg.deputy));
  const mine = (await deputy.getItemsAsArray(Ci.calICalendar.ITEM_FILTER_ALL_ITEMS, 0, ...week))
    .find(i => i.id == cfg.uid);
  out.deputy_got = mine ? mine.getAttendeeById("mailto:" + cfg.deputy).participationStatus : null;
  if (mine) {
    const changed = mine.clone();
    changed.getAttendeeById("mailto:" + cfg.deputy).participationStatus = "ACCEPTED";
    await deputy.modifyItem(changed, mine);
  }

  const secretary = await calendar(cfg.secretary, calUrl(cfg.leader));
  out.secretary_readonly = secretary.readOnly;
  const seen = (await secretary.getItemsAsArray(Ci.calICalendar.ITEM_FILTER_ALL_ITEMS, 0, ...week))
    .find(i => i.id == cfg.uid);
  out.secretary_sees = seen ? seen.getAttendees().map(a => a.participationStatus) : null;
  const ev2 = new CalEvent();
  ev2.id = cfg.uid2; ev2.title = "Tiếp công dân định kỳ";
  ev2.startDate = cal.createDateTime("20261203T080000Z");
  ev2.endDate = cal.createDateTime("20261203T090000Z");
  await secretary.addItem(ev2);
  return out;
});
"""

JS_SEND = """
run(async () => {
  const server = await imapServer(cfg.leader);
  const acct = MailServices.accounts.findAccountForServer(server);
  const identity = acct.defaultIdentity;
  identity.fullName = "Nguyễn Văn An";
  const sent = await discover(server, r => r.getFolderWithFlags(Ci.nsMsgFolderFlags.SentMail));
  identity.doFcc = true; identity.fccFolderURI = sent.URI;
  await login("smtp://127.0.0.1", "smtp://127.0.0.1", cfg.leader);
  const os = MailServices.outgoingServer;
  let smtp = os.servers.find(s => s.serverURI.host == "127.0.0.1");
  if (!smtp) {
    smtp = os.createServer("smtp");
    const s = smtp.QueryInterface(Ci.nsISmtpServer);
    s.hostname = "127.0.0.1"; s.port = cfg.smtp;
    smtp.username = cfg.leader;
    smtp.socketType = cfg.tls ? Ci.nsMsgSocketType.alwaysSTARTTLS : Ci.nsMsgSocketType.plain;
    smtp.authMethod = Ci.nsMsgAuthMethod.passwordCleartext;
  }
  identity.smtpServerKey = smtp.key;
  const fields = Cc["@mozilla.org/messengercompose/composefields;1"].createInstance(Ci.nsIMsgCompFields);
  fields.from = `Nguyễn Văn An <${cfg.leader}>`;
  fields.to = `Trần Quốc Bình <${cfg.deputy}>`;
  fields.subject = cfg.subject;
  fields.body = "Kính gửi anh Bình,\\r\\nđề nghị hoàn thiện báo cáo tuần.\\r\\n";
  const params = Cc["@mozilla.org/messengercompose/composeparams;1"].createInstance(Ci.nsIMsgComposeParams);
  params.composeFields = fields; params.identity = identity;
  params.format = Ci.nsIMsgCompFormat.PlainText;
  const msgCompose = MailServices.compose.initCompose(params);
  const done = new Promise((res) => {
    msgCompose.addMsgSendListener({
      onStartSending() {}, onProgress() {}, onStatus() {}, onGetDraftFolderURI() {},
      onSendNotPerformed(id, status) { res("not performed " + status); },
      onTransportSecurityError(id, status, info, loc) { res("tls error " + status); },
      onStopSending(id, status) { res(status == 0 ? "sent" : "failed 0x" + (status >>> 0).toString(16)); },
      QueryInterface: ChromeUtils.generateQI(["nsIMsgSendListener"]),
    });
  });
  await msgCompose.sendMsg(Ci.nsIMsgCompDeliverMode.Now, identity, acct.key, null, null);
  return {result: await done};
});
"""


class Thunderbird:
    def __init__(self, binary: str, port: int, cert: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="congvu-tb-")
        profile = os.path.join(self.dir, "profile")
        os.makedirs(profile)
        with open(os.path.join(profile, "user.js"), "w") as f:
            f.write(PREFS + f'user_pref("marionette.port", {port});\n')
        if cert:  # trust the server's (self-signed) certificate, as a person would
            subprocess.run(["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"],
                           check=True)
            subprocess.run(["certutil", "-A", "-d", f"sql:{profile}", "-n", "congvu",
                            "-t", "C,,", "-i", cert], check=True)
        env = dict(os.environ, MOZ_HEADLESS="1")
        if os.environ.get("TB_IMAP_LOG"):
            env.update(MOZ_LOG="IMAP:5", MOZ_LOG_FILE=os.environ["TB_IMAP_LOG"])
        self.proc = subprocess.Popen(
            [binary, "--marionette", "-remote-allow-system-access", "--no-remote",
             "--profile", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        from marionette_driver.marionette import Marionette
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("Thunderbird did not start") from None
                time.sleep(0.5)
        self.m = Marionette(host="127.0.0.1", port=port)
        self.m.start_session()
        self.m.set_context(self.m.CONTEXT_CHROME)
        self.m.timeout.script = 120

    def run(self, script: str, cfg: dict) -> dict:
        result = self.m.execute_async_script(JS_PRELUDE + script, script_args=[cfg],
                                             sandbox="system", new_sandbox=False)
        if result is None:
            raise RuntimeError("the script gave no result")
        data = json.loads(result)
        if "error" in data:
            raise RuntimeError(f"{data['error']}\n{data.get('stack', '')}")
        return data

    def close(self) -> None:
        try:
            self.m.delete_session()
        except Exception:  # best effort on the way out
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def check(self, what: str, cond: bool, detail: object = "") -> None:
        self.failed += not cond
        print(f"{'ok  ' if cond else 'FAIL'} {what}" + (f"  ({detail})" if detail != "" else ""))


class Server:
    """The server side, over TLS when Thunderbird used TLS."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ctx = ssl.create_default_context(cafile=args.tls) if args.tls else None

    def imap(self, user: str) -> imaplib.IMAP4:
        if self.ctx:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL("127.0.0.1", self.args.imap_port,
                                                    ssl_context=self.ctx)
        else:
            conn = imaplib.IMAP4("127.0.0.1", self.args.imap_port)
        conn.login(user, PASSWORD)
        return conn

    def dav(self, user: str, method: str, path: str, headers: dict[str, str] | None = None) -> str:
        scheme = "https" if self.ctx else "http"
        req = urllib.request.Request(f"{scheme}://127.0.0.1:{self.args.http_port}{path}",
                                     method=method, headers=headers or {})
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=10, context=self.ctx) as resp:
            return resp.read().decode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imap-port", type=int, default=2143)
    ap.add_argument("--http-port", type=int, default=8080)
    ap.add_argument("--smtp-port", type=int, default=2525)
    ap.add_argument("--submission-port", type=int, default=2587)
    ap.add_argument("--tls", metavar="CERT", help="use IMAPS, submission with STARTTLS and "
                    "HTTPS (the ports given), trusting the server certificate CERT")
    ap.add_argument("--marionette-port", type=int, default=2828)
    ap.add_argument("--thunderbird", default=shutil.which("thunderbird") or "thunderbird")
    args = ap.parse_args()
    stamp = int(time.time())
    folder = f"Văn bản đến {stamp}"
    server = Server(args)
    cfg = {"imap": args.imap_port, "http": args.http_port, "smtp": args.submission_port,
           "tls": bool(args.tls), "scheme": "https" if args.tls else "http",
           "subject": f"Báo cáo tuần {stamp}", "realm": REALM, "password": PASSWORD,
           "leader": LEADER, "secretary": SECRETARY, "deputy": DEPUTY, "folder": folder,
           "uid": f"tb-{stamp}@thunderbird", "uid2": f"tb-{stamp}-2@thunderbird"}
    subjects = [f"Công văn số {i}/{stamp} về lịch họp giao ban" for i in (1, 2, 3)]
    imap = server.imap(LEADER)
    imap.select("INBOX")  # earlier runs' mail out of the way: INBOX holds this run's three
    imap.uid("MOVE", "1:*", "Archive")
    imap.logout()
    with smtplib.SMTP("127.0.0.1", args.smtp_port) as s:
        for subject in subjects:
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "vanthu@moit.gov.vn", LEADER, subject
            msg.set_content("Kính gửi Giám đốc Sở,\nđề nghị xem xét.\n")
            s.send_message(msg)

    rep = Report()
    tb = Thunderbird(args.thunderbird, args.marionette_port, args.tls)
    try:
        out = tb.run(JS_LEADER_MAIL, cfg)
        names = {n for n, _flags in out["folders"]}
        rep.check("leader: standard folders listed",
                  {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"} <= names, sorted(names))
        rep.check("leader: Vietnamese subjects decoded", sorted(out["subjects"]) == subjects)
        rep.check("leader: body streamed", "đề nghị xem xét" in out["body"].encode("latin-1")
                  .decode("utf-8", "replace"))
        out = tb.run(JS_SEND, cfg)
        rep.check("leader: message sent through submission (AUTH PLAIN)", out["result"] == "sent",
                  out["result"])
        out = tb.run(JS_SECRETARY_MAIL, cfg)
        rep.check("secretary: leader's folders under Other Users without subscribing",
                  f"Other Users/{LEADER}/INBOX" in out["folders"], out["folders"])
        rep.check("secretary: leader's INBOX read", set(out.get("leader_inbox", [])) >= {subjects[0]},
                  out.get("leader_inbox"))
        out = tb.run(JS_CALENDAR, cfg)
        rep.check("calendar: Thunderbird sees server-side scheduling", out["autoschedule"] is True)
        rep.check("calendar: attendee got the invitation", out["deputy_got"] == "NEEDS-ACTION",
                  out["deputy_got"])
        rep.check("calendar: secretary may write the leader's calendar",
                  out["secretary_readonly"] is False)
        rep.check("calendar: secretary sees the meeting", out["secretary_sees"] is not None,
                  out["secretary_sees"])
    finally:
        tb.close()

    # The server side of what Thunderbird did.
    imap = server.imap(LEADER)
    imap.select("INBOX")
    _t, everything = imap.search(None, "ALL")
    _t, seen = imap.search(None, "SEEN")
    rep.check("server: one message left in INBOX, marked \\Seen",
              len(everything[0].split()) == 1 and seen == everything, (everything, seen))
    _t, data = imap.list()
    encoded = [x.decode() for x in data if b"V&" in x]
    rep.check("server: Vietnamese folder created (modified UTF-7)", bool(encoded), encoded)
    _t, data = imap.select("Trash")
    _t, flagged = imap.search(None, "FLAGGED")
    rep.check("server: deleted message in Trash, still \\Flagged", bool(flagged[0].split()))
    imap.logout()
    for user, folder, what in ((DEPUTY, "INBOX", "recipient got it"),
                               (LEADER, "Sent", "Thunderbird's copy APPENDed to Sent")):
        imap = server.imap(user)
        imap.select(folder)
        imap.literal = cfg["subject"].encode()
        _t, found = imap.search("UTF-8", "SUBJECT")
        rep.check(f"server: sent mail, {what}", len(found[0].split()) == 1, found)
        imap.logout()
    event = server.dav(LEADER, "GET",
                    f"/dav/calendars/users/{LEADER}/calendar/{cfg['uid'].replace('@', '_')}.ics")
    rep.check("server: organizer's copy shows the attendee ACCEPTED",
              "PARTSTAT=ACCEPTED" in event.replace("\r\n ", ""))
    listing = server.dav(SECRETARY, "PROPFIND",
                          f"/dav/calendars/users/{LEADER}/calendar/", {"Depth": "1"})
    rep.check("server: secretary's event in the leader's calendar",
              cfg["uid2"].split("@")[0] in listing)
    print("all checks passed" if not rep.failed else f"{rep.failed} check(s) FAILED")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
