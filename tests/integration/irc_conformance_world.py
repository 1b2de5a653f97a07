"""The world a conformance row runs in (its clients, each step sent, its
replies matched, PINGs to sync) and the setups rows start from."""

import time

from irc_conformance_rig import (ANY, CLOSED_MSG, Client, Expectation, GRACE,
                                 QUIET, R, RowFailure, SERVER_NAME, WAIT, fill)


# ------------------------------------------------------------------ world

USER = "USER u 0 * :Real Name"


def welcome(who="{me}"):
    return [R("001", who), R("376|422", who)]


class World:
    """The clients of one row, by role, and the names they use."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.log = []
        self.clients = {}
        nicks = dict(me=f"me{n}", peer=f"peer{n}", op=f"op{n}",
                     member=f"mem{n}", watcher=f"wat{n}", outsider=f"out{n}",
                     stranger=f"str{n}")
        self.ctx = dict(nicks, chan=f"#c{n}", chan2=f"#d{n}", n=str(n),
                        server=SERVER_NAME, user=USER,
                        PEER=nicks["peer"].upper())

    def connect(self, role):
        c = Client(self.port, role, self.log)
        self.clients[role] = c
        return c

    def collect(self, client, items, sync=None, wait=WAIT):
        """Reads until `items` came (and, when syncing, our PONG); returns
        the lines read. Raises RowFailure with the transcript if not."""
        if sync is None:
            sync = client.registered and not client.closed
        exp = Expectation(items, self.ctx)
        token = None
        if sync:
            token = client.token()
            client.send("PING :" + token)
        got, pong_at = [], None
        start = time.time()
        deadline = start + wait
        if not items and not sync:
            deadline = start + QUIET  # only things that must not come
        while not (exp.done and (not sync or pong_at)):
            now = time.time()
            limit = deadline if pong_at is None else min(deadline, pong_at + GRACE)
            if now >= limit:
                break
            msg = client.read(limit - now)
            if msg is None:
                if client.closed:
                    break
                continue
            if token and msg.command == "PONG" and msg.params[-1:] == [token]:
                pong_at = time.time()
                continue
            got.append(msg)
            exp.feed(msg)
            if msg is CLOSED_MSG:
                break
        if not exp.done:
            self.fail(f"{client.label} did not get: " + " | ".join(exp.missing()))
        if sync and pong_at is None and not client.closed:
            self.fail(f"{client.label} got no PONG to {token}: connection unusable?")
        return got

    def fail(self, why):
        raise RowFailure(why + "\n" + self.transcript())

    def transcript(self):
        out = []
        for label, d, line in self.log:
            text = line.decode("utf-8", "backslashreplace")
            if len(text) > 160:
                text = text[:140] + f"...({len(text)} chars)"
            out.append(f"  {label:>8} {d} {text}")
        return "\n".join(out)

    def register(self, role, nick=None):
        if nick:
            self.ctx[role] = nick
        c = self.connect(role)
        c.send(fill("NICK {%s}" % role, self.ctx))
        c.send(USER)
        self.collect(c, welcome("{%s}" % role), sync=False)
        return c

    def join(self, role, chan="{chan}", watchers=()):
        c = self.clients[role]
        c.send("JOIN " + fill(chan, self.ctx))
        self.collect(c, [R("JOIN", chan, src="{%s}" % role), R("366", ANY, chan)])
        for w in watchers:
            self.collect(self.clients[w], [R("JOIN", chan, src="{%s}" % role)])

    def run(self, step):
        sender = self.clients[step.by]
        for cmd in step.commands:
            if callable(cmd):
                cmd = cmd(self.ctx)
            if isinstance(cmd, bytes):
                cmd = fill(cmd.decode("latin-1"), self.ctx).encode("latin-1")
                sender.send(cmd)
                if not cmd.endswith(b"\n"):
                    time.sleep(0.05)  # a piece of a line: let it go alone
            else:
                sender.send(fill(cmd, self.ctx))
        roles = [step.by] + [r for r in list(step.see) + list(step.unseen) +
                             list(step.once) if r != step.by]
        for role in dict.fromkeys(roles):
            c = self.clients[role]
            if role == step.by:
                items, never = step.expect, step.never + step.unseen.get(role, [])
            else:
                items, never = step.see.get(role, []), step.unseen.get(role, [])
            got = self.collect(c, items)
            if role == step.by and step.check:
                step.check(self, got)
            for bad in never:
                for m in got:
                    if bad.matches(m, self.ctx):
                        self.fail(f"{role} must not get {bad.show(self.ctx)}, got {m!r}")
            for one in step.once.get(role, []):
                k = sum(1 for m in got if one.matches(m, self.ctx))
                if k != 1:
                    self.fail(f"{role} got {one.show(self.ctx)} {k} times, not once")

    def check_clean(self):
        for role, c in self.clients.items():
            if c.violations:
                self.fail(f"{role}: " + "; ".join(c.violations[:5]))

    def close(self):
        for c in self.clients.values():
            c.close()


# ----------------------------------------------------------------- setups
# Each takes the World and makes the clients a row starts from.

def UNREG(w):
    """`me` connected, nothing sent."""
    w.connect("me")


def REG(w):
    """`me` registered."""
    w.register("me")


def PEER(w):
    """`me` and `peer` registered."""
    w.register("me")
    w.register("peer")


def PEER_UNREG(w):
    """`peer` registered, `me` only connected."""
    w.register("peer")
    w.connect("me")


def BRACKETS(w):
    """`peer` registered as b<n>[x]\\y, `me` registered."""
    w.ctx["peer"] = f"b{w.n}[x]\\y"
    w.ctx["PEER_FOLDED"] = f"B{w.n}{{X}}|Y"
    w.register("peer")
    w.register("me")


def CHAN(w):
    """`op` created {chan} and set +nt; `member` and `watcher` joined;
    `outsider` registered, not in it."""
    for role in ("op", "member", "watcher", "outsider"):
        w.register(role)
    w.join("op")
    w.clients["op"].send(fill("MODE {chan} +nt", w.ctx))
    w.collect(w.clients["op"], [])
    w.join("member", watchers=["op"])
    w.join("watcher", watchers=["op", "member"])


def CHAN_STRANGER(w):
    """CHAN, and `stranger` registered too."""
    CHAN(w)
    w.register("stranger")


def SHARED(w):
    """`me` and `peer` share {chan} and {chan2}; `stranger` shares none."""
    for role in ("me", "peer", "stranger"):
        w.register(role)
    w.join("me")
    w.join("me", "{chan2}")
    w.join("peer", watchers=["me"])
    w.join("peer", "{chan2}", watchers=["me"])
