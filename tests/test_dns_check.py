"""`mail-autoconf dns --check`'s verdicts, with DNS answered by a table here.

The real DNS server (dnsmasq) is in tests/e2e/test_dns_check.py; these tests
replace `autoconf.resolver.lookup` where the check calls it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autoconf import dns_check
from autoconf.cli import main
from autoconf.dns_check import Outcome, Tally, Verdict, srv_order
from autoconf.exits import Exit
from autoconf.registry import load_folder
from autoconf.render import pacc
from autoconf.resolver import LookupFailed, Nameserver
from tests.conftest import EXAMPLES

HOST = "autoconf.hoster.example."


def _pacc_digest(domain: str) -> str:
    provider = next(p for p in load_folder(EXAMPLES).providers if domain in p.domains)
    body = pacc.render(provider, domain)
    assert body is not None
    return pacc.digest(body)


DIGEST = _pacc_digest("example.com")
Zone = dict[tuple[str, str], tuple[str, ...]]
# example.com as `dns` prints it, published right.
RIGHT: Zone = {
    ("_imaps._tcp.example.com.", "SRV"): ("0 0 993 imap.example.com.",),
    ("_pop3s._tcp.example.com.", "SRV"): ("10 0 995 pop.example.com.",),
    ("_submissions._tcp.example.com.", "SRV"): ("0 0 465 smtp.example.com.",),
    ("_submission._tcp.example.com.", "SRV"): ("10 0 587 smtp.example.com.",),
    ("_caldavs._tcp.example.com.", "SRV"): ("0 0 443 dav.example.com.",),
    ("_caldavs._tcp.example.com.", "TXT"): ('"path=/cal/"',),
    ("_carddavs._tcp.example.com.", "SRV"): ("0 0 443 dav.example.com.",),
    ("_carddavs._tcp.example.com.", "TXT"): ('"path=/card/"',),
    ("_autodiscover._tcp.example.com.", "SRV"): (f"0 0 443 {HOST}",),
    ("autoconfig.example.com.", "CNAME"): (HOST,),
    ("autodiscover.example.com.", "CNAME"): (HOST,),
    (HOST, "A"): ("192.0.2.10",),
    ("example.com.", "MX"): ("10 mx.example.com.",),
    # PACC's digest, as dnspython writes a TXT record split in two strings.
    ("_ua-auto-config.example.com.", "TXT"): (f'"{DIGEST[:20]}" "{DIGEST[20:]}"',),
    ("ua-auto-config.example.com.", "CNAME"): (HOST,),
}


def serve(monkeypatch: pytest.MonkeyPatch, zone: Zone, asked: list[object] | None = None) -> None:
    """Answer the check's lookups from ``zone``; a value of None fails the lookup."""

    def lookup(
        name: str, rdtype: str, nameserver: Nameserver | None = None, timeout: float = 2.0
    ) -> tuple[str, ...]:
        if asked is not None:
            asked.append(nameserver)
        found = zone.get((name, rdtype), ())
        if found is None:
            raise LookupFailed(f"{name} {rdtype}: no answer within {timeout:g} s")
        return found

    monkeypatch.setattr(dns_check, "lookup", lookup)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["dns", *args, "--check", "--domains", str(EXAMPLES)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def verdicts(lines: list[str]) -> dict[tuple[str, str], str]:
    """(verdict, name) of each record line."""
    found = {}
    for line in lines:
        verdict, name = line.split()[:2]
        if verdict in {v.value for v in Verdict}:
            found[(name, verdict)] = line
    return found


def test_srv_order_ignores_weights_and_the_numbers_but_not_the_order() -> None:
    want = ["0 0 993 imap.example.com.", "10 0 143 imap.example.com."]
    assert srv_order(["5 60 993 IMAP.example.com", "7 0 143 imap.example.com."]) == srv_order(want)
    assert srv_order(["10 0 993 imap.example.com.", "0 0 143 imap.example.com."]) != srv_order(want)
    assert srv_order(["0 0 993 imap.example.com."]) != srv_order(want)  # one of two


def test_a_domain_published_right(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[object] = []
    serve(monkeypatch, RIGHT, asked)
    code, lines, err = check(
        capsys, "example.com", "--public-host", HOST, "--resolver", "127.0.0.1:5353"
    )
    assert code == Exit.OK, lines
    assert set(asked) == {Nameserver("127.0.0.1", 5353)}
    assert lines == [
        "present    _imaps._tcp.example.com. SRV 0 0 993 imap.example.com.",
        "present    _pop3s._tcp.example.com. SRV 10 0 995 pop.example.com.",
        "present    _submissions._tcp.example.com. SRV 0 0 465 smtp.example.com.",
        "present    _submission._tcp.example.com. SRV 10 0 587 smtp.example.com.",
        "present    _caldavs._tcp.example.com. SRV 0 0 443 dav.example.com.",
        'present    _caldavs._tcp.example.com. TXT "path=/cal/"',
        "present    _carddavs._tcp.example.com. SRV 0 0 443 dav.example.com.",
        'present    _carddavs._tcp.example.com. TXT "path=/card/"',
        f"present    _autodiscover._tcp.example.com. SRV 0 0 443 {HOST}",
        f'present    _ua-auto-config.example.com. TXT "{DIGEST}"',
        f"present    autoconfig.example.com. CNAME {HOST}",
        f"present    autodiscover.example.com. CNAME {HOST}",
        f"present    ua-auto-config.example.com. CNAME {HOST}",
        "info       example.com. MX 10 mx.example.com.",
        "13 records checked: 13 present, 0 missing, 0 different",
    ]
    assert err == ""


def test_missing_and_different_records(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = dict(RIGHT)
    del zone[("_pop3s._tcp.example.com.", "SRV")]
    zone[("_submission._tcp.example.com.", "SRV")] = ("10 0 25 smtp.example.com.",)
    del zone[("autoconfig.example.com.", "CNAME")]
    zone[("autoconfig.example.com.", "A")] = ("192.0.2.10",)  # the host's address: fine
    del zone[("autodiscover.example.com.", "CNAME")]
    zone[("autodiscover.example.com.", "A")] = ("192.0.2.99",)  # another host
    serve(monkeypatch, zone)
    code, lines, _ = check(capsys, "example.com", "--public-host", HOST)
    assert code == Exit.INVALID
    found = verdicts(lines)
    assert found[("_pop3s._tcp.example.com.", "missing")] == (
        "missing    _pop3s._tcp.example.com. SRV: want 10 0 995 pop.example.com.; DNS has none"
    )
    assert found[("_submission._tcp.example.com.", "different")] == (
        "different  _submission._tcp.example.com. SRV: want 10 0 587 smtp.example.com.; "
        "DNS has 10 0 25 smtp.example.com."
    )
    assert f"the addresses of {HOST}" in found[("autoconfig.example.com.", "present")]
    assert found[("autodiscover.example.com.", "different")].endswith(
        f"DNS has A 192.0.2.99 ({HOST} has A 192.0.2.10)"
    )
    assert lines[-1] == "13 records checked: 10 present, 1 missing, 2 different"


def test_a_cname_elsewhere_is_different(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = dict(RIGHT)
    zone[("autoconfig.example.com.", "CNAME")] = ("old.hoster.example.",)
    zone[("autoconfig.example.com.", "A")] = ("198.51.100.7",)
    serve(monkeypatch, zone)
    code, lines, _ = check(capsys, "example.com", "--public-host", HOST)
    assert code == Exit.INVALID
    assert verdicts(lines)[("autoconfig.example.com.", "different")] == (
        f"different  autoconfig.example.com. CNAME: want {HOST} (or the same addresses); "
        f"DNS has CNAME old.hoster.example., A 198.51.100.7 ({HOST} has A 192.0.2.10)"
    )


def test_the_public_host_itself_needs_an_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = dict(RIGHT)
    zone[("_autodiscover._tcp.example.com.", "SRV")] = ("0 0 443 autoconfig.example.com.",)
    zone[("autodiscover.example.com.", "CNAME")] = ("autoconfig.example.com.",)
    zone[("autoconfig.example.com.", "A")] = ("192.0.2.10",)
    zone[("ua-auto-config.example.com.", "CNAME")] = ("autoconfig.example.com.",)
    serve(monkeypatch, zone)
    code, lines, _ = check(capsys, "example.com", "--public-host", "autoconfig.example.com")
    assert code == Exit.OK, lines
    assert "present    autoconfig.example.com. A 192.0.2.10" in lines


def test_without_a_public_host_the_service_names_are_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(monkeypatch, RIGHT)
    code, lines, _ = check(capsys, "example.com")
    assert code == Exit.OK
    assert [line.split()[1] for line in lines if line.startswith("skipped")] == [
        "_autodiscover._tcp.example.com.",
        "autoconfig.example.com.",
        "autodiscover.example.com.",
        "ua-auto-config.example.com.",
    ]
    # PACC's TXT needs no public host: it is the digest of the file's document.
    assert lines[-1] == "9 records checked: 9 present, 0 missing, 0 different, 4 skipped"


def test_no_answer_is_its_own_state(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zone: dict[tuple[str, str], tuple[str, ...] | None] = dict(RIGHT)
    zone[("_imaps._tcp.example.com.", "SRV")] = None
    serve(monkeypatch, zone)  # type: ignore[arg-type]
    code, lines, err = check(capsys, "example.com", "--public-host", HOST)
    assert code == Exit.NO_ANSWER
    assert "failed     _imaps._tcp.example.com. SRV: no answer within 2 s" in lines
    assert lines[-1] == "13 records checked: 12 present, 0 missing, 0 different, 1 failed"
    assert "gave no answer for 1 records" in err and "Traceback" not in err
    # Something known wrong wins over something unknown.
    del zone[("_pop3s._tcp.example.com.", "SRV")]
    assert check(capsys, "example.com", "--public-host", HOST)[0] == Exit.INVALID


def test_a_silent_resolver_stops_the_folder_after_one_domain(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Silent(dict[tuple[str, str], None]):
        def get(self, key: object, default: object = None) -> None:
            return None

    serve(monkeypatch, Silent())  # type: ignore[arg-type]
    code, lines, err = check(capsys, "--public-host", HOST)
    assert code == Exit.NO_ANSWER
    assert {line.split()[1] for line in lines if line.startswith("failed")} <= {
        f"{label}.example.com."
        for label in (
            "_imaps._tcp",
            "_pop3s._tcp",
            "_submissions._tcp",
            "_submission._tcp",
            "_caldavs._tcp",
            "_carddavs._tcp",
            "_autodiscover._tcp",
            "autoconfig",
            "autodiscover",
            "_ua-auto-config",
            "ua-auto-config",
        )
    }
    assert "answered no lookup for example.com: stopped there" in err


def test_a_resolver_that_is_no_address(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, "example.com", "--resolver", "dns.example")
    assert code == Exit.USAGE
    assert "--resolver" in err


def test_the_whole_folder_is_checked_in_order(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve(monkeypatch, RIGHT)
    code, lines, _ = check(capsys, "--public-host", HOST)
    assert code == Exit.INVALID  # only example.com is published
    names = [line.split()[1] for line in lines if line.startswith("info")]
    assert names == [
        "example.com.",
        "example.net.",
        "example.org.",
        "shop.example.",
        "xn--mller-kva.example.",
    ]
    assert any("*.customers.example.org: its domains cannot be listed" in line for line in lines)
    assert lines[-1].startswith("5 domains, 41 records checked: 13 present, 28 missing")


def test_tally_and_lines() -> None:
    tally = Tally()
    tally.add(
        [Outcome(Verdict.PRESENT, "a.", "SRV", "x", "SRV x"), Outcome(Verdict.INFO, "a.", "MX")]
    )
    assert tally.exit_code() == Exit.OK
    assert tally.summary() == "1 records checked: 1 present, 0 missing, 0 different"
    assert Outcome(Verdict.FAILED, "a.", "SRV", have="no answer").line() == (
        "failed     a. SRV: no answer"
    )
