"""`mail-autoconf dns`: zone-file lines that dnspython's zone parser reads as meant."""

from __future__ import annotations

from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from autoconf.cli import main
from tests.conftest import EXAMPLES


def zone(output: str, origin: str) -> dns.zone.Zone:
    return dns.zone.from_text(output, origin=origin, relativize=False, check_origin=False)


def records(z: dns.zone.Zone, kind: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, node in z.nodes.items():
        for rdataset in node.rdatasets:
            if rdataset.rdtype == dns.rdatatype.from_text(kind):
                found[name.to_text()] = sorted(r.to_text() for r in rdataset)
    return found


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dns", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_example_com_records(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "example.com",
        "--domains",
        str(EXAMPLES),
        "--public-host",
        "autoconf.hoster.example",
    )
    assert code == 0
    z = zone(out, "example.com.")
    assert records(z, "SRV") == {
        # IMAP before POP3 as in the file; implicit TLS (465) before STARTTLS (587).
        "_imaps._tcp.example.com.": ["0 0 993 imap.example.com."],
        "_pop3s._tcp.example.com.": ["10 0 995 pop.example.com."],
        "_submissions._tcp.example.com.": ["0 0 465 smtp.example.com."],
        "_submission._tcp.example.com.": ["10 0 587 smtp.example.com."],
        # RFC 6764: the calendar's and the address book's server, and their paths
        # up to the user (https://dav.example.com/cal/%EMAILADDRESS%/).
        "_caldavs._tcp.example.com.": ["0 0 443 dav.example.com."],
        "_carddavs._tcp.example.com.": ["0 0 443 dav.example.com."],
        "_autodiscover._tcp.example.com.": ["0 0 443 autoconf.hoster.example."],
    }
    txt = records(z, "TXT")
    assert {name: data for name, data in txt.items() if "dav" in name} == {
        "_caldavs._tcp.example.com.": ['"path=/cal/"'],
        "_carddavs._tcp.example.com.": ['"path=/card/"'],
    }
    assert records(z, "CNAME") == {
        "autoconfig.example.com.": ["autoconf.hoster.example."],
        "autodiscover.example.com.": ["autoconf.hoster.example."],
        "ua-auto-config.example.com.": ["autoconf.hoster.example."],  # PACC's name
    }
    # And PACC's digest (tests/test_pacc.py).
    assert [name for name in txt if "dav" not in name] == ["_ua-auto-config.example.com."]


def test_only_services_the_provider_has(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "shop.example", "--domains", str(EXAMPLES))
    assert code == 0
    z = zone(out, "shop.example.")
    assert records(z, "SRV") == {
        "_imap._tcp.shop.example.": ["0 0 143 mail.hosting.example.org."],
        "_submission._tcp.shop.example.": ["0 0 587 mail.hosting.example.org."],
    }
    assert records(z, "CNAME") == {}  # no public host given: said in a comment instead
    assert "--public-host" in out


def test_public_host_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOCONF_PUBLIC_HOST", "autoconfig.example.com")
    code, out, _ = run(capsys, "example.com", "--domains", str(EXAMPLES))
    assert code == 0
    # autoconfig.example.com is the service itself: no CNAME to itself.
    assert records(zone(out, "example.com."), "CNAME") == {
        "autodiscover.example.com.": ["autoconfig.example.com."],
        "ua-auto-config.example.com.": ["autoconfig.example.com."],
    }


def test_placeholder_hosts_are_filled_for_the_domain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "all.yaml").write_text(
        "domains: ['*']\n"
        "incoming:\n"
        "  - {type: imap, host: 'mail.%EMAILDOMAIN%', security: starttls}\n"
        "  - {type: imap, host: 'mail.%EMAILDOMAIN%', security: ssl}\n"
        "outgoing: [{type: smtp, host: 'mail.%EMAILDOMAIN%', security: ssl}]\n"
    )
    code, out, _ = run(capsys, "Customer.Example.", "--domains", str(tmp_path))
    assert code == 0
    assert "catch-all" in out
    assert records(zone(out, "customer.example."), "SRV") == {
        "_imaps._tcp.customer.example.": ["0 0 993 mail.customer.example."],
        "_imap._tcp.customer.example.": ["10 0 143 mail.customer.example."],
        "_submissions._tcp.customer.example.": ["0 0 465 mail.customer.example."],
    }


@pytest.mark.parametrize("pattern", ["*.customers.example.org"])
def test_patterns_get_an_explanation(capsys: pytest.CaptureFixture[str], pattern: str) -> None:
    code, out, _ = run(capsys, pattern, "--domains", str(EXAMPLES))
    assert code == 0
    assert all(line.startswith(";") for line in out.splitlines())
    assert "each" in out and "concrete domain" in out
    assert records(zone(out, "example.org."), "SRV") == {}


def test_unknown_and_invalid_domains(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "nowhere.example", "--domains", str(EXAMPLES))[0] == 1
    assert run(capsys, "bad_domain!", "--domains", str(EXAMPLES))[0] == 2


# --- the whole folder --------------------------------------------------------------------


def headers(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("; ")]


def test_the_whole_folder_in_name_order(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--domains", str(EXAMPLES), "--public-host", "autoconf.hoster.example")
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert run(capsys, *args)[1] == out  # the same every time
    domains = [h.split(":")[0][2:] for h in headers(out) if ": provider " in h]
    assert domains == [
        "example.com",
        "example.net",
        "example.org",
        "shop.example",
        "xn--mller-kva.example",
    ]
    z = zone(out, ".")
    assert records(z, "SRV")["_imaps._tcp.example.net."] == ["0 0 993 imap.example.com."]
    assert records(z, "SRV")["_imap._tcp.shop.example."] == ["0 0 143 mail.hosting.example.org."]
    # PACC's name only where the provider has a PACC document (hosting.example.org's
    # users log in with their local part, which PACC cannot say).
    assert set(records(z, "CNAME")) == {
        f"{name}.{domain}." for name in ("autoconfig", "autodiscover") for domain in domains
    } | {"ua-auto-config.example.com.", "ua-auto-config.example.net."}
    # The wildcard cannot be listed: said once, after the domains.
    (note,) = [h for h in headers(out) if "*.customers.example.org" in h]
    assert "cannot be listed" in note and "hosting.example.org.yaml" in note
    assert out.rstrip().endswith(note)


def test_the_whole_folder_by_provider(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.yaml").write_text(
        "domains: [zz.example, aa.example, '*']\n"
        "incoming: [{type: imap, host: imap.b.example, security: ssl}]\n"
        "outgoing: [{type: smtp, host: smtp.b.example, security: ssl}]\n"
    )
    (tmp_path / "a.yaml").write_text(
        "domains: [mm.example]\n"
        "incoming: [{type: pop3, host: pop.a.example, security: ssl}]\n"
        "outgoing: [{type: smtp, host: smtp.a.example, security: starttls}]\n"
    )
    code, out, _ = run(capsys, "--by-provider", "--domains", str(tmp_path))
    assert code == 0
    lines = headers(out)
    assert "--public-host" in lines[1]  # said once, not for each domain
    blocks = [h for h in lines if h.startswith("; ==== ")]
    assert blocks == [
        f"; ==== {tmp_path / 'a.yaml'}: provider mm.example, 1 domains",
        f"; ==== {tmp_path / 'b.yaml'}: provider zz.example, 2 domains",
    ]
    b_block = out.split(blocks[1])[1]
    assert b_block.index("; aa.example") < b_block.index("; zz.example")
    assert "the catch-all: its domains cannot be listed" in b_block
    assert records(zone(out, "."), "SRV") == {
        "_pop3s._tcp.mm.example.": ["0 0 995 pop.a.example."],
        "_submission._tcp.mm.example.": ["0 0 587 smtp.a.example."],
        "_imaps._tcp.aa.example.": ["0 0 993 imap.b.example."],
        "_submissions._tcp.aa.example.": ["0 0 465 smtp.b.example."],
        "_imaps._tcp.zz.example.": ["0 0 993 imap.b.example."],
        "_submissions._tcp.zz.example.": ["0 0 465 smtp.b.example."],
    }


def test_by_provider_takes_no_domain(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "example.com", "--by-provider", "--domains", str(EXAMPLES))
    assert code == 2
    assert "give no DOMAIN" in err


def test_a_folder_that_serves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--domains", str(tmp_path))
    assert code == 1
    assert out == "" and "no domain file serves a domain" in err
