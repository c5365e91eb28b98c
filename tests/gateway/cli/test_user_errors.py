"""No traceback for a user's mistake: every ``edgeledger`` command, found by walking the
argparse tree (a new command is covered without touching this file), is fed bad input —
missing and unreadable files, bad TOML, unknown keys, a placeholder address, bad URLs, bad
hex, garbage bundles and key files, a broker or chain on a closed port — and must answer
with one clear line and a non-zero exit code.

Bad values are chosen by the option's name (``BAD``); every other required option gets a
plausible value (``GOOD``) so that the bad one is what the command trips on. ``verify``
and ``decrypt`` report their verdicts as one line on stdout (``FAIL``/``ERROR``, their
documented format); ``doctor`` reports one OK/FAIL line per check on stdout."""
import argparse
import os
import re
import socket

from edgeledger.gateway import cli

# Commands that keep running while their broker is away (they retry: nothing is lost):
# an unreachable broker is not an error for them, so they are not given one.
RUN_UNTIL_STOPPED = {"gateway run", "agent run"}
ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CLOSED_PORT = 9


class Inputs:
    """Files and URLs of bad (and good) input, made once per test in ``root``."""

    def __init__(self, root):
        self.root = str(root)
        # the discard port: privileged, so no test service of a parallel run can take it (a
        # port picked free could be), and nothing listens on it here
        self.closed = CLOSED_PORT
        self.n = 0
        self.garbage = self.write("garbage.bin", b"\x00\xffnot what you think\n")
        self.a_file = self.write("a-file", b"x")
        self.missing = os.path.join(self.root, "no-such-dir", "missing")
        key = self.write("gw.ethkey", b"11" * 32 + b"\n")
        os.chmod(key, 0o600)
        store = os.path.join(self.root, "gw.db")
        self.gateway_ok = self.write("ok.toml", 'store = "%s"\n[ledger]\nbackend = "none"\n' % store)
        closed_chain = ('store = "%s"\nbroker = "mqtt://127.0.0.1:%d"\n[ledger]\nbackend = "jsonrpc"\n'
                        'url = "http://127.0.0.1:%d"\ncontract = "%s"\nkey_file = "%s"\n'
                        % (store, self.closed, self.closed, ADDRESS, key))
        self.gateway_bad = [
            self.missing,
            self.write("bad.toml", "store = \n[ledger\n"),
            self.write("ledgr.toml", 'store = "%s"\n[ledgr]\nbackend = "none"\n' % store),
            self.write("noledger.toml", 'store = "%s"\n' % store),
            self.write("placeholder.toml", 'store = "%s"\n[ledger]\nbackend = "jsonrpc"\ncontract = "0x..."\n' % store),
            self.write("tls.toml", 'store = "%s"\n[mqtt]\nca_file = "ca.pem"\n[ledger]\nbackend = "none"\n' % store),
            self.garbage,
        ]
        self.gateway_closed = self.write("closed.toml", closed_chain)
        self.reachable_elsewhere = {self.gateway_closed, self.closed_url("http"), self.closed_url("mqtt")}
        agent = 'device = "m1"\nsite = "plant-a"\nkey_file = "m1.key"\n'
        self.agent_bad = [
            self.missing,
            self.write("a-bad.toml", agent + "window = \n"),
            self.write("a-unknown.toml", agent + 'intervl = 5\n[[sources]]\ntype = "simulated"\n'),
            self.write("a-dsmr.toml", agent + '[[sources]]\ntype = "dsmr"\nbaudrate = 115200\n'),
            self.write("a-noport.toml", agent + '[[sources]]\ntype = "dsmr"\n'),
            self.write("a-tls.toml", agent + '[tls]\nca_file = "ca.pem"\n[[sources]]\ntype = "simulated"\n'),
            self.write("a-nokey.toml", agent + '[[sources]]\ntype = "simulated"\n'),
            self.garbage,
        ]

    def write(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return path

    def fresh(self):
        self.n += 1
        return os.path.join(self.root, "out-%d" % self.n)

    def closed_url(self, scheme):
        return "%s://127.0.0.1:%d" % (scheme, self.closed)


def _is_agent(action):
    return "agent.toml" in (action.help or "")


# dest (regular expression) -> bad values, each a function of (Inputs, action, command)
BAD = [
    (r"config", lambda i, a, c: i.agent_bad if _is_agent(a) else i.gateway_bad + (
        [] if c in RUN_UNTIL_STOPPED else [i.gateway_closed])),
    (r"rpc|ledger|url", lambda i, a, c: ["127.0.0.1:8545", i.closed_url("http")]),
    (r"broker(_url)?", lambda i, a, c: ["tcp://127.0.0.1:1883"] + (
        [] if c in RUN_UNTIL_STOPPED else [i.closed_url("mqtt")])),
    (r"contract|gateway", lambda i, a, c: ["0x..."]),
    (r"public_key|kid|ledger_key|deployment_sha256", lambda i, a, c: ["zz"]),
    (r"key_file|keystore|passphrase_file|bundle|deployment", lambda i, a, c: [i.missing, i.garbage]),
    (r"out", lambda i, a, c: [os.path.join(i.a_file, "x")]),
    (r"dir|broker_dir|old_site", lambda i, a, c: [i.a_file]),
    (r"since|until", lambda i, a, c: ["yesterday"]),
    (r"device|site|site_id", lambda i, a, c: ["bad/id"]),
    (r"board", lambda i, a, c: ["no-such-board"]),
    (r"port", lambda i, a, c: ["/dev/no-such-tty"] if a.type is None else ["abc"]),
    (r"sizes|loads|device_counts", lambda i, a, c: ["a,b"]),
]
# dest -> a plausible value for a required option that is not the one under test
GOOD = {
    "config": lambda i: i.gateway_ok, "device": lambda i: "m1", "site": lambda i: "plant-a",
    "out": lambda i: i.fresh(), "dir": lambda i: i.fresh(), "reason": lambda i: "meter replaced",
    "seq": lambda i: "1", "overlap_s": lambda i: "60", "port": lambda i: "/dev/no-such-tty",
    "bundle": lambda i: i.garbage, "rpc": lambda i: i.closed_url("http"), "contract": lambda i: ADDRESS,
    "gateway": lambda i: ADDRESS, "board": lambda i: "esp32",
}


def _leaves(parser, path=()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, path + (name,))


def _arguments(parser):
    return [a for a in parser._actions if a.dest != "help" and a.nargs != 0 and not isinstance(
        a, argparse._SubParsersAction)]


def _argv(parser, inputs, values):
    """argv for ``parser``: ``values`` (dest -> value) and a GOOD value for every other
    required argument."""
    positional, options = [], []
    for a in _arguments(parser):
        if a.dest in values:
            value = values[a.dest]
        elif a.required or not a.option_strings:
            value = GOOD[a.dest](inputs) if a.dest in GOOD else "x"
        else:
            continue
        if a.option_strings:
            options += [a.option_strings[-1] if a.option_strings[-1].startswith("--") else a.option_strings[0], value]
        else:
            positional.append(value)
    return positional + options


def _cases(inputs):
    """(command, argv, what) for every command and every bad value one of its options takes."""
    for command, parser in _leaves(cli.build_parser()):
        covered = False
        for a in _arguments(parser):
            bad = []
            for pattern, values in BAD:
                if re.fullmatch(pattern, a.dest):
                    bad = values(inputs, a, command)
                    break
            if not bad and (a.type in (int, float) or a.choices):
                bad = ["abc"]
            for value in bad:
                covered = True
                yield command, command.split() + _argv(parser, inputs, {a.dest: value}), "%s=%s" % (a.dest, value)
        assert covered, "no bad input known for any option of `edgeledger %s`: add one to BAD" % command


def _one_line_error(code, out, err, command):
    """The command refused with one clear line: argparse's usage and error line, our
    ``edgeledger: error: ...`` as the last line on stderr (log lines or a demo's narration may
    come before it), or ``verify``'s one FAIL/ERROR line on stdout."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if code == 0 or "Traceback" in err + out:
        return False
    if lines and lines[0].startswith("usage:"):
        return re.match(r"edgeledger[\w -]*: error: ", lines[-1]) is not None
    if command in ("verify", "decrypt"):
        found = out.strip().splitlines()
        return code in (1, 2, 3) and len(found) == 1 and re.match(r"(FAIL|ERROR) ", found[0]) and not err
    if command == "doctor" and not lines:  # its report: one OK/FAIL line per check, exit 1 on a FAIL
        found = out.strip().splitlines()
        return code == 1 and all(re.match(r"(OK|FAIL) +\w+ ", f) for f in found[:-1]) and "FAIL " in out
    return bool(lines) and lines[-1].startswith("edgeledger: error: ")


def test_every_command_answers_bad_input_with_one_clear_line(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", CLOSED_PORT)) != 0, "something listens on port %d" % CLOSED_PORT
    monkeypatch.chdir(tmp_path)
    inputs = Inputs(tmp_path)
    failures = []
    for command, argv, what in _cases(inputs):
        capsys.readouterr()
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except Exception as e:  # what the user would see as a traceback
            failures.append("%s (%s): traceback %s: %s" % (" ".join(argv), what, type(e).__name__, e))
            continue
        out, err = capsys.readouterr()
        if code == 0 and what.partition("=")[2] in inputs.reachable_elsewhere:
            continue  # a command that needs no broker or chain may well succeed
        if not _one_line_error(code, out, err, command):
            failures.append("%s (%s): exit %r, stdout %r, stderr %r" % (" ".join(argv), what, code, out[-300:],
                                                                        err[-300:]))
    assert not failures, "\n".join(failures)
