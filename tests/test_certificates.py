"""`mail-autoconf certificates`: every name in exactly one certificate of at most 100,
and shards that stay put as the folder changes."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoconf.certificates import (
    MAX_DOMAINS,
    MAX_NAMES,
    PUBLIC,
    Certificate,
    Plan,
    domain_key,
    plan,
)
from autoconf.cli import main

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_HOST = "autoconf.hoster.example"
SERVERS = {
    "incoming": [{"type": "imap", "host": "imap.hoster.example", "security": "ssl"}],
    "outgoing": [{"type": "smtp", "host": "smtp.hoster.example", "security": "ssl"}],
}
MANY = [f"customer{i}.example" for i in range(5000)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTOCONF_DOMAINS", "AUTOCONF_PUBLIC_HOST", "AUTOCONF_STATE"):
        monkeypatch.delenv(name, raising=False)


def write_file(folder: Path, name: str, domains: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({"domains": domains, **SERVERS}, allow_unicode=True)
    (folder / name).write_text(text, encoding="utf-8")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["certificates", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listed(out: str) -> dict[str, tuple[str, ...]]:
    """``--format list``: certificate name -> its names."""
    return {name: tuple(names) for name, *names in (line.split() for line in out.splitlines())}


def shards(made: Plan) -> dict[str, tuple[str, ...]]:
    return {c.name: c.names for c in made.shards}


def names_of(domains: list[str]) -> list[str]:
    return [f"{prefix}.{d}" for d in domains for prefix in ("autoconfig", "autodiscover")]


def test_every_name_in_exactly_one_certificate_of_at_most_100() -> None:
    made = plan(MANY, PUBLIC_HOST)
    everything = [name for c in made.certificates for name in c.names]
    assert sorted(everything) == sorted([*names_of(MANY), PUBLIC_HOST])  # each once
    assert all(len(c.names) <= MAX_NAMES for c in made.certificates)
    assert made.public == Certificate(PUBLIC, (PUBLIC_HOST,))
    assert len({c.name for c in made.certificates}) == len(made.certificates)
    # A domain's two names share a certificate.
    where = {name: c.name for c in made.shards for name in c.names}
    assert all(where[f"autoconfig.{d}"] == where[f"autodiscover.{d}"] for d in MANY)
    # Halves, not sixteenths: the certificates are well filled (docs/deploy.md: "about
    # 140 certificates of 40 to 100 names" for 5,000 domains).
    assert 120 < len(made.shards) < 160
    assert min(len(c.names) for c in made.shards) >= 40


def test_the_shard_is_the_leading_bits_of_the_domains_sha256() -> None:
    for certificate in plan(MANY).shards:
        bits = certificate.name.removeprefix("mail-autoconf-")
        for name in certificate.names:
            domain = name.split(".", 1)[1]
            digest = hashlib.sha256(domain.encode()).digest()
            assert format(int.from_bytes(digest, "big"), "0256b").startswith(bits)
    assert domain_key("example.com") == int(hashlib.sha256(b"example.com").hexdigest(), 16)


def test_one_shard_until_it_would_hold_more_than_100_names() -> None:
    assert [c.name for c in plan(MANY[:MAX_DOMAINS]).shards] == ["mail-autoconf-root"]
    split = plan(MANY[: MAX_DOMAINS + 1]).shards
    assert [c.name for c in split] == ["mail-autoconf-0", "mail-autoconf-1"]
    assert plan([]).certificates == ()


def test_the_same_domains_in_any_order_give_the_same_certificates() -> None:
    shuffled = MANY[:]
    random.Random(15).shuffle(shuffled)
    assert plan(shuffled, PUBLIC_HOST) == plan(MANY, PUBLIC_HOST)
    assert plan(MANY + MANY[:10]) == plan(MANY)  # a domain twice is one domain


def test_adding_a_domain_changes_the_one_shard_it_falls_in() -> None:
    before = shards(plan(MANY))
    added = split = 0
    for i in range(70):
        domain = f"new{i}.example"
        after = shards(plan([*MANY, domain]))
        changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
        home = next(n for n in after if f"autoconfig.{domain}" in after[n])
        if home in before:  # room in its shard: that shard alone has one domain more
            assert changed == {home}
            assert sorted(after[home]) == sorted([*before[home], *names_of([domain])])
            added += 1
        else:  # its shard was full: it, alone, is split into its halves
            split += 1
            [parent] = [n for n in before if home.startswith(n)]
            assert changed == {parent, f"{parent}0", f"{parent}1"}, changed
            assert set(after[f"{parent}0"] + after[f"{parent}1"]) == {
                *before[parent],
                *names_of([domain]),
            }
    assert added > 60 and split > 0  # most shards have room; new0..new69 see both


def test_removing_a_domain_changes_one_shard_too() -> None:
    before = shards(plan(MANY))
    after = shards(plan(MANY[1:]))
    changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    assert len(changed) in (1, 3)  # one shard, or two halves joined again


def test_the_public_host_is_never_in_a_domains_certificate() -> None:
    domains = ["hoster.example", *MANY[:10]]
    made = plan(domains, "autoconfig.hoster.example")
    assert made.public_in_shard == "hoster.example"
    everything = [name for c in made.certificates for name in c.names]
    assert everything.count("autoconfig.hoster.example") == 1
    assert made.public == Certificate(PUBLIC, ("autoconfig.hoster.example",))


def test_a_name_no_dns_name_can_be_is_left_out() -> None:
    long = ".".join(["d" * 41, "a" * 63, "b" * 63, "c" * 63, "example"])
    assert len(long) == 241  # autoconfig.: 252 characters; autodiscover.: 254
    made = plan([long])
    assert made.too_long == (f"autodiscover.{long}",)
    assert made.shards[0].names == (f"autoconfig.{long}",)


def test_certbot_commands_for_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", ["a.example", "Bücher.Example"])
    code, out, err = run(
        capsys, "--domains", str(folder), "--public-host", "Autoconf.Hoster.Example"
    )
    assert code == 0, err
    assert out.splitlines() == [
        "certbot certonly --nginx --cert-name mail-autoconf-public --non-interactive "
        "--deploy-hook 'systemctl reload nginx' -d autoconf.hoster.example",
        "certbot certonly --nginx --cert-name mail-autoconf-root --non-interactive "
        "--deploy-hook 'systemctl reload nginx' -d autoconfig.a.example "
        "-d autodiscover.a.example -d autoconfig.xn--bcher-kva.example "
        "-d autodiscover.xn--bcher-kva.example",
    ]
    assert err.splitlines()[-1].endswith(
        "2 domains: 5 names in 2 certificates (at most 100 names each)"
    )


def test_list_format_and_the_public_host_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", ["a.example"])
    monkeypatch.setenv("AUTOCONF_PUBLIC_HOST", "autoconf.hoster.example:443")  # a port is left off
    code, out, _ = run(capsys, "--domains", str(folder), "--format", "list")
    assert code == 0
    assert listed(out) == {
        PUBLIC: (PUBLIC_HOST,),
        "mail-autoconf-root": ("autoconfig.a.example", "autodiscover.a.example"),
    }


def test_the_same_folder_in_any_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    domains = MANY[:300]
    one, other = tmp_path / "one", tmp_path / "other"
    for index in range(0, 300, 30):
        write_file(one, f"{index:03d}.yaml", domains[index : index + 30])
    for index in reversed(range(0, 300, 30)):  # other files, written in the other order
        chunk = domains[index : index + 30][::-1]
        write_file(other, f"z{299 - index:03d}.yaml", chunk)
    outputs = []
    for folder in (one, other):
        for fmt in ("certbot", "list", "nginx"):
            code, out, _ = run(capsys, "--domains", str(folder), "--format", fmt)
            assert code == 0
            outputs.append(out)
    assert outputs[:3] == outputs[3:]
    certificates = listed(outputs[1])
    assert sorted(n for names in certificates.values() for n in names) == sorted(names_of(domains))


def test_the_same_output_in_every_process(tmp_path: Path) -> None:
    """sha256, not Python's hash(): another process (another hash seed) agrees."""
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", MANY[:400])
    outputs = set()
    for seed in ("1", "2", "random"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOCONF_")}
        env["PYTHONHASHSEED"] = seed
        done = subprocess.run(
            [sys.executable, "-m", "autoconf", "certificates", "--domains", str(folder)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop().count("certbot certonly") == len(plan(MANY[:400]).shards)


def test_wildcards_and_the_catch_all_are_counted_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", ["a.example", "*.customers.example"])
    write_file(folder, "b.yaml", ["*"])
    code, out, err = run(capsys, "--domains", str(folder), "--format", "list")
    assert code == 0
    assert listed(out) == {"mail-autoconf-root": ("autoconfig.a.example", "autodiscover.a.example")}
    [patterns] = [line for line in err.splitlines() if "wildcard" in line]
    assert "2 wildcard and catch-all entries (*, *.customers.example)" in patterns
    assert 'docs/deploy.md, "Wildcard and catch-all domains"' in patterns
    assert "no public host (--public-host or AUTOCONF_PUBLIC_HOST)" in err


def test_broken_files_exit_1_and_say_their_domains_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", ["a.example"])
    (folder / "b.yaml").write_text("domains: [b.example]\nincoming: nope\n", encoding="utf-8")
    code, out, err = run(capsys, "--domains", str(folder), "--format", "list")
    assert code == 1
    assert "b.example" not in out and "autoconfig.a.example" in out
    assert "the domains of broken files are left out" in err


def test_a_public_host_that_is_no_host_name_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", ["a.example"])
    code, out, err = run(capsys, "--domains", str(folder), "--public-host", "bad host!")
    assert code == 2 and out == ""
    assert err.startswith("public host: ")


def test_nginx_servers_one_a_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "domains"
    write_file(folder, "a.yaml", MANY[:200])
    code, out, _ = run(
        capsys, "--domains", str(folder), "--format", "nginx", "--public-host", PUBLIC_HOST
    )
    assert code == 0
    made = plan(MANY[:200], PUBLIC_HOST)
    blocks = out.split("server {")[1:]
    assert len(blocks) == len(made.shards)  # the public host's server is the site's own
    for block, shard in zip(blocks, made.shards, strict=True):
        names = block.split("server_name", 1)[1].split(";", 1)[0].split()
        assert tuple(names) == shard.names
        assert f"/etc/letsencrypt/live/{shard.name}/fullchain.pem;" in block
        assert f"/etc/letsencrypt/live/{shard.name}/privkey.pem;" in block
        assert "include /etc/nginx/snippets/mail-autoconf-https.conf;" in block


def test_the_example_of_deploy_md_is_what_the_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = text.split("```console\n$ mail-autoconf certificates ", 1)[1].split("```", 1)[0]
    command, *shown = block.splitlines()
    folder = tmp_path / "domains"
    folder.mkdir()
    (folder / "example.com.yaml").write_bytes(
        (ROOT / "tests" / "data" / "examples" / "example.com.yaml").read_bytes()
    )
    args = command.replace("/etc/mail-autoconf/domains", str(folder)).split()
    code, out, err = run(capsys, *args)
    assert code == 0
    assert shown == out.splitlines() + err.splitlines()
