"""``keytool check`` against what sshd (StrictModes) and ssh actually do: a folder or key
with the wrong modes makes the real login fail; check names it, --fix sets the modes
(and nothing else), and the same login then works."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.interop.clienthelp import (
    KEYTOOL,
    Account,
    base_env,
    install_key,
    keygen,
)
from tests.peers import Sshd, require, run


def ssh_login(
    server: Sshd, account: Account, key: Path, known: Path
) -> subprocess.CompletedProcess[str]:
    return run(
        [require("ssh"), "-F", "none", "-p", str(server.port), "-i", key,
         "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", f"{account.name}@127.0.0.1", "echo in"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEYTOOL, "check", *args], capture_output=True, text=True,
                          env=base_env(), timeout=60)  # fmt: skip


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def strict_setup(tmp_path: Path, account: Account) -> tuple[Path, Path, Sshd, Path]:
    """A key installed for ``account``, its authorized_keys, an sshd with StrictModes
    reading it, and the known_hosts file to fill once it runs."""
    key = keygen(tmp_path / "id")
    keys_file = install_key(account, Path(f"{key}.pub"))
    server = Sshd(tmp_path / "sshd", {"StrictModes": "yes",
                                      "AuthorizedKeysFile": ".ssh/authorized_keys"})  # fmt: skip
    return key, keys_file, server, tmp_path / "known_hosts"


def test_strict_modes_refusal_found_and_fixed(tmp_path: Path, account: Account) -> None:
    key, keys_file, server, known = strict_setup(tmp_path, account)
    ssh_dir = keys_file.parent
    with server:
        known.write_text(server.known_hosts_line())
        assert ssh_login(server, account, key, known).returncode == 0  # as installed: fine
        ssh_dir.chmod(0o777)
        keys_file.chmod(0o666)
        refused = ssh_login(server, account, key, known)
        assert refused.returncode != 0
        assert "bad ownership or modes" in server.log.read_text()
        before = contents(ssh_dir)
        found = check("-d", str(ssh_dir))
        assert found.returncode == 1
        assert f"FAIL {ssh_dir}: mode 0777, not 0700" in found.stdout
        assert f"FAIL {keys_file}: mode 0666" in found.stdout
        fixed = check("--fix", "-d", str(ssh_dir))
        assert fixed.returncode == 0, fixed.stdout
        assert (ssh_dir.stat().st_mode & 0o777, keys_file.stat().st_mode & 0o777) == (0o700, 0o600)
        assert contents(ssh_dir) == before  # modes only: every byte kept
        assert (ssh_dir.stat().st_uid, keys_file.stat().st_uid) == (account.uid, account.uid)
        accepted = ssh_login(server, account, key, known)
        assert (accepted.returncode, accepted.stdout) == (0, "in\n"), accepted.stderr
        assert check("-d", str(ssh_dir)).returncode == 0


def test_a_private_key_ssh_refuses_and_weak_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    weak = ssh_dir / "id_rsa"
    run([require("ssh-keygen"), "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", weak])
    good = ssh_dir / "id_ed25519"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "passphrase", "-f", good])
    weak.chmod(0o644)
    # ssh itself refuses the key file: its permissions are too open
    refused = run([require("ssh-keygen"), "-y", "-f", weak])
    assert "UNPROTECTED PRIVATE KEY FILE" in refused.stderr
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert f"FAIL {weak}: mode 0644: a private key others can read (ssh refuses to use it)" in lines
    assert any(line.startswith(f"WARN {weak}: no passphrase") for line in lines)
    assert any(line.startswith(f"WARN {weak}: an RSA key of 1024 bits") for line in lines)
    # 600, a passphrase, Ed25519: only an ok line, saying so
    assert [line for line in lines if f"{good}:" in line] == [
        f"ok   {good}: mode 0600, ssh-ed25519 256 bits, passphrase"
    ]
    assert check("--fix", "-d", str(ssh_dir)).returncode == 0
    assert run([require("ssh-keygen"), "-y", "-f", weak]).returncode == 0


def test_not_a_folder_is_one_line(tmp_path: Path) -> None:
    done = check("-d", str(tmp_path / "missing"))
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_authorized_keys_lines_sshd_skips(tmp_path: Path, account: Account) -> None:
    """A DSA line and a line that is no key: sshd passes over both (the Ed25519 key
    after them logs in, the DSA key does not); check names those two lines, not the
    good one."""
    dsa = tmp_path / "id_dsa"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", dsa]).check_returncode()
    good = keygen(tmp_path / "id")
    keys_file = install_key(account, Path(f"{good}.pub"))
    keys_file.write_text(
        Path(f"{dsa}.pub").read_text() + "not a key line\n" + Path(f"{good}.pub").read_text()
    )
    server = Sshd(tmp_path / "sshd", {"AuthorizedKeysFile": ".ssh/authorized_keys"})
    known = tmp_path / "known_hosts"
    with server:
        known.write_text(server.known_hosts_line())
        assert ssh_login(server, account, good, known).stdout == "in\n"
        refused = run(
            [require("ssh"), "-F", "none", "-p", str(server.port), "-i", dsa,
             "-o", "IdentitiesOnly=yes", "-o", "PubkeyAcceptedAlgorithms=+ssh-dss",
             "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", f"{account.name}@127.0.0.1", "echo in"],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert refused.returncode == 255 and refused.stdout == ""
    found = check("-d", str(keys_file.parent))
    lines = [line for line in found.stdout.splitlines() if str(keys_file) in line]
    assert len(lines) == 2
    assert lines[0] == f"WARN {keys_file}: line 1: a DSA key: sshd no longer accepts it"
    assert lines[1].startswith(f"WARN {keys_file}: line 2: sshd cannot read it (")
    assert found.returncode == 0  # advice, not a failure


def ssh_g(config: Path, host: str) -> dict[str, str]:
    shown = run([require("ssh"), "-G", "-F", str(config), host])
    assert shown.returncode == 0, shown.stderr
    return dict(line.partition(" ")[::2] for line in shown.stdout.splitlines())


def test_config_settings_for_every_host(tmp_path: Path) -> None:
    """What the config gives every host, as ssh -G shows it for any name: the settings
    that undo host key checking (or forward the agent everywhere) are named; the same
    ones for one trusted host are not."""
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    config = ssh_dir / "config"
    config.write_text(
        "Host trusted\n  ForwardAgent yes\n  StrictHostKeyChecking no\n"
        "Host *\n  UserKnownHostsFile /dev/null\n  HostKeyAlgorithms +ssh-rsa\n"
    )
    config.chmod(0o600)
    any_host = ssh_g(config, "somewhere.example")
    assert any_host["userknownhostsfile"] == "/dev/null"
    assert "ssh-rsa" in any_host["hostkeyalgorithms"].split(",")
    assert (any_host["forwardagent"], any_host["stricthostkeychecking"]) == ("no", "ask")
    trusted = ssh_g(config, "trusted")
    assert (trusted["forwardagent"], trusted["stricthostkeychecking"]) == ("yes", "false")
    found = check("-d", str(ssh_dir))
    said = [line for line in found.stdout.splitlines() if str(config) in line]
    assert said == [
        f"WARN {config}: UserKnownHostsFile /dev/null for every host: no host key is "
        "remembered, so none can be checked",
        f"WARN {config}: ssh-rsa allowed for every host: SHA-1 signatures, which OpenSSH "
        "turned off",
    ]
    config.write_text(
        "Host *\n  ForwardAgent yes\n  StrictHostKeyChecking no\n  ForwardX11 yes\n"
        "  ForwardX11Trusted yes\n"
    )
    any_host = ssh_g(config, "somewhere.example")
    assert (any_host["forwardagent"], any_host["stricthostkeychecking"]) == ("yes", "false")
    assert (any_host["forwardx11"], any_host["forwardx11trusted"]) == ("yes", "yes")
    said = [line for line in check("-d", str(ssh_dir)).stdout.splitlines() if str(config) in line]
    assert [line.split(": ", 1)[1].split(" for every host")[0] for line in said] == [
        "StrictHostKeyChecking no",
        "ForwardAgent",
        "ForwardX11 trusted",
    ]
    # untrusted X11 (ssh -G shows Debian's default, trusted, unless the file says no)
    config.write_text("Host *\n  ForwardX11 yes\n  ForwardX11Trusted no\n")
    assert ssh_g(config, "somewhere.example")["forwardx11trusted"] == "no"
    said = [line for line in check("-d", str(ssh_dir)).stdout.splitlines() if str(config) in line]
    assert said == [
        f"WARN {config}: ForwardX11 for every host: any server you log in to can open "
        "windows on your display (-X where needed)"
    ]
    # a file ssh refuses is a failure, as it is for ssh
    config.write_text("Host *\n  StrictHostKeyChecking sometimes\n")
    assert run([require("ssh"), "-G", "-F", str(config), "x"]).returncode == 255
    refused = check("-d", str(ssh_dir))
    assert refused.returncode == 1
    assert any(line.startswith(f"FAIL {config}: ssh would refuse it") for line in
               refused.stdout.splitlines())  # fmt: skip


def test_dsa_keys_in_openssh_format_are_named(tmp_path: Path) -> None:
    """ssh-keygen 9.2 still writes DSA keys (openssh-key-v1 by default): check names
    each, and its mode, though keytool does not load them."""
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    plain, pem, locked = ssh_dir / "id_dsa", ssh_dir / "id_dsa_pem", ssh_dir / "id_dsa_locked"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", plain])
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-m", "PEM", "-f", pem])
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "secret", "-f", locked])
    for key in (plain, pem, locked):
        assert "(DSA)" in run([require("ssh-keygen"), "-l", "-f", key]).stdout
    plain.chmod(0o644)
    Path(f"{plain}.pub").chmod(0o666)
    assert "UNPROTECTED PRIVATE KEY FILE" in run([require("ssh-keygen"), "-y", "-f", plain]).stderr
    found = check("-d", str(ssh_dir))
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    assert (
        f"FAIL {plain}: mode 0644: a private key others can read (ssh refuses to use it)" in lines
    )
    assert f"WARN {plain}.pub: mode 0666: others can change it" in lines
    for path in (plain, Path(f"{plain}.pub"), pem, locked, Path(f"{locked}.pub")):
        assert any(line.startswith(f"WARN {path}: a DSA key") for line in lines), path
    assert any(line.startswith(f"WARN {plain}: no passphrase") for line in lines)
    assert not any(line.startswith(f"WARN {locked}: no passphrase") for line in lines)


def test_links_are_followed_as_ssh_follows_them(tmp_path: Path) -> None:
    """A ~/.ssh that is a link, and a key and config there that are links (a dotfile
    manager's layout): judged by what they name, as ssh reads them; --fix leaves links."""
    real = tmp_path / "dotfiles"
    (real / "ssh").mkdir(parents=True, mode=0o700)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".ssh").symlink_to(real / "ssh")
    key = real / "key"
    run([require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", key])
    key.chmod(0o644)
    (real / "ssh" / "id_ed25519").symlink_to(key)
    (real / "config").write_text("Host *\n  StrictHostKeyChecking no\n")
    (real / "ssh" / "config").symlink_to(real / "config")
    # ssh reads both through the links: the config's setting, the key's mode
    shown = run([require("ssh"), "-G", "-F", real / "ssh" / "config", "somewhere"]).stdout
    assert "stricthostkeychecking false" in shown
    linked = home / ".ssh" / "id_ed25519"
    assert "UNPROTECTED PRIVATE KEY FILE" in run([require("ssh-keygen"), "-y", "-f", linked]).stderr
    found = check("-d", str(home / ".ssh"))
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    assert (
        f"FAIL {linked}: mode 0644: a private key others can read (ssh refuses to use it)" in lines
    )
    assert any(line.startswith(f"WARN {home / '.ssh' / 'config'}: StrictHostKeyChecking no")
               for line in lines)  # fmt: skip
    fixed = check("--fix", "-d", str(home / ".ssh"))
    assert fixed.returncode == 1 and "--fix leaves it" in fixed.stdout
    assert oct(key.stat().st_mode & 0o777) == "0o644" and linked.is_symlink()


def test_authorized_keys_lines_end_at_newlines_only(tmp_path: Path) -> None:
    """A form feed in a comment does not start a line, for sshd nor for check."""
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    one, dsa = keygen(tmp_path / "one"), tmp_path / "dsa"
    run([require("ssh-keygen"), "-q", "-t", "dsa", "-N", "", "-f", dsa])
    text = (
        Path(f"{one}.pub").read_text().strip() + " x\f" + Path(f"{dsa}.pub").read_text()
        + Path(f"{one}.pub").read_text()
    )  # fmt: skip
    keys_file = ssh_dir / "authorized_keys"
    keys_file.write_text(text)
    keys_file.chmod(0o600)
    listed = run([require("ssh-keygen"), "-l", "-f", keys_file]).stdout.splitlines()
    assert len(listed) == 2 and all("(ED25519)" in line for line in listed)
    found = check("-d", str(ssh_dir))
    assert "DSA" not in found.stdout, found.stdout


def test_group_writable_for_the_users_own_group_as_debian_sshd_takes_it(
    tmp_path: Path, account: Account
) -> None:
    """Debian's sshd takes group-writable folders and authorized_keys when the group is
    the user's alone (its user-private group), and refuses them once the group has
    another member. check said FAIL in both cases; it now says what this sshd does."""
    import grp

    key, keys_file, server, known = strict_setup(tmp_path, account)
    ssh_dir = keys_file.parent
    group = grp.getgrgid(account.gid).gr_name
    with server:
        known.write_text(server.known_hosts_line())
        account.home.chmod(0o775)
        ssh_dir.chmod(0o770)
        keys_file.chmod(0o660)
        assert ssh_login(server, account, key, known).returncode == 0
        own = check("-d", str(ssh_dir))
        assert own.returncode == 0, own.stdout
        for path in (account.home, ssh_dir, keys_file):
            assert f"WARN {path}: mode 0" in own.stdout
        assert "FAIL" not in own.stdout and "the user's alone" in own.stdout
        run([require("gpasswd"), "-a", "nobody", group]).check_returncode()
        try:
            assert ssh_login(server, account, key, known).returncode != 0
            shared = check("-d", str(ssh_dir))
        finally:
            run([require("gpasswd"), "-d", "nobody", group])
        assert shared.returncode == 1
        assert f"FAIL {ssh_dir}: mode 0770, not 0700" in shared.stdout
        assert f"FAIL {keys_file}: mode 0660" in shared.stdout
        fixed = check("--fix", "-d", str(ssh_dir))
        assert fixed.returncode == 0, fixed.stdout
        modes = [p.stat().st_mode & 0o777 for p in (account.home, ssh_dir, keys_file)]
        assert modes == [0o755, 0o700, 0o600]
