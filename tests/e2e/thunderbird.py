"""A real, headless Thunderbird from Debian, driven over Marionette
(docs/clients.md#thunderbird-headless).

Every host name resolves to 127.0.0.1 and ports 80 and 443 are mapped to the
test's nginx, so Thunderbird asks for the real https://autoconfig.DOMAIN/ URLs
and no request leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marionette_driver.marionette import Marionette

from tests.e2e.processes import Started, free_port, port_open, start, wait_until

THUNDERBIRD = Path("/usr/lib/thunderbird/thunderbird-bin")
PASSWORD = "hunter2-not-for-logs"

# What the account hub does when someone types an address and a password:
# FindConfig.parallelAutoDiscovery (autoconfig over https and http, ISPDB, MX,
# Outlook autodiscover, all in parallel), then its placeholders are filled.
# The answer is reduced to plain JSON with Thunderbird's own names.
_DESCRIBE = r"""
const names = (iface, value) => Object.keys(iface).find(k => iface[k] === value) ?? value;
const server = s => s && ({
  type: s.type, hostname: s.hostname, port: s.port,
  socketType: names(Ci.nsMsgSocketType, s.socketType),
  auth: names(Ci.nsMsgAuthMethod, s.auth), username: s.username,
  leaveMessagesOnServer: s.leaveMessagesOnServer ?? null,
  daysToLeaveMessagesOnServer: s.daysToLeaveMessagesOnServer ?? null,
});
const describe = config => config && ({
  source: config.source, subSource: config.subSource,
  incoming: server(config.incoming), incomingAlternatives: config.incomingAlternatives.map(server),
  outgoing: server(config.outgoing), outgoingAlternatives: config.outgoingAlternatives.map(server),
});
"""
_DISCOVER = (
    _DESCRIBE
    + r"""
const [domain, email, password, resolve] = arguments;
(async () => {
  try {
    const { FindConfig } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/FindConfig.sys.mjs");
    const { AccountConfig } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/AccountConfig.sys.mjs");
    const search = FindConfig.parallelAutoDiscovery(
      domain, email, new AbortController().signal, password);
    let step = await search.next();
    while (!step.done) {
      step = await search.next({ acceptRedirect: false });  // never to a third party
    }
    const config = step.value;
    if (config) {
      FindConfig.ewsifyConfig(config);
      AccountConfig.replaceVariables(config, "Test Person", email, password);
    }
    resolve({ config: describe(config) });
  } catch (e) {
    resolve({ error: String(e) });
  }
})();
"""
)
_EXCHANGE = (
    _DESCRIBE
    + r"""
const [domain, email, password, resolve] = arguments;
(async () => {
  try {
    const { fetchConfigFromExchange } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/ExchangeAutoDiscover.sys.mjs");
    const config = await fetchConfigFromExchange(
      domain, email, new AbortController().signal, email, password,
      async () => { throw new Error("no redirect expected"); });
    resolve({ config: describe(config) });
  } catch (e) {
    resolve({ error: String(e), errors: (e.errors || []).map(String) });
  }
})();
"""
)
# One of the account hub's lookups alone: FetchConfig.fromISP (the domain's own
# autoconfig URLs), fromDB (the ISPDB) or forMX (the MX host's base domain).
_FETCH_CONFIG = (
    _DESCRIBE
    + r"""
const [lookup, domain, email, resolve] = arguments;
(async () => {
  try {
    const { FetchConfig } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/FetchConfig.sys.mjs");
    const signal = new AbortController().signal;
    const args = lookup === "fromDB" ? [domain, signal] : [domain, email, signal];
    resolve({ config: describe(await FetchConfig[lookup](...args)) });
  } catch (e) {
    resolve({ error: String(e), errors: (e.errors || []).map(String) });
  }
})();
"""
)
# The account hub's search, then what it does when the user clicks Done
# (views/email.mjs, #validateAndFinish and #finishEmailAccountAddition): the
# checks for an existing server, ConfigVerifier's login to the incoming server
# (alternatives tried only for a config that did not come from XML), the
# account created in the backend, and its first getNewMessages. The stage that
# failed comes back with Thunderbird's own message.
_VERIFY_AND_CREATE = (
    _DESCRIBE
    + r"""
const [domain, email, password, resolve] = arguments;
(async () => {
  let stage = "discover";
  try {
    const { FindConfig } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/FindConfig.sys.mjs");
    const { AccountConfig } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/AccountConfig.sys.mjs");
    const { ConfigVerifier } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/ConfigVerifier.sys.mjs");
    const { CreateInBackend } = ChromeUtils.importESModule(
      "resource:///modules/accountcreation/CreateInBackend.sys.mjs");
    const search = FindConfig.parallelAutoDiscovery(
      domain, email, new AbortController().signal, password);
    let step = await search.next();
    while (!step.done) {
      step = await search.next({ acceptRedirect: false });
    }
    const config = step.value;
    if (!config) {
      resolve({ stage, error: "no configuration found" });
      return;
    }
    FindConfig.ewsifyConfig(config);
    AccountConfig.replaceVariables(config, "Test Person", email, password);
    stage = "exists";
    if (CreateInBackend.checkIncomingServerAlreadyExists(config)) {
      resolve({ stage, error: "Account already exists." });
      return;
    }
    if (config.outgoing.addThisServer) {
      const existing = CreateInBackend.checkOutgoingServerAlreadyExists(config);
      if (existing) {
        config.outgoing.addThisServer = false;
        config.outgoing.existingServerKey = existing.key;
      }
    }
    stage = "verify";
    const msgWindow = Services.wm.getMostRecentWindow("mail:3pane")?.msgWindow ?? null;
    const verifier = new ConfigVerifier(msgWindow, new AbortController().signal);
    let verified;
    try {
      verified = await verifier.verifyConfig(config, config.source != AccountConfig.kSourceXML);
    } catch (e) {
      verifier.cleanup();
      resolve({ stage, error: e.message ?? String(e), config: describe(config) });
      return;
    }
    config.incoming.auth = verified.incoming.auth;
    config.outgoing.auth = verified.outgoing.auth;
    config.incoming.username = verified.incoming.username;
    config.outgoing.username = verified.outgoing.username;
    stage = "create";
    const account = await CreateInBackend.createAccountInBackend(config);
    account.incomingServer.getNewMessages(account.incomingServer.rootFolder, msgWindow, null);
    // What the backend holds, read back from the servers themselves.
    const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
    const incoming = account.incomingServer;
    const outgoing = MailServices.outgoingServer.getServerByIdentity(account.defaultIdentity)
      .QueryInterface(Ci.nsISmtpServer);
    const created = {
      incoming: server({ type: incoming.type, hostname: incoming.hostname, port: incoming.port,
        socketType: incoming.socketType, auth: incoming.authMethod, username: incoming.username }),
      outgoing: server({ type: outgoing.type, hostname: outgoing.hostname, port: outgoing.port,
        socketType: outgoing.socketType, auth: outgoing.authMethod, username: outgoing.username }),
    };
    resolve({ account: account.key, config: describe(config), created });
  } catch (e) {
    resolve({ stage, error: String(e) });
  }
})();
"""
)
# What the account hub does after Done, before it offers calendars and address
# books (views/email.mjs, #fetchSyncAccounts): the account's search from the
# address, then at the address's domain and, if that finds nothing and the
# incoming server's host is of the same site, at that host: CardDAVUtils'
# detection (through RemoteAddressBookUtils, as the hub calls it), then the
# calendar providers' detection (cal.provider.detection). What each found, with
# the errors of the hosts that found nothing.
_FIND_DAV = (
    _DESCRIBE
    + r"""
const [domain, email, password, resolve] = arguments;
const module = name => ChromeUtils.importESModule(`resource:///modules/${name}.sys.mjs`);
(async () => {
  try {
    const { FindConfig } = module("accountcreation/FindConfig");
    const search = FindConfig.parallelAutoDiscovery(
      domain, email, new AbortController().signal, password);
    let step = await search.next();
    while (!step.done) step = await search.next({ acceptRedirect: false });
    const config = step.value;
    if (!config) {
      resolve({ error: "no mail configuration found" });
      return;
    }
    module("accountcreation/AccountConfig").AccountConfig.replaceVariables(
      config, "Test Person", email, password);
    const hostnames = [domain];
    const incoming = config.incoming.hostname;
    const site = host => Services.eTLD.getSchemelessSiteFromHost(host);
    if (incoming != domain && site(incoming) == site(domain)) hostnames.push(incoming);
    const { RemoteAddressBookUtils } = module("accountcreation/RemoteAddressBookUtils");
    const { cal } = module("calendar/calUtils");
    const errors = [];
    let books = [];
    for (const hostname of hostnames) {
      try {
        books = await RemoteAddressBookUtils.getAddressBooksForAccount(
          email, password, `https://${hostname}`);
        if (books.length) break;
      } catch (e) {
        errors.push(`address books at ${hostname}: ${e.message ?? e}`);
      }
    }
    let calendars = [];
    for (const hostname of hostnames) {
      try {
        const found = await cal.provider.detection.detect(
          email, password, `https://${hostname}`, false, [], {});
        calendars = [...found.values()].flat();
        if (calendars.length) break;
      } catch (e) {
        errors.push(`calendars at ${hostname}: ${e.name ?? ""} ${e.message ?? e}`);
      }
    }
    resolve({
      mail: describe(config),
      hostnames,
      addressBooks: books.map(book => ({ url: book.url.href, name: book.name })),
      calendars: calendars.map(c => ({ type: c.type, uri: c.uri.spec, name: c.name })),
      errors,
    });
  } catch (e) {
    resolve({ error: String(e) });
  }
})();
"""
)
# One check for new mail on the account's incoming server (IMAP: the Inbox
# updated; POP3: the messages downloaded into the local Inbox), then the
# subjects of the Inbox's messages as Thunderbird's database has them.
_INBOX_SUBJECTS = r"""
const [key, resolve] = arguments;
(async () => {
  try {
    const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
    const server = MailServices.accounts.getAccount(key).incomingServer;
    const inbox = server.rootFolder.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
    const status = await new Promise(done => {
      server.getNewMessages(inbox, null, {
        QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
        OnStartRunningUrl() {},
        OnStopRunningUrl(url, code) { done(code); },
      });
    });
    const subjects = [...inbox.messages].map(header => header.mime2DecodedSubject);
    resolve({ status, subjects });
  } catch (e) {
    resolve({ error: String(e) });
  }
})();
"""
# A message sent as the account's identity through the outgoing server the
# identity names (what MessageSend's delivery does with the file it built):
# the outgoing server service's server, its sendMailMessage, its listener's
# onSendStop with the status and Thunderbird's own error message.
_SEND = r"""
const [key, to, subject, folder, resolve] = arguments;
(async () => {
  try {
    const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
    const identity = MailServices.accounts.getAccount(key).defaultIdentity;
    const server = MailServices.outgoingServer.getServerByIdentity(identity);
    const messageId = `<${Services.uuid.generateUUID().toString().slice(1, -1)}@test>`;
    const text = [
      `From: ${identity.fullName} <${identity.email}>`, `To: ${to}`, `Subject: ${subject}`,
      `Message-ID: ${messageId}`, `Date: ${new Date().toUTCString()}`,
      "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
      "Sent by Thunderbird in a test.", "",
    ].join("\r\n");
    const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
    file.initWithPath(folder);
    file.append(`${subject.replace(/[^A-Za-z0-9-]/g, "_")}.eml`);
    await IOUtils.writeUTF8(file.path, text);
    const recipients = MailServices.headerParser.parseEncodedHeaderW(to);
    const result = await new Promise(done => {
      server.sendMailMessage(file, recipients, [], identity, identity.email, null, null, false,
        messageId, {
          QueryInterface: ChromeUtils.generateQI(["nsIMsgOutgoingListener"]),
          onSendStart() {},
          onSendStop(serverURI, status, secInfo, errorMessage) {
            done({ status, errorMessage: errorMessage ?? null });
          },
        });
    });
    resolve({ ...result, server: { type: server.type, hostname: server.serverURI.host,
      port: server.serverURI.port, auth: server.authMethod } });
  } catch (e) {
    resolve({ error: String(e) });
  }
})();
"""
# A new port mapping, and no connection kept from the old one: going offline
# and back closes every open socket.
_MAP_PORTS = r"""
const [mapping] = arguments;
Services.prefs.setCharPref("network.socket.forcePort", mapping);
Services.obs.notifyObservers(null, "net:prune-all-connections");
Services.io.offline = true;
Services.io.offline = false;
"""


def _user_js(
    marionette_port: int, http_port: int, https_port: int, extra: Mapping[str, Any]
) -> str:
    prefs: dict[str, Any] = {
        "marionette.port": marionette_port,
        # Every name is 127.0.0.1; 80 and 443 go to the test's nginx. Host
        # headers and SNI keep the real names.
        "network.dns.forceResolve": "127.0.0.1",
        "network.socket.forcePort": f"80={http_port};443={https_port}",
        "network.dns.disableIPv6": True,
        "mailnews.start_page.enabled": False,
        "mail.inappnotifications.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "toolkit.telemetry.enabled": False,
        "app.update.enabled": False,
        "extensions.update.enabled": False,
        **extra,
    }
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


@dataclass
class Thunderbird:
    started: Started
    client: Marionette
    http_port: int
    https_port: int

    def _run(self, script: str, *args: Any, timeout: float = 60.0) -> dict[str, Any]:
        result = self.client.execute_async_script(
            script, script_args=list(args), script_timeout=int(timeout * 1000)
        )
        assert isinstance(result, dict), result
        return result

    def discover(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        """The account hub's search for ``email``, as the user typed it."""
        domain = email.split("@", 1)[1]
        return self._run(_DISCOVER, domain, email, password)

    def exchange(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        """Thunderbird's Outlook autodiscover alone, with its Basic auth header."""
        domain = email.split("@", 1)[1]
        return self._run(_EXCHANGE, domain, email, password)

    def fetch_config(self, lookup: str, email: str) -> dict[str, Any]:
        """One lookup of the account hub alone: ``fromISP``, ``fromDB`` or ``forMX``."""
        domain = email.split("@", 1)[1]
        return self._run(_FETCH_CONFIG, lookup, domain, email)

    def verify_and_create(
        self, email: str, password: str = PASSWORD, *, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The account hub from the address to Done: the search, ConfigVerifier's
        login, the account created, its first check for mail. ``account`` (the
        account's key) and ``config`` on success; ``stage`` and ``error``
        (Thunderbird's message) where it stopped."""
        domain = email.split("@", 1)[1]
        return self._run(_VERIFY_AND_CREATE, domain, email, password, timeout=timeout)

    def find_dav(
        self, email: str, password: str = PASSWORD, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The account hub's search for calendars and address books, from the
        address alone: ``addressBooks`` (url, name) and ``calendars`` (type, uri,
        name), the ``hostnames`` asked, and the ``errors`` of those that found none."""
        domain = email.split("@", 1)[1]
        return self._run(_FIND_DAV, domain, email, password, timeout=timeout)

    def inbox_subjects(self, account: str, *, timeout: float = 10.0) -> list[str]:
        """Check for new mail once, then the subjects in the account's Inbox."""
        answer = self._run(_INBOX_SUBJECTS, account, timeout=timeout)
        assert "error" not in answer, answer
        return [str(subject) for subject in answer["subjects"]]

    def send(self, account: str, to: str, subject: str, *, timeout: float = 15.0) -> dict[str, Any]:
        """A message from the account to ``to`` through its outgoing server:
        ``status`` 0 when the server took it, else an nsresult and
        ``errorMessage``, Thunderbird's text for the user."""
        outbox = self.started.log.parent / "outbox"
        outbox.mkdir(exist_ok=True)
        return self._run(_SEND, account, to, subject, str(outbox), timeout=timeout)

    def map_ports(self, mapping: str) -> None:
        self.client.execute_script(_MAP_PORTS, script_args=[mapping])

    def stop(self) -> None:
        try:
            self.client.delete_session()
        except Exception:  # noqa: BLE001 -- it is going away either way
            pass
        self.started.stop()


def start_thunderbird(
    workdir: Path,
    ca_file: Path,
    http_port: int,
    https_port: int,
    *,
    prefs: Mapping[str, Any] | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
    more_cas: Sequence[Path] = (),
) -> Thunderbird:
    """Thunderbird with a new profile; ``prefs`` are added to its user.js, and
    ``wrap`` turns its command line into the one started (which must exec it,
    keeping its PID); ``more_cas`` are trusted beside ``ca_file`` (the mail
    servers' CA, say)."""
    profile = workdir / "profile"
    profile.mkdir(parents=True)
    marionette_port = free_port()
    (profile / "user.js").write_text(
        _user_js(marionette_port, http_port, https_port, prefs or {}), encoding="utf-8"
    )
    # The profile's own certificate store trusts the test CAs, and nothing else new.
    subprocess.run(["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"], check=True)
    for number, ca in enumerate([ca_file, *more_cas]):
        nickname = "test-ca" if number == 0 else f"test-ca-{number}"
        subprocess.run(
            ["certutil", "-A", "-d", f"sql:{profile}", "-t", "C,,", "-n", nickname, "-i", str(ca)],
            check=True,
        )
    env = dict(os.environ)
    env.update(
        HOME=str(workdir),
        MOZ_HEADLESS="1",
        MOZ_REMOTE_SETTINGS_DEVTOOLS="1",  # or it calls home some 30 s after start
        MOZ_CRASHREPORTER_DISABLE="1",
    )
    command = [
        str(THUNDERBIRD),
        "--headless",
        "--marionette",
        "--remote-allow-system-access",
        "--no-remote",
        "--profile",
        str(profile),
    ]
    if wrap is not None:
        command = wrap(command)
    started = start(command, workdir / "thunderbird.log", cwd=workdir, env=env)
    wait_until(lambda: port_open(marionette_port), started, "Thunderbird's Marionette")
    client = Marionette(host="127.0.0.1", port=marionette_port)
    client.start_session()
    client.set_context(client.CONTEXT_CHROME)
    return Thunderbird(started, client, http_port, https_port)
